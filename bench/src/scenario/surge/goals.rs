//! The goals an overload run is held to, each measured in the same run, as a table with a
//! verdict per goal.

use std::time::Duration;

use super::{Measured, Plan, Profile, Route};
use crate::answer::Answer;
use crate::report::{Table, secs};
use crate::stats::Summary;

/// Refusals may go on this long after the surge or brownout ends.
const LET_GO: Duration = Duration::from_secs(2);

/// One goal: what it is, its target, what was measured, and whether that meets it.
struct Goal {
    name: &'static str,
    target: String,
    measured: String,
    met: bool,
}

/// The goal table of one run.
pub fn table(plan: &Plan, m: &Measured) -> Table {
    let mut table = Table::new(["goal", "target", "measured", "verdict"])
        .left(1)
        .left(2);
    for goal in check(plan, m) {
        let verdict = if goal.met { "met" } else { "missed" };
        table.row(vec![
            goal.name.to_owned(),
            goal.target,
            goal.measured,
            verdict.to_owned(),
        ]);
    }
    table
}

fn check(plan: &Plan, m: &Measured) -> Vec<Goal> {
    let phase = |index: usize, route: Option<Route>| {
        let samples =
            m.samples.iter().zip(m.meta).filter(move |(_, meta)| {
                meta.phase == index && route.is_none_or(|r| r == meta.route)
            });
        Summary::of(samples.map(|(s, _)| s), plan.phase)
    };
    let (unloaded, middle, high) = (phase(0, None), phase(1, None), phase(1, Some(Route::High)));
    let served = middle.count(Answer::Served) as f64;
    let failed = middle.count(Answer::OriginError) as f64;
    let failure = failed / (served + failed).max(1.0);

    let brownout = matches!(plan.profile, Profile::Brownout { .. });
    let capacity = plan.middle().capacity();
    let goodput = served / secs(plan.phase) / capacity;
    let goodput_goal = if brownout { 0.8 } else { 0.9 };

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
            target: "≤ 0.1%".into(),
            measured: format!("{:.2}% ({failed} of {})", failure * 100.0, served + failed),
            met: failure <= 0.001,
        },
        Goal {
            name: "goodput / the origin's capacity",
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
            target: "≤ 2×".into(),
            measured: p99.map_or("-".into(), |r| format!("{r:.2}×")),
            met: p99.is_some_and(|r| r <= 2.0),
        },
        Goal {
            name: "last 503 refusal after the phase ends",
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
            target: "≥ 99%".into(),
            measured: format!("{:.1}% of {high_eligible}", high_served * 100.0),
            met: high_served >= 0.99,
        });
    }
    goals
}
