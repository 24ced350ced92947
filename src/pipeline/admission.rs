//! Admission stage: say no early, precisely and politely. On routes with an `ADMISSION`
//! policy it settles the principal, sheds load while the SLO burns (lowest priority first,
//! `503`), and charges the principal's GCRA buckets in `RATE_LIMITER` (`429` with `Retry-After`,
//! `RateLimit-Policy` and `RateLimit`).

use crate::bindings::control::signals;
use crate::bindings::limiter;
use crate::config;
use crate::error::EdgeError;
use crate::exchange::Exchange;
use crate::pipeline::Flow;
use crate::runtime::random;
use breakwater_core::auth::{LOGIN_PATH, login_account};
use breakwater_core::intake::{Limits, Principal};
use breakwater_core::ratelimit::{
    self, AdmissionPolicy, Mode, Quota, RouteAdmission, Verdict, policy_header, ratelimit_header,
};
use breakwater_core::shedding;
use std::time::Duration;
use worker::Method;

/// How long a request waits for its rate-limit bucket before the route's fail-open/closed rule.
const LIMITER_BUDGET: Duration = Duration::from_millis(500);
/// `Retry-After` for shed requests: about one controller adjustment later.
const SHED_RETRY_AFTER_S: u64 = 2;

/// Sign-ins one account may attempt, whatever address they come from: 10 at once, then 30 an
/// hour. The address's own route quota still applies on top.
const LOGIN_ATTEMPTS: (u32, u32) = (10, 30);

pub async fn run(ex: &mut Exchange) -> Result<Flow, EdgeError> {
    if ex.path == LOGIN_PATH && ex.head.method == Method::Post {
        limit_account(ex).await?;
    }
    let config = ex.config.clone();
    let policy = &config.admission;
    let Some(route) = policy.route(&ex.path) else {
        return Ok(Flow::Next);
    };
    ex.principal = principal(ex, policy)?;
    ex.priority = route.priority;

    let status = signals::status();
    let rank = route.priority.rank();
    let uniform = unit(random());
    if !shedding::admit(status.effective, rank, uniform) {
        ex.refused = true;
        return Err(EdgeError::Shed {
            retry_after_s: SHED_RETRY_AFTER_S,
        });
    }
    ex.would_shed = !shedding::admit(status.fraction, rank, uniform);

    let quotas = quotas(policy, route, &ex.principal);
    if quotas.is_empty() {
        return Ok(Flow::Next);
    }
    let object = format!("{}|{}", route.name, ex.principal.key());
    match charge(ex, &object, quotas, route.cost, route.mode).await? {
        Some(outcome) => {
            ex.rate_headers = Some((policy_header(quotas), ratelimit_header(&outcome)));
            Ok(Flow::Next)
        }
        None if route.fail_open => Ok(Flow::Next),
        None => {
            ex.refused = true;
            Err(EdgeError::LimiterUnavailable)
        }
    }
}

/// Charges `object`'s bucket `cost` against `quotas`. `Ok(Some(outcome))` when admitted (for
/// the `RateLimit` fields), `Ok(None)` when the limiter did not answer (the caller's
/// fail-open/closed rule), and the refusal, marked as the edge's own, when denied: from this
/// isolate's memory of an earlier denial, or from the bucket.
pub(super) async fn charge(
    ex: &mut Exchange,
    object: &str,
    quotas: &[Quota],
    cost: u32,
    mode: Mode,
) -> Result<Option<ratelimit::Outcome>, EdgeError> {
    let refusal = if let Some(wait) = limiter::known_denial(object) {
        denied(quotas, wait, policy_header(quotas))
    } else {
        let asked = match mode {
            Mode::Exact => limiter::check(&ex.env, object, quotas, cost, LIMITER_BUDGET).await,
            Mode::Lease => {
                limiter::check_leased(&ex.env, object, quotas, cost, LIMITER_BUDGET).await
            }
        };
        let Some(outcome) = asked else {
            return Ok(None);
        };
        match outcome.verdict {
            Verdict::Allow => return Ok(Some(outcome)),
            Verdict::Deny { retry_after_ms } => EdgeError::RateLimited {
                retry_after_ms,
                policy: policy_header(quotas),
                ratelimit: ratelimit_header(&outcome),
            },
            Verdict::TooCostly => EdgeError::InsufficientCapacity,
        }
    };
    ex.refused = true;
    Err(refusal)
}

/// Charges the account a sign-in names against [`LOGIN_ATTEMPTS`], so that guesses at one
/// account spread over many addresses are limited too. Fails closed: credentials are never
/// checked while the tries cannot be counted. A body that names no account passes (the origin
/// refuses it).
async fn limit_account(ex: &mut Exchange) -> Result<(), EdgeError> {
    let body = ex.body(Limits::default().max_body_bytes).await?;
    let Some(account) = login_account(&body) else {
        return Ok(());
    };
    let (burst, per_hour) = LOGIN_ATTEMPTS;
    let quotas = [Quota {
        name: "per-account".to_owned(),
        limit: per_hour,
        period_ms: 3_600_000,
        burst,
    }];
    let object = format!("_login-account|{account}");
    if charge(ex, &object, &quotas, 1, Mode::Exact)
        .await?
        .is_none()
    {
        ex.refused = true;
        return Err(EdgeError::LimiterUnavailable);
    }
    Ok(())
}

/// A `429` from this isolate's memory of the denial: no bucket call, every quota reported empty
/// until the wait is over.
fn denied(quotas: &[Quota], wait_ms: u64, policy: String) -> EdgeError {
    let empty = ratelimit::Outcome {
        verdict: Verdict::Deny {
            retry_after_ms: wait_ms,
        },
        quotas: quotas
            .iter()
            .map(|q| ratelimit::QuotaStatus {
                name: q.name.clone(),
                limit: q.limit,
                period_ms: q.period_ms,
                remaining: 0,
                reset_ms: wait_ms,
                retry_after_ms: Some(wait_ms),
            })
            .collect(),
    };
    EdgeError::RateLimited {
        retry_after_ms: wait_ms,
        policy,
        ratelimit: ratelimit_header(&empty),
    }
}

/// The route's quotas for `principal`: an API key's plan replaces them where the route says so.
fn quotas<'a>(
    policy: &'a AdmissionPolicy,
    route: &'a RouteAdmission,
    principal: &Principal,
) -> &'a [Quota] {
    match principal {
        Principal::ApiKey { plan, .. } if route.plan_quotas => {
            policy.plans.get(plan).map_or(&route.quotas, Vec::as_slice)
        }
        _ => &route.quotas,
    }
}

/// A verified token's subject (the authenticate stage), else a configured API key, else the
/// client address: `CF-Connecting-IP`, or the first `X-Forwarded-For` address when the policy
/// trusts it (a proxy in front that sets it). A valid token wins over an API key, which is then
/// not looked up: the token names a user, the key only a client program.
fn principal(ex: &Exchange, policy: &AdmissionPolicy) -> Result<Principal, EdgeError> {
    if matches!(ex.principal, Principal::User(_)) {
        return Ok(ex.principal.clone());
    }
    if let Some(name) = &policy.api_key_header
        && let Some(key) = ex.head.header(name)
    {
        let plan = config::secrets(&ex.env)
            .api_keys
            .get(key.trim())
            .cloned()
            .ok_or(EdgeError::UnknownApiKey)?;
        return Ok(Principal::api_key(key.trim(), plan));
    }
    if policy.trust_forwarded_for
        && let Some(forwarded) = ex.head.header("x-forwarded-for")
        && let Some(first) = forwarded.split(',').next()
    {
        let principal = Principal::from_connecting_ip(Some(first));
        if principal != Principal::Anonymous {
            return Ok(principal);
        }
    }
    Ok(ex.principal.clone())
}

/// A uniform value in [0, 1) from 53 random bits.
fn unit(bytes: [u8; 8]) -> f64 {
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}
