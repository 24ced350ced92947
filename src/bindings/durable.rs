//! One typed client for every Durable Object call, and its server half.
//!
//! A call is a [`Command`]: a `POST` whose JSON body names the command and carries it, answered
//! `200` with the command's [`Command::Reply`] as JSON. The client applies a timeout and maps
//! every failure to one [`CallError`]; the object reads the command with [`Incoming`] and
//! answers with [`reply`]. The host in the URL is never resolved: the stub routes the request.

use crate::bindings::control::signals;
use crate::runtime::{now_ms, within};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use worker::{Env, Method, Request, RequestInit, Response};

pub use breakwater_core::rpc::Command;

/// Why a call got no usable reply. None of these is the client's fault.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{binding}: not reachable: {detail}")]
    Unreachable {
        binding: &'static str,
        detail: String,
    },
    #[error("{binding}: no answer to {command} within {timeout:?}")]
    TimedOut {
        binding: &'static str,
        command: &'static str,
        timeout: Duration,
    },
    #[error("{binding}: answered {status} to {command}: {detail}")]
    Failed {
        binding: &'static str,
        command: &'static str,
        status: u16,
        detail: String,
    },
}

/// A request that needed the object and did not get it: `503` with `Retry-After`, never a
/// `500` (README § When a dependency fails).
impl From<CallError> for crate::error::EdgeError {
    fn from(e: CallError) -> Self {
        Self::DependencyUnavailable(e.to_string())
    }
}

impl From<CallError> for worker::Error {
    fn from(e: CallError) -> Self {
        worker::Error::RustError(e.to_string())
    }
}

/// The wire form of a command.
#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    command: String,
    body: T,
}

/// Sends `command` to the object `name` of `binding` and waits at most `timeout` for its reply.
pub async fn call<C: Command>(
    env: &Env,
    binding: &'static str,
    name: &str,
    command: &C,
    timeout: Duration,
) -> Result<C::Reply, CallError> {
    let unreachable = |e: &dyn std::fmt::Display| CallError::Unreachable {
        binding,
        detail: e.to_string(),
    };
    let body = serde_json::to_string(&Envelope {
        command: C::NAME.to_owned(),
        body: command,
    })
    .map_err(|e| unreachable(&e))?;
    let stub = env
        .durable_object(binding)
        .and_then(|ns| ns.get_by_name(name))
        .map_err(|e| unreachable(&e))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let request =
        Request::new_with_init("https://object.internal/", &init).map_err(|e| unreachable(&e))?;
    let exchange = async {
        let mut response = stub
            .fetch_with_request(request)
            .await
            .map_err(|e| unreachable(&e))?;
        let status = response.status_code();
        let failed = |detail: String| CallError::Failed {
            binding,
            command: C::NAME,
            status,
            detail,
        };
        if status != 200 {
            return Err(failed(response.text().await.unwrap_or_default()));
        }
        response
            .json::<C::Reply>()
            .await
            .map_err(|e| failed(e.to_string()))
    };
    let started = now_ms();
    let result = within(timeout, exchange)
        .await
        .unwrap_or(Err(CallError::TimedOut {
            binding,
            command: C::NAME,
            timeout,
        }));
    signals::observe_durable_object(binding, C::NAME, (now_ms() - started) as u64);
    result
}

/// A command as an object received it: dispatch on [`Incoming::name`], then [`Incoming::parse`].
pub struct Incoming(Envelope<serde_json::Value>);

impl Incoming {
    pub async fn read(mut req: Request) -> worker::Result<Self> {
        Ok(Self(req.json().await?))
    }

    pub fn name(&self) -> &str {
        &self.0.command
    }

    pub fn parse<C: Command>(&self) -> worker::Result<C> {
        C::deserialize(&self.0.body)
            .map_err(|e| worker::Error::RustError(format!("malformed {} command: {e}", C::NAME)))
    }
}

/// The `200` answer to a `C`.
pub fn reply<C: Command>(reply: &C::Reply) -> worker::Result<Response> {
    Response::from_json(reply)
}

/// The answer to a command the object does not know.
pub fn unknown(incoming: &Incoming) -> worker::Result<Response> {
    Response::error(format!("unknown command {:?}", incoming.name()), 400)
}
