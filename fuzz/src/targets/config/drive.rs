//! Accepted values driven through the code that uses them, at the extremes they allow: a full
//! bucket, the end of time, a breaker tripped and probed, an SLO in an outage.

use breakwater_core::breaker::{Breaker, BreakerConfig, Counts, Permit};
use breakwater_core::headers::is_field_value;
use breakwater_core::ratelimit::{
    AdmissionPolicy, Bucket, MAX_PERIOD_MS, Verdict, check, policy_header, ratelimit_header,
};
use breakwater_core::shedding::{Controller, SloConfig};

use crate::targets::{Outcome, ensure};

pub(super) fn check_admission(policy: &AdmissionPolicy, out: &mut Outcome) -> Result<(), String> {
    let rendered = policy.to_value();
    let reparsed = AdmissionPolicy::from_value(rendered.clone());
    ensure!(
        reparsed.as_ref() == Ok(policy),
        "ADMISSION: the policy's rendering parses back to itself",
        "{rendered} → {reparsed:?}"
    );
    for route in &policy.routes {
        out.note(route.priority.as_str());
        let plans = policy.plans.values().filter(|_| route.plan_quotas);
        for quotas in std::iter::once(&route.quotas).chain(plans) {
            ensure!(quotas.len() <= 8, "ADMISSION: at most 8 quotas");
            for q in quotas {
                ensure!(
                    q.limit >= 1 && q.burst >= 1 && (1..=MAX_PERIOD_MS).contains(&q.period_ms),
                    "ADMISSION: a quota's limit, burst and period within bounds",
                    "{q:?}"
                );
                ensure!(
                    route.cost >= 1 && route.cost <= q.burst,
                    "ADMISSION: the cost fits every burst"
                );
            }
            // A full bucket admits one request of the route's cost, at any instant.
            for now in [0, 1, 1_700_000_000_000, u64::MAX - MAX_PERIOD_MS, u64::MAX] {
                let mut buckets = vec![Bucket::default(); quotas.len()];
                let outcome = check(quotas, &mut buckets, now, route.cost);
                ensure!(
                    outcome.verdict == Verdict::Allow,
                    "ADMISSION: a full bucket admits a request of the route's cost",
                    "{:?} at {now}",
                    outcome.verdict
                );
                ensure!(
                    is_field_value(&policy_header(quotas))
                        && is_field_value(&ratelimit_header(&outcome)),
                    "ADMISSION: the RateLimit fields are valid field values"
                );
                let again = check(quotas, &mut buckets, now, route.cost);
                if let Verdict::Deny { retry_after_ms } = again.verdict {
                    let longest = quotas.iter().map(|q| q.period_ms).max().unwrap_or(0);
                    ensure!(
                        retry_after_ms >= 1
                            && retry_after_ms <= longest.saturating_mul(u64::from(route.cost)),
                        "ADMISSION: a denial waits at most cost × period",
                        "{retry_after_ms} ms"
                    );
                }
            }
        }
    }
    Ok(())
}

/// Drives the shedding controller with this SLO through outages and recoveries at instants up
/// to the end of time: the admission fraction stays in `[min_fraction, 1]`.
pub(super) fn check_slo(slo: &SloConfig) -> Result<(), String> {
    let mut controller = Controller::new();
    let window = slo.long_window_ms;
    let steps = [
        (0, true),
        (1, true),
        (window, true),
        (window.saturating_mul(2), false),
        (u64::MAX / 2, true),
        (u64::MAX, false),
    ];
    for (now, outage) in steps {
        let requests = u64::from(slo.min_requests).saturating_mul(4);
        controller.report(slo, now, requests, if outage { requests } else { 0 });
        let fraction = controller.adjust(slo, now);
        ensure!(
            fraction >= slo.min_fraction && fraction <= 1.0,
            "SLO: the admission fraction stays within [min_fraction, 1]",
            "{fraction} at {now}"
        );
    }
    Ok(())
}

/// Drives a breaker with this config to its extremes: tripping, probing and failing at instants
/// up to the end of time.
pub(super) fn check_breaker(config: &BreakerConfig, out: &mut Outcome) -> Result<(), String> {
    let mut breaker = Breaker::new();
    let calls = config.min_calls.max(1);
    let longest = config.open_ms.max(config.probe_timeout_ms);
    let mut id = 0;
    for now in [0, 1, config.open_ms, u64::MAX - 1, u64::MAX] {
        breaker.record(
            config,
            now,
            Counts {
                calls,
                failures: calls,
                slow: calls,
            },
        );
        match breaker.acquire(config, now) {
            Permit::Rejected { retry_after_ms } => {
                out.note("rejected");
                ensure!(
                    retry_after_ms <= longest,
                    "BREAKER: a refusal waits at most open_ms or probe_timeout_ms",
                    "{retry_after_ms} ms at {now}"
                );
            }
            Permit::Probe { id: probe } => {
                out.note("probe");
                id = probe;
            }
            Permit::Allowed => out.note("allowed"),
        }
        breaker.report_probe(config, now, id, now % 2 == 0, config.slow_call_ms);
    }
    Ok(())
}
