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
    let mut out = Out {
        text: String::new(),
        name: "",
    };
    let metrics = &overview.metrics;

    out.family(
        "breakwater_requests_total",
        "counter",
        "Answers by route prefix, status and cache outcome.",
    );
    for (key, n) in &metrics.requests {
        let status = key.status.to_string();
        out.sample(
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
        out.sample(&[("tier", tier)], n);
    }

    out.family(
        "breakwater_refusals_total",
        "counter",
        "Requests the edge turned away, by reason.",
    );
    for (reason, n) in &metrics.refusals {
        out.sample(&[("reason", reason)], n);
    }

    out.family(
        "breakwater_durable_object_call_duration_seconds",
        "histogram",
        "Durable Object calls by binding and command.",
    );
    for (key, h) in &metrics.durable_objects {
        out.histogram(&[("binding", &key.binding), ("command", &key.command)], h);
    }

    out.family(
        "breakwater_origin_request_duration_seconds",
        "histogram",
        "Calls to each origin, answered or not.",
    );
    for (url, h) in &metrics.origins {
        out.histogram(&[("origin", url)], h);
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
        out.sample(&[("kind", kind)], value);
    }

    out.family(
        "breakwater_slo_burn_rate",
        "gauge",
        "Error budget burn rate per SLO window (absent: too few requests to tell).",
    );
    for (window, rate) in [("short", overview.burn_short), ("long", overview.burn_long)] {
        if let Some(rate) = rate {
            out.sample(&[("window", window)], rate);
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
            out.sample(&[("origin", url), ("state", phase.as_str())], on);
        }
    }

    out.family(
        "breakwater_origin_healthy",
        "gauge",
        "Active health checks: 1 while an origin is healthy.",
    );
    for (url, record) in &overview.health {
        let healthy = u8::from(record.healthy);
        out.sample(&[("origin", url)], healthy);
    }

    out.family(
        "breakwater_metrics_start_time_seconds",
        "gauge",
        "When the counters started (they restart with the CONTROL object).",
    );
    out.sample(&[], Seconds(overview.since_ms));
    out.text
}

/// Milliseconds written as seconds, without floating point.
struct Seconds(u64);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

/// The text so far, and the family its next samples belong to.
struct Out {
    text: String,
    name: &'static str,
}

impl Out {
    /// Starts the family `name`: its `HELP` and `TYPE`, then the samples that follow.
    fn family(&mut self, name: &'static str, kind: &str, help: &str) {
        self.name = name;
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.series("", labels, None);
        let _ = writeln!(self.text, " {value}");
    }

    fn histogram(&mut self, labels: &[(&str, &str)], h: &Histogram) {
        for (le, n) in h.cumulative() {
            self.series("_bucket", labels, Some(le));
            let _ = writeln!(self.text, " {n}");
        }
        self.series("_sum", labels, None);
        let _ = writeln!(self.text, " {}", Seconds(h.sum_ms));
        self.series("_count", labels, None);
        let _ = writeln!(self.text, " {}", h.count());
    }

    /// The family's name with `suffix`, then `{name="value",…}` with `le` last if given (nothing
    /// for no labels).
    fn series(&mut self, suffix: &str, labels: &[(&str, &str)], le: Option<&str>) {
        self.text.push_str(self.name);
        self.text.push_str(suffix);
        let le = le.map(|le| ("le", le));
        let mut all = labels.iter().copied().chain(le).peekable();
        if all.peek().is_none() {
            return;
        }
        self.text.push('{');
        for (i, (name, value)) in all.enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            self.text.push_str(name);
            self.text.push_str("=\"");
            escape(&mut self.text, value);
            self.text.push('"');
        }
        self.text.push('}');
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
