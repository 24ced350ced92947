//! Starts and stops the environment the cases run against.

use crate::proxy::FaultProxy;
use crate::scripted::ScriptedOrigin;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use breakwater_assetgen::Options;
use breakwater_core::assets::Manifest;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How long wrangler dev may take to come up (it starts workerd and loads the wasm).
const EDGE_READY_TIMEOUT: Duration = Duration::from_secs(120);
/// The edge's origin timeout in these tests: short, so the stalled-origin case is quick.
pub const ORIGIN_TIMEOUT_MS: u64 = 1500;
/// The edge's admin token (`ADMIN_TOKEN`) and the origin's (`BREAKWATER_ADMIN_TOKEN`): distinct,
/// so a test shows which one a request needed.
pub const EDGE_ADMIN_TOKEN: &str = "edge-admin-token-for-the-e2e-suite";
pub const ORIGIN_ADMIN_TOKEN: &str = "origin-admin-token-for-e2e";
/// The key every edge signs its requests to the origin with (`EDGE_KEY`), which the origins
/// check (`BREAKWATER_EDGE_KEYS`).
pub const EDGE_KEY: &str = "edge-key-for-the-e2e-suite-0123456789";
/// Paths the cron trigger keeps warm in these tests.
pub const WARM_PATH: &str = "/api/products/9007";

/// The seed of the origin's token signing key in these tests (`Settings::signing_key`), so the
/// cases can also sign tokens of their own with it, e.g. expired ones.
pub const SIGNING_SEED: [u8; 32] = [0x5b; 32];

/// API keys the edge knows in these tests (the `API_KEYS` secret): key → plan.
pub const PRO_API_KEY: &str = "e2e-pro-key";

/// The admission policy of these tests: small quotas on paths of their own (the origin answers
/// them 404, which is neither cached nor an error), so no other case is ever limited or shed.
const ADMISSION: &str = r#"{
    "api_key_header": "x-api-key",
    "routes": [
        {"prefix": "/api/limited/burst", "quotas": [{"name": "per-minute", "limit": 5, "period": "1m"}]},
        {"prefix": "/api/limited/spoof", "quotas": [{"name": "per-minute", "limit": 3, "period": "1m"}]},
        {"prefix": "/api/limited/restart", "quotas": [{"name": "per-hour", "limit": 3, "period": "1h"}]},
        {"prefix": "/api/limited/plans", "plan_quotas": true,
         "quotas": [{"name": "per-minute", "limit": 2, "period": "1m"}]},
        {"prefix": "/api/limited/concurrent", "quotas": [{"name": "per-hour", "limit": 50, "period": "1h"}]},
        {"prefix": "/api/limited/leased", "mode": "lease", "quotas": [{"name": "per-hour", "limit": 50, "period": "1h"}]},
        {"prefix": "/api/limited/low", "priority": "low", "quotas": []},
        {"prefix": "/api/orders", "priority": "high", "quotas": []},
        {"prefix": "/api/limited/critical", "priority": "critical", "quotas": []},
        {"prefix": "/api/limited/users", "quotas": [{"name": "per-minute", "limit": 2, "period": "1m"}]},
        {"prefix": "/api/limited/metrics", "quotas": [{"name": "per-minute", "limit": 1, "period": "1m"}]}
    ],
    "plans": {"pro": [{"name": "per-minute", "limit": 10, "period": "1m"}]}
}"#;
/// A breaker and an SLO controller that react within a second or two, so the overload case
/// runs quickly; thresholds high enough that the other cases' few origin failures trip nothing.
/// The admission fraction never falls below 0.5, so critical routes are never shed and show the
/// breaker's state while low ones are shed.
const BREAKER: &str = r#"{"min_calls": 8, "failure_rate": 0.75, "window_ms": 4000, "open_ms": 1000, "half_open_probes": 1, "probe_timeout_ms": 3000}"#;
/// Orders need a key; short lease and retention so the expiry cases run in seconds (the lease
/// must exceed ORIGIN_TIMEOUT_MS).
const IDEMPOTENCY_POLICY: &str = r#"{"routes": [{"prefix": "/api/orders", "required": true, "retention_ms": 5000}], "lease_ms": 3000}"#;
const SLO: &str = r#"{"slo": 0.9, "short_window_ms": 2000, "long_window_ms": 4000, "burn_threshold": 5.0, "recover_threshold": 2.0, "cut": 0.5, "restore": 0.25, "min_fraction": 0.5, "min_requests": 8, "adjust_interval_ms": 200}"#;

/// `wrangler.toml`'s write-behind routes with short retries, so an outage exhausts a message's
/// attempts in about 12 s (deliveries at ~2, ~5, ~8 and ~11 s: the 2 s batch wait plus 1-2 s of
/// backoff between them).
pub const WRITE_BEHIND_MAX_ATTEMPTS: u32 = 4;
const WRITE_BEHIND_RETRY_SECONDS: (u32, u32) = (1, 2);

/// Routes the cases add in front of `wrangler.toml`'s cache policy (first match wins), each on a
/// product id no other case uses: a route per lower tier, and one whose entries are stale at
/// once (TTL ceiling 0) but within stale-while-revalidate.
const TEST_ROUTES: &str = r#"[
    {"prefix": "/api/products/9001", "mode": "honor", "tiers": ["cache_api"]},
    {"prefix": "/api/products/9002", "mode": "honor", "tiers": ["kv"]},
    {"prefix": "/api/products/9003", "mode": "honor", "ttl": {"floor": 0, "ceiling": 0},
     "stale_while_revalidate": 60, "tiers": ["memory"]},
    {"prefix": "/api/products/9104", "mode": "honor", "tiers": ["memory", "cache_api"]}
]"#;

pub struct Env {
    pub rt: tokio::runtime::Runtime,
    pub edge: String,
    pub edge_addr: SocketAddr,
    pub proxy: FaultProxy,
    /// The origin's database, for checking what a case left behind (e.g. orders per key).
    pub origin_db: breakwater_origin::Db,
    /// The assets manifest of the first build, and of the rebuild the edge serves.
    pub first_build: Manifest,
    pub second_build: Manifest,
    pub dist: PathBuf,
    /// `ACCESS_TOKENS` as given to the edge: the keys the origin publishes.
    access_tokens: String,
    proxy_addr: SocketAddr,
    origin_addr: SocketAddr,
    edge_process: Mutex<Option<Child>>,
    origin_stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    /// The second edge, over two origins ([`Env::pool`]), started by the first case that needs it.
    pool: OnceLock<Result<Pool, String>>,
    pool_process: Mutex<Option<Child>>,
    /// The third edge, in front of the scripted origin ([`Env::conformance`]), started by the
    /// first case that needs it.
    conformance: OnceLock<Result<Conformance, String>>,
    /// An edge like the conformance edge, in front of a scripted origin of its own, with the
    /// adaptive concurrency limit on ([`Env::limited`]).
    limited: OnceLock<Result<Conformance, String>>,
    /// An edge in front of the shared origin with none of its stores bound ([`Env::unbound`]).
    unbound: OnceLock<Result<String, String>>,
    /// A scripted edge whose admin endpoint can panic it on purpose ([`Env::panicky`]).
    panicky: OnceLock<Result<Conformance, String>>,
    /// The scripted edges' processes, stopped with the run.
    conformance_process: Mutex<Vec<Child>>,
    _tmp: tempfile::TempDir,
}

/// An edge whose only origin is the [`ScriptedOrigin`], with the cache routes of
/// [`CONFORMANCE_ROUTES`] in front of `wrangler.toml`'s: the conformance table runs against it.
pub struct Conformance {
    pub edge: String,
    pub edge_addr: SocketAddr,
    pub origin: ScriptedOrigin,
}

/// `CONCURRENCY` on every edge but [`Env::limited`]: the adaptive limit off, as shipped, said
/// here so that the suite does not change with the default. The suite runs several edges, each
/// under `wrangler dev`, and bursts of up to 200 requests at once on two shared CPUs; there the
/// edge's own delays read as origin queueing (README § Admission), and cases about other things
/// (containment, exact rate-limit bursts) would see `503 overloaded`.
const CONCURRENCY_OFF: &str = r#"{"enabled": false}"#;

/// The limited edge's `CONCURRENCY`: on, with the default tuning.
const LIMITED: &str = r#"{"enabled": true}"#;

/// The conformance edge's routes (first match wins): `/c/` honours the origin's headers in the
/// memory tier alone and grants no stale windows of its own, so what the table sees is what the
/// origin's headers (and RFC 9111) decide; `/cx/` does the same over memory and the Cache API,
/// for the cases about tiers.
pub const CONFORMANCE_ROUTES: &str = r#"[
    {"prefix": "/c/", "mode": "honor", "tiers": ["memory"], "stale_while_revalidate": 0, "stale_if_error": 0},
    {"prefix": "/cx/", "mode": "honor", "tiers": ["memory", "cache_api"], "stale_while_revalidate": 0, "stale_if_error": 0}
]"#;
/// The table answers many requests with 5xx, broken answers and closed connections on purpose:
/// on the conformance edge neither the breaker nor the SLO controller may act on them, or one
/// case's failures would shed the next case's requests.
const CONFORMANCE_BREAKER: &str =
    r#"{"failure_rate": 1.0, "slow_rate": 1.0, "min_calls": 1000000}"#;
const CONFORMANCE_SLO: &str = r#"{"shadow": true}"#;

/// An edge with `ORIGINS` set to two origins, each behind a fault proxy of its own: `proxies[0]`
/// in front of the origin every case shares, `proxies[1]` in front of a second origin with a
/// database of its own (sharing nothing: the cases read what both serve alike).
pub struct Pool {
    pub edge: String,
    pub proxies: [FaultProxy; 2],
}

/// The pool edge's ejection settings: quick, so the outage case runs in seconds.
pub const POOL_EJECTION: &str = r#"{"consecutive_failures": 3, "base_ejection_ms": 1500, "max_ejection_ms": 6000, "max_ejected_percent": 50}"#;
/// Its health checks: due at every cron run the cases fire (`/__scheduled`), two in a row to
/// change an origin's state.
pub const POOL_HEALTH: &str =
    r#"{"interval_ms": 1, "healthy_threshold": 2, "unhealthy_threshold": 2, "timeout_ms": 2000}"#;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Env {
    pub fn start() -> Result<Self, String> {
        let root = repo_root();
        if !root.join("build/index.js").exists() {
            return Err(
                "build/index.js is missing: build the edge first (make build, or make test)".into(),
            );
        }
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (first_build, second_build, dist) = build_assets_twice(&root, tmp.path())?;

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let db = format!("sqlite://{}", tmp.path().join("origin.sqlite").display());
        let (origin_stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (proxy, proxy_addr, origin_addr, origin_db, access_tokens) = rt.block_on(async {
            let settings = breakwater_origin::Settings {
                admin_token: Some(ORIGIN_ADMIN_TOKEN.into()),
                signing_key: Some(URL_SAFE_NO_PAD.encode(SIGNING_SEED)),
                edge_keys: vec![EDGE_KEY.into()],
                outbox: breakwater_origin::outbox::OutboxSettings {
                    confirmation_dir: tmp.path().join("confirmations"),
                    ..Default::default()
                },
                ..breakwater_origin::Settings::new("127.0.0.1:0".parse().unwrap(), db)
            };
            let app = breakwater_origin::Application::build(settings)
                .await
                .map_err(|e| format!("origin failed to start: {e}"))?;
            let origin_addr = app.local_addr();
            let origin_db = app.db().clone();
            tokio::spawn(app.run_until(async move {
                let _ = stop_rx.await;
            }));
            // The edge trusts exactly the keys the origin publishes, as `make dev` wires it.
            let jwks = reqwest::get(format!("http://{origin_addr}/.well-known/jwks.json"))
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| format!("the origin's JWKS: {e}"))?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            let access_tokens = serde_json::json!({ "leeway_seconds": 30, "jwks": jwks });
            let (proxy, addr) = FaultProxy::start(origin_addr)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((
                proxy,
                addr,
                origin_addr,
                origin_db,
                access_tokens.to_string(),
            ))
        })?;

        let edge_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse().unwrap();
        let child = start_edge(
            &root,
            tmp.path(),
            &dist,
            edge_addr,
            proxy_addr,
            &access_tokens,
            &[],
            None,
        )?;
        Ok(Self {
            rt,
            edge: format!("http://{edge_addr}"),
            edge_addr,
            proxy,
            origin_db,
            first_build,
            second_build,
            dist,
            access_tokens,
            proxy_addr,
            origin_addr,
            edge_process: Mutex::new(Some(child)),
            origin_stop: Mutex::new(Some(origin_stop)),
            pool: OnceLock::new(),
            pool_process: Mutex::new(None),
            conformance: OnceLock::new(),
            limited: OnceLock::new(),
            unbound: OnceLock::new(),
            panicky: OnceLock::new(),
            conformance_process: Mutex::new(Vec::new()),
            _tmp: tmp,
        })
    }

    /// Stops the edge and starts it again on the same address and state directory: a new
    /// isolate (empty memory tier) over the same Cache API, KV and Durable Object storage.
    pub fn restart_edge(&self) -> Result<(), String> {
        let mut process = self.edge_process.lock().unwrap();
        if let Some(child) = process.take() {
            stop_process_group(child);
        }
        let root = repo_root();
        *process = Some(start_edge(
            &root,
            self._tmp.path(),
            &self.dist,
            self.edge_addr,
            self.proxy_addr,
            &self.access_tokens,
            &[],
            None,
        )?);
        Ok(())
    }

    /// The pool edge, started on first use: a second origin (its own SQLite file, stopped with
    /// the runtime), a fault proxy before each origin, and `wrangler dev` with `ORIGINS` naming
    /// both proxies and its own state directory.
    pub fn pool(&self) -> Result<&Pool, String> {
        self.pool
            .get_or_init(|| self.start_pool())
            .as_ref()
            .map_err(Clone::clone)
    }

    fn start_pool(&self) -> Result<Pool, String> {
        let tmp = self._tmp.path().join("pool");
        std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
        let db = format!("sqlite://{}", tmp.join("origin-b.sqlite").display());
        let first = self.origin_addr;
        let (a, a_addr, b, b_addr) = self.rt.block_on(async {
            let settings = breakwater_origin::Settings {
                admin_token: Some(ORIGIN_ADMIN_TOKEN.into()),
                signing_key: Some(URL_SAFE_NO_PAD.encode(SIGNING_SEED)),
                edge_keys: vec![EDGE_KEY.into()],
                outbox: breakwater_origin::outbox::OutboxSettings {
                    confirmation_dir: tmp.join("confirmations"),
                    ..Default::default()
                },
                ..breakwater_origin::Settings::new("127.0.0.1:0".parse().unwrap(), db)
            };
            let app = breakwater_origin::Application::build(settings)
                .await
                .map_err(|e| format!("the second origin failed to start: {e}"))?;
            let second = app.local_addr();
            // It runs until the runtime stops, with the test binary.
            tokio::spawn(app.run_until(std::future::pending::<()>()));
            let (a, a_addr) = FaultProxy::start(first).await.map_err(|e| e.to_string())?;
            let (b, b_addr) = FaultProxy::start(second).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((a, a_addr, b, b_addr))
        })?;
        let origins = serde_json::json!({
            "origins": [{"url": format!("http://{a_addr}")}, {"url": format!("http://{b_addr}")}],
            "ejection": serde_json::from_str::<serde_json::Value>(POOL_EJECTION).unwrap(),
            "health": serde_json::from_str::<serde_json::Value>(POOL_HEALTH).unwrap(),
        });
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse().unwrap();
        let child = start_edge(
            &repo_root(),
            &tmp,
            &self.dist,
            addr,
            a_addr,
            &self.access_tokens,
            &[format!("ORIGINS:{origins}")],
            None,
        )?;
        *self.pool_process.lock().unwrap() = Some(child);
        Ok(Pool {
            edge: format!("http://{addr}"),
            proxies: [a, b],
        })
    }

    /// The conformance edge, started on first use: the scripted origin (on this runtime) and
    /// `wrangler dev` with `ORIGIN_URL` naming it, `/c/` and `/cx/` proxied
    /// (`ORIGIN_PREFIXES`) and cached per [`CONFORMANCE_ROUTES`], its own state directory, and
    /// every other var as the main edge has it.
    pub fn conformance(&self) -> Result<&Conformance, String> {
        self.conformance
            .get_or_init(|| self.start_scripted("conformance", &[]))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// An edge like [`Env::conformance`]'s, in front of a scripted origin of its own, with the
    /// adaptive concurrency limit on (`CONCURRENCY`, default tuning), for bursts that fill it
    /// without disturbing the other cases; started on first use. It reports straight to the
    /// root `CONTROL` object (`CONTROL_SHARDS=0`), so that path runs too; every other edge goes
    /// through the shards.
    pub fn limited(&self) -> Result<&Conformance, String> {
        let vars = [
            format!("CONCURRENCY:{LIMITED}"),
            "CONTROL_SHARDS:0".to_owned(),
        ];
        self.limited
            .get_or_init(|| self.start_scripted("limited", &vars))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// An edge like [`Env::conformance`]'s, in front of a scripted origin of its own, with
    /// `PANIC_PROBE` on: `POST /_breakwater/panic` panics it. Started on first use.
    pub fn panicky(&self) -> Result<&Conformance, String> {
        self.panicky
            .get_or_init(|| self.start_scripted("panicky", &["PANIC_PROBE:on".to_owned()]))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// An edge in front of the shared origin (through its fault proxy) whose `wrangler.toml`
    /// binds none of its stores: no `RATE_LIMITER`, `IDEMPOTENCY` or `CONTROL` object, no
    /// `CACHE_KV` namespace, no `EVENTS` queue. Every call to one fails as an unreachable
    /// binding does, so the cases see the edge's dependency-failure policy with the real code
    /// path; started on first use. Its admission routes make `/api/auth/` fail closed and
    /// `/api/products` fail open; `/api/orders` is an `origin_dedupes` route.
    pub fn unbound(&self) -> Result<&str, String> {
        self.unbound
            .get_or_init(|| self.start_unbound())
            .as_deref()
            .map_err(Clone::clone)
    }

    fn start_unbound(&self) -> Result<String, String> {
        let tmp = self._tmp.path().join("unbound");
        std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
        let root = repo_root();
        let config = tmp.join("wrangler.toml");
        std::fs::write(&config, unbound_config(&root, &self.dist)?).map_err(|e| e.to_string())?;
        let admission = r#"{"routes": [
            {"prefix": "/api/auth/", "fail_open": false, "priority": "critical",
             "quotas": [{"name": "per-minute", "limit": 100, "period": "1m"}]},
            {"prefix": "/api/products", "quotas": [{"name": "per-minute", "limit": 100, "period": "1m"}]}
        ]}"#;
        let idempotency = r#"{"routes": [{"prefix": "/api/orders", "required": true, "origin_dedupes": true}], "lease_ms": 3000}"#;
        let edge_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse().unwrap();
        let child = start_edge(
            &root,
            &tmp,
            &self.dist,
            edge_addr,
            self.proxy_addr,
            &self.access_tokens,
            &[
                format!("ADMISSION:{admission}"),
                format!("IDEMPOTENCY_POLICY:{idempotency}"),
            ],
            Some(&config),
        )?;
        self.conformance_process.lock().unwrap().push(child);
        Ok(format!("http://{edge_addr}"))
    }

    fn start_scripted(&self, name: &str, vars: &[String]) -> Result<Conformance, String> {
        let tmp = self._tmp.path().join(name);
        std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
        let (origin, origin_addr) = self
            .rt
            .block_on(ScriptedOrigin::start())
            .map_err(|e| format!("the scripted origin: {e}"))?;
        let root = repo_root();
        let policy = cache_policy_with(&root, CONFORMANCE_ROUTES)?;
        let edge_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse().unwrap();
        let mut all = vec![
            format!("CACHE_POLICY:{policy}"),
            "ORIGIN_PREFIXES:/api/,/c/,/cx/".to_owned(),
            format!("BREAKER:{CONFORMANCE_BREAKER}"),
            format!("SLO:{CONFORMANCE_SLO}"),
        ];
        all.extend_from_slice(vars);
        let child = start_edge(
            &root,
            &tmp,
            &self.dist,
            edge_addr,
            origin_addr,
            &self.access_tokens,
            &all,
            None,
        )?;
        self.conformance_process.lock().unwrap().push(child);
        Ok(Conformance {
            edge: format!("http://{edge_addr}"),
            edge_addr,
            origin,
        })
    }

    pub fn stop(&self) {
        if let Some(child) = self.edge_process.lock().unwrap().take() {
            stop_process_group(child);
        }
        for child in self.conformance_process.lock().unwrap().drain(..) {
            stop_process_group(child);
        }
        if let Some(child) = self.pool_process.lock().unwrap().take() {
            stop_process_group(child);
        }
        if let Some(stop) = self.origin_stop.lock().unwrap().take() {
            let _ = stop.send(());
        }
    }

    /// A request through reqwest (which normalises URLs; use [`Env::raw`] for hostile paths).
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Reply, String> {
        self.request("GET", path, headers)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, String> {
        self.send(method, path, headers, None)
    }

    /// A request with an optional body.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Reply, String> {
        self.send_to(&self.edge, method, path, headers, body)
    }

    /// A request to the edge at `base` (this one's, or the pool edge's).
    pub fn send_to(
        &self,
        base: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Reply, String> {
        self.rt.block_on(async {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let method =
                reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
            let mut req = client.request(method, format!("{base}{path}"));
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(body) = body {
                req = req.body(body.to_owned());
            }
            let resp = req.send().await.map_err(|e| format!("{path}: {e}"))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp.bytes().await.map_err(|e| e.to_string())?.to_vec();
            Ok(Reply {
                status,
                headers,
                body,
            })
        })
    }

    /// Sends `request_target` byte for byte, so no client library can normalise it first.
    pub fn raw(&self, method: &str, request_target: &str) -> Result<(u16, String), String> {
        let mut stream = TcpStream::connect(self.edge_addr).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        write!(
            stream,
            "{method} {request_target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.edge_addr
        )
        .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        stream.read_to_end(&mut out).map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no status line in {text:?}"))?;
        Ok((status, text))
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("body is not JSON ({e}): {}", self.text()))
    }
}

/// Builds `static/` into a fresh assets directory, changes the stylesheet, and builds again, so
/// the edge serves a directory holding two generations of hashed files.
fn build_assets_twice(root: &Path, tmp: &Path) -> Result<(Manifest, Manifest, PathBuf), String> {
    let src = tmp.join("static");
    let dist = tmp.join("dist");
    copy_dir(&root.join("static"), &src).map_err(|e| format!("copying static/: {e}"))?;
    let opts = Options {
        src: src.clone(),
        out: dist.clone(),
        keep_builds: 3,
    };
    let first = breakwater_assetgen::build(&opts)
        .map_err(|e| e.to_string())?
        .manifest;
    let css = src.join("css/app.css");
    let mut text = std::fs::read_to_string(&css).map_err(|e| format!("{}: {e}", css.display()))?;
    text.push_str("\n/* second build */\n");
    std::fs::write(&css, text).map_err(|e| e.to_string())?;
    let second = breakwater_assetgen::build(&opts)
        .map_err(|e| e.to_string())?
        .manifest;
    Ok((first, second, dist))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Starts `wrangler dev` and returns once it reports it is ready (its own "Ready on" line), or
/// fails with its output.
#[expect(
    clippy::too_many_arguments,
    reason = "one call per kind of edge, each naming what differs"
)]
fn start_edge(
    root: &Path,
    tmp: &Path,
    dist: &Path,
    addr: SocketAddr,
    origin: SocketAddr,
    access_tokens: &str,
    extra_vars: &[String],
    config: Option<&Path>,
) -> Result<Child, String> {
    use std::os::unix::process::CommandExt;
    let bin = root.join("node_modules/.bin");
    if !bin.join("wrangler").exists() {
        return Err("node_modules/.bin/wrangler is missing: run make setup".into());
    }
    // wrangler needs Node 22, which package.json pins into node_modules/.bin.
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new(bin.join("wrangler"))
        .current_dir(root)
        .env("PATH", path)
        .env("BREAKWATER_PREBUILT", "1")
        .env("WRANGLER_SEND_METRICS", "false")
        .args([
            "dev",
            "--ip",
            "127.0.0.1",
            "--port",
            &addr.port().to_string(),
        ])
        .args(["--inspector-port", &free_port()?.to_string()])
        .args(config.iter().flat_map(|c| [Path::new("--config"), c]))
        .args(["--var", &format!("ORIGIN_URL:http://{origin}")])
        .args(["--var", &format!("ORIGIN_TIMEOUT_MS:{ORIGIN_TIMEOUT_MS}")])
        .args(["--var", &format!("ADMIN_TOKEN:{EDGE_ADMIN_TOKEN}")])
        .args(["--var", &format!("ORIGIN_TOKEN:{ORIGIN_ADMIN_TOKEN}")])
        .args(["--var", &format!("EDGE_KEY:{EDGE_KEY}")])
        .args(["--var", &format!("WRITE_BEHIND:{}", write_behind(root)?)])
        .args(["--var", &format!("CACHE_WARM:{WARM_PATH}")])
        .args(default_var("CACHE_POLICY", extra_vars, || {
            cache_policy(root)
        })?)
        .args(["--var", &format!("ADMISSION:{ADMISSION}")])
        .args(["--var", &format!("ACCESS_TOKENS:{access_tokens}")])
        .args(default_var("BREAKER", extra_vars, || {
            Ok(BREAKER.to_owned())
        })?)
        .args(default_var("SLO", extra_vars, || Ok(SLO.to_owned()))?)
        .args(default_var("CONCURRENCY", extra_vars, || {
            Ok(CONCURRENCY_OFF.to_owned())
        })?)
        .args(["--var", &format!("IDEMPOTENCY_POLICY:{IDEMPOTENCY_POLICY}")])
        .args(["--var", "CONTROL_REPORT_MS:100"])
        .args(["--var", &format!(r#"API_KEYS:{{"{PRO_API_KEY}": "pro"}}"#)])
        .args(extra_vars.iter().flat_map(|v| ["--var", v.as_str()]))
        // Exposes /__scheduled, so a case can fire the cron trigger.
        .arg("--test-scheduled")
        .arg("--assets")
        .arg(dist)
        .arg("--persist-to")
        .arg(tmp.join("wrangler-state"))
        .args([
            "--show-interactive-dev-session=false",
            "--log-level",
            "info",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("could not run wrangler: {e}"))?;

    let (tx, rx) = mpsc::channel::<String>();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if std::env::var_os("E2E_VERBOSE").is_some() {
                    eprintln!("[wrangler] {line}");
                }
                if tx.send(line).is_err() {
                    // Nobody listens any more; keep draining so wrangler never blocks on a pipe.
                    continue;
                }
            }
        });
    }
    drop(tx);
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + EDGE_READY_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let ready = line.contains("Ready on");
                seen.push(line);
                if ready {
                    std::thread::spawn(move || for _ in rx {});
                    return Ok(child);
                }
            }
            Err(_) => {
                stop_process_group(child);
                return Err(format!(
                    "wrangler dev did not become ready:\n{}",
                    seen.join("\n")
                ));
            }
        }
    }
}

/// `wrangler.toml` without its Durable Object, KV and queue-producer bindings (and without the
/// build step: the suite runs on the prebuilt worker), with its paths made absolute so it can
/// live in a temporary directory.
fn unbound_config(root: &Path, dist: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(root.join("wrangler.toml")).map_err(|e| e.to_string())?;
    let mut config: toml::Table = text.parse().map_err(|e| format!("wrangler.toml: {e}"))?;
    let main = config
        .get("main")
        .and_then(toml::Value::as_str)
        .ok_or("wrangler.toml has no main")?;
    let main = root.join(main).display().to_string();
    config.insert("main".into(), main.into());
    config.remove("build");
    config.remove("kv_namespaces");
    config.remove("durable_objects");
    if let Some(queues) = config.get_mut("queues").and_then(toml::Value::as_table_mut) {
        queues.remove("producers");
    }
    if let Some(assets) = config.get_mut("assets").and_then(toml::Value::as_table_mut) {
        assets.insert("directory".into(), dist.display().to_string().into());
    }
    toml::to_string(&config).map_err(|e| e.to_string())
}

/// `--var NAME:<value>` unless `extra_vars` sets NAME itself.
fn default_var(
    name: &str,
    extra_vars: &[String],
    value: impl FnOnce() -> Result<String, String>,
) -> Result<Vec<String>, String> {
    if extra_vars
        .iter()
        .any(|v| v.starts_with(&format!("{name}:")))
    {
        return Ok(Vec::new());
    }
    Ok(vec!["--var".to_owned(), format!("{name}:{}", value()?)])
}

/// `wrangler.toml`'s cache policy with [`TEST_ROUTES`] in front, as the JSON `--var` takes.
fn cache_policy(root: &Path) -> Result<String, String> {
    cache_policy_with(root, TEST_ROUTES)
}

/// `wrangler.toml`'s cache policy with `routes` (a JSON array) in front.
fn cache_policy_with(root: &Path, test_routes: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(root.join("wrangler.toml")).map_err(|e| e.to_string())?;
    let config: toml::Value = toml::from_str(&text).map_err(|e| e.to_string())?;
    let mut policy: serde_json::Value = config
        .get("vars")
        .and_then(|v| v.get("CACHE_POLICY"))
        .ok_or("wrangler.toml has no [vars.CACHE_POLICY]")?
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| e.to_string())?;
    let mut routes: Vec<serde_json::Value> =
        serde_json::from_str(test_routes).map_err(|e| e.to_string())?;
    let configured = policy["routes"].as_array().cloned().unwrap_or_default();
    routes.extend(configured);
    policy["routes"] = serde_json::Value::Array(routes);
    Ok(policy.to_string())
}

/// `wrangler.toml`'s `WRITE_BEHIND` with the short retries above, as JSON.
fn write_behind(root: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(root.join("wrangler.toml")).map_err(|e| e.to_string())?;
    let config: toml::Value = toml::from_str(&text).map_err(|e| e.to_string())?;
    let mut table: serde_json::Value = config
        .get("vars")
        .and_then(|v| v.get("WRITE_BEHIND"))
        .ok_or("wrangler.toml has no [vars.WRITE_BEHIND]")?
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| e.to_string())?;
    table["max_attempts"] = WRITE_BEHIND_MAX_ATTEMPTS.into();
    table["retry_base_seconds"] = WRITE_BEHIND_RETRY_SECONDS.0.into();
    table["retry_max_seconds"] = WRITE_BEHIND_RETRY_SECONDS.1.into();
    Ok(table.to_string())
}

/// wrangler starts workerd as its own child; signal the whole group so nothing outlives the run.
/// SIGINT is wrangler's Ctrl-C path (it stops workerd itself); SIGKILL follows if it lingers.
fn stop_process_group(mut child: Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill")
        .args(["-s", "INT", "--", &group])
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
    // Also reaps workerd if wrangler exited without stopping it.
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &group])
        .status();
    let _ = child.wait();
}
