//! API tests: each one starts a real origin over HTTP (see `helpers::spawn_app`).

mod auth;
mod cart;
mod health;
mod helpers;
mod lifecycle;
mod orders;
mod product_updates;
mod products;
mod protocol;
mod replication;
