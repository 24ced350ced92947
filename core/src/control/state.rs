//! `CONTROL`'s state and its transitions: one pure function per command, of the state, the
//! command, the configuration and `now`. Each says which parts it changed, so the object
//! stores exactly those before it answers.

use super::{
    AcquireBreaker, Breakers, Check, Health, Overview, Purge, ReadPurgeLog, Report, ReportProbe,
    Status,
};
use crate::breaker::{Permit, Phase, View};
use crate::concurrency::Published;
use crate::config::EdgeConfig;
use crate::metrics::Metrics;
use crate::ratelimit::Priority;
use crate::shedding::shed_probability;

/// The purge records an [`Overview`] lists.
const RECENT_PURGES: usize = 20;
use crate::purge::PurgeLog;
use crate::shedding::Controller;
use std::fmt;

/// Everything `CONTROL` decides with, each part stored under its own key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControlState {
    pub log: PurgeLog,
    pub slo: Controller,
    pub breakers: Breakers,
    pub health: Health,
    /// The fleet's concurrency limits: kept in memory only (a restarted object publishes nothing
    /// for one interval, and isolates then run on their own limits).
    pub limits: Published,
}

/// Which parts of the state a transition changed (to store before answering).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changed {
    pub log: bool,
    pub slo: bool,
    pub breakers: bool,
    pub health: bool,
}

/// Something worth a log line, said by a transition rather than logged by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Healthy { origin: String },
    Unhealthy { origin: String, detail: String },
    WouldShed { requests: u64, fraction: String },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Healthy { origin } => write!(f, "origin {origin} is healthy again"),
            Self::Unhealthy { origin, detail } => {
                write!(f, "origin {origin} is unhealthy: {detail}")
            }
            Self::WouldShed { requests, fraction } => write!(
                f,
                "shadow shedding: {requests} requests would have been shed (admission fraction \
                 {fraction})"
            ),
        }
    }
}

impl ControlState {
    /// The log, unless the asker already has its epoch.
    pub fn read_log(&self, command: &ReadPurgeLog) -> Option<PurgeLog> {
        (command.known_epoch != Some(self.log.epoch())).then(|| self.log.clone())
    }

    /// Records a valid purge; an invalid one changes nothing and says why.
    pub fn purge(&mut self, Purge(request): &Purge) -> (Result<PurgeLog, String>, Changed) {
        if let Err(e) = request.validate() {
            return (Err(e.to_string()), Changed::default());
        }
        self.log.purge(request);
        let changed = Changed {
            log: true,
            ..Changed::default()
        };
        (Ok(self.log.clone()), changed)
    }

    /// The operators' view at `now_ms`, with `metrics` summed since `since_ms`. Reads only: what
    /// time did to a breaker is applied to a copy.
    pub fn overview(
        &self,
        config: &EdgeConfig,
        now_ms: u64,
        since_ms: u64,
        metrics: Metrics,
    ) -> Overview {
        let (burn_short, burn_long) = self.slo.burn_rates(&config.slo, now_ms);
        let breakers = self
            .breakers
            .iter()
            .map(|(origin, breaker)| {
                (
                    origin.clone(),
                    breaker.clone().view(&config.breaker, now_ms),
                )
            })
            .collect();
        let effective = self.slo.effective_fraction(&config.slo);
        let shed = Priority::ALL
            .iter()
            .map(|p| (p.as_str().to_owned(), shed_probability(effective, p.rank())))
            .collect();
        Overview {
            since_ms,
            now_ms,
            metrics,
            fraction: self.slo.fraction(),
            effective,
            burn_short,
            burn_long,
            shed,
            breakers,
            health: self.health.clone(),
            purge_epoch: self.log.epoch(),
            purges: self.log.recent(RECENT_PURGES),
        }
    }

    /// Feeds an isolate's counts to the SLO controller and each origin's breaker; answers the
    /// admission fraction, the breakers that are not closed, and the health records.
    pub fn report(
        &mut self,
        report: &Report,
        config: &EdgeConfig,
        now_ms: u64,
    ) -> (Status, Changed, Vec<Notice>) {
        self.slo
            .report(&config.slo, now_ms, report.requests, report.errors);
        let fraction = self.slo.adjust(&config.slo, now_ms);
        let effective = self.slo.effective_fraction(&config.slo);
        let mut notices = Vec::new();
        if report.would_shed > 0 {
            notices.push(Notice::WouldShed {
                requests: report.would_shed,
                fraction: format!("{fraction:.2}"),
            });
        }
        for origin in report.breakers.keys() {
            self.breakers.entry(origin.clone()).or_default();
        }
        let breakers = self
            .breakers
            .iter_mut()
            .map(|(origin, breaker)| {
                let counts = report.breakers.get(origin).copied().unwrap_or_default();
                (
                    origin.clone(),
                    breaker.record(&config.breaker, now_ms, counts),
                )
            })
            .filter(|(_, view)| view.phase != Phase::Closed)
            .collect();
        let status = Status {
            fraction,
            effective,
            breakers,
            health: self.health.clone(),
            limits: self
                .limits
                .add(
                    &report.concurrency,
                    now_ms,
                    config.control_report.as_millis() as u64,
                )
                .clone(),
        };
        let changed = Changed {
            slo: true,
            breakers: true,
            ..Changed::default()
        };
        (status, changed, notices)
    }

    pub fn acquire(
        &mut self,
        command: &AcquireBreaker,
        config: &EdgeConfig,
        now_ms: u64,
    ) -> (Permit, Changed) {
        let permit = self
            .breakers
            .entry(command.origin.clone())
            .or_default()
            .acquire(&config.breaker, now_ms);
        (permit, breakers_changed())
    }

    pub fn probe(
        &mut self,
        probe: &ReportProbe,
        config: &EdgeConfig,
        now_ms: u64,
    ) -> (View, Changed) {
        let view = self
            .breakers
            .entry(probe.origin.clone())
            .or_default()
            .report_probe(
                &config.breaker,
                now_ms,
                probe.id,
                probe.success,
                probe.latency_ms,
            );
        (view, breakers_changed())
    }

    /// Observes each check in its origin's record; origins no longer configured are forgotten.
    pub fn record_checks(
        &mut self,
        checks: &[Check],
        config: &EdgeConfig,
    ) -> (Health, Changed, Vec<Notice>) {
        let mut notices = Vec::new();
        for check in checks {
            let record = self.health.entry(check.origin.clone()).or_default();
            let origin = check.origin.clone();
            match record.observe(&config.pool.health, check.at_ms, check.result.clone()) {
                Some(true) => notices.push(Notice::Healthy { origin }),
                Some(false) => notices.push(Notice::Unhealthy {
                    origin,
                    detail: check.result.clone().err().unwrap_or_default(),
                }),
                None => {}
            }
        }
        self.health
            .retain(|url, _| config.pool.origins.iter().any(|o| &o.url == url));
        let changed = Changed {
            health: true,
            ..Changed::default()
        };
        (self.health.clone(), changed, notices)
    }
}

fn breakers_changed() -> Changed {
    Changed {
        breakers: true,
        ..Changed::default()
    }
}
