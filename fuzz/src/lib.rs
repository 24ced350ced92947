//! breakwater-fuzz: structured random fuzzing of Breakwater's parsers on the stable toolchain.
//!
//! libFuzzer and cargo-fuzz need a nightly compiler (`-Z sanitizer`, coverage instrumentation),
//! and this project builds with stable Rust only. So this runner does what it can without
//! coverage: each target generates inputs in the shape its parser expects ([`draw`]), mutates
//! inputs from a checked-in corpus and from what it found ([`mutate`]), and keeps an input when
//! it produces a combination of outcomes not seen before ([`targets::Outcome`]), which stands in
//! for new coverage. Every target asserts invariants a plausible bug would break, not only the
//! absence of panics. The loop runs hundreds of thousands of inputs a second, single-threaded and
//! reproducible from its seed ([`rng`]).
//!
//! `make fuzz` runs every target for a time budget (`scripts/fuzz.sh`); `cargo test` replays the
//! corpus (`tests/corpus.rs`). A failure is shrunk and written to `fuzz/artifacts/<target>/`.

pub mod corpus;
pub mod draw;
pub mod envelope;
pub mod mutate;
pub mod rng;
pub mod runner;
pub mod targets;
