//! The Prometheus text exposition format (version 0.0.4) of an [`Overview`]: counters and
//! histograms from the summed [`Metrics`](super::Metrics), gauges from the controls' state.

use super::Histogram;
use crate::breaker::Phase;
use crate::control::Overview;
use std::fmt::Write;

/// The `Content-Type` of [`exposition`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `overview` as a Prometheus scrape answer.
pub fn exposition(overview: &Overview) -> String {
    let mut out = Out(String::new());
    let metrics = &overview.metrics;

    out.family(
        "breakwater_requests_total",
        "counter",
        "Answers by route prefix, status and cache outcome.",
    );
    for (key, n) in &metrics.requests {
        let status = key.status.to_string();
        out.sample(
            "breakwater_requests_total",
            &[
                ("route", &key.route),
                ("status", &status),
                ("cache", &key.cache),
            ],
            n,
        );
    }

    out.family(
        "breakwater_cache_hits_total",
        "counter",
        "Answers served from each cache tier.",
    );
    for (tier, n) in metrics.hits_by_tier() {
        out.sample("breakwater_cache_hits_total", &[("tier", tier)], n);
    }

    out.family(
        "breakwater_refusals_total",
        "counter",
        "Requests the edge turned away, by reason.",
    );
    for (reason, n) in &metrics.refusals {
        out.sample("breakwater_refusals_total", &[("reason", reason)], n);
    }

    let durable = "breakwater_durable_object_call_duration_seconds";
    out.family(
        durable,
        "histogram",
        "Durable Object calls by binding and command.",
    );
    for (key, h) in &metrics.durable_objects {
        out.histogram(
            durable,
            &[("binding", &key.binding), ("command", &key.command)],
            h,
        );
    }

    let origin = "breakwater_origin_request_duration_seconds";
    out.family(
        origin,
        "histogram",
        "Calls to each origin, answered or not.",
    );
    for (url, h) in &metrics.origins {
        out.histogram(origin, &[("origin", url)], h);
    }

    out.family(
        "breakwater_admission_fraction",
        "gauge",
        "Share of traffic admitted: computed from the SLO burn rate, and enforced (1 in shadow mode).",
    );
    for (kind, value) in [
        ("computed", overview.fraction),
        ("enforced", overview.effective),
    ] {
        out.sample("breakwater_admission_fraction", &[("kind", kind)], value);
    }

    out.family(
        "breakwater_slo_burn_rate",
        "gauge",
        "Error budget burn rate per SLO window (absent: too few requests to tell).",
    );
    for (window, rate) in [("short", overview.burn_short), ("long", overview.burn_long)] {
        if let Some(rate) = rate {
            out.sample("breakwater_slo_burn_rate", &[("window", window)], rate);
        }
    }

    out.family(
        "breakwater_breaker_state",
        "gauge",
        "Each origin's circuit breaker: 1 for its current state.",
    );
    for (url, view) in &overview.breakers {
        for phase in [Phase::Closed, Phase::Open, Phase::HalfOpen] {
            let on = u8::from(view.phase == phase);
            out.sample(
                "breakwater_breaker_state",
                &[("origin", url), ("state", phase.as_str())],
                on,
            );
        }
    }

    out.family(
        "breakwater_origin_healthy",
        "gauge",
        "Active health checks: 1 while an origin is healthy.",
    );
    for (url, record) in &overview.health {
        let healthy = u8::from(record.healthy);
        out.sample("breakwater_origin_healthy", &[("origin", url)], healthy);
    }

    out.family(
        "breakwater_metrics_start_time_seconds",
        "gauge",
        "When the counters started (they restart with the CONTROL object).",
    );
    out.sample(
        "breakwater_metrics_start_time_seconds",
        &[],
        Seconds(overview.since_ms),
    );
    out.0
}

/// Milliseconds written as seconds, without floating point.
struct Seconds(u64);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.0, " {value}");
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        for (le, n) in h.cumulative() {
            let _ = write!(self.0, "{name}_bucket");
            self.labels(labels, Some(le));
            let _ = writeln!(self.0, " {n}");
        }
        let _ = write!(self.0, "{name}_sum");
        self.labels(labels, None);
        let _ = writeln!(self.0, " {}", Seconds(h.sum_ms));
        let _ = write!(self.0, "{name}_count");
        self.labels(labels, None);
        let _ = writeln!(self.0, " {}", h.count());
    }

    /// `{name="value",…}`, with `le` last if given; nothing for no labels.
    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        let le = le.map(|le| ("le", le));
        let mut all = labels.iter().copied().chain(le).peekable();
        if all.peek().is_none() {
            return;
        }
        self.0.push('{');
        for (i, (name, value)) in all.enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            self.0.push_str(name);
            self.0.push_str("=\"");
            escape(&mut self.0, value);
            self.0.push('"');
        }
        self.0.push('}');
    }
}

/// A label value as the format requires: backslash, double quote and line feed escaped.
fn escape(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}
