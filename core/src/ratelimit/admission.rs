//! The admission policy, configured in `wrangler.toml` under `[vars.ADMISSION]`: how a principal
//! is identified, which quotas guard which routes, how much each route matters when load is shed,
//! and what to do when the limiter cannot be reached.
//!
//! Parsed once into values that can only be valid; a bad policy fails with the place it is about
//! and the reason, e.g. `ADMISSION.routes[0] ("/api/").quotas[1].period: "1w" has no known unit`.
//! Each field is read on its own, so even a value of the wrong type names its field.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{MAX_PERIOD_MS, Quota};

/// How much a route matters when the edge sheds load. Ordered most important first, so the
/// greatest priority is the first to be shed.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Critical,
    High,
    #[default]
    Normal,
    Low,
}

impl Priority {
    /// Every priority, most important first.
    pub const ALL: [Priority; 4] = [Self::Critical, Self::High, Self::Normal, Self::Low];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Normal => "normal",
            Self::Low => "low",
        }
    }

    /// The load-shedding rank ([`crate::shedding::admit`]): 0 for critical, shed last.
    pub fn rank(self) -> u8 {
        self as u8
    }
}

/// Admission for one route prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAdmission {
    pub prefix: String,
    /// The policy name in the limiter's object name (default: the prefix). Unique, so two routes
    /// never share buckets by accident.
    pub name: String,
    /// Quotas for anonymous (IP) principals, and for API keys unless `plan_quotas`.
    pub quotas: Vec<Quota>,
    /// When true, an API key's plan quotas replace `quotas`.
    pub plan_quotas: bool,
    pub priority: Priority,
    /// When the limiter is unreachable: true admits (public reads), false answers 503 (logins).
    pub fail_open: bool,
    /// What one request costs; at most every applicable quota's burst, so it can ever pass.
    pub cost: u32,
    /// How isolates ask the limiter: once per request, or for leases of tokens.
    pub mode: Mode,
}

/// How a route's requests are charged to `RATE_LIMITER`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One round trip to the principal's object per request: the object sees every request,
    /// and admits exactly what GCRA admits.
    #[default]
    Exact,
    /// An isolate takes a lease of several tokens in one round trip and admits from it locally
    /// ([`crate::ratelimit::Lease`]): never more than exact mode would admit, sometimes fewer
    /// (tokens a lease sets aside and does not spend). For busy routes with large bursts; with
    /// a burst under 8 a lease is one token, which is exact mode.
    Lease,
}

/// The whole policy; the first route whose prefix matches wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdmissionPolicy {
    /// The lower-case request header carrying an API key, e.g. `x-api-key`.
    pub api_key_header: Option<String>,
    /// Whether `X-Forwarded-For` may name the client. Off by default: on Workers the client is
    /// `CF-Connecting-IP`, and anything else a client sends is theirs to forge.
    pub trust_forwarded_for: bool,
    pub routes: Vec<RouteAdmission>,
    /// Plan name (as an API key record names it) to that plan's quotas.
    pub plans: BTreeMap<String, Vec<Quota>>,
}

/// A policy that cannot be used, with the place it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ADMISSION{at}: {reason}")]
pub struct AdmissionError {
    /// Where in the policy, e.g. `.routes[0] ("/api/").quotas[1].period`.
    pub at: String,
    pub reason: String,
}

/// Quotas one route or plan may have: each is a bucket read and written on every request.
const MAX_QUOTAS: usize = 8;
/// Longest name, in bytes. Names go into header sf-strings and Durable Object names.
const MAX_NAME_BYTES: usize = 128;

// Fields are kept as JSON values and read one by one (see `field`); absent or null means default.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    api_key_header: Value,
    #[serde(default)]
    trust_forwarded_for: Value,
    routes: Value,
    #[serde(default)]
    plans: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: Value,
    #[serde(default)]
    name: Value,
    #[serde(default)]
    quotas: Value,
    #[serde(default)]
    plan_quotas: Value,
    #[serde(default)]
    priority: Value,
    #[serde(default)]
    fail_open: Value,
    #[serde(default)]
    cost: Value,
    #[serde(default)]
    mode: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuota {
    name: Value,
    limit: Value,
    period: Value,
    #[serde(default)]
    burst: Value,
}

fn error(at: impl Into<String>, reason: impl ToString) -> AdmissionError {
    AdmissionError {
        at: at.into(),
        reason: reason.to_string(),
    }
}

/// Reads an object at `at`, refusing unknown fields.
fn object<T: DeserializeOwned>(at: &str, value: Value) -> Result<T, AdmissionError> {
    serde_json::from_value(value).map_err(|e| error(at, e))
}

/// Reads the field `name` of the object at `at`: a wrong type names the field.
fn field<T: DeserializeOwned>(
    at: &str,
    name: &str,
    value: Value,
) -> Result<Option<T>, AdmissionError> {
    serde_json::from_value(value).map_err(|e| error(format!("{at}.{name}"), e))
}

/// A name: 1 to [`MAX_NAME_BYTES`] bytes of printable ASCII.
fn name(at: &str, field: &str, value: &str) -> Result<(), AdmissionError> {
    let printable = value.bytes().all(|b| (b' '..=b'~').contains(&b));
    if value.is_empty() || value.len() > MAX_NAME_BYTES || !printable {
        return Err(error(
            format!("{at}{field}"),
            format!("{value:?} must be 1 to {MAX_NAME_BYTES} bytes of printable ASCII"),
        ));
    }
    Ok(())
}

impl AdmissionPolicy {
    /// Parses the `ADMISSION` var (a JSON object: wrangler turns the TOML table into one).
    pub fn from_value(value: Value) -> Result<Self, AdmissionError> {
        let raw: RawPolicy = object("", value)?;
        let api_key_header = match field::<String>("", "api_key_header", raw.api_key_header)? {
            Some(h) => {
                let lower = h.to_ascii_lowercase();
                if lower.is_empty()
                    || !lower
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(error(
                        ".api_key_header",
                        format!("{h:?} is not a header name"),
                    ));
                }
                Some(lower)
            }
            None => None,
        };
        let mut plans = BTreeMap::new();
        for (plan, quotas) in
            field::<Map<String, Value>>("", "plans", raw.plans)?.unwrap_or_default()
        {
            name("", &format!(".plans.{plan}"), &plan)?;
            let quotas = parse_quotas(&format!(".plans.{plan}"), quotas)?;
            plans.insert(plan, quotas);
        }
        let mut policy = Self {
            trust_forwarded_for: field("", "trust_forwarded_for", raw.trust_forwarded_for)?
                .unwrap_or(false),
            api_key_header,
            routes: Vec::new(),
            plans,
        };
        let routes: Vec<Value> = field("", "routes", raw.routes)?.unwrap_or_default();
        for (i, value) in routes.into_iter().enumerate() {
            let prefix = value.get("prefix").and_then(Value::as_str).unwrap_or("?");
            let route = policy.parse_route(&format!(".routes[{i}] ({prefix:?})"), value)?;
            policy.routes.push(route);
        }
        Ok(policy)
    }

    /// Reads one route, checked against the plans and the routes before it.
    fn parse_route(&self, at: &str, value: Value) -> Result<RouteAdmission, AdmissionError> {
        let raw: RawRoute = object(at, value)?;
        let fail = |field: &str, reason: String| error(format!("{at}{field}"), reason);
        let prefix: String = field(at, "prefix", raw.prefix)?.unwrap_or_default();
        name(at, ".prefix", &prefix)?;
        if !prefix.starts_with('/') {
            return Err(fail(".prefix", "must start with '/'".into()));
        }
        if self.routes.iter().any(|r| prefix.starts_with(&r.prefix)) {
            return Err(fail(
                ".prefix",
                "is shadowed by an earlier route with a shorter prefix".into(),
            ));
        }
        let route_name = field::<String>(at, "name", raw.name)?.unwrap_or_else(|| prefix.clone());
        name(at, ".name", &route_name)?;
        if self.routes.iter().any(|r| r.name == route_name) {
            return Err(fail(
                ".name",
                format!("{route_name:?} names an earlier route too"),
            ));
        }
        let quotas = parse_quotas(&format!("{at}.quotas"), raw.quotas)?;
        let plan_quotas = field(at, "plan_quotas", raw.plan_quotas)?.unwrap_or(false);
        if plan_quotas && (self.api_key_header.is_none() || self.plans.is_empty()) {
            return Err(fail(
                ".plan_quotas",
                "needs an api_key_header and at least one plan".into(),
            ));
        }
        let cost = field(at, "cost", raw.cost)?.unwrap_or(1);
        if cost == 0 {
            return Err(fail(".cost", "must be at least 1".into()));
        }
        let plan_sets = self.plans.iter().filter(|_| plan_quotas);
        let applicable = quotas.iter().map(|q| (String::new(), q)).chain(
            plan_sets.flat_map(|(plan, qs)| qs.iter().map(move |q| (format!("plan {plan:?} "), q))),
        );
        for (whose, quota) in applicable {
            if cost > quota.burst {
                return Err(fail(
                    ".cost",
                    format!(
                        "{cost} exceeds the burst {} of {whose}quota {:?}: no request could pass",
                        quota.burst, quota.name
                    ),
                ));
            }
        }
        Ok(RouteAdmission {
            prefix,
            name: route_name,
            quotas,
            plan_quotas,
            priority: field(at, "priority", raw.priority)?.unwrap_or_default(),
            fail_open: field(at, "fail_open", raw.fail_open)?.unwrap_or(true),
            cost,
            mode: field(at, "mode", raw.mode)?.unwrap_or_default(),
        })
    }

    /// The admission for `path`, if any route covers it. Uncovered paths are not limited.
    pub fn route(&self, path: &str) -> Option<&RouteAdmission> {
        self.routes.iter().find(|r| path.starts_with(&r.prefix))
    }

    /// The policy in the form [`Self::from_value`] reads, every default spelled out: what an
    /// operator sees as the policy in force.
    pub fn to_value(&self) -> Value {
        let quotas = |quotas: &[Quota]| -> Value {
            quotas
                .iter()
                .map(|q| {
                    json!({"name": q.name, "limit": q.limit, "period": format!("{}ms", q.period_ms), "burst": q.burst})
                })
                .collect()
        };
        let routes: Vec<Value> = self
            .routes
            .iter()
            .map(|r| {
                json!({
                    "prefix": r.prefix, "name": r.name, "quotas": quotas(&r.quotas),
                    "plan_quotas": r.plan_quotas, "priority": r.priority,
                    "fail_open": r.fail_open, "cost": r.cost, "mode": r.mode,
                })
            })
            .collect();
        let plans: Map<String, Value> = self
            .plans
            .iter()
            .map(|(plan, qs)| (plan.clone(), quotas(qs)))
            .collect();
        json!({
            "api_key_header": self.api_key_header,
            "trust_forwarded_for": self.trust_forwarded_for,
            "routes": routes,
            "plans": plans,
        })
    }
}

/// Reads a list of quotas at `at` (a route's `.quotas` or a plan).
fn parse_quotas(at: &str, value: Value) -> Result<Vec<Quota>, AdmissionError> {
    let values: Vec<Value> = serde_json::from_value::<Option<_>>(value)
        .map_err(|e| error(at, e))?
        .unwrap_or_default();
    if values.len() > MAX_QUOTAS {
        return Err(error(
            at,
            format!("{} quotas; at most {MAX_QUOTAS}", values.len()),
        ));
    }
    let mut quotas: Vec<Quota> = Vec::with_capacity(values.len());
    for (j, value) in values.into_iter().enumerate() {
        let at = format!("{at}[{j}]");
        let fail = |field: &str, reason: String| error(format!("{at}{field}"), reason);
        let raw: RawQuota = object(&at, value)?;
        let quota_name: String = field(&at, "name", raw.name)?.unwrap_or_default();
        name(&at, ".name", &quota_name)?;
        if quotas.iter().any(|q| q.name == quota_name) {
            return Err(fail(".name", format!("{quota_name:?} is used twice")));
        }
        let limit: u32 = field(&at, "limit", raw.limit)?.unwrap_or(0);
        if limit == 0 {
            return Err(fail(".limit", "must be at least 1".into()));
        }
        let burst: u32 = field(&at, "burst", raw.burst)?.unwrap_or(limit);
        if burst == 0 {
            return Err(fail(".burst", "must be at least 1".into()));
        }
        let period_ms = period_ms(&raw.period).map_err(|reason| fail(".period", reason))?;
        quotas.push(Quota {
            name: quota_name,
            limit,
            period_ms,
            burst,
        });
    }
    Ok(quotas)
}

/// A period: whole seconds, or a string of digits and a unit (`ms`, `s`, `m`, `h`, `d`), from
/// 1 ms to [`MAX_PERIOD_MS`].
fn period_ms(value: &Value) -> Result<u64, String> {
    let ms = match value {
        Value::Number(n) => match n.as_u64() {
            Some(secs) => secs.checked_mul(1_000),
            None => return Err(format!("{n} is not a whole number of seconds")),
        },
        Value::String(s) => {
            let (digits, unit) =
                s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
            let scale = match unit {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(format!("{s:?} has no known unit (ms, s, m, h, d)")),
            };
            let n: u64 = digits
                .parse()
                .map_err(|_| format!("{s:?} does not start with a whole number"))?;
            n.checked_mul(scale)
        }
        _ => {
            return Err(format!(
                "{value} is neither whole seconds nor a string like \"500ms\" or \"1h\""
            ));
        }
    };
    ms.filter(|ms| (1..=MAX_PERIOD_MS).contains(ms))
        .ok_or_else(|| format!("{value} is outside 1 ms to 30 days"))
}

#[cfg(test)]
mod tests;
