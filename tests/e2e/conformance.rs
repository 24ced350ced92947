//! The conformance table: what an RFC 9111 shared cache (with RFC 9110's semantics and RFC 5861's
//! stale-* extensions) must do, checked against the conformance edge ([`Env::conformance`]) in
//! front of the scripted origin ([`crate::scripted`]).
//!
//! Each case names the clause it checks, scripts the origin's answers for a path of its own, and
//! sends the client's steps in order. Each step says the status it expects, whether the origin
//! was contacted for it (counted from the requests the scripted origin recorded, never from the
//! edge's own `Cache-Status`), the fields it expects present or absent, the body, and what the
//! origin received. Time passes without sleeping: answers carry `Date` values in the past, so
//! `Date: now-100s` with `max-age=50` is stale on arrival. (A request the edge made after
//! answering, such as a background refresh, would count for the next step; the conformance routes
//! grant no stale-while-revalidate, so the table's scripts cause none.)
//!
//! Each family is one trial that runs all its cases and then fails listing every failing case
//! with its clause and what differed, so one run shows all failures. Where the RFC leaves a
//! choice (MAY), the row says which one it expects and why (`note`).
//!
//! `conformance::containment` is separate: ordinary requests must be unaffected while other
//! requests make the origin send status 999, a 103 before 999, and invalid header bytes.

mod conditionals;
mod containment;
mod forwarding;
mod freshness;
mod head;
mod oddities;
mod overload;
mod range;
mod selftest;
mod stale;
mod storing;
mod tiers;
mod vary;

use crate::harness::{Conformance, Env, ORIGIN_TIMEOUT_MS};
use crate::proxy::Head;
use crate::scripted::Answer;
use std::time::{Duration, Instant};

pub const CASES: [(&str, crate::Case); 13] = [
    ("conformance::scripted_origin", selftest::run),
    ("conformance::freshness", |env| {
        run_family(env, "f", freshness::cases())
    }),
    ("conformance::storing", |env| {
        run_family(env, "s", storing::cases())
    }),
    ("conformance::vary", |env| {
        run_family(env, "v", vary::cases())
    }),
    ("conformance::forwarding", |env| {
        run_family(env, "w", forwarding::cases())
    }),
    ("conformance::conditionals", |env| {
        run_family(env, "k", conditionals::cases())
    }),
    ("conformance::range", |env| {
        run_family(env, "r", range::cases())
    }),
    ("conformance::head", |env| {
        run_family(env, "h", head::cases())
    }),
    ("conformance::stale", |env| {
        run_family(env, "e", stale::cases())
    }),
    ("conformance::status_oddities", |env| {
        run_family(env, "o", oddities::cases())
    }),
    ("conformance::tiers", |env| {
        run_family(env, "t", tiers::cases())
    }),
    ("conformance::containment", containment::run),
    ("conformance::overload", overload::run),
];

/// A whole answer of the client: how long it took to complete is measured by the caller.
pub struct Got {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<String> = self
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

/// A client that never waits longer than this for a whole answer: a hang is a failure of its own.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(CLIENT_TIMEOUT)
        .build()
        .unwrap()
}

pub async fn send(
    client: &reqwest::Client,
    url: &str,
    method: &str,
    headers: &[(String, String)],
    body: Option<&str>,
) -> Result<Got, String> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut req = client.request(method, url);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    if let Some(body) = body {
        req = req.body(body.to_owned());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("request failed: {}", chain(&e)))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("{status}, then the body failed: {}", chain(&e)))?
        .to_vec();
    Ok(Got {
        status,
        headers,
        body,
    })
}

/// An error and its sources, so a failure says what went wrong underneath reqwest.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// One row of the table.
pub struct Case {
    pub name: &'static str,
    pub clause: &'static str,
    /// The judgement taken where the RFC leaves a choice, and why.
    pub note: Option<&'static str>,
    /// `/c/` (memory tier) or `/cx/` (memory and Cache API).
    pub prefix: &'static str,
    pub answers: Vec<Answer>,
    pub steps: Vec<Step>,
}

pub fn case(name: &'static str, clause: &'static str) -> Case {
    Case {
        name,
        clause,
        note: None,
        prefix: "/c/",
        answers: Vec::new(),
        steps: Vec::new(),
    }
}

impl Case {
    pub fn note(mut self, note: &'static str) -> Self {
        self.note = Some(note);
        self
    }
    pub fn tiers(mut self) -> Self {
        self.prefix = "/cx/";
        self
    }
    pub fn answer(mut self, answer: Answer) -> Self {
        self.answers.push(answer);
        self
    }
    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }
}

/// What a field must be.
#[derive(Debug, Clone)]
pub enum Field {
    Is(String),
    Present,
    Absent,
    Contains(String),
    /// Absent, or present with another value.
    Not(String),
}

impl Field {
    fn check(&self, got: Option<&str>) -> bool {
        match (self, got) {
            (Self::Is(want), Some(got)) => got == want,
            (Self::Present, Some(_)) => true,
            (Self::Absent, None) => true,
            (Self::Contains(want), Some(got)) => got.contains(want.as_str()),
            (Self::Not(want), got) => got != Some(want.as_str()),
            _ => false,
        }
    }
}

#[derive(Clone)]
pub enum Body {
    Is(Vec<u8>),
    Empty,
    Lacks(String),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Is(want) => write!(f, "Is({:?})", String::from_utf8_lossy(want)),
            Self::Empty => write!(f, "Empty"),
            Self::Lacks(s) => write!(f, "Lacks({s:?})"),
        }
    }
}

impl Body {
    fn check(&self, got: &[u8]) -> bool {
        let text = String::from_utf8_lossy(got);
        match self {
            Self::Is(want) => got == want.as_slice(),
            Self::Empty => got.is_empty(),
            Self::Lacks(s) => !text.contains(s.as_str()),
        }
    }
}

/// Whether the origin was contacted for a step.
#[derive(Debug, Clone, Copy)]
pub enum Origin {
    /// Not at all: served from the cache.
    Hit,
    /// At least once.
    Miss,
    /// Exactly this many requests.
    Exactly(usize),
    /// Either (the RFC leaves it open): the other checks still apply.
    Any,
}

/// One request of the client and what its answer must be.
pub struct Step {
    pub method: &'static str,
    pub headers: Vec<(String, String)>,
    pub query: &'static str,
    pub request_body: Option<&'static str>,
    /// Any of these (empty: any status).
    pub statuses: Vec<u16>,
    pub origin: Origin,
    /// Response fields; with a status, checked only when the answer has that status.
    pub fields: Vec<(Option<u16>, String, Field)>,
    pub body: Vec<(Option<u16>, Body)>,
    /// Fields of the first request the origin received during this step: the fill or the
    /// revalidation (`{edge_host}` in a value becomes the edge's host).
    pub sent: Vec<(String, Field)>,
    /// The first request line the origin received during this step starts with this.
    pub sent_line: Option<String>,
    pub within: Option<Duration>,
}

pub fn step(method: &'static str) -> Step {
    Step {
        method,
        headers: Vec::new(),
        query: "",
        request_body: None,
        statuses: Vec::new(),
        origin: Origin::Any,
        fields: Vec::new(),
        body: Vec::new(),
        sent: Vec::new(),
        sent_line: None,
        within: None,
    }
}

pub fn get() -> Step {
    step("GET")
}

pub fn head() -> Step {
    step("HEAD")
}

impl Step {
    pub fn h(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    pub fn query(mut self, query: &'static str) -> Self {
        self.query = query;
        self
    }
    pub fn send_body(mut self, body: &'static str) -> Self {
        self.request_body = Some(body);
        self
    }
    pub fn status(mut self, status: u16) -> Self {
        self.statuses = vec![status];
        self
    }
    pub fn statuses(mut self, statuses: &[u16]) -> Self {
        self.statuses = statuses.to_vec();
        self
    }
    /// Served from the cache: the origin received nothing.
    pub fn hit(mut self) -> Self {
        self.origin = Origin::Hit;
        self
    }
    /// The origin was contacted.
    pub fn miss(mut self) -> Self {
        self.origin = Origin::Miss;
        self
    }
    pub fn origin_count(mut self, n: usize) -> Self {
        self.origin = Origin::Exactly(n);
        self
    }
    pub fn field(mut self, name: &str, value: &str) -> Self {
        self.fields
            .push((None, name.to_owned(), Field::Is(value.to_owned())));
        self
    }
    pub fn field_is(mut self, name: &str, field: Field) -> Self {
        self.fields.push((None, name.to_owned(), field));
        self
    }
    pub fn field_if(mut self, status: u16, name: &str, field: Field) -> Self {
        self.fields.push((Some(status), name.to_owned(), field));
        self
    }
    pub fn present(self, name: &str) -> Self {
        self.field_is(name, Field::Present)
    }
    pub fn absent(self, name: &str) -> Self {
        self.field_is(name, Field::Absent)
    }
    pub fn body(mut self, body: &str) -> Self {
        self.body.push((None, Body::Is(body.as_bytes().to_vec())));
        self
    }
    pub fn body_is(mut self, body: Body) -> Self {
        self.body.push((None, body));
        self
    }
    pub fn body_if(mut self, status: u16, body: Body) -> Self {
        self.body.push((Some(status), body));
        self
    }
    pub fn empty_body(self) -> Self {
        self.body_is(Body::Empty)
    }
    pub fn sent(mut self, name: &str, value: &str) -> Self {
        self.sent
            .push((name.to_owned(), Field::Is(value.to_owned())));
        self
    }
    pub fn sent_is(mut self, name: &str, field: Field) -> Self {
        self.sent.push((name.to_owned(), field));
        self
    }
    pub fn not_sent(self, name: &str) -> Self {
        self.sent_is(name, Field::Absent)
    }
    pub fn sent_line(mut self, prefix: &str) -> Self {
        self.sent_line = Some(prefix.to_owned());
        self
    }
    pub fn within_ms(mut self, ms: u64) -> Self {
        self.within = Some(Duration::from_millis(ms));
        self
    }
}

/// `Date: now`, `Cache-Control: <cc>` and the body: the usual cacheable answer.
pub fn ok(cc: &str, body: &str) -> Answer {
    answer(200, cc, body)
}

pub fn answer(status: u16, cc: &str, body: &str) -> Answer {
    let a = Answer::new(status).h("Date", "{now}");
    let a = if cc.is_empty() {
        a
    } else {
        a.h("Cache-Control", cc)
    };
    a.body(body)
}

/// An answer stale on arrival: dated `age` seconds ago with `Cache-Control: <cc>`.
pub fn aged(age: u64, cc: &str, body: &str) -> Answer {
    Answer::new(200)
        .h("Date", &format!("{{date:-{age}}}"))
        .h("Cache-Control", cc)
        .body(body)
}

/// The answer a step must not hang beyond: the origin timeout and a second.
pub const PROMPT_MS: u64 = ORIGIN_TIMEOUT_MS + 1000;

fn run_family(env: &Env, family: &str, cases: Vec<Case>) -> Result<(), String> {
    let conf = env.conformance()?;
    let client = client();
    let mut failures = Vec::new();
    let total = cases.len();
    for case in cases {
        if let Err(why) = run_case(env, conf, &client, family, &case) {
            let note = case
                .note
                .map(|n| format!(" [judgement: {n}]"))
                .unwrap_or_default();
            failures.push(format!(
                "  {} ({}){note}:\n    {}",
                case.name,
                case.clause,
                why.join("\n    ")
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {total} cases failed:\n{}",
            failures.len(),
            failures.join("\n")
        ))
    }
}

fn run_case(
    env: &Env,
    conf: &Conformance,
    client: &reqwest::Client,
    family: &str,
    case: &Case,
) -> Result<(), Vec<String>> {
    let path = format!("{}{family}/{}", case.prefix, case.name);
    conf.origin.script(&path, case.answers.clone());
    let edge_host = conf.edge_addr.to_string();
    let mut why = Vec::new();
    for (i, step) in case.steps.iter().enumerate() {
        let before = conf.origin.count(&path);
        let url = format!("{}{path}{}", conf.edge, step.query);
        let started = Instant::now();
        let got = env.rt.block_on(send(
            client,
            &url,
            step.method,
            &step.headers,
            step.request_body,
        ));
        let elapsed = started.elapsed();
        let heads = conf.origin.heads(&path);
        let reached = heads.len() - before;
        let label = format!("step {} ({} {:?})", i + 1, step.method, step.headers);
        let got = match got {
            Ok(got) => got,
            Err(e) => {
                why.push(format!("{label}: {e} after {elapsed:?}"));
                // Later steps depend on this one.
                break;
            }
        };
        let mut diffs = check_step(
            step,
            &got,
            reached,
            heads.get(before..).unwrap_or(&[]),
            &edge_host,
        );
        if let Some(limit) = step.within
            && elapsed > limit
        {
            diffs.push(format!("answered after {elapsed:?}, want within {limit:?}"));
        }
        if !diffs.is_empty() {
            why.push(format!("{label}: {}", diffs.join("; ")));
        }
    }
    if why.is_empty() { Ok(()) } else { Err(why) }
}

fn check_step(
    step: &Step,
    got: &Got,
    reached: usize,
    heads: &[Head],
    edge_host: &str,
) -> Vec<String> {
    let mut diffs = Vec::new();
    if !step.statuses.is_empty() && !step.statuses.contains(&got.status) {
        let body = String::from_utf8_lossy(&got.body);
        let body: String = body.chars().take(160).collect();
        diffs.push(format!(
            "status {} ({body:?}), want {:?}",
            got.status, step.statuses
        ));
    }
    let origin_ok = match step.origin {
        Origin::Hit => reached == 0,
        Origin::Miss => reached >= 1,
        Origin::Exactly(n) => reached == n,
        Origin::Any => true,
    };
    if !origin_ok {
        let seen: Vec<String> = heads
            .iter()
            .map(|h| {
                let conditionals: Vec<String> = h
                    .fields
                    .iter()
                    .filter(|(n, _)| n.starts_with("if-") || n == "range")
                    .map(|(n, v)| format!("{n}: {v}"))
                    .collect();
                format!("{} {conditionals:?}", h.line)
            })
            .collect();
        diffs.push(format!(
            "the origin received {reached} requests {seen:?}, want {:?}",
            step.origin
        ));
    }
    for (when, name, want) in &step.fields {
        if when.is_some_and(|s| s != got.status) {
            continue;
        }
        let value = got.header(name);
        if !want.check(value.as_deref()) {
            diffs.push(format!("field {name}: {value:?}, want {want:?}"));
        }
    }
    for (when, want) in &step.body {
        if when.is_some_and(|s| s != got.status) {
            continue;
        }
        if !want.check(&got.body) {
            let text: String = String::from_utf8_lossy(&got.body)
                .chars()
                .take(160)
                .collect();
            diffs.push(format!("body {text:?}, want {want:?}"));
        }
    }
    if !step.sent.is_empty() || step.sent_line.is_some() {
        match heads.first() {
            None => diffs.push("the origin received nothing to check what it was sent".into()),
            Some(head) => {
                if let Some(prefix) = &step.sent_line
                    && !head.line.starts_with(prefix.as_str())
                {
                    diffs.push(format!(
                        "the origin received {:?}, want {prefix:?}…",
                        head.line
                    ));
                }
                for (name, want) in &step.sent {
                    let want = match want {
                        Field::Is(v) => Field::Is(v.replace("{edge_host}", edge_host)),
                        other => other.clone(),
                    };
                    let values: Vec<&str> = head
                        .fields
                        .iter()
                        .filter(|(n, _)| n == name)
                        .map(|(_, v)| v.as_str())
                        .collect();
                    let value = (!values.is_empty()).then(|| values.join(", "));
                    if !want.check(value.as_deref()) {
                        diffs.push(format!(
                            "the origin received {name}: {value:?}, want {want:?}"
                        ));
                    }
                }
            }
        }
    }
    diffs
}
