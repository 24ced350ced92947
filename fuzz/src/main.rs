//! The fuzz runner's command line: `run` targets for a time budget, `replay` inputs, `list` the
//! targets. See the crate documentation and README.md § Fuzzing.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use breakwater_fuzz::corpus;
use breakwater_fuzz::rng::Rng;
use breakwater_fuzz::runner::{self, Failure, Options, Report};
use breakwater_fuzz::targets::{self, TARGETS, Target};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "breakwater-fuzz",
    about = "Structured random fuzzing of Breakwater's parsers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fuzzes each target for a time budget; exits 1 if any failed.
    Run {
        /// Targets by name, `all`, or a comma-separated list.
        #[arg(env = "FUZZ_TARGETS", default_value = "all", value_delimiter = ',')]
        targets: Vec<String>,
        /// Seconds per target.
        #[arg(long, env = "FUZZ_SECONDS", default_value_t = 60.0)]
        seconds: f64,
        /// The random seed (default: from the clock); the same seed, corpus and code replay the
        /// same run.
        #[arg(long, env = "FUZZ_SEED")]
        seed: Option<u64>,
        /// Stop a target after this many executions even if time is left.
        #[arg(long)]
        runs: Option<u64>,
        /// One execution taking longer is reported as a hang.
        #[arg(long, default_value_t = 10)]
        timeout_secs: u64,
        /// Seconds between progress lines.
        #[arg(long, default_value_t = 5.0)]
        progress_secs: f64,
        #[arg(long, default_value_os_t = corpus::default_corpus())]
        corpus: PathBuf,
        #[arg(long, default_value_os_t = corpus::default_artifacts())]
        artifacts: PathBuf,
    },
    /// Runs files (or every file of a directory) through a target, printing each failure with
    /// its panic message (set RUST_BACKTRACE=1 for a backtrace).
    Replay {
        target: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Lists the targets and what each asserts.
    List,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::List => {
            for t in TARGETS {
                println!("{:<14} {}", t.name, t.about);
            }
            ExitCode::SUCCESS
        }
        Command::Replay { target, files } => replay(&target, &files),
        Command::Run {
            targets,
            seconds,
            seed,
            runs,
            timeout_secs,
            progress_secs,
            corpus,
            artifacts,
        } => {
            let chosen = match choose(&targets) {
                Ok(chosen) => chosen,
                Err(name) => {
                    eprintln!("unknown target {name:?}; `list` shows them");
                    return ExitCode::from(2);
                }
            };
            let opts = Options {
                duration: Duration::from_secs_f64(seconds.max(0.0)),
                max_execs: runs,
                seed: seed.unwrap_or_else(clock_seed),
                corpus,
                artifacts,
                timeout: Duration::from_secs(timeout_secs.max(1)),
                progress: Some(Duration::from_secs_f64(progress_secs.max(0.1))),
            };
            run(&chosen, &opts)
        }
    }
}

fn choose(names: &[String]) -> Result<Vec<&'static Target>, String> {
    let mut chosen = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        if name == "all" {
            chosen.extend(TARGETS.iter());
        } else {
            chosen.push(targets::find(name).ok_or_else(|| name.to_owned())?);
        }
    }
    if chosen.is_empty() {
        chosen.extend(TARGETS.iter());
    }
    Ok(chosen)
}

/// A seed nobody chose: the clock's nanoseconds and the process id, mixed.
fn clock_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Rng::new(nanos ^ u64::from(std::process::id()).rotate_left(32)).next_u64() >> 1
}

fn run(chosen: &[&'static Target], opts: &Options) -> ExitCode {
    let mut out = io::stdout();
    let _ = writeln!(
        out,
        "fuzzing {} target(s) for {:.0} s each, seed {} (corpus {})",
        chosen.len(),
        opts.duration.as_secs_f64(),
        opts.seed,
        opts.corpus.display()
    );
    let mut reports: Vec<Report> = Vec::new();
    for target in chosen {
        let _ = writeln!(out, "==> {}", target.name);
        match runner::fuzz(target, opts, &mut out) {
            Ok(report) => {
                if let Some(crash) = &report.crash {
                    let _ = runner::print_crash(
                        &mut out,
                        target.name,
                        opts.seed,
                        &crash.failure,
                        &crash.shrunk,
                        crash.artifact.as_deref(),
                        crash.full_artifact.as_deref(),
                    );
                }
                reports.push(report);
            }
            Err(e) => {
                eprintln!("{}: cannot read the corpus: {e}", target.name);
                return ExitCode::from(2);
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{:<14} {:>14} {:>10} {:>8} {:>6} {:>9}  result",
        "target", "executions", "execs/s", "seconds", "pool", "outcomes"
    );
    for r in &reports {
        let result = match &r.crash {
            None => "ok".to_owned(),
            Some(c) => format!(
                "{} after {} execs",
                c.failure.kind().to_uppercase(),
                runner::thousands(c.exec)
            ),
        };
        let _ = writeln!(
            out,
            "{:<14} {:>14} {:>10} {:>8.1} {:>6} {:>9}  {result}",
            r.target,
            runner::thousands(r.execs),
            runner::thousands(r.execs_per_sec() as u64),
            r.elapsed.as_secs_f64(),
            r.pool,
            r.outcomes,
        );
    }
    if reports.iter().any(|r| r.crash.is_some()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn replay(name: &str, files: &[PathBuf]) -> ExitCode {
    let Some(target) = targets::find(name) else {
        eprintln!("unknown target {name:?}; `list` shows them");
        return ExitCode::from(2);
    };
    runner::install_panic_hook();
    runner::PRINT_PANICS.store(true, Ordering::Relaxed);
    let mut paths = Vec::new();
    for file in files {
        match std::fs::read_dir(file) {
            Ok(entries) => paths.extend(entries.filter_map(|e| e.ok().map(|e| e.path()))),
            Err(_) => paths.push(file.clone()),
        }
    }
    paths.sort();
    let mut failed = 0;
    for path in &paths {
        let input = match std::fs::read(path) {
            Ok(input) => input,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                failed += 1;
                continue;
            }
        };
        match runner::execute(target, &input) {
            Ok(_) => println!("ok      {}", path.display()),
            Err(failure @ (Failure::Panic(_) | Failure::Invariant(_))) => {
                failed += 1;
                println!(
                    "FAILED  {} ({}): {}",
                    path.display(),
                    failure.kind(),
                    failure.message()
                );
            }
        }
    }
    println!("{} passed, {failed} failed", paths.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
