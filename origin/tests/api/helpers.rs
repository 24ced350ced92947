//! Starting a real origin for a test: the same `Application::build` as `main`, on a free port,
//! over a fresh database of its own, on either backend (see [`on_each_backend!`]).

use std::io;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use breakwater_origin::db::Bulkheads;
use breakwater_origin::outbox::{OutboxSettings, Relay};
use breakwater_origin::overload::OverloadSettings;
use breakwater_origin::replica::Reads;
use breakwater_origin::{Application, Db, Settings};
use reqwest::Url;
use sqlx::{Connection, PgConnection};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The admin token every test origin is started with, unless a test asks for none.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// The seed of the key every test origin signs access tokens with, so a test can sign tokens of
/// its own with `breakwater_core::token::Signer` (as [`SIGNING_KEY`], its base64url form).
pub const SIGNING_SEED: [u8; 32] = [0x5e; 32];
pub const SIGNING_KEY: &str = "Xl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl4";

/// The Postgres primary's maintenance database URL (`scripts/postgres.sh env` prints it): tests
/// create their databases through it.
const POSTGRES_URL: &str = "BREAKWATER_TEST_POSTGRES_URL";
/// The streaming replica of that primary, same credentials.
const POSTGRES_REPLICA_URL: &str = "BREAKWATER_TEST_POSTGRES_REPLICA_URL";
/// `1` turns a missing Postgres from a skip into a failure (`make test` and so CI set it).
const REQUIRE_POSTGRES: &str = "BREAKWATER_REQUIRE_POSTGRES";

/// Declares each named `async fn NAME(backend: Backend)` as two tests, `NAME::sqlite` and
/// `NAME::postgres`, so every test body is written once and runs on both databases. The Postgres
/// run is skipped, saying so on stderr, when no Postgres is configured (see [`postgres_ready`]).
macro_rules! on_each_backend {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                if $crate::helpers::postgres_ready() {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            }
        }
    )+};
}
pub(crate) use on_each_backend;

/// Runs `$body` with `$pool` bound to whichever pool `$db` (a [`Db`]) holds, so a test's own
/// SQL is written once for both backends (the origin's `on_pool!` is private to it).
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            breakwater_origin::Db::Sqlite($pool) => $body,
            breakwater_origin::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Which database a test origin runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A file in a new temporary directory.
    Sqlite,
    /// A new database on the primary at `BREAKWATER_TEST_POSTGRES_URL`.
    Postgres,
}

/// Whether a test that needs Postgres can run: `BREAKWATER_TEST_POSTGRES_URL` is set.
/// If not, the test is skipped (it passes without running) and says so on stderr, past the test
/// harness's output capture; with `BREAKWATER_REQUIRE_POSTGRES=1` it fails instead.
pub fn postgres_ready() -> bool {
    if std::env::var_os(POSTGRES_URL).is_some() {
        return true;
    }
    assert!(
        std::env::var(REQUIRE_POSTGRES).as_deref() != Ok("1"),
        "{REQUIRE_POSTGRES}=1 but {POSTGRES_URL} is not set; start PostgreSQL with \
         `sh scripts/postgres.sh` and run `eval \"$(sh scripts/postgres.sh env)\"`"
    );
    static EXPLAINED: Once = Once::new();
    let mut stderr = io::stderr().lock();
    EXPLAINED.call_once(|| {
        let _ = writeln!(
            stderr,
            "\nwarning: {POSTGRES_URL} is not set, so the Postgres variants of the API tests are \
             SKIPPED (reported as passing without running). Start PostgreSQL with \
             `sh scripts/postgres.sh`, then `eval \"$(sh scripts/postgres.sh env)\"`; set \
             {REQUIRE_POSTGRES}=1 to make a missing Postgres fail the tests instead."
        );
    });
    // The test harness names each test's thread after the test.
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let _ = writeln!(stderr, "SKIPPED (no Postgres): {test}");
    false
}

/// A fresh, migrated-on-first-start database for one test: a SQLite file in a temporary
/// directory, or a database of its own on the Postgres primary (dropped when this is).
pub struct TestDatabase {
    /// What the origin connects to.
    pub url: String,
    place: Place,
}

enum Place {
    /// The directory is deleted when this is dropped.
    Sqlite { _dir: TempDir },
    Postgres {
        maintenance_url: String,
        name: String,
    },
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}", dir.path().join("origin.sqlite").display());
                TestDatabase {
                    url,
                    place: Place::Sqlite { _dir: dir },
                }
            }
            Backend::Postgres => {
                let maintenance_url = env_url(POSTGRES_URL);
                let mut random = [0u8; 8];
                getrandom::fill(&mut random).expect("random bytes");
                let name = format!("test_{}", hex(&random));
                let mut connection = PgConnection::connect(&maintenance_url)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("cannot reach {POSTGRES_URL} ({e}); is scripts/postgres.sh running?")
                    });
                sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                    .execute(&mut connection)
                    .await
                    .expect("CREATE DATABASE on the primary");
                connection.close().await.ok();
                TestDatabase {
                    url: with_database(&maintenance_url, &name),
                    place: Place::Postgres {
                        maintenance_url,
                        name,
                    },
                }
            }
        }
    }

    /// This database on the streaming replica (Postgres only): the same name at
    /// `BREAKWATER_TEST_POSTGRES_REPLICA_URL`. It exists there once the replica has replayed
    /// the `CREATE DATABASE`.
    pub fn replica_url(&self) -> String {
        match &self.place {
            Place::Postgres { name, .. } => with_database(&env_url(POSTGRES_REPLICA_URL), name),
            Place::Sqlite { .. } => panic!("a SQLite database has no replica"),
        }
    }
}

/// Drops the Postgres database, closing whatever connections to it remain (the origin's pool
/// may still hold some). `Drop` cannot await, so this runs on a short-lived runtime of its own
/// on another thread; a failure only leaves a stray `test_*` database behind, so it is
/// reported, not raised (raising while a failed test unwinds would abort the run).
impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Place::Postgres {
            maintenance_url,
            name,
        } = &self.place
        else {
            return;
        };
        let (url, sql) = (
            maintenance_url.clone(),
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut connection = PgConnection::connect(&url).await?;
                sqlx::raw_sql(&sql).execute(&mut connection).await?;
                connection.close().await
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            let _ = writeln!(io::stderr(), "warning: could not drop test database {name}");
        }
    }
}

fn env_url(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| panic!("{variable} is not set"))
}

/// The same database as `database_url` (on the primary), on the streaming replica.
pub fn replica_url_of(database_url: &str) -> String {
    let url = Url::parse(database_url).unwrap_or_else(|e| panic!("a Postgres URL: {e}"));
    with_database(
        &env_url(POSTGRES_REPLICA_URL),
        url.path().trim_start_matches('/'),
    )
}

/// `url` with its path (the database name) replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let mut url = Url::parse(url).unwrap_or_else(|e| panic!("a Postgres URL: {e}"));
    url.set_path(database);
    url.into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A running origin and what a test needs to talk to it and stop it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The origin's own pool, to look underneath the API or to break the database.
    pub db: Db,
    /// Where the origin sends reads: its primary read pool and its replicas.
    pub reads: Reads,
    /// The pool of background work: outbox workers and scrape-time counts.
    pub background: Db,
    /// What the origin connected to; unique per database.
    pub database_url: String,
    /// The origin's outbox relay: tests call `deliver_due` themselves (no workers run unless a
    /// test asks for them) or subscribe to its outcomes.
    pub outbox: Relay,
    /// Where the confirmation consumer writes, as configured.
    pub confirmation_dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<io::Result<()>>,
    /// The database, when the app owns it; last, so that it goes after the server is told to stop.
    database: Option<TestDatabase>,
    /// Holds the default confirmation directory; deleted when the app is dropped.
    _sink: TempDir,
}

/// An origin over a fresh database on `backend`, admin writes enabled with [`ADMIN_TOKEN`], no
/// outbox workers, confirmations written to a temporary directory.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Like [`spawn_app`], with this admin token (`None`: admin writes disabled).
pub async fn spawn_app_with_admin_token(backend: Backend, admin_token: Option<&str>) -> TestApp {
    spawn_app_with(backend, |settings| {
        settings.admin_token = admin_token.map(str::to_owned);
    })
    .await
}

/// Like [`spawn_app`], with the settings changed by `configure` first.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let database = TestDatabase::create(backend).await;
    let mut app = start(&database, configure).await;
    app.database = Some(database);
    app
}

/// An origin over `database`, which may already hold data (to test restarts).
pub async fn spawn_app_on(database: &TestDatabase) -> TestApp {
    start(database, |_| {}).await
}

/// `bulkheads` with every wait budget raised to 5 s. sqlx counts opening a new connection
/// against the wait, and with the whole suite opening Postgres connections at once that alone
/// can pass the default 250 ms; the bulkhead tests set their own budgets.
fn patient(mut bulkheads: Bulkheads) -> Bulkheads {
    for limits in [
        &mut bulkheads.reads,
        &mut bulkheads.writes,
        &mut bulkheads.background,
    ] {
        limits.wait = limits.wait.max(Duration::from_secs(5));
    }
    bulkheads
}

/// Overload limits that only shed what queues for seconds: the default slots, but with the
/// whole suite sharing two CPUs a request may queue a few hundred ms without any surge. The
/// overload tests set their own.
fn patient_overload() -> OverloadSettings {
    OverloadSettings {
        target: Duration::from_secs(1),
        interval: Duration::from_secs(1),
        max_wait: Duration::from_secs(5),
        ..OverloadSettings::default()
    }
}

async fn start(database: &TestDatabase, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let sink = tempfile::tempdir().expect("temporary directory");
    let mut settings = Settings {
        admin_token: Some(ADMIN_TOKEN.to_owned()),
        outbox: OutboxSettings {
            workers: 0,
            confirmation_dir: sink.path().join("confirmations"),
            ..OutboxSettings::default()
        },
        signing_key: Some(SIGNING_KEY.to_owned()),
        bulkheads: patient(Bulkheads::default()),
        overload: patient_overload(),
        ..Settings::new("127.0.0.1:0".parse().unwrap(), database.url.clone())
    };
    configure(&mut settings);
    let confirmation_dir = settings.outbox.confirmation_dir.clone();
    let app = Application::build(settings).await.expect("origin builds");
    let address = format!("http://{}", app.local_addr());
    let db = app.db().clone();
    let reads = app.reads().clone();
    let background = app.background().clone();
    let outbox = app.outbox().clone();
    let (trigger, triggered) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        // A dropped sender also means "stop", so a failing test never leaks a server.
        let _ = triggered.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::new(),
        db,
        reads,
        background,
        database_url: database.url.clone(),
        outbox,
        confirmation_dir,
        shutdown: Some(trigger),
        server,
        database: None,
        _sink: sink,
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request reaches the origin")
    }

    /// A `GET` with extra header fields.
    pub async fn get_with(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
        for (name, value) in fields {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request reaches the origin")
    }

    /// A `PUT` of `body` as JSON with the admin token; add to it or send it as is.
    pub fn admin_put(&self, path: &str, body: &serde_json::Value) -> reqwest::RequestBuilder {
        self.client
            .put(format!("{}{path}", self.address))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
    }

    /// A `POST /api/orders` of `body` by `principal` under `key` that must succeed: the order.
    pub async fn place_order(&self, principal: &str, key: &str, body: &str) -> serde_json::Value {
        let response = self
            .client
            .post(format!("{}/api/orders", self.address))
            .header("content-type", "application/json")
            .header("breakwater-principal", principal)
            .header("idempotency-key", format!("\"{key}\""))
            .body(body.to_owned())
            .send()
            .await
            .expect("request reaches the origin");
        assert_eq!(response.status(), 201, "POST /api/orders {body}");
        response.json().await.expect("an order")
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON body")
    }

    /// Runs `sql` (one or more statements, no results) on the origin's own pool.
    pub async fn execute(&self, sql: &str) {
        on_pool!(&self.db, pool => sqlx::raw_sql(sql).execute(pool).await.map(drop))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The database this app owns (see [`spawn_app`]).
    pub fn database(&self) -> &TestDatabase {
        self.database
            .as_ref()
            .expect("an app from spawn_app owns its database")
    }

    /// Triggers graceful shutdown and returns what `run_until` returned.
    pub async fn stop(mut self) -> io::Result<()> {
        if let Some(trigger) = self.shutdown.take() {
            let _ = trigger.send(());
        }
        (&mut self.server).await.expect("server task did not panic")
    }
}

/// The one streaming replica is shared by every test in this process. Tests that pause its
/// replay hold [`replica_exclusive`]; tests that need it replaying hold [`replica_shared`].
static REPLICA: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

pub async fn replica_shared() -> tokio::sync::RwLockReadGuard<'static, ()> {
    REPLICA.read().await
}

pub async fn replica_exclusive() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    REPLICA.write().await
}

/// Runs `probe` until it yields a value, for at most `deadline`, for state that follows
/// replication: after each miss it waits for the next measurement the origin's replica monitor
/// publishes (`reads` must have a replica), never on a timer.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, reads: &Reads, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    assert!(
        !reads.replica_pools().is_empty(),
        "eventually waits on the replica monitor: configure a replica"
    );
    let give_up = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        let measured = tokio::time::timeout_at(give_up, reads.next_measurement()).await;
        assert!(measured.is_ok(), "{what}: not within {deadline:?}");
    }
}

/// Asserts `response` is an RFC 9457 problem with `status`, and returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status(), status, "{}", response.url());
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = response.json().await.expect("a JSON problem body");
    assert_eq!(body["status"], status);
    assert!(
        body["type"].as_str().unwrap().starts_with("https://"),
        "{body}"
    );
    assert!(body["title"].is_string(), "{body}");
    body
}
