//! Chaos (`make chaos`): keyed orders with client retries, and product views through
//! write-behind, sent through the edge while the origin process is SIGKILLed and restarted at
//! random points and the Postgres primary crashes and restarts once. Checked in the database
//! afterwards: exactly one order per key that was acknowledged, no order without its key's
//! acknowledgement, no `500` from the edge, every queued view counted once.
//!
//! The origin runs as a child process (this program again, in origin mode: see
//! [`serve_origin_if_asked`]) on a fixed port, over a fresh database on the primary of
//! `scripts/postgres.sh` with `synchronous_commit = on` (the test cluster's default is off, which
//! would let a crash lose acknowledged commits: not what a production primary does). The edge is
//! the built worker under workerd via Miniflare, signing its requests with the bench's
//! `EDGE_KEY`, which the origin checks. Loopback only; bounded by the number of keys, kills and a
//! deadline per key.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use breakwater_origin::db::{Bulkheads, Connect};
use breakwater_origin::{Application, Db, Settings};

use super::idempotency::storm::{self, Reply};
use crate::origin::{ADMIN_TOKEN, EDGE_KEY, EventTotals};
use crate::postgres::{Database, Servers};
use crate::report::{Section, Table};
use crate::scenario::{Bench, NO_ADMISSION, step};
use crate::zipf::SplitMix64;

/// Set in the child's environment: serve the origin instead of benchmarking.
const ORIGIN_MODE: &str = "BREAKWATER_BENCH_ORIGIN";
/// How long a restarted origin may take to answer `/health`.
const ORIGIN_READY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Plan {
    /// Distinct keys, each one order.
    pub keys: usize,
    /// Times the origin is SIGKILLed and restarted.
    pub kills: usize,
    pub keys_in_flight: usize,
    pub seed: u64,
}

/// In the child: when [`ORIGIN_MODE`] is set, runs the origin it describes
/// (`BREAKWATER_DATABASE_URL`, `BREAKWATER_LISTEN`, `BREAKWATER_EDGE_KEYS`,
/// `BREAKWATER_ADMIN_TOKEN`) until killed, and never returns; otherwise returns at once.
pub fn serve_origin_if_asked() {
    if std::env::var_os(ORIGIN_MODE).is_none() {
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let result = tokio::runtime::Runtime::new()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(async {
                let listen = var("BREAKWATER_LISTEN")
                    .parse()
                    .map_err(|e| format!("BREAKWATER_LISTEN: {e}"))?;
                let mut settings = Settings::new(listen, var("BREAKWATER_DATABASE_URL"));
                settings.edge_keys = vec![var("BREAKWATER_EDGE_KEYS")];
                settings.admin_token = Some(var("BREAKWATER_ADMIN_TOKEN"));
                settings.outbox.confirmation_dir = std::env::temp_dir().join("breakwater-chaos");
                let app = Application::build(settings)
                    .await
                    .map_err(|e| format!("origin failed to start: {e}"))?;
                app.run_until(std::future::pending::<()>())
                    .await
                    .map_err(|e| format!("origin stopped: {e}"))
            })
        });
    if let Err(e) = result {
        eprintln!("chaos origin: {e}");
        std::process::exit(1);
    }
    std::process::exit(0);
}

/// The origin child, restartable on the same port.
struct Origin {
    addr: SocketAddr,
    database_url: String,
    child: Option<Child>,
}

impl Origin {
    async fn start(addr: SocketAddr, database_url: &str) -> Result<Self, String> {
        let mut origin = Self {
            addr,
            database_url: database_url.to_owned(),
            child: None,
        };
        origin.restart().await?;
        Ok(origin)
    }

    /// Starts the child and waits until it answers `/health`.
    async fn restart(&mut self) -> Result<(), String> {
        let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
        let child = Command::new(exe)
            .env(ORIGIN_MODE, "1")
            .env("BREAKWATER_LISTEN", self.addr.to_string())
            .env("BREAKWATER_DATABASE_URL", &self.database_url)
            .env("BREAKWATER_EDGE_KEYS", EDGE_KEY)
            .env("BREAKWATER_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the origin: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + ORIGIN_READY;
        let health = format!("http://{}/health", self.addr);
        loop {
            if reqwest::get(&health)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("the origin exited during start-up: {status}"));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the origin did not answer {health} within {ORIGIN_READY:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no drain, no goodbye.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_addr() -> Result<SocketAddr, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("a free port: {e}"))
}

/// What the faults did.
struct Faults {
    kills: usize,
    primary_restarted: bool,
    slowest_restart: Duration,
}

/// Runs the scenario; the section, and whether every goal held.
pub fn run(bench: &Bench, plan: &Plan) -> Result<(Section, bool), String> {
    let servers = Servers::from_env()?;
    let database = bench.block_on(async {
        let database = Database::create(&servers).await?;
        database.synchronous_commit_on().await?;
        Ok::<_, String>(database)
    })?;
    let addr = free_addr()?;
    step(&format!(
        "chaos: the origin as a process of its own on {addr}, over Postgres database {}",
        database.name
    ));
    let mut origin = bench.block_on(Origin::start(addr, &database.url))?;
    let edge = bench.start_edge(
        &format!("http://{addr}"),
        &[
            ("ORIGIN_TIMEOUT_MS", "3000".to_owned()),
            // One client address sends everything: no per-address quota.
            ("ADMISSION", NO_ADMISSION.to_owned()),
            // The queue consumer's credential for the origin's batch endpoint.
            ("ORIGIN_TOKEN", ADMIN_TOKEN.to_owned()),
        ],
    )?;
    let keys: Arc<[String]> = (0..plan.keys)
        .map(|i| format!("chaos-order-{}-{i:06}", plan.seed))
        .collect();
    let bodies: Arc<[String]> = (0..plan.keys)
        .map(|i| {
            format!(
                r#"{{"items": [{{"product_id": {}, "quantity": 1}}]}}"#,
                1 + i % 500
            )
        })
        .collect();
    let client = storm::Client {
        attempts: 1,
        concurrent: 1,
        deadline: Duration::from_secs(120),
        keys_in_flight: plan.keys_in_flight,
        seed: plan.seed,
    };
    let url = format!("{}/api/orders", edge.url);
    let edge_url = edge.url.clone();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let root = bench.root().to_owned();
    let (runs, faults, views) = bench.block_on(async {
        let running = Arc::new(AtomicBool::new(true));
        let done = Arc::new(AtomicUsize::new(0));
        let views = tokio::spawn(send_views(http.clone(), edge_url.clone(), plan.keys / 2));
        let load = {
            let (running, keys, done) = (running.clone(), keys.clone(), done.clone());
            tokio::spawn(async move {
                let runs = storm::run(&http, &url, keys, bodies, client, done).await;
                running.store(false, Ordering::SeqCst);
                runs
            })
        };
        // `kills` SIGKILLs spread over the run, the k-th at a random point of the k-th of
        // `kills` equal stretches of the keys, and the primary's crash and restart with the
        // middle one.
        let mut schedule = SplitMix64::new(plan.seed);
        let stretch = plan.keys / plan.kills.max(1);
        let mut faults = Faults {
            kills: 0,
            primary_restarted: false,
            slowest_restart: Duration::ZERO,
        };
        while running.load(Ordering::SeqCst) && faults.kills < plan.kills {
            let at = faults.kills * stretch + (schedule.next_u64() as usize) % stretch.max(1);
            while done.load(Ordering::SeqCst) < at && running.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if !running.load(Ordering::SeqCst) {
                break;
            }
            origin.kill();
            faults.kills += 1;
            let down = Instant::now();
            if !faults.primary_restarted && faults.kills * 2 >= plan.kills {
                let root = root.clone();
                tokio::task::spawn_blocking(move || restart_primary(&root))
                    .await
                    .map_err(|e| e.to_string())??;
                faults.primary_restarted = true;
            }
            origin.restart().await?;
            faults.slowest_restart = faults.slowest_restart.max(down.elapsed());
            eprintln!(
                "    chaos: origin killed and back ({}/{})",
                faults.kills, plan.kills
            );
        }
        let runs = load.await.map_err(|e| format!("the load generator: {e}"))?;
        let views = views.await.map_err(|e| format!("the views: {e}"))?;
        Ok::<_, String>((runs, faults, views))
    })?;
    let wall = started.elapsed();

    // The database's view of every key, and of the views once the queue has drained.
    let (counts, drain) = bench.block_on(async {
        let db = Db::open(
            &database.url,
            &Bulkheads::default().background,
            Connect::Now,
        )
        .await
        .map_err(|e| e.to_string())?;
        let drain = drained(&db, views.accepted).await?;
        let mut counts = Vec::with_capacity(keys.len());
        for key in keys.iter() {
            counts.push(
                breakwater_origin::order::count_with_key(&db, key)
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        Ok::<_, String>((counts, drain))
    })?;
    drop(edge);
    drop(origin);
    Ok(report(plan, &runs, &counts, &faults, &views, &drain, wall))
}

/// The write-behind half: views, each sent until answered `202` (queued).
struct Views {
    accepted: i64,
    gave_up: usize,
}

/// Sends `count` views over products 1..=100, 8 at a time, each retried (backoff, up to 20
/// tries) until answered `202`.
async fn send_views(http: reqwest::Client, edge: String, count: usize) -> Views {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (http, edge, next) = (http.clone(), edge.clone(), next.clone());
            tokio::spawn(async move {
                let (mut accepted, mut gave_up) = (0, 0);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let url = format!("{edge}/api/products/{}/views", 1 + i % 100);
                    let mut queued = false;
                    for attempt in 0..20u32 {
                        let answer = http.post(&url).send().await;
                        if answer.is_ok_and(|r| r.status().as_u16() == 202) {
                            queued = true;
                            break;
                        }
                        let backoff = 50u64 << attempt.min(5);
                        tokio::time::sleep(Duration::from_millis(backoff)).await;
                    }
                    if queued {
                        accepted += 1;
                    } else {
                        gave_up += 1;
                    }
                }
                (accepted, gave_up)
            })
        })
        .collect();
    let mut views = Views {
        accepted: 0,
        gave_up: 0,
    };
    for worker in workers {
        if let Ok((accepted, gave_up)) = worker.await {
            views.accepted += accepted;
            views.gave_up += gave_up;
        }
    }
    views
}

/// What the database counted once the queue drained.
struct Drain {
    counted: i64,
    /// From the end of the load until the count matched; `None` if it never did.
    took: Option<Duration>,
}

/// Waits (at most 120 s) until `product_stats` counts `accepted` views.
async fn drained(db: &Db, accepted: i64) -> Result<Drain, String> {
    let started = Instant::now();
    loop {
        let counted = EventTotals::read(db).await?.views;
        if counted == accepted {
            return Ok(Drain {
                counted,
                took: Some(started.elapsed()),
            });
        }
        if started.elapsed() > Duration::from_secs(120) || counted > accepted {
            return Ok(Drain {
                counted,
                took: None,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn restart_primary(root: &std::path::Path) -> Result<(), String> {
    let status = Command::new("sh")
        .current_dir(root)
        .args(["scripts/postgres.sh", "restart-primary"])
        .status()
        .map_err(|e| format!("scripts/postgres.sh restart-primary: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("scripts/postgres.sh restart-primary: {status}"))
}

fn report(
    plan: &Plan,
    runs: &[storm::KeyRun],
    counts: &[i64],
    faults: &Faults,
    views: &Views,
    drain: &Drain,
    wall: Duration,
) -> (Section, bool) {
    let sends: usize = runs.iter().map(|r| r.sends.len()).sum();
    let count = |f: &dyn Fn(&Reply) -> bool| {
        runs.iter()
            .flat_map(|r| r.sends.iter())
            .filter(|s| f(&s.reply))
            .count()
    };
    let created = count(&|r| matches!(r, Reply::Created));
    let replayed = count(&|r| matches!(r, Reply::Replayed));
    let in_flight = count(&|r| matches!(r, Reply::InFlight));
    let server_errors = count(&|r| matches!(r, Reply::ServerError(..)));
    let internal = count(&|r| matches!(r, Reply::ServerError(500, _)));
    let no_answer = count(&|r| matches!(r, Reply::NoAnswer));
    let other = count(&|r| matches!(r, Reply::Other(_) | Reply::Mismatch));
    let keys = runs.iter().zip(counts);
    let acknowledged = runs.iter().filter(|r| r.got_created()).count();
    let gave_up = runs.iter().filter(|r| r.terminal_after.is_none()).count();
    let duplicates = counts.iter().filter(|&&c| c > 1).count();
    let lost = keys
        .clone()
        .filter(|(r, c)| r.got_created() && **c == 0)
        .count();
    let unacknowledged = keys.filter(|(r, c)| !r.got_created() && **c > 0).count();
    let goals = [
        (
            "keys acknowledged (a 201)",
            acknowledged,
            acknowledged == plan.keys,
        ),
        ("keys given up (no terminal answer)", gave_up, gave_up == 0),
        ("keys with more than one order", duplicates, duplicates == 0),
        ("acknowledged keys without their order", lost, lost == 0),
        (
            "orders whose key was never acknowledged",
            unacknowledged,
            unacknowledged == 0,
        ),
        ("answers that were `500`", internal, internal == 0),
        (
            "views queued (a 202)",
            views.accepted as usize,
            views.gave_up == 0,
        ),
        (
            "views counted after the drain",
            drain.counted as usize,
            drain.took.is_some(),
        ),
    ];
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for sent in runs.iter().flat_map(|r| r.sends.iter()) {
        if matches!(sent.reply, Reply::ServerError(..)) {
            *kinds.entry(sent.reply.detail()).or_default() += 1;
        }
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    let mut answers = Table::new([
        "sends",
        "201 fresh",
        "201 replayed",
        "409",
        "5xx",
        "of which 500",
        "no answer",
        "other",
        "5xx by kind",
    ])
    .left(8);
    let mut row: Vec<String> = [
        sends,
        created,
        replayed,
        in_flight,
        server_errors,
        internal,
        no_answer,
        other,
    ]
    .map(|n| n.to_string())
    .to_vec();
    row.push(kinds.join(", "));
    answers.row(row);
    let mut checks = Table::new(["check", "keys", "goal"]);
    for (what, n, ok) in goals {
        checks.row(vec![
            what.into(),
            n.to_string(),
            if ok { "✓" } else { "✗" }.into(),
        ]);
    }
    let section = Section {
        plots: Vec::new(),
        title: "Chaos: orders and queued views while the origin is killed and the primary crashes"
            .into(),
        intro: vec![format!(
            "{} keys, one order each, {} keys in flight, each retried by the client (backoff, \
             `Retry-After`) until a terminal answer or 120 s; alongside, {} product views \
             (write-behind: answered `202`, queued, delivered in batches), each sent until \
             queued. The origin, a process of its own over Postgres with \
             `synchronous_commit = on`, SIGKILLed and restarted {} times, spread over the run \
             at random points (seed {}; slowest return {} ms); the Postgres primary crashed \
             (immediate shutdown) and restarted {}. Wall time {:.1} s; the queue drained {} \
             later. Counted in the database afterwards (`order::count_with_key`, \
             `SUM(product_stats.views)`).",
            plan.keys,
            plan.keys_in_flight,
            views.accepted as usize + views.gave_up,
            faults.kills,
            plan.seed,
            faults.slowest_restart.as_millis(),
            if faults.primary_restarted {
                "once"
            } else {
                "not at all (the load ended first)"
            },
            wall.as_secs_f64(),
            drain
                .took
                .map_or("never (within 120 s)".to_owned(), |t| format!(
                    "{:.1} s",
                    t.as_secs_f64()
                )),
        )],
        tables: vec![
            ("Every send's answer".into(), answers),
            ("Exactly once, checked in the database".into(), checks),
        ],
    };
    let passed = goals.iter().all(|(_, _, ok)| *ok);
    (section, passed)
}
