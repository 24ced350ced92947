//! The goals an overload run is held to, each measured in the same run, as a table with a
//! verdict per goal, and a summary of every run's verdicts.

use std::time::Duration;

use super::{Measured, Plan, Route};
use crate::answer::Answer;
use crate::report::{Section, Table, secs};

/// Admitted requests that may fail, as a share of those admitted.
const MAX_FAILED: f64 = 0.001;
/// Goodput as a share of the middle phase's capacity: in a surge, in a brownout.
const MIN_GOODPUT: (f64, f64) = (0.9, 0.8);
/// Served p99 as a multiple of the unloaded p99.
const MAX_P99: f64 = 2.0;
/// High-priority requests within their keys' quotas that must be served (surges only).
const MIN_HIGH_SERVED: f64 = 0.99;
/// Refusals may go on this long after the surge or brownout ends.
const LET_GO: Duration = Duration::from_secs(2);

/// One goal: what it is (and its summary column), its target, what was measured, and whether
/// that meets it.
struct Goal {
    name: &'static str,
    column: &'static str,
    target: String,
    measured: String,
    met: bool,
}

impl Goal {
    fn verdict(&self) -> &'static str {
        if self.met { "met" } else { "missed" }
    }
}

/// The summary's columns, in [`check`]'s order.
const COLUMNS: [&str; 5] = ["failed", "goodput", "p99", "refusals end", "high served"];

/// One run's goals.
pub struct Verdicts {
    /// The profile and the `CONCURRENCY` setting.
    run: String,
    goals: Vec<Goal>,
}

impl Verdicts {
    pub(super) fn of(plan: &Plan, m: &Measured) -> Self {
        Self {
            run: format!("{}, {}", plan.profile.name(), plan.setting()),
            goals: check(plan, m),
        }
    }

    /// The goal table of this run.
    pub(super) fn table(&self) -> Table {
        let mut table = Table::new(["goal", "target", "measured", "verdict"])
            .left(1)
            .left(2);
        for goal in &self.goals {
            table.row(vec![
                goal.name.to_owned(),
                goal.target.clone(),
                goal.measured.clone(),
                goal.verdict().to_owned(),
            ]);
        }
        table
    }
}

/// Every run's goals side by side: measured, and ✓ or ✗.
pub fn summary(runs: &[Verdicts]) -> Section {
    let mut table = Table::new(["run"].into_iter().chain(COLUMNS));
    for verdicts in runs {
        let cells = COLUMNS.iter().map(|&column| {
            verdicts
                .goals
                .iter()
                .find(|g| g.column == column)
                .map_or("-".into(), |g| {
                    format!("{} {}", g.measured, if g.met { "✓" } else { "✗" })
                })
        });
        table.row([verdicts.run.clone()].into_iter().chain(cells).collect());
    }
    Section {
        plots: Vec::new(),
        title: "Overload goals, every run".into(),
        intro: vec![format!(
            "Each overload run above against its goals (✓ met, ✗ missed): admitted \
                 requests that failed ≤ {}%; goodput ≥ {:.0}% of the origin's capacity ({:.0}% \
                 in a brownout); served p99 ≤ {MAX_P99}× the unloaded p99 (in a brownout, the \
                 slower origin's own); the last 503 refusal ≤ {} s after the phase; high \
                 priority served ≥ {:.0}% of what its keys' quotas admit (surges only).",
            MAX_FAILED * 100.0,
            MIN_GOODPUT.0 * 100.0,
            MIN_GOODPUT.1 * 100.0,
            LET_GO.as_secs(),
            MIN_HIGH_SERVED * 100.0,
        )],
        tables: vec![(String::new(), table)],
    }
}

fn check(plan: &Plan, m: &Measured) -> Vec<Goal> {
    let phase = |index, route| m.summary(index, route, plan.phase);
    let (unloaded, middle, high) = (phase(0, None), phase(1, None), phase(1, Some(Route::High)));
    let served = middle.count(Answer::Served) as f64;
    let failed = middle.count(Answer::OriginError) as f64;
    let failure = failed / (served + failed).max(1.0);

    let brownout = plan.profile.is_brownout();
    let capacity = plan.middle().capacity();
    let goodput = served / secs(plan.phase) / capacity;
    let goodput_goal = if brownout {
        MIN_GOODPUT.1
    } else {
        MIN_GOODPUT.0
    };

    // A brownout is held to its own unloaded latency: the slower origin, directly.
    let reference = match &m.direct_middle {
        Some(direct) => direct.p(99.0),
        None => unloaded.p(99.0),
    };
    let p99 = middle
        .p(99.0)
        .zip(reference)
        .map(|(p, r)| secs(p) / secs(r));

    let high_eligible = high.requests as u64 - high.count(Answer::RateLimited);
    let high_served = high.count(Answer::Served) as f64 / high_eligible.max(1) as f64;

    let after_start = plan.phase * 2;
    let last_refusal = m
        .samples
        .iter()
        .zip(m.meta)
        .filter(|(s, meta)| {
            meta.phase == 2 && matches!(s.answer, Answer::Shed | Answer::CircuitOpen)
        })
        .map(|(_, meta)| meta.at.saturating_sub(after_start))
        .max();

    let mut goals = vec![
        Goal {
            name: "admitted requests that failed",
            column: "failed",
            target: format!("≤ {}%", MAX_FAILED * 100.0),
            measured: format!("{:.2}% ({failed} of {})", failure * 100.0, served + failed),
            met: failure <= MAX_FAILED,
        },
        Goal {
            name: "goodput / the origin's capacity",
            column: "goodput",
            target: format!("≥ {:.0}%", goodput_goal * 100.0),
            measured: format!("{:.0}% of {capacity:.0}/s", goodput * 100.0),
            met: goodput >= goodput_goal,
        },
        Goal {
            name: if brownout {
                "served p99 / the slower origin's own unloaded p99"
            } else {
                "served p99 / unloaded p99"
            },
            column: "p99",
            target: format!("≤ {MAX_P99}×"),
            measured: p99.map_or("-".into(), |r| format!("{r:.2}×")),
            met: p99.is_some_and(|r| r <= MAX_P99),
        },
        Goal {
            name: "last 503 refusal after the phase ends",
            column: "refusals end",
            target: format!("≤ {} s", LET_GO.as_secs()),
            measured: last_refusal.map_or("none".into(), |d| format!("{:.1} s", secs(d))),
            met: last_refusal.is_none_or(|d| d <= LET_GO),
        },
    ];
    // In a brownout the high-priority route alone exceeds the slower origin's capacity: there
    // is no share of it to serve in full.
    if !brownout {
        goals.push(Goal {
            name: "high priority served (of those within their key's quota)",
            column: "high served",
            target: format!("≥ {:.0}%", MIN_HIGH_SERVED * 100.0),
            measured: format!("{:.1}% of {high_eligible}", high_served * 100.0),
            met: high_served >= MIN_HIGH_SERVED,
        });
    }
    goals
}

#[cfg(test)]
mod tests {
    use super::super::tests::plan;
    use super::super::{Measured, Meta};
    use super::*;
    use crate::stats::{Sample, Summary};
    use crate::throttle::Counts;

    fn sample(answer: Answer, ms: u64) -> Sample {
        Sample {
            latency: Duration::from_millis(ms),
            answer,
            status: None,
            cache: Default::default(),
            read_from: None,
        }
    }

    /// A 3× surge on an origin of 8 × 30 ms (267/s) over 10 s phases: the unloaded phase served
    /// at 50 ms; the surge served 2,410 (90.4 %) at 90 ms, with one failure and two high
    /// requests refused; a refusal 3 s into the after phase.
    #[test]
    fn each_goal_is_measured_from_its_phase() {
        let plan = plan();
        let mut rows: Vec<(Sample, Meta)> = Vec::new();
        let mut push = |phase, route, at_ms, answer, ms| {
            let meta = Meta {
                phase,
                route,
                at: Duration::from_millis(at_ms),
            };
            rows.push((sample(answer, ms), meta));
        };
        for i in 0..100 {
            push(0, Route::High, i, Answer::Served, 50);
        }
        for i in 0..2_410 {
            push(1, Route::High, 10_000 + i, Answer::Served, 90);
        }
        push(1, Route::High, 15_000, Answer::OriginError, 1_000);
        push(1, Route::High, 15_001, Answer::Shed, 1);
        push(1, Route::High, 15_002, Answer::Shed, 1);
        push(1, Route::Low, 15_003, Answer::RateLimited, 1);
        push(2, Route::Low, 23_000, Answer::Shed, 1);
        let (samples, meta): (Vec<Sample>, Vec<Meta>) = rows.into_iter().unzip();
        let m = Measured {
            direct: Summary::default(),
            direct_middle: None,
            meta: &meta,
            samples: &samples,
            lag: Duration::ZERO,
            origin: Counts::default(),
        };
        let verdicts = Verdicts::of(&plan, &m);
        let got: Vec<(&str, &str, bool)> = verdicts
            .goals
            .iter()
            .map(|g| (g.column, g.measured.as_str(), g.met))
            .collect();
        assert_eq!(
            got,
            [
                ("failed", "0.04% (1 of 2411)", true),
                ("goodput", "90% of 267/s", true),
                ("p99", "1.80×", true),
                ("refusals end", "3.0 s", false),
                ("high served", "99.9% of 2413", true),
            ]
        );
        let summary = summary(&[verdicts]);
        assert_eq!(summary.tables.len(), 1);
    }
}
