//! Command-line flags (each also settable by an environment variable, for `make bench`).

use clap::Parser;

use breakwater_origin::seed::CATALOGUE_SIZE;

#[derive(Debug, Parser)]
#[command(
    name = "breakwater-bench",
    about = "Cache tiering benchmark: a Zipf workload against the origin (baseline) and through \
             the edge (workerd via the Miniflare API), side by side in one run"
)]
pub struct Args {
    /// Requests per Zipf run [default: 20000, or 2000 with --quick].
    #[arg(long, env = "BENCH_REQUESTS")]
    pub requests: Option<usize>,

    /// Requests in flight at once.
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

    /// Seed of the key sequence (the same seed gives the same requests).
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

    /// Untimed requests before each run (opens connections, instantiates the wasm), sent with
    /// credentials so the edge does not cache them [default: 4 x concurrency].
    #[arg(long, env = "BENCH_WARMUP")]
    pub warmup: Option<usize>,

    /// A short sanity run (2,000 requests per Zipf run unless --requests says otherwise).
    #[arg(long, env = "BENCH_QUICK")]
    pub quick: bool,

    /// Show Miniflare's and the worker's informational logs.
    #[arg(long, env = "BENCH_VERBOSE")]
    pub verbose: bool,
}

impl Args {
    pub fn requests(&self) -> usize {
        self.requests
            .unwrap_or(if self.quick { 2_000 } else { 20_000 })
    }

    pub fn warmup(&self) -> usize {
        self.warmup.unwrap_or(4 * usize::from(self.concurrency))
    }
}
