//! Durable Object classes declared in `wrangler.toml`. Their behaviour arrives with later issues
//! (idempotency); until then each answers `501` problem+json, so a
//! binding that is called early fails loudly instead of pretending to work.

use crate::respond;
use breakwater_core::problem::Problem;
use worker::{DurableObject, Env, Request, Response, Result, State, durable_object};

fn not_implemented(binding: &str) -> Result<Response> {
    let problem = Problem::new("not-implemented", 501, "Not implemented")
        .with_detail(format!("the {binding} Durable Object has no behaviour yet"));
    respond::problem(&problem, &[])
}

macro_rules! placeholder_object {
    ($name:ident, $binding:literal, $doc:literal) => {
        #[doc = $doc]
        #[durable_object]
        pub struct $name {
            _state: State,
        }

        impl DurableObject for $name {
            fn new(state: State, _env: Env) -> Self {
                Self { _state: state }
            }

            async fn fetch(&self, _req: Request) -> Result<Response> {
                not_implemented($binding)
            }
        }
    };
}

placeholder_object!(
    Idempotency,
    "IDEMPOTENCY",
    "Idempotency records, one object per (principal, key)."
);
