//! The fuzzing loop: from the corpus, generate and mutate inputs at full speed for a time
//! budget, keep those that produce an outcome not seen before, and stop at the first panic,
//! broken invariant or hang, which is shrunk, written to the artifacts directory and reported
//! with the seed and a command that reproduces it.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

mod report;

pub use report::{print_crash, shrink, thousands};

use crate::corpus;
use crate::mutate::mutate;
use crate::rng::Rng;
use crate::targets::{Outcome, Target};

/// How one target is fuzzed.
#[derive(Debug, Clone)]
pub struct Options {
    /// Time budget.
    pub duration: Duration,
    /// Stop after this many executions even if time is left (for tests).
    pub max_execs: Option<u64>,
    pub seed: u64,
    pub corpus: PathBuf,
    pub artifacts: PathBuf,
    /// One execution taking longer than this is a hang.
    pub timeout: Duration,
    /// How often a progress line is printed; `None` prints none.
    pub progress: Option<Duration>,
}

/// Inputs kept in memory at most: the corpus plus what was found to reach new outcomes.
const MAX_POOL: usize = 4096;
/// Most executions spent shrinking a failing input, and most time.
const SHRINK_TRIES: usize = 20_000;
const SHRINK_TIME: Duration = Duration::from_secs(10);

/// Why an execution failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The code under test panicked: the message and where.
    Panic(String),
    /// A target's invariant did not hold: `rule: details`.
    Invariant(String),
}

impl Failure {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Panic(_) => "panic",
            Self::Invariant(_) => "invariant",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::Panic(m) | Self::Invariant(m) => m,
        }
    }

    /// What makes two failures the same bug while an input shrinks: a panic's location, an
    /// invariant's rule (the details change with the input).
    fn identity(&self) -> (&'static str, &str) {
        let m = self.message();
        let key = match self {
            Self::Panic(_) => m.rsplit(" at ").next().unwrap_or(m),
            Self::Invariant(_) => m.split(": ").next().unwrap_or(m),
        };
        (self.kind(), key)
    }
}

/// A failure the loop found.
#[derive(Debug, Clone)]
pub struct Crash {
    pub failure: Failure,
    /// After how many executions.
    pub exec: u64,
    /// The input as found, and shrunk.
    pub input: Vec<u8>,
    pub shrunk: Vec<u8>,
    /// Where both were written.
    pub artifact: Option<PathBuf>,
    pub full_artifact: Option<PathBuf>,
}

/// What one target's run came to.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: &'static str,
    pub seed: u64,
    pub execs: u64,
    pub elapsed: Duration,
    /// Inputs in the pool at the end, and distinct outcomes seen.
    pub pool: usize,
    pub outcomes: usize,
    pub crash: Option<Crash>,
}

impl Report {
    pub fn execs_per_sec(&self) -> f64 {
        self.execs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

thread_local! {
    /// The message of the last panic on this thread, taken by [`execute`].
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    /// True while [`execute`] runs a target on this thread: only those panics are its to catch.
    static EXECUTING: Cell<bool> = const { Cell::new(false) };
}

/// When set, panics inside [`execute`] are also printed by the default hook (with a backtrace
/// under `RUST_BACKTRACE=1`): `replay` sets it, the loop does not (it would print millions).
/// Panics anywhere else (a failing test's assertion) always are.
pub static PRINT_PANICS: AtomicBool = AtomicBool::new(false);

/// Installs the hook that records the message and location of each panic inside [`execute`].
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(a panic without a message)".to_owned());
            let location = info.location().map_or_else(String::new, |l| {
                format!(" at {}:{}:{}", l.file(), l.line(), l.column())
            });
            let executing = EXECUTING.with(Cell::get);
            if executing {
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{message}{location}")));
            }
            if !executing || PRINT_PANICS.load(Ordering::Relaxed) {
                default(info);
            }
        }));
    });
}

/// Runs `input` through `target`, catching a panic.
pub fn execute(target: &Target, input: &[u8]) -> Result<Outcome, Failure> {
    install_panic_hook();
    LAST_PANIC.with(|p| p.borrow_mut().take());
    EXECUTING.with(|e| e.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    EXECUTING.with(|e| e.set(false));
    match result {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(rule)) => Err(Failure::Invariant(rule)),
        Err(_) => Err(Failure::Panic(
            LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "(a panic without a message)".to_owned()),
        )),
    }
}

/// What the watchdog thread sees: the input running and since when.
struct Watch {
    /// Milliseconds since the run began when the current execution started, plus one; 0: idle.
    started: AtomicU64,
    input: Mutex<Vec<u8>>,
    stop: AtomicBool,
}

/// Fuzzes `target` as `opts` says, printing progress to `log`.
pub fn fuzz(target: &'static Target, opts: &Options, log: &mut dyn Write) -> io::Result<Report> {
    install_panic_hook();
    let begun = Instant::now();
    // One stream per target from one seed, so `run all --seed N` reproduces every target.
    let mut rng = Rng::new(opts.seed ^ corpus::digest(target.name.as_bytes()));
    let mut pool: Vec<Vec<u8>> = corpus::load(&opts.corpus, target.name)?
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect();
    let seeded = pool.len();
    if pool.is_empty() {
        pool.extend((0..16).map(|_| (target.generate)(&mut rng)));
    }
    let mut seen: HashSet<u64> = HashSet::new();
    let mut report = Report {
        target: target.name,
        seed: opts.seed,
        execs: 0,
        elapsed: Duration::ZERO,
        pool: 0,
        outcomes: 0,
        crash: None,
    };
    let watch = Watch {
        started: AtomicU64::new(0),
        input: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    };
    let crash = std::thread::scope(|scope| {
        scope.spawn(|| watchdog(&watch, target, opts, begun));
        let mut last_progress = Instant::now();
        let mut crash = None;
        let mut queue: Vec<Vec<u8>> = pool.clone();
        loop {
            // The corpus first, as it is; then generated and mutated inputs.
            let input = match queue.pop() {
                Some(input) => input,
                None => {
                    if begun.elapsed() >= opts.duration
                        || opts.max_execs.is_some_and(|max| report.execs >= max)
                    {
                        break;
                    }
                    next_input(&mut rng, target, &pool)
                }
            };
            if let Ok(mut slot) = watch.input.lock() {
                slot.clear();
                slot.extend_from_slice(&input);
            }
            watch
                .started
                .store(begun.elapsed().as_millis() as u64 + 1, Ordering::Release);
            let result = execute(target, &input);
            watch.started.store(0, Ordering::Release);
            report.execs += 1;
            match result {
                Ok(outcome) => {
                    if seen.insert(outcome.digest()) {
                        if pool.len() < MAX_POOL {
                            pool.push(input);
                        } else {
                            // Replace a found input, never a corpus one.
                            let first = seeded.min(MAX_POOL - 1) as u64;
                            pool[rng.range(first, MAX_POOL as u64 - 1) as usize] = input;
                        }
                    }
                }
                Err(failure) => {
                    crash = Some((failure, input, report.execs));
                    break;
                }
            }
            if let Some(every) = opts.progress
                && last_progress.elapsed() >= every
            {
                last_progress = Instant::now();
                let _ = writeln!(
                    log,
                    "    {}: {:>5.1} s  {:>12} execs  {:>10}/s  pool {}  outcomes {}",
                    target.name,
                    begun.elapsed().as_secs_f64(),
                    thousands(report.execs),
                    thousands((report.execs as f64 / begun.elapsed().as_secs_f64()) as u64),
                    pool.len(),
                    seen.len()
                );
            }
        }
        watch.stop.store(true, Ordering::Release);
        crash
    });
    report.elapsed = begun.elapsed();
    report.pool = pool.len();
    report.outcomes = seen.len();
    if let Some((failure, input, exec)) = crash {
        let shrunk = shrink(target, &input, &failure);
        // The shrunk input's own message: its details describe the bytes written out.
        let failure = execute(target, &shrunk).err().unwrap_or(failure);
        let artifact =
            corpus::write_artifact(&opts.artifacts, target.name, failure.kind(), &shrunk).ok();
        let full_artifact = (shrunk != input)
            .then(|| {
                corpus::write_artifact(
                    &opts.artifacts,
                    target.name,
                    &format!("{}-full", failure.kind()),
                    &input,
                )
                .ok()
            })
            .flatten();
        report.crash = Some(Crash {
            failure,
            exec,
            input,
            shrunk,
            artifact,
            full_artifact,
        });
    }
    Ok(report)
}

/// A fresh input, or one from the pool mutated.
fn next_input(rng: &mut Rng, target: &Target, pool: &[Vec<u8>]) -> Vec<u8> {
    let mut input = match rng.below(16) {
        0 | 1 => (target.generate)(rng),
        2 => {
            let mut fresh = (target.generate)(rng);
            mutate(rng, &mut fresh, target.dictionary, pool, target.max_len);
            fresh
        }
        _ => {
            let mut input = rng.pick(pool).cloned().unwrap_or_default();
            mutate(rng, &mut input, target.dictionary, pool, target.max_len);
            input
        }
    };
    input.truncate(target.max_len);
    input
}

/// Watches for an execution that takes longer than the timeout: writes its input as a
/// `timeout-` artifact, reports, and ends the process (the stuck thread cannot be stopped).
fn watchdog(watch: &Watch, target: &Target, opts: &Options, begun: Instant) {
    let tick = Duration::from_millis(100).min(opts.timeout);
    while !watch.stop.load(Ordering::Acquire) {
        std::thread::sleep(tick);
        let started = watch.started.load(Ordering::Acquire);
        if started == 0 {
            continue;
        }
        let running = (begun.elapsed().as_millis() as u64 + 1).saturating_sub(started);
        if running < opts.timeout.as_millis() as u64 {
            continue;
        }
        let input = watch.input.lock().map(|i| i.clone()).unwrap_or_default();
        let path = corpus::write_artifact(&opts.artifacts, target.name, "timeout", &input).ok();
        let failure = Failure::Invariant(format!(
            "hang: one execution ran over {} s",
            opts.timeout.as_secs_f64()
        ));
        let mut err = io::stderr();
        let _ = print_crash(
            &mut err,
            target.name,
            opts.seed,
            &failure,
            &input,
            path.as_deref(),
            None,
        );
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::ensure;

    fn panics(input: &[u8]) -> Result<Outcome, String> {
        if input.contains(&b'!') {
            // One past the end: the kind of bug the fuzzer is for.
            let _ = input[input.len()];
        }
        ensure!(!input.contains(&b'?'), "no question marks", "{input:?}");
        Ok(Outcome::default())
    }

    const TOY: Target = Target {
        name: "toy",
        about: "",
        generate: |rng| vec![b'a' + rng.below(3) as u8; 4],
        run: panics,
        dictionary: &["!", "?"],
        max_len: 64,
    };

    #[test]
    fn panics_and_invariants_are_told_apart() {
        assert!(execute(&TOY, b"abc").is_ok());
        let Err(Failure::Panic(message)) = execute(&TOY, b"a!") else {
            panic!("expected a panic");
        };
        assert!(
            message.contains("index out of bounds") && message.contains("runner/mod.rs"),
            "{message}"
        );
        assert_eq!(
            execute(&TOY, b"a?").unwrap_err(),
            Failure::Invariant("no question marks: [97, 63]".into())
        );
    }

    #[test]
    fn a_failure_shrinks_to_what_causes_it() {
        let failure = execute(&TOY, b"hello ? world").unwrap_err();
        assert_eq!(shrink(&TOY, b"hello ? world", &failure), b"?");
    }

    #[test]
    fn the_loop_finds_a_crash_and_writes_it() {
        let artifacts =
            std::env::temp_dir().join(format!("breakwater-fuzz-run-{}", std::process::id()));
        let opts = Options {
            duration: Duration::from_secs(30),
            max_execs: Some(100_000),
            seed: 1,
            corpus: artifacts.join("no-corpus"),
            artifacts: artifacts.clone(),
            timeout: Duration::from_secs(30),
            progress: None,
        };
        let report = fuzz(&TOY, &opts, &mut io::sink()).unwrap();
        let crash = report.crash.expect("the dictionary leads to a crash");
        assert!(crash.shrunk.len() <= 2, "{:?}", crash.shrunk);
        let written = std::fs::read(crash.artifact.unwrap()).unwrap();
        assert_eq!(written, crash.shrunk);
        std::fs::remove_dir_all(&artifacts).unwrap();
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }
}
