//! API tests: each one starts a real origin over HTTP (see `helpers::spawn_app`).

mod health;
mod helpers;
mod lifecycle;
mod products;
mod protocol;
