//! API tests: each one starts a real origin over HTTP (see `helpers::spawn_app`).

mod auth;
mod bulkheads;
mod cart;
mod dead_letters;
mod edge_signature;
mod events;
mod exposition;
mod health;
mod helpers;
mod lifecycle;
mod metrics;
mod order_history;
mod orders;
mod outbox;
mod overload;
mod product_updates;
mod products;
mod protocol;
mod query_plans;
mod rankings;
mod replicas;
mod replication;
mod trace;
