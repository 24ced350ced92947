//! The surge's part of the report: the configuration, a table per phase (and per route), and a
//! timeline that shows the controls react and let go.

use std::time::Duration;

use super::{Measured, PLAN, Plan, Route, goals::Verdicts};
use crate::answer::Answer;
use crate::report::{Section, Table, ms, ratio, secs};
use crate::stats::Summary;

/// Timeline bucket.
const BUCKET: Duration = Duration::from_secs(1);
/// Characters of the timeline's bar at the busiest bucket's offered rate.
const BAR_WIDTH: f64 = 40.0;
/// The vars shown in the report (not `API_KEYS`, and the cache policy is said in words).
const SHOWN: [&str; 5] = [
    "ADMISSION",
    "SLO",
    "BREAKER",
    "CONTROL_REPORT_MS",
    "ORIGIN_TIMEOUT_MS",
];
/// The answer columns of both tables.
const COUNTED: [Answer; 5] = [
    Answer::OriginError,
    Answer::RateLimited,
    Answer::Shed,
    Answer::CircuitOpen,
    Answer::EdgeError,
];

pub fn section(plan: &Plan, vars: &[(&str, String)], m: &Measured, verdicts: &Verdicts) -> Section {
    let (limit, burst) = plan.quota();
    let config: Vec<String> = vars
        .iter()
        .filter(|(name, _)| SHOWN.contains(name))
        .map(|(name, value)| format!("`{name}={value}`"))
        .collect();
    let rates: Vec<String> = plan
        .phases()
        .iter()
        .map(|(name, x)| format!("{name} {:.0}/s", plan.rate * x))
        .collect();
    Section {
        plots: Vec::new(),
        title: format!(
            "Overload: {} against a slowed origin, CONCURRENCY {}",
            plan.profile.name(),
            plan.setting()
        ),
        intro: vec![
            format!(
                "Open loop, Poisson arrivals, {} s per phase ({}), seed {}, one fresh edge for \
                 all three phases: {} API keys on plan `{PLAN}`, each request on a random key; \
                 half on the high-priority route `/api/products/{{id}}`, half on the \
                 low-priority `/api/products?page=k`, both uncached (`CACHE_POLICY` bypass). \
                 Slowed origin: {} ms added service time, {} at once, FIFO queue (capacity about \
                 {:.0} requests/s){}. Quota per key and route: {limit}/s, burst {burst}.",
                plan.phase.as_secs(),
                rates.join(", "),
                plan.seed,
                plan.principals,
                plan.throttle.delay.as_millis(),
                plan.throttle.concurrency,
                plan.throttle.capacity(),
                brownout(plan),
            ),
            config.join(" "),
            format!(
                "Served = 2xx/404 answers; origin 5xx = admitted requests that failed (the \
                 edge's `504 origin-timeout`/`502`, or the origin's own 5xx); edge 5xx = the \
                 edge failing on its own (internal, misconfigured, limiter unavailable); other = \
                 other 4xx and no answer. Latencies from the scheduled send time, served \
                 requests only. Through the timed phases the slowed origin received {} GETs, \
                 answered {} and dropped {} the edge had given up on; the load generator's \
                 latest send was {} ms late.",
                m.origin.received,
                m.origin.served,
                m.origin.abandoned,
                ms(Some(m.lag)),
            ),
        ],
        tables: vec![
            (String::new(), phase_table(plan, m)),
            ("Goals".into(), verdicts.table()),
            (
                format!(
                    "Timeline (requests per second, in {} s buckets of scheduled send time; the \
                     bar: █ served, × admitted and failed, ░ refused (429, 503), · other)",
                    BUCKET.as_secs()
                ),
                timeline(plan, m),
            ),
        ],
    }
}

/// What the brownout does to the origin, if it is one.
fn brownout(plan: &Plan) -> String {
    let middle = plan.middle();
    if middle == plan.throttle {
        return String::new();
    }
    format!(
        "; in the brownout phase {} ms (capacity about {:.0} requests/s)",
        middle.delay.as_millis(),
        middle.capacity()
    )
}

fn phase_table(plan: &Plan, m: &Measured) -> Table {
    let mut table = Table::new(
        ["phase", "offered", "served", "served/s"]
            .into_iter()
            .chain(COUNTED.iter().map(Answer::as_str))
            .chain(["other", "p50 ms", "p99 ms", "p99 / unloaded p99"]),
    );
    let pick = |phase, route| m.summary(phase, route, plan.phase);
    let direct = format!("unloaded, origin direct ({:.0}/s, no edge)", plan.rate);
    table.row(phase_row(direct, &m.direct, None, plan.phase));
    for (phase, (name, multiple)) in plan.phases().into_iter().enumerate() {
        for route in [None, Some(Route::High), Some(Route::Low)] {
            let label = match route {
                None => format!("{name} ({:.0}/s)", plan.rate * multiple),
                Some(r) => format!("· {}", r.as_str()),
            };
            let unloaded = pick(0, route);
            table.row(phase_row(
                label,
                &pick(phase, route),
                Some(&unloaded),
                plan.phase,
            ));
        }
    }
    table
}

fn phase_row(
    label: String,
    s: &Summary,
    unloaded: Option<&Summary>,
    phase: Duration,
) -> Vec<String> {
    let served = s.count(Answer::Served);
    let mut row = vec![
        label,
        s.requests.to_string(),
        served.to_string(),
        format!("{:.0}", served as f64 / secs(phase)),
    ];
    row.extend(COUNTED.iter().map(|&a| s.count(a).to_string()));
    row.extend([
        (s.count(Answer::Rejected) + s.count(Answer::Unanswered)).to_string(),
        ms(s.p(50.0)),
        ms(s.p(99.0)),
        unloaded.map_or("-".into(), |u| {
            ratio(s.p(99.0).map(secs), u.p(99.0).map(secs))
        }),
    ]);
    row
}

fn timeline(plan: &Plan, m: &Measured) -> Table {
    let phases = plan.phases();
    let total = plan.phase * phases.len() as u32;
    let mut table = Table::new(
        ["t s", "phase", "offered", "served"]
            .into_iter()
            .chain(COUNTED.iter().map(Answer::as_str))
            .chain(["served p99 ms", "plot"]),
    )
    .left(1)
    .left(COUNTED.len() + 6);
    let per_second = |n: u64| format!("{:.0}", n as f64 / secs(BUCKET));
    let buckets: Vec<(Duration, Summary)> = (0..)
        .map(|i| BUCKET * i)
        .take_while(|start| *start < total)
        .map(|start| {
            let in_bucket = m
                .samples
                .iter()
                .zip(m.meta)
                .filter(|(_, meta)| (start..start + BUCKET).contains(&meta.at));
            (start, Summary::of(in_bucket.map(|(s, _)| s), BUCKET))
        })
        .collect();
    let busiest = buckets.iter().map(|(_, s)| s.requests).max().unwrap_or(0);
    for (start, s) in &buckets {
        let phase = (start.as_secs() / plan.phase.as_secs().max(1)) as usize;
        let mut row = vec![
            format!("{}–{}", start.as_secs(), (*start + BUCKET).as_secs()),
            phases.get(phase).map_or("-", |(name, _)| *name).to_owned(),
            per_second(s.requests as u64),
            per_second(s.count(Answer::Served)),
        ];
        row.extend(COUNTED.iter().map(|&a| per_second(s.count(a))));
        row.push(ms(s.p(99.0)));
        row.push(bar(s, busiest));
        table.row(row);
    }
    table
}

/// One bucket's answers as a bar scaled to `busiest` requests: served, admitted and failed,
/// refused, other.
fn bar(s: &Summary, busiest: usize) -> String {
    let refused =
        s.count(Answer::RateLimited) + s.count(Answer::Shed) + s.count(Answer::CircuitOpen);
    let parts = [
        ('█', s.count(Answer::Served)),
        ('×', s.count(Answer::OriginError)),
        ('░', refused),
    ];
    let counted: u64 = parts.iter().map(|(_, n)| n).sum();
    let other = (s.requests as u64).saturating_sub(counted);
    let scale = BAR_WIDTH / busiest.max(1) as f64;
    parts
        .into_iter()
        .chain([('·', other)])
        .map(|(c, n)| c.to_string().repeat((n as f64 * scale).round() as usize))
        .collect()
}
