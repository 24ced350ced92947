//! breakwater-core: the pure decision logic shared by the Breakwater edge and origin.
//!
//! Nothing here performs I/O or reads a clock (`clippy.toml` bans both); time and random values
//! come in as arguments, so every decision is a function of its inputs and can be tested natively
//! and run unchanged inside the wasm32 edge worker.

// Core runs inside the edge's wasm, where a panic fails every request in flight in the isolate
// (README § What a panic costs): the same lints as `src/`. Tests may unwrap.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented,
        clippy::indexing_slicing
    )
)]

pub mod access;
pub mod admin_session;
pub mod assets;
pub mod auth;
pub mod breaker;
pub mod cache;
pub mod concurrency;
pub mod conditional;
pub mod config;
pub mod control;
pub mod guest;
pub mod hash;
pub mod headers;
pub mod idempotency;
pub mod intake;
pub mod invalidate;
pub mod memtier;
pub mod metrics;
pub mod policy;
pub mod pool;
pub mod problem;
pub mod purge;
pub mod ratelimit;
pub mod rpc;
pub mod shedding;
pub mod signing;
pub mod singleflight;
pub mod timing;
pub mod token;
pub mod trace;
pub mod writebehind;
