//! `Server-Timing` (W3C): one entry per pipeline stage, so a browser's devtools show where the
//! time went.

/// Accumulates stage durations in the order the stages ran.
#[derive(Debug, Default, Clone)]
pub struct ServerTiming {
    entries: Vec<(&'static str, f64)>,
}

impl ServerTiming {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `stage` took `millis` milliseconds. Negative values (a clock that stepped
    /// back) are recorded as zero.
    pub fn record(&mut self, stage: &'static str, millis: f64) {
        self.entries.push((stage, millis.max(0.0)));
    }

    /// The header value, e.g. `intake;dur=0.1, origin;dur=12`.
    pub fn header_value(&self) -> String {
        self.entries
            .iter()
            .map(|(name, dur)| format!("{name};dur={}", round3(*dur)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_entries_in_order() {
        let mut t = ServerTiming::new();
        t.record("intake", 0.25);
        t.record("origin", 12.0);
        t.record("finish", -3.0);
        assert_eq!(
            t.header_value(),
            "intake;dur=0.25, origin;dur=12, finish;dur=0"
        );
    }

    #[test]
    fn empty_is_empty() {
        assert_eq!(ServerTiming::new().header_value(), "");
    }
}
