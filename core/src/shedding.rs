//! Load shedding steered by the SLO burn rate: the multi-window burn-rate alert of the Google SRE
//! workbook ("Alerting on SLOs"), used as a controller instead of a pager.
//!
//! Isolates report how many requests they let through and how many of those failed because of
//! the origin (a 5xx it produced, or a timeout or refused connection on the way to it). A Durable
//! Object keeps one [`Controller`]: it buckets the reports in time, reads the burn rate
//! (error ratio / error budget) over a short and a long window, and every adjust interval cuts,
//! restores or holds the admission fraction. Isolates admit each request with [`admit`], low
//! priorities first to go.
//!
//! Refusals the edge makes itself (the `429` of a rate limit, the `503` of shedding) are neither
//! requests nor errors. Counted as errors they would feed back: shedding would raise the error
//! ratio, which sheds more, down to the floor, and the fraction could never recover because the
//! refusals keep coming. Counted as successes they would dilute the ratio, and the controller would
//! restore while the origin is still failing.
//!
//! The controller is AIMD, as TCP congestion control is: cut multiplicatively (fast, in proportion
//! to how much is admitted), restore additively. Additive restore probes at an even pace from the
//! floor (19 intervals from 0.05 to 1 at the default 0.05) and is gentlest near 1, where the last
//! overload began; a multiplicative restore would crawl at the floor and rush at the top.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Buckets the long window is divided into: memory stays fixed whatever the traffic, and each
/// window is resolved to 1/120 of the long window (5 s at the default 10 minutes).
pub const BUCKETS: usize = 120;

/// Priority ranks: 0 is critical, 3 is low. Ranks above 3 are treated as 3.
pub const RANKS: u8 = 4;

/// The SLO and how hard the controller steers by it. In JSON, missing fields take their defaults
/// and unknown ones are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SloConfig {
    /// Target success ratio: at 0.999, one request in a thousand may fail.
    pub slo: f64,
    /// The window that reacts: cuts stop soon after the errors do.
    pub short_window_ms: u64,
    /// The window that confirms: a blip too short to matter cannot cut, and restoring waits until
    /// the incident has left it.
    pub long_window_ms: u64,
    /// Burn rate both windows must exceed for a cut; 14.4 spends 2% of a 30-day budget in an hour.
    pub burn_threshold: f64,
    /// Burn rate every window with a signal must be under for a restore; in between, hold.
    pub recover_threshold: f64,
    /// Share of the admission fraction cut per interval.
    pub cut: f64,
    /// Admission fraction added back per interval.
    pub restore: f64,
    /// Floor of the admission fraction: some traffic always reaches the origin, so its recovery
    /// shows in the windows.
    pub min_fraction: f64,
    /// Requests a window needs before its burn rate means anything.
    pub min_requests: u32,
    /// One step of the fraction per interval: the controller's speed.
    pub adjust_interval_ms: u64,
    /// Compute the fraction but shed nothing: the edge only reports what it would have shed.
    pub shadow: bool,
}

impl Default for SloConfig {
    fn default() -> Self {
        Self {
            slo: 0.999,
            short_window_ms: 60_000,
            long_window_ms: 600_000,
            burn_threshold: 14.4,
            recover_threshold: 2.0,
            cut: 0.10,
            restore: 0.05,
            min_fraction: 0.05,
            min_requests: 100,
            adjust_interval_ms: 1_000,
            shadow: false,
        }
    }
}

impl SloConfig {
    /// The first field out of range, named with what it must be (`"cut must be ..."`). NaN fails
    /// every check.
    pub fn validate(&self) -> Result<(), String> {
        let unit = |v: f64| v > 0.0 && v < 1.0;
        let checks = [
            ("slo", unit(self.slo), "must be strictly between 0 and 1"),
            (
                "long_window_ms",
                self.long_window_ms > 0,
                "must be positive",
            ),
            (
                "short_window_ms",
                (bucket_ms(self)..=self.long_window_ms).contains(&self.short_window_ms),
                "must be between one bucket (long_window_ms / 120) and long_window_ms",
            ),
            (
                "burn_threshold",
                self.burn_threshold > 0.0 && self.burn_threshold < 1.0 / (1.0 - self.slo),
                "must be positive and below 1 / (1 - slo), the burn rate of a total outage",
            ),
            (
                "recover_threshold",
                self.recover_threshold > 0.0 && self.recover_threshold < self.burn_threshold,
                "must be positive and below burn_threshold",
            ),
            ("cut", unit(self.cut), "must be strictly between 0 and 1"),
            (
                "restore",
                self.restore > 0.0 && self.restore <= 1.0,
                "must be in (0, 1]",
            ),
            (
                "min_fraction",
                self.min_fraction > 0.0 && self.min_fraction <= 1.0,
                "must be in (0, 1]",
            ),
            ("min_requests", self.min_requests > 0, "must be positive"),
            (
                "adjust_interval_ms",
                self.adjust_interval_ms > 0,
                "must be positive",
            ),
        ];
        match checks.into_iter().find(|(_, ok, _)| !ok) {
            Some((field, _, reason)) => Err(format!("{field} {reason}")),
            None => Ok(()),
        }
    }
}

fn bucket_ms(config: &SloConfig) -> u64 {
    config.long_window_ms.div_ceil(BUCKETS as u64).max(1)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Bucket {
    start_ms: u64,
    requests: u64,
    errors: u64,
}

/// The shedding state of one deployment: reports in time buckets and the admission fraction.
/// Serialisable so that its Durable Object can store it after every step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Controller {
    fraction: f64,
    /// Where the current adjust interval began; `None` until the first [`Controller::adjust`].
    interval_start_ms: Option<u64>,
    /// Oldest first, at most [`BUCKETS`], none older than the long window at the last report.
    buckets: VecDeque<Bucket>,
}

impl Default for Controller {
    fn default() -> Self {
        Self {
            fraction: 1.0,
            interval_start_ms: None,
            buckets: VecDeque::new(),
        }
    }
}

enum Step {
    Cut,
    Restore,
    Hold,
}

impl Controller {
    /// Admits everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// `requests` let through at `now_ms`, `errors` of them the origin's fault (see the module
    /// documentation for what counts).
    pub fn report(&mut self, config: &SloConfig, now_ms: u64, requests: u64, errors: u64) {
        let now = self.clock(config, now_ms);
        let width = bucket_ms(config);
        // Drops what an idle spell aged out, and what a clock reset left in the future.
        self.buckets
            .retain(|b| b.start_ms <= now && now - b.start_ms < config.long_window_ms);
        match self.buckets.back_mut() {
            Some(b) if now - b.start_ms < width => {
                b.requests = b.requests.saturating_add(requests);
                b.errors = b.errors.saturating_add(errors);
            }
            _ => self.buckets.push_back(Bucket {
                start_ms: now - now % width,
                requests,
                errors,
            }),
        }
        while self.buckets.len() > BUCKETS {
            self.buckets.pop_front();
        }
    }

    /// Takes one step per adjust interval elapsed since the last call and returns the fraction.
    ///
    /// Every step reads the burn rates as of `now_ms`, so catching up after a quiet spell takes
    /// at most the steps the short window vouches for (`short_window_ms / adjust_interval_ms`).
    /// A clock that stepped back restarts the interval and takes no step.
    pub fn adjust(&mut self, config: &SloConfig, now_ms: u64) -> f64 {
        let interval = config.adjust_interval_ms.max(1);
        let start = *self.interval_start_ms.get_or_insert(now_ms);
        let intervals = now_ms.saturating_sub(start) / interval;
        self.interval_start_ms = Some(if now_ms < start {
            now_ms
        } else {
            start + intervals * interval
        });
        let steps = intervals.min((config.short_window_ms / interval).max(1));
        if steps > 0 {
            let steps = i32::try_from(steps).unwrap_or(i32::MAX);
            self.fraction = match self.step(config, now_ms) {
                Step::Cut => self.fraction * (1.0 - config.cut).powi(steps),
                Step::Restore => self.fraction + config.restore * f64::from(steps),
                Step::Hold => self.fraction,
            };
        }
        // `max` first: a NaN (corrupt storage) becomes the floor.
        self.fraction = self.fraction.max(config.min_fraction).min(1.0);
        self.fraction
    }

    /// Burn rates over the short and the long window; `None` where the window holds fewer than
    /// `min_requests` requests (no signal).
    pub fn burn_rates(&self, config: &SloConfig, now_ms: u64) -> (Option<f64>, Option<f64>) {
        let now = self.clock(config, now_ms);
        let burn = |window_ms: u64| {
            let (requests, errors) = self
                .buckets
                .iter()
                .filter(|b| b.start_ms <= now && now - b.start_ms < window_ms)
                .fold((0u64, 0u64), |(r, e), b| {
                    (r.saturating_add(b.requests), e.saturating_add(b.errors))
                });
            (requests >= u64::from(config.min_requests).max(1))
                .then(|| errors.min(requests) as f64 / requests as f64 / (1.0 - config.slo))
        };
        (burn(config.short_window_ms), burn(config.long_window_ms))
    }

    /// The admission fraction the controller computed.
    pub fn fraction(&self) -> f64 {
        self.fraction
    }

    /// The admission fraction the edge should apply: 1 in shadow mode.
    pub fn effective_fraction(&self, config: &SloConfig) -> f64 {
        if config.shadow { 1.0 } else { self.fraction }
    }

    /// Cut only on evidence: both windows have a signal and both burn too fast. Restore unless a
    /// window with a signal still burns: a window too quiet to judge cannot hold a cut, or
    /// sparse traffic (thinned further by the cut itself) would keep the fraction down forever.
    fn step(&self, config: &SloConfig, now_ms: u64) -> Step {
        let (short, long) = self.burn_rates(config, now_ms);
        match (short, long) {
            (Some(s), Some(l)) if s > config.burn_threshold && l > config.burn_threshold => {
                Step::Cut
            }
            _ if [short, long]
                .into_iter()
                .flatten()
                .all(|b| b < config.recover_threshold) =>
            {
                Step::Restore
            }
            _ => Step::Hold,
        }
    }

    /// `now_ms`, or the newest bucket's start when the clock stepped back less than a long window
    /// (a correction: reports made then still belong to the present, and count once). A bigger
    /// step back is a reset: the buckets ahead of it are ignored, and dropped at the next report.
    fn clock(&self, config: &SloConfig, now_ms: u64) -> u64 {
        match self.buckets.back() {
            Some(b) if b.start_ms > now_ms && b.start_ms - now_ms < config.long_window_ms => {
                b.start_ms
            }
            _ => now_ms,
        }
    }
}

/// Probability of shedding a request of priority `rank` when `fraction` is admitted overall.
///
/// The shed share `1 - fraction` is split into four bands taken lowest priority first: low
/// (rank 3) sheds `4·shed`, normal starts only once low is fully shed, and so on; critical starts
/// below a fraction of 0.25. With an even mix of ranks exactly `1 - fraction` is shed; with any
/// other mix the controller closes the loop, since it steers by outcomes, not by this share.
/// A NaN fraction sheds nothing: shedding fails open.
pub fn shed_probability(fraction: f64, rank: u8) -> f64 {
    let shed = if fraction.is_nan() {
        0.0
    } else {
        (1.0 - fraction).clamp(0.0, 1.0)
    };
    let bands_above = f64::from(RANKS - 1 - rank.min(RANKS - 1));
    (f64::from(RANKS) * shed - bands_above).clamp(0.0, 1.0)
}

/// Whether to admit a request of priority `rank`; `uniform` is a random draw in `[0, 1)`.
pub fn admit(fraction: f64, rank: u8, uniform: f64) -> bool {
    uniform >= shed_probability(fraction, rank)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::FileFailurePersistence;

    const SECOND: u64 = 1_000;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Reports `requests` and `errors` then adjusts, once a second over `seconds`; returns the
    /// fraction after each second.
    fn drive(
        c: &mut Controller,
        config: &SloConfig,
        seconds: std::ops::Range<u64>,
        (requests, errors): (u64, u64),
    ) -> Vec<f64> {
        seconds
            .map(|s| {
                c.report(config, s * SECOND, requests, errors);
                c.adjust(config, s * SECOND)
            })
            .collect()
    }

    fn totals(c: &Controller) -> (u64, u64) {
        c.buckets
            .iter()
            .fold((0, 0), |(r, e), b| (r + b.requests, e + b.errors))
    }

    #[test]
    fn steady_streams() {
        let config = SloConfig::default();
        // (case, requests and errors per second, starting fraction, fraction after two minutes)
        let cases = [
            ("healthy stays open", (1_000, 0), 1.0, 1.0),
            ("healthy restores", (1_000, 0), 0.5, 1.0),
            ("50% errors cut to the floor", (1_000, 500), 1.0, 0.05),
            ("burn 5, in the band, never cuts", (1_000, 5), 1.0, 1.0),
            ("burn 5, in the band, holds a cut", (1_000, 5), 0.5, 0.5),
            ("burn 1.5 restores", (2_000, 3), 0.5, 1.0),
            ("too sparse to cut, even all failing", (1, 1), 1.0, 1.0),
            ("no traffic is no reason to hold a cut", (0, 0), 0.5, 1.0),
        ];
        for (case, stream, start, expected) in cases {
            let mut c = Controller {
                fraction: start,
                ..Controller::new()
            };
            let end = *drive(&mut c, &config, 0..120, stream).last().unwrap();
            assert!(close(end, expected), "{case}: {end}");
        }
        let mut c = Controller::new();
        c.report(&config, 0, 2, 1);
        assert_eq!(c.burn_rates(&config, 0), (None, None), "1 error in 2");
    }

    #[test]
    fn errors_cut_ten_percent_per_interval_down_to_the_floor() {
        let config = SloConfig::default();
        let f = drive(&mut Controller::new(), &config, 0..120, (1_000, 500));
        let expected = [(0, 1.0), (1, 0.9), (2, 0.81), (10, 0.9f64.powi(10))];
        for (second, fraction) in expected.into_iter().chain([(28, 0.9f64.powi(28))]) {
            assert!(close(f[second], fraction), "{second} s: {}", f[second]);
        }
        assert!(f[29..].iter().all(|&f| f == 0.05), "0.9^29 < 0.05");
    }

    #[test]
    fn a_burst_the_long_window_does_not_confirm_never_cuts() {
        let config = SloConfig::default();
        let mut c = Controller::new();
        drive(&mut c, &config, 0..600, (1_000, 0));
        let f = drive(&mut c, &config, 600..610, (1_000, 500));
        let (short, long) = c.burn_rates(&config, 609 * SECOND);
        assert!(short.unwrap() > config.burn_threshold);
        assert!(long.unwrap() < config.burn_threshold);
        assert!(f.iter().all(|&f| f == 1.0));
    }

    #[test]
    fn recovery_waits_for_the_long_window_then_restores_a_step_per_interval() {
        let config = SloConfig::default();
        let mut c = Controller::new();
        drive(&mut c, &config, 0..300, (1_000, 500));
        let mut f = drive(&mut c, &config, 300..356, (1_000, 0));
        // The short window is clean once the last bad bucket (295 s) leaves it, at 355 s...
        let (short, long) = c.burn_rates(&config, 355 * SECOND);
        assert_eq!(short, Some(0.0));
        assert!(long.unwrap() > config.burn_threshold);
        // ...but the long window holds the cut until 895 s, when that bucket leaves it too.
        f.extend(drive(&mut c, &config, 356..1_000, (1_000, 0)));
        let expected = [
            (355, 0.05),
            (600, 0.05),
            (894, 0.05),
            (895, 0.10),
            (896, 0.15),
            (913, 1.0),
            (999, 1.0),
        ];
        for (second, fraction) in expected {
            let got = f[second - 300];
            assert!(close(got, fraction), "{second} s: {got}");
        }
    }

    #[test]
    fn shadow_computes_but_admits_everything() {
        let config = SloConfig {
            shadow: true,
            ..SloConfig::default()
        };
        let mut c = Controller::new();
        drive(&mut c, &config, 0..10, (1_000, 500));
        assert!(close(c.fraction(), 0.9f64.powi(9)));
        assert_eq!(c.effective_fraction(&config), 1.0);
        let enforced = SloConfig::default();
        assert_eq!(c.effective_fraction(&enforced), c.fraction());
    }

    #[test]
    fn the_clock_may_step_back_idle_or_reset() {
        let config = SloConfig::default();
        let mut c = Controller::new();
        let t = 1_000_000;
        c.report(&config, t, 100, 1);
        c.report(&config, t - 3_000, 100, 1);
        assert_eq!(
            totals(&c),
            (200, 2),
            "a step back counts once, in the present"
        );
        assert_eq!(c.burn_rates(&config, t - 3_000), c.burn_rates(&config, t));
        assert_eq!(c.burn_rates(&config, t + 600_000), (None, None), "idle");
        c.report(&config, t - 600_000, 100, 0);
        assert_eq!(
            totals(&c),
            (100, 0),
            "a reset drops the buckets ahead of it"
        );
    }

    #[test]
    fn adjust_catches_up_only_as_far_as_the_short_window_reaches() {
        let config = SloConfig {
            short_window_ms: 10_000,
            ..SloConfig::default()
        };
        let mut c = Controller::new();
        assert_eq!(c.adjust(&config, 0), 1.0, "the first call starts the clock");
        c.report(&config, 3_600_000, 1_000, 500);
        let caught_up = c.adjust(&config, 3_600_000);
        assert!(close(caught_up, 0.9f64.powi(10)), "an hour, but ten steps");
        assert_eq!(c.adjust(&config, 3_599_000), caught_up, "stepped back");
        assert_eq!(
            c.adjust(&config, 3_599_999),
            caught_up,
            "interval restarted"
        );
        assert!(close(c.adjust(&config, 3_600_000), 0.9f64.powi(11)));
    }

    #[test]
    fn memory_is_bounded_and_the_state_round_trips() {
        let config = SloConfig::default();
        let mut c = Controller::new();
        for t in (0..3_600_000).step_by(100) {
            c.report(&config, t, 10, 1);
        }
        assert_eq!(c.buckets.len(), BUCKETS);
        let stored = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Controller>(&stored).unwrap(), c);
    }

    #[test]
    fn shed_probability_by_rank() {
        // (fraction, shed probability of ranks 0 (critical) to 4 (treated as low))
        let cases = [
            (1.0, [0.0, 0.0, 0.0, 0.0, 0.0]),
            (0.9, [0.0, 0.0, 0.0, 0.4, 0.4]),
            (0.75, [0.0, 0.0, 0.0, 1.0, 1.0]),
            (0.5, [0.0, 0.0, 1.0, 1.0, 1.0]),
            (0.25, [0.0, 1.0, 1.0, 1.0, 1.0]),
            (0.05, [0.8, 1.0, 1.0, 1.0, 1.0]),
            (-1.0, [1.0, 1.0, 1.0, 1.0, 1.0]),
            (f64::NAN, [0.0, 0.0, 0.0, 0.0, 0.0]),
        ];
        for (fraction, expected) in cases {
            for (rank, p) in (0..).zip(expected) {
                let got = shed_probability(fraction, rank);
                assert!(close(got, p), "{fraction} rank {rank}: {got}");
            }
        }
    }

    #[test]
    fn config_parses_with_defaults_and_names_the_bad_field() {
        let parse = |json| serde_json::from_str::<SloConfig>(json);
        assert_eq!(parse("{}").unwrap(), SloConfig::default());
        let parsed = parse(r#"{"shadow": true, "slo": 0.99}"#).unwrap();
        assert!(parsed.shadow && parsed.slo == 0.99 && parsed.cut == 0.10);
        assert!(
            parse(r#"{"shadwo": true}"#).is_err(),
            "unknown fields are refused"
        );
        assert_eq!(SloConfig::default().validate(), Ok(()));
        let cases = [
            ("slo", r#"{"slo": 1.0}"#),
            ("short_window_ms", r#"{"short_window_ms": 4999}"#),
            ("short_window_ms", r#"{"short_window_ms": 600001}"#),
            ("burn_threshold", r#"{"slo": 0.9}"#),
            ("recover_threshold", r#"{"recover_threshold": 14.4}"#),
            ("cut", r#"{"cut": 1.0}"#),
            ("restore", r#"{"restore": 0}"#),
            ("min_fraction", r#"{"min_fraction": 0}"#),
            ("min_requests", r#"{"min_requests": 0}"#),
            ("adjust_interval_ms", r#"{"adjust_interval_ms": 0}"#),
        ];
        for (field, json) in cases {
            let err = parse(json).unwrap().validate().unwrap_err();
            assert!(err.starts_with(field), "{json}: {err}");
        }
        let nan = SloConfig {
            slo: f64::NAN,
            ..SloConfig::default()
        };
        assert!(nan.validate().unwrap_err().starts_with("slo "));
    }

    fn proptest_config() -> ProptestConfig {
        ProptestConfig {
            cases: 1024,
            failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(proptest_config())]

        /// Whatever the traffic and however the clock moves, the fraction stays in
        /// [min_fraction, 1] and the buckets stay bounded.
        #[test]
        fn fraction_stays_within_bounds(
            min_fraction in 0.01f64..=1.0,
            cut in 0.01f64..0.99,
            restore in 0.01f64..=1.0,
            events in prop::collection::vec(
                (prop_oneof![0i64..3_000, -700_000i64..700_000], 0u64..5_000, 0u64..5_000),
                1..200,
            ),
        ) {
            let config = SloConfig { min_fraction, cut, restore, ..SloConfig::default() };
            let mut c = Controller::new();
            let mut now = 10_000_000u64;
            for (dt, requests, errors) in events {
                now = now.saturating_add_signed(dt);
                c.report(&config, now, requests, errors);
                let f = c.adjust(&config, now);
                prop_assert!((min_fraction..=1.0).contains(&f), "{f}");
                prop_assert!(c.buckets.len() <= BUCKETS);
            }
        }

        /// Reports within one long window count exactly once, in whatever order they arrive.
        #[test]
        fn every_report_counts_once(
            reports in prop::collection::vec((0u64..590_000, 0u64..1_000), 1..100),
        ) {
            let config = SloConfig::default();
            let mut c = Controller::new();
            for &(at, requests) in &reports {
                c.report(&config, at, requests, 0);
            }
            prop_assert_eq!(totals(&c).0, reports.iter().map(|r| r.1).sum::<u64>());
        }

        /// Less admitted never sheds less; a lower priority never sheds less than a higher one,
        /// and a rank starts shedding only once every lower priority is shed in full.
        #[test]
        fn shedding_is_monotone(f1 in 0.0f64..=1.0, f2 in 0.0f64..=1.0, rank in 0u8..6) {
            let (less, more) = (f1.min(f2), f1.max(f2));
            prop_assert!(shed_probability(more, rank) <= shed_probability(less, rank));
            let p = shed_probability(f1, rank);
            let lower = shed_probability(f1, rank + 1);
            prop_assert!((0.0..=1.0).contains(&p) && p <= lower);
            prop_assert!(p == 0.0 || rank >= RANKS - 1 || lower == 1.0);
        }

        /// Fraction 1 admits all; critical is admitted down to a fraction of 0.25; an even mix
        /// of ranks sheds exactly 1 - fraction.
        #[test]
        fn admission_guarantees(fraction in 0.0f64..=1.0, rank: u8, uniform in 0.0f64..1.0) {
            prop_assert!(admit(1.0, rank, uniform));
            prop_assert!(fraction < 0.25 || admit(fraction, 0, uniform));
            let mean = (0..RANKS).map(|r| shed_probability(fraction, r)).sum::<f64>() / 4.0;
            prop_assert!(close(mean, 1.0 - fraction), "{mean}");
        }
    }
}
