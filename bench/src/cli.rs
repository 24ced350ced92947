//! Command-line flags (each also settable by an environment variable, for `make bench`).

use clap::{Parser, ValueEnum};

use breakwater_origin::seed::CATALOGUE_SIZE;

use crate::scenario::surge::Profile;

#[derive(Debug, Parser)]
#[command(
    name = "breakwater-bench",
    about = "Edge benchmark, side by side in one run: cache tiers (a Zipf workload against the \
             origin and through the edge under workerd via the Miniflare API), the rate \
             limiter's added latency, surges and a brownout against a slowed origin with admission on, \
             idempotency (the records' added latency, and a retry storm with faults between \
             edge and origin, checked for duplicate orders), write-behind (views queued and \
             answered 202 vs the same write done synchronously, with the database transactions \
             per 1,000 events) and failover (two origins, one killed mid-run, against a single \
             origin killed alike); and the origin alone on SQLite, Postgres and Postgres with a \
             streaming replica (product reads, order writes)"
)]
pub struct Args {
    /// Scenarios to run, comma-separated.
    #[arg(
        long,
        env = "BENCH_SCENARIO",
        value_enum,
        value_delimiter = ',',
        default_value = "all"
    )]
    pub scenario: Vec<Scenario>,

    /// Requests per Zipf run (cache and limiter) [default: 20000, or 2000 with --quick].
    #[arg(long, env = "BENCH_REQUESTS")]
    pub requests: Option<usize>,

    /// Requests in flight at once (closed-loop runs).
    #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,

    /// Product ids 1..=N in the key space (the origin seeds 10,000).
    #[arg(long, env = "BENCH_KEYS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=CATALOGUE_SIZE as u64))]
    pub keys: u64,

    /// List pages (/api/products?page=k) added to the key space.
    #[arg(long, env = "BENCH_LIST_PAGES", default_value_t = 100)]
    pub list_pages: usize,

    /// Zipf exponent s (popularity of rank k is proportional to 1/k^s).
    #[arg(long, env = "BENCH_ZIPF_S", default_value_t = 0.99)]
    pub zipf_s: f64,

    /// Seed of the key sequence and the surge's arrivals (the same seed, the same requests).
    #[arg(long, env = "BENCH_SEED", default_value_t = 1)]
    pub seed: u64,

    /// Concurrent requests for one cold key in each stampede round.
    #[arg(long, env = "BENCH_STAMPEDE", default_value_t = 200,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub stampede: u16,

    /// Stampede rounds, each on a fresh key.
    #[arg(long, env = "BENCH_STAMPEDE_ROUNDS", default_value_t = 3)]
    pub stampede_rounds: usize,

    /// CACHE_MEMORY_BYTES of the memory-pressure run (a fresh edge); 0 skips that run.
    #[arg(long, env = "BENCH_PRESSURE_MEMORY_BYTES", default_value_t = 256 * 1024)]
    pub pressure_memory_bytes: u64,

    /// Limiter scenario: requests of the loaded pass, from the start of the Zipf sequence
    /// [default: 8000, or 2000 with --quick; at most --requests].
    #[arg(long, env = "BENCH_LIMITER_REQUESTS")]
    pub limiter_requests: Option<usize>,

    /// Limiter scenario: API keys the requests take turns with (one RATE_LIMITER object each);
    /// 0 sends none, so every request is the bench's own address, one object.
    #[arg(long, env = "BENCH_LIMITER_PRINCIPALS", default_value_t = 8)]
    pub limiter_principals: usize,

    /// Surge: service time the slowed origin adds to every request, in ms. 60 ms at 2 at once
    /// (33 requests/s) keeps a 10× surge (250/s) within what the edge itself serves on a 2-CPU
    /// machine, so that it overloads the origin, not the edge.
    #[arg(long, env = "BENCH_ORIGIN_DELAY_MS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub origin_delay_ms: u64,

    /// Surge: requests the slowed origin serves at once (the rest queue). Small by default: on
    /// a 2-CPU machine the edge itself (uncached, a limiter call per request) falls behind
    /// before a 10× surge's 500 requests/s, and the surge is to overload the origin, not the
    /// edge.
    #[arg(long, env = "BENCH_ORIGIN_CONCURRENCY", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub origin_concurrency: u64,

    /// Surge: the unloaded rate, requests per second [default: 75% of the slowed origin's
    /// capacity, concurrency / delay].
    #[arg(long, env = "BENCH_SURGE_RATE")]
    pub surge_rate: Option<f64>,

    /// Surge: the overload profiles to run, each on a fresh edge: `Nx` (the unloaded rate × N)
    /// or `brownout` (the origin 5× slower, the rate unchanged).
    #[arg(long, env = "BENCH_SURGE_PROFILES", value_delimiter = ',',
          default_value = "3x,10x,brownout", value_parser = Profile::parse)]
    pub surge_profiles: Vec<Profile>,

    /// Surge: seconds of each phase (unloaded, surge or brownout, after; and the unloaded phase
    /// once more straight to the slowed origin, twice for a brownout) [default: 12, or 6 with
    /// --quick].
    #[arg(long, env = "BENCH_SURGE_SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub surge_seconds: Option<u64>,

    /// Surge: API keys (principals) the traffic is spread over, each with its own quotas.
    #[arg(long, env = "BENCH_SURGE_PRINCIPALS", default_value_t = 4,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub surge_principals: u64,

    /// Surge: the edge's `CONCURRENCY` settings to run every profile with, separated by `;`:
    /// `shipped` (the edge's own defaults: the limit off) or a JSON object, e.g.
    /// `{"enabled": true}`.
    #[arg(
        long,
        env = "BENCH_SURGE_CONCURRENCY",
        value_delimiter = ';',
        default_value = r#"shipped;{"enabled": true}"#
    )]
    pub surge_concurrency: Vec<String>,

    /// Idempotency: orders sent one at a time through each edge (records on, records off)
    /// [default: 300, or 100 with --quick].
    #[arg(long, env = "BENCH_IDEMPOTENCY_SERIAL")]
    pub idempotency_serial: Option<usize>,

    /// Idempotency: orders sent at --concurrency through each edge [default: 1000, or 300 with
    /// --quick].
    #[arg(long, env = "BENCH_IDEMPOTENCY_REQUESTS")]
    pub idempotency_requests: Option<usize>,

    /// Retry storm: distinct keys, one order each [default: 300, or 100 with --quick].
    #[arg(long, env = "BENCH_STORM_KEYS")]
    pub storm_keys: Option<usize>,

    /// Retry storm: sends per key when nothing fails (a key without a terminal answer is
    /// retried beyond this).
    #[arg(long, env = "BENCH_STORM_ATTEMPTS", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=100))]
    pub storm_attempts: u16,

    /// Retry storm: of a key's sends, how many go at once at the start (the rest one after
    /// another).
    #[arg(long, env = "BENCH_STORM_CONCURRENT", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=100))]
    pub storm_concurrent: u16,

    /// Retry storm: share of POSTs whose connection the relay closes before forwarding them
    /// (the origin is unreachable).
    #[arg(long, env = "BENCH_STORM_REFUSE", default_value_t = 0.1)]
    pub storm_refuse: f64,

    /// Retry storm: share of POSTs the origin answers (and commits) whose answer the relay
    /// drops before the edge hears it.
    #[arg(long, env = "BENCH_STORM_DROP", default_value_t = 0.1)]
    pub storm_drop: f64,

    /// Retry storm: seconds after its first send that a key without a terminal answer is given
    /// up.
    #[arg(long, env = "BENCH_STORM_DEADLINE_S", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub storm_deadline_s: u64,

    /// Retry storm: the edges' ORIGIN_TIMEOUT_MS.
    #[arg(long, env = "BENCH_STORM_ORIGIN_TIMEOUT_MS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub storm_origin_timeout_ms: u64,

    /// Retry storm: the records' lease_ms with records on; must exceed the origin timeout.
    #[arg(long, env = "BENCH_STORM_LEASE_MS", default_value_t = 1_500,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub storm_lease_ms: u64,

    /// Write-behind: views per run (queued through the edge, synchronous through the edge,
    /// synchronous at the origin) [default: 5000, or 1000 with --quick].
    #[arg(long, env = "BENCH_WRITEBEHIND_EVENTS",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub writebehind_events: Option<u64>,

    /// Write-behind: seconds after a run's last answer by which the origin must have counted
    /// every view (polled; a run that misses it is reported with what was counted).
    #[arg(long, env = "BENCH_WRITEBEHIND_DRAIN_S", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub writebehind_drain_s: u64,

    /// Failover: seconds of closed-loop reads before origin B is killed [default: 5, or 3 with
    /// --quick].
    #[arg(long, env = "BENCH_FAILOVER_BEFORE_S",
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub failover_before_s: Option<u64>,

    /// Failover: seconds B stays down [default: 10, or 6 with --quick].
    #[arg(long, env = "BENCH_FAILOVER_DURING_S",
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub failover_during_s: Option<u64>,

    /// Failover: seconds after B's restart [default: 10, or 6 with --quick].
    #[arg(long, env = "BENCH_FAILOVER_AFTER_S",
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub failover_after_s: Option<u64>,

    /// Origin: product reads per configuration [default: 100000, or 5000 with --quick].
    #[arg(long, env = "BENCH_ORIGIN_READS")]
    pub origin_reads: Option<usize>,

    /// Origin: order writes per configuration [default: 20000, or 1000 with --quick].
    #[arg(long, env = "BENCH_ORIGIN_WRITES")]
    pub origin_writes: Option<usize>,

    /// Origin: read-your-writes pairs per configuration, each an order and at once a read of it
    /// with its consistency token; 0 skips them [default: 10000, or 500 with --quick].
    #[arg(long, env = "BENCH_ORIGIN_READ_YOUR_WRITES")]
    pub origin_read_your_writes: Option<usize>,

    /// Origin: run the Postgres databases with synchronous_commit on (scripts/postgres.sh turns
    /// it off server-wide; with it off a commit reaches the replica only when the WAL writer
    /// flushes, every wal_writer_delay).
    #[arg(long, env = "BENCH_ORIGIN_SYNCHRONOUS_COMMIT")]
    pub origin_synchronous_commit: bool,

    /// Untimed requests before each run (opens connections, instantiates the wasm), sent with
    /// credentials so the edge does not cache them [default: 4 x concurrency].
    #[arg(long, env = "BENCH_WARMUP")]
    pub warmup: Option<usize>,

    /// A short sanity run (2,000 requests per Zipf run, 6-second surge phases, smaller
    /// idempotency and write-behind runs, unless other flags say otherwise; about three minutes
    /// in all).
    #[arg(long, env = "BENCH_QUICK")]
    pub quick: bool,

    /// Show Miniflare's and the worker's informational logs.
    #[arg(long, env = "BENCH_VERBOSE")]
    pub verbose: bool,

    /// Chaos: keys, one order each (and half as many queued views) [default: 10000, or 300 with
    /// --quick].
    #[arg(long, env = "BENCH_CHAOS_KEYS")]
    pub chaos_keys: Option<usize>,

    /// Chaos: times the origin process is SIGKILLed and restarted [default: 12, or 3 with
    /// --quick].
    #[arg(long, env = "BENCH_CHAOS_KILLS")]
    pub chaos_kills: Option<usize>,

    /// Hot path: seconds each row's closed loop runs [default: 8, or 3 with --quick].
    #[arg(long, env = "BENCH_HOTPATH_SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub hotpath_seconds: Option<u64>,

    /// Hot path: only the rows whose name contains one of these (comma-separated, e.g.
    /// `memory hit,asset`); the bare worker always runs.
    #[arg(long, env = "BENCH_HOTPATH_ROWS", value_delimiter = ',')]
    pub hotpath_rows: Vec<String>,
}

/// A part of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Cache tiers: origin baseline, edge, memory pressure, stampedes.
    Cache,
    /// The same cached reads through an edge whose route is rate-limited and one whose is not.
    Limiter,
    /// Unloaded, a surge or brownout (per --surge-profiles) and after, open loop, against a
    /// slowed origin with admission on.
    Surge,
    /// Orders through edges with and without idempotency records, then a retry storm with
    /// faults between edge and origin.
    Idempotency,
    /// Views queued by the edge (202) vs the same write done synchronously (204), through the
    /// edge and at the origin; database transactions per 1,000 events.
    #[value(name = "writebehind", alias = "write-behind")]
    WriteBehind,
    /// Two origins, one killed mid-run and restarted, against a single origin killed alike:
    /// error rate and p99 before, during and after.
    Failover,
    /// CPU per request, throughput, cold start and wasm size of the edge's hot paths (memory,
    /// Cache API and limited hits, assets, keyed POSTs) against a bare workers-rs worker.
    Hotpath,
    /// The origin alone, no edge: product reads and order writes on SQLite, on Postgres, and
    /// on Postgres with its streaming replica serving the reads (needs scripts/postgres.sh).
    Origin,
    /// All of the above (not chaos).
    All,
    /// Keyed orders with client retries while the origin process is SIGKILLed and restarted
    /// and the Postgres primary crashes once; exactly-once checked in the database
    /// (`make chaos`; needs scripts/postgres.sh). Not part of `all`.
    Chaos,
}

impl Args {
    pub fn requests(&self) -> usize {
        self.requests
            .unwrap_or(if self.quick { 2_000 } else { 20_000 })
    }

    pub fn warmup(&self) -> usize {
        self.warmup.unwrap_or(4 * usize::from(self.concurrency))
    }

    pub fn limiter_requests(&self) -> usize {
        self.limiter_requests
            .unwrap_or(if self.quick { 2_000 } else { 8_000 })
            .min(self.requests())
    }

    pub fn surge_seconds(&self) -> u64 {
        self.surge_seconds
            .unwrap_or(if self.quick { 6 } else { 12 })
    }

    pub fn idempotency_serial(&self) -> usize {
        self.idempotency_serial
            .unwrap_or(if self.quick { 100 } else { 300 })
    }

    pub fn idempotency_requests(&self) -> usize {
        self.idempotency_requests
            .unwrap_or(if self.quick { 300 } else { 1_000 })
    }

    pub fn storm_keys(&self) -> usize {
        self.storm_keys
            .unwrap_or(if self.quick { 100 } else { 300 })
    }

    pub fn writebehind_events(&self) -> usize {
        self.writebehind_events
            .map_or(if self.quick { 1_000 } else { 5_000 }, |n| n as usize)
    }

    /// Failover: the phases' lengths in seconds (before, during, after).
    pub fn chaos_keys(&self) -> usize {
        self.chaos_keys
            .unwrap_or(if self.quick { 300 } else { 10_000 })
    }

    pub fn chaos_kills(&self) -> usize {
        self.chaos_kills.unwrap_or(if self.quick { 3 } else { 12 })
    }

    pub fn failover_seconds(&self) -> (u64, u64, u64) {
        let or = |x: Option<u64>, full, quick| x.unwrap_or(if self.quick { quick } else { full });
        (
            or(self.failover_before_s, 5, 3),
            or(self.failover_during_s, 10, 6),
            or(self.failover_after_s, 10, 6),
        )
    }

    pub fn hotpath_seconds(&self) -> u64 {
        self.hotpath_seconds
            .unwrap_or(if self.quick { 3 } else { 8 })
    }

    pub fn origin_reads(&self) -> usize {
        self.origin_reads
            .unwrap_or(if self.quick { 5_000 } else { 100_000 })
    }

    pub fn origin_writes(&self) -> usize {
        self.origin_writes
            .unwrap_or(if self.quick { 1_000 } else { 20_000 })
    }

    pub fn origin_read_your_writes(&self) -> usize {
        self.origin_read_your_writes
            .unwrap_or(if self.quick { 500 } else { 10_000 })
    }

    /// Whether any scenario that starts edges was asked for (all but the origin's).
    pub fn runs_edges(&self) -> bool {
        [
            Scenario::Cache,
            Scenario::Limiter,
            Scenario::Surge,
            Scenario::Idempotency,
            Scenario::WriteBehind,
            Scenario::Failover,
            Scenario::Hotpath,
            Scenario::Chaos,
        ]
        .into_iter()
        .any(|s| self.runs(s))
    }

    /// Whether `scenario` was asked for (`all` asks for every one).
    pub fn runs(&self, scenario: Scenario) -> bool {
        self.scenario
            .iter()
            .any(|&s| s == scenario || (s == Scenario::All && scenario != Scenario::Chaos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_default_to_all_and_take_a_list() {
        let args = Args::parse_from(["bench"]);
        assert!(args.runs(Scenario::Cache) && args.runs(Scenario::Surge));
        let args = Args::parse_from(["bench", "--scenario", "limiter,surge"]);
        assert!(!args.runs(Scenario::Cache));
        assert!(args.runs(Scenario::Limiter) && args.runs(Scenario::Surge));
        assert!(Args::parse_from(["bench"]).runs(Scenario::Idempotency));
        let args = Args::parse_from(["bench", "--scenario", "idempotency", "--quick"]);
        assert!(args.runs(Scenario::Idempotency) && !args.runs(Scenario::Cache));
        assert_eq!((args.storm_keys(), args.idempotency_serial()), (100, 100));
        assert!(args.runs_edges() && !args.runs(Scenario::Origin));
        assert!(Args::parse_from(["bench"]).runs(Scenario::Origin));
        let args = Args::parse_from(["bench", "--scenario", "origin", "--quick"]);
        assert!(args.runs(Scenario::Origin) && !args.runs_edges());
        assert_eq!((args.origin_reads(), args.origin_writes()), (5_000, 1_000));
        assert_eq!(args.origin_read_your_writes(), 500);
        let args = Args::parse_from(["bench", "--scenario", "writebehind", "--quick"]);
        assert!(args.runs(Scenario::WriteBehind) && args.runs_edges());
        assert!(!args.runs(Scenario::Idempotency) && !args.runs(Scenario::Origin));
        assert_eq!(args.writebehind_events(), 1_000);
        assert!(Args::parse_from(["bench"]).runs(Scenario::WriteBehind));
        let args = Args::parse_from(["bench", "--scenario", "write-behind"]);
        assert_eq!(args.writebehind_events(), 5_000);
        let args = Args::parse_from(["bench", "--scenario", "failover"]);
        assert!(args.runs(Scenario::Failover) && args.runs_edges());
        assert!(!args.runs(Scenario::Cache) && !args.runs(Scenario::Origin));
        assert_eq!(args.failover_seconds(), (5, 10, 10));
        let args = Args::parse_from(["bench", "--quick", "--failover-during-s", "8"]);
        assert!(args.runs(Scenario::Failover));
        assert_eq!(args.failover_seconds(), (3, 8, 6));
        let args = Args::parse_from(["bench", "--scenario", "hotpath", "--quick"]);
        assert!(args.runs(Scenario::Hotpath) && args.runs_edges());
        assert!(!args.runs(Scenario::Cache) && !args.runs(Scenario::Origin));
        assert_eq!(args.hotpath_seconds(), 3);
        assert!(Args::parse_from(["bench"]).runs(Scenario::Hotpath));
    }
}
