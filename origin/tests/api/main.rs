//! API tests: each one starts a real origin over HTTP (see `helpers::spawn_app`).

mod bulkheads;
mod dead_letters;
mod health;
mod helpers;
mod lifecycle;
mod orders;
mod outbox;
mod product_updates;
mod products;
mod protocol;
mod rankings;
mod replicas;
mod replication;
