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
//! The controller cuts multiplicatively (fast, in proportion to how much is admitted), and after
//! each cut dwells (`dwell_ms`) before it may cut again, so a cut shows in the admitted requests'
//! outcomes before the next one is decided. A cut needs the burn of both windows and of the
//! requests admitted since the last step: errors the long window remembers are no reason to cut
//! traffic that already succeeds.
//!
//! It restores by the health of what it admits, not by the windows' memory: once the requests
//! admitted over the last interval burn below `recover_threshold`, every interval gives back the
//! share `restore` of what is shed (half, by default: from the floor, 95% shed becomes 48%, 24%,
//! 12%, … and under 1% in seven intervals). Fast from the floor, gentle near 1, where the last
//! overload began. Errors are this controller's signal; surges are met earlier by the adaptive
//! concurrency limit in front of each origin (`crate::concurrency`), so once a surge ends,
//! nothing stays shed for the long window's sake.

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
    /// The window that confirms: a blip too short to matter cannot cut.
    pub long_window_ms: u64,
    /// Burn rate both windows must exceed for a cut; 14.4 spends 2% of a 30-day budget in an hour.
    pub burn_threshold: f64,
    /// Burn rate the requests admitted since the last step must be under for a restore (every
    /// window with a signal, when too few came in to tell); in between, hold.
    pub recover_threshold: f64,
    /// Share of the admission fraction cut per step.
    pub cut: f64,
    /// Share of the shed fraction given back per interval while the admitted requests are healthy.
    pub restore: f64,
    /// Least time between two cuts: a cut's effect shows before the next is decided.
    pub dwell_ms: u64,
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
            restore: 0.5,
            dwell_ms: 2_000,
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
                "dwell_ms",
                self.dwell_ms <= self.long_window_ms,
                "must be at most long_window_ms",
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
    /// Requests and errors reported since the last step: the health of what was just admitted.
    #[serde(default)]
    recent: (u64, u64),
    /// When the last cut was made.
    #[serde(default)]
    last_cut_ms: Option<u64>,
}

impl Default for Controller {
    fn default() -> Self {
        Self {
            fraction: 1.0,
            interval_start_ms: None,
            buckets: VecDeque::new(),
            recent: (0, 0),
            last_cut_ms: None,
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
        self.recent = (
            self.recent.0.saturating_add(requests),
            self.recent.1.saturating_add(errors),
        );
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

    /// Decides once for the adjust intervals elapsed since the last call and returns the fraction.
    ///
    /// A cut is applied once however many intervals passed (and at most once per `dwell_ms`); a
    /// restore compounds over them, at most over the steps the short window vouches for
    /// (`short_window_ms / adjust_interval_ms`). A clock that stepped back restarts the interval
    /// and takes no step.
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
                Step::Cut => {
                    self.last_cut_ms = Some(now_ms);
                    self.fraction * (1.0 - config.cut)
                }
                Step::Restore => 1.0 - (1.0 - self.fraction) * (1.0 - config.restore).powi(steps),
                Step::Hold => self.fraction,
            };
            self.recent = (0, 0);
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
            burn_rate(
                requests,
                errors,
                u64::from(config.min_requests).max(1),
                config.slo,
            )
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

    /// Cut only on evidence: both windows have a signal and burn too fast, the requests admitted
    /// since the last step still do (when there are enough to tell), and the last cut is at least
    /// `dwell_ms` old. Restore when the admitted requests are healthy; without enough of them to
    /// tell, restore unless a window with a signal still burns: a window too quiet to judge
    /// cannot hold a cut, or sparse traffic (thinned further by the cut itself) would keep the
    /// fraction down forever.
    fn step(&self, config: &SloConfig, now_ms: u64) -> Step {
        let (short, long) = self.burn_rates(config, now_ms);
        let recent = self.recent_burn(config);
        let dwelt = self
            .last_cut_ms
            .is_none_or(|at| now_ms.saturating_sub(at) >= config.dwell_ms);
        let burning = |b: Option<f64>| b.is_some_and(|b| b > config.burn_threshold);
        if burning(short) && burning(long) && recent.is_none_or(|r| r > config.burn_threshold) {
            return if dwelt { Step::Cut } else { Step::Hold };
        }
        let healthy = match recent {
            Some(r) => r < config.recover_threshold,
            None => [short, long]
                .into_iter()
                .flatten()
                .all(|b| b < config.recover_threshold),
        };
        if healthy { Step::Restore } else { Step::Hold }
    }

    /// The burn rate of the requests reported since the last step, if there are enough of them
    /// to tell (a tenth of `min_requests`, at least one).
    fn recent_burn(&self, config: &SloConfig) -> Option<f64> {
        let (requests, errors) = self.recent;
        burn_rate(
            requests,
            errors,
            u64::from(config.min_requests / 10).max(1),
            config.slo,
        )
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

/// Error ratio over the error budget (`1 − slo`), or `None` below `min_requests` requests.
fn burn_rate(requests: u64, errors: u64, min_requests: u64, slo: f64) -> Option<f64> {
    (requests >= min_requests).then(|| errors.min(requests) as f64 / requests as f64 / (1.0 - slo))
}

#[cfg(test)]
mod tests;
