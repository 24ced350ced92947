//! API tests: each one starts a real origin over HTTP (see `helpers::spawn_app`).

mod exposition;
mod health;
mod helpers;
mod lifecycle;
mod metrics;
mod order_history;
mod orders;
mod product_updates;
mod products;
mod protocol;
mod query_plans;
mod replication;
mod trace;
