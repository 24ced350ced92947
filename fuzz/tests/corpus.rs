//! The corpus, replayed by `cargo test --workspace` (and so by `make test`): every seed input in
//! `fuzz/corpus/<target>/` must pass its target, so an input that once found a bug keeps
//! guarding its fix. A short run of each target from a fixed seed checks that the generators and
//! mutators still produce inputs the targets accept; the long runs are `make fuzz`'s.

use std::time::Duration;

use breakwater_fuzz::corpus;
use breakwater_fuzz::runner::{self, Options};
use breakwater_fuzz::targets::TARGETS;

/// Seed inputs each target must have at least.
const MIN_SEEDS: usize = 5;
/// Executions of the short run, per target.
const SHORT_RUN: u64 = 300;

#[test]
fn every_corpus_input_passes_its_target() {
    let mut failures = Vec::new();
    for target in TARGETS {
        let files = corpus::load(&corpus::default_corpus(), target.name).expect("the corpus reads");
        assert!(
            files.len() >= MIN_SEEDS,
            "{}: {} seed inputs in fuzz/corpus/{}/, at least {MIN_SEEDS} expected",
            target.name,
            files.len(),
            target.name
        );
        for (path, bytes) in files {
            if let Err(failure) = runner::execute(target, &bytes) {
                failures.push(format!(
                    "{} ({}): {}",
                    path.display(),
                    failure.kind(),
                    failure.message()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "corpus inputs that fail:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_corpus_directory_is_a_target() {
    let dir = corpus::default_corpus();
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus exists") {
        let name = entry.expect("an entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            breakwater_fuzz::targets::find(&name).is_some(),
            "fuzz/corpus/{name} names no target"
        );
    }
}

#[test]
fn a_short_seeded_run_of_each_target_finds_nothing() {
    let scratch =
        std::env::temp_dir().join(format!("breakwater-fuzz-short-{}", std::process::id()));
    let opts = Options {
        duration: Duration::from_secs(120),
        max_execs: Some(SHORT_RUN),
        seed: 0x5eed,
        corpus: corpus::default_corpus(),
        artifacts: scratch.clone(),
        timeout: Duration::from_secs(60),
        progress: None,
    };
    for target in TARGETS {
        let report = runner::fuzz(target, &opts, &mut std::io::sink()).expect("the corpus reads");
        if let Some(crash) = report.crash {
            panic!(
                "{} ({}): {}\ninput: {:?}",
                target.name,
                crash.failure.kind(),
                crash.failure.message(),
                String::from_utf8_lossy(&crash.shrunk)
            );
        }
        assert!(
            report.execs >= SHORT_RUN,
            "{}: {} executions",
            target.name,
            report.execs
        );
        assert!(
            report.outcomes > 1,
            "{}: every input did the same",
            target.name
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
