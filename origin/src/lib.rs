//! breakwater-origin: the reference origin behind the Breakwater edge.
//!
//! `main` only parses flags and wires these modules together; tests build the very same server
//! through [`Application::build`], so what they exercise is what runs in production.

pub mod admin;
pub mod auth;
pub mod cart;
pub mod cli;
pub mod clock;
pub mod conditional;
pub mod db;
pub mod edge;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod json_body;
pub mod metrics;
pub mod order;
pub mod outbox;
pub mod overload;
pub mod pagination;
pub mod principal;
pub mod problem_layer;
pub mod product;
pub mod product_patch;
pub mod ranking;
pub mod replica;
pub mod request_id;
pub mod routes;
pub mod seed;
pub mod shutdown;
pub mod startup;
pub mod telemetry;
pub mod trace_context;

pub use db::Db;
pub use error::ApiError;
pub use product::Product;
pub use startup::{Application, Settings, StartupError};
