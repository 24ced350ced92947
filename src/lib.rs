//! Breakwater edge worker (placeholder while the pipeline is written).
