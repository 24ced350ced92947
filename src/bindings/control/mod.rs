//! The `CONTROL` Durable Object: cluster-wide control state in one root object for the
//! deployment, and the shards that relay to it (see below).
//! Core holds the contract and every decision ([`breakwater_core::control`]); this object loads
//! the state once per lifetime, applies a command's transition, stores the parts it changed
//! before answering (the output gate holds the answer until the write is durable), and logs the
//! transition's notices. Dead letters are kept in its storage too ([`dead_letters`]). The root
//! also sums the metrics every report carries ([`breakwater_core::metrics`]), in memory.
//!
//! Isolates reach it through [`client`]; what they learn from it lives in [`signals`] (admission
//! fraction, breakers, health, the fleet's concurrency limits) and [`purge_log`] (the purge log's
//! copy).
//!
//! With `CONTROL_SHARDS`, the same class also runs as shard instances (`shard-0`, `shard-1`, …)
//! that take the isolates' reports and purge-log reads and relay them to the root `global`
//! instance once per interval ([`breakwater_core::control::relay`]). A shard keeps its relay state
//! in memory only.

pub mod client;
pub mod dead_letters;
pub mod purge_log;
pub mod signals;

use super::durable::{self, Command, Incoming};
use crate::config;
use crate::runtime::now_millis;
use breakwater_core::control::{
    AcquireBreaker, Changed, ControlState, GetDeadLetters, KeepDeadLetters, ListDeadLetters,
    Notice, Purge, ReadHealth, ReadOverview, ReadPurgeLog, RecordChecks, RelayReadPurgeLog,
    RelayReport, RemoveDeadLetters, Report, ReportProbe, SendReport, Status, relay::Relay,
};
use breakwater_core::metrics::Metrics;
use breakwater_core::purge::PurgeLog;
use dead_letters::Store;
use std::cell::RefCell;
use worker::{DurableObject, Env, Request, Response, Result, State, durable_object};

pub const BINDING: &str = "CONTROL";
/// The root instance's name.
const INSTANCE: &str = "global";
/// How a shard reaches the root: directly, as an isolate does with `CONTROL_SHARDS=0`.
const UNSHARDED: u64 = 0;
/// Storage keys, one per part of the state.
const LOG_KEY: &str = "purge-log";
const SLO_KEY: &str = "slo";
const BREAKERS_KEY: &str = "breakers";
const HEALTH_KEY: &str = "health";

#[durable_object]
pub struct Control {
    state: State,
    env: Env,
    /// The stored state, read once per object lifetime; storage stays the source of truth.
    control: RefCell<Option<ControlState>>,
    /// A shard's state (unused by the root).
    relay: RefCell<Relay>,
    /// The root's sum of every report's metrics, and since when (memory only: the counters
    /// restart with the object, as a process's would).
    metrics: RefCell<(u64, Metrics)>,
}

impl DurableObject for Control {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            control: RefCell::new(None),
            relay: RefCell::new(Relay::default()),
            metrics: RefCell::new((now_millis(), Metrics::default())),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let incoming = Incoming::read(req).await?;
        let store = Store(&self.state);
        match incoming.name() {
            ReadPurgeLog::NAME => {
                let command: ReadPurgeLog = incoming.parse()?;
                let log = self.load().await?.read_log(&command);
                durable::reply::<ReadPurgeLog>(&log)
            }
            Purge::NAME => {
                let command: Purge = incoming.parse()?;
                self.apply::<Purge>(|s| s.purge(&command)).await
            }
            SendReport::NAME => {
                let SendReport(report) = incoming.parse()?;
                self.metrics.borrow_mut().1.merge(&report.metrics);
                let config = self.config()?;
                let now = now_millis();
                self.apply::<SendReport>(|s| notify(s.report(&report, &config, now)))
                    .await
            }
            RelayReport::NAME => {
                let RelayReport(report) = incoming.parse()?;
                let status = self.relay_report(&report).await?;
                durable::reply::<RelayReport>(&status)
            }
            RelayReadPurgeLog::NAME => {
                let command: RelayReadPurgeLog = incoming.parse()?;
                let log = self.relay_read_log(command.known_epoch).await?;
                durable::reply::<RelayReadPurgeLog>(&log)
            }
            AcquireBreaker::NAME => {
                let command: AcquireBreaker = incoming.parse()?;
                let config = self.config()?;
                let now = now_millis();
                self.apply::<AcquireBreaker>(|s| s.acquire(&command, &config, now))
                    .await
            }
            ReportProbe::NAME => {
                let command: ReportProbe = incoming.parse()?;
                let config = self.config()?;
                let now = now_millis();
                self.apply::<ReportProbe>(|s| s.probe(&command, &config, now))
                    .await
            }
            ReadHealth::NAME => durable::reply::<ReadHealth>(&self.load().await?.health),
            ReadOverview::NAME => {
                let state = self.load().await?;
                let (since, metrics) = self.metrics.borrow().clone();
                let overview = state.overview(&*self.config()?, now_millis(), since, metrics);
                durable::reply::<ReadOverview>(&overview)
            }
            RecordChecks::NAME => {
                let RecordChecks(checks) = incoming.parse()?;
                let config = self.config()?;
                self.apply::<RecordChecks>(|s| notify(s.record_checks(&checks, &config)))
                    .await
            }
            KeepDeadLetters::NAME => {
                let KeepDeadLetters(letters) = incoming.parse()?;
                store.keep(&letters).await?;
                durable::reply::<KeepDeadLetters>(&letters.len())
            }
            ListDeadLetters::NAME => {
                let command: ListDeadLetters = incoming.parse()?;
                let limit = command.limit.clamp(1, dead_letters::MAX_PAGE);
                let page = store.list(command.after.as_deref(), limit).await?;
                durable::reply::<ListDeadLetters>(&page)
            }
            GetDeadLetters::NAME => {
                let GetDeadLetters { ids } = incoming.parse()?;
                durable::reply::<GetDeadLetters>(&store.by_id(&ids).await?)
            }
            RemoveDeadLetters::NAME => {
                let command: RemoveDeadLetters = incoming.parse()?;
                durable::reply::<RemoveDeadLetters>(&store.remove(&command.letters).await?)
            }
            _ => durable::unknown(&incoming),
        }
    }
}

impl Control {
    fn config(&self) -> Result<std::rc::Rc<breakwater_core::config::EdgeConfig>> {
        config::load(&self.env).map_err(|e| worker::Error::RustError(e.to_string()))
    }

    /// The state: the memory copy, else each part from storage (absent parts start fresh).
    async fn load(&self) -> Result<ControlState> {
        if let Some(state) = self.control.borrow().clone() {
            return Ok(state);
        }
        let storage = self.state.storage();
        let state = ControlState {
            log: storage.get(LOG_KEY).await?.unwrap_or_default(),
            slo: storage.get(SLO_KEY).await?.unwrap_or_default(),
            breakers: storage.get(BREAKERS_KEY).await?.unwrap_or_default(),
            health: storage.get(HEALTH_KEY).await?.unwrap_or_default(),
            limits: Default::default(),
        };
        // Another request may have loaded and changed it while this one awaited storage.
        if let Some(state) = self.control.borrow().clone() {
            return Ok(state);
        }
        self.control.replace(Some(state.clone()));
        Ok(state)
    }

    /// A shard's report: summed, and passed on to the root when an interval has passed; the
    /// answer is the root's latest status.
    async fn relay_report(&self, report: &Report) -> Result<Status> {
        let interval = self.config()?.control_report.as_millis() as u64;
        let due = self
            .relay
            .borrow_mut()
            .report(report, now_millis(), interval);
        if let Some(sum) = due {
            let answer = client::report(&self.env, UNSHARDED, &sum).await;
            if let Err(e) = &answer {
                worker::console_warn!("shard: root CONTROL unreachable, counts kept: {e}");
            }
            self.relay.borrow_mut().forwarded(sum, answer.ok());
        }
        Ok(self.relay.borrow().status())
    }

    /// A shard's purge-log read, from its copy, refreshed from the root once per sync interval.
    /// Without a copy and without the root, the read fails and the isolate keeps its own copy.
    async fn relay_read_log(&self, known_epoch: Option<u64>) -> Result<Option<PurgeLog>> {
        let sync = self.config()?.purge_sync.as_millis() as u64;
        let due = self.relay.borrow_mut().log_due(now_millis(), sync);
        if let Some(epoch) = due {
            match client::fetch_log(&self.env, UNSHARDED, epoch).await {
                Ok(newer) => self.relay.borrow_mut().log_refreshed(newer, now_millis()),
                Err(e) if epoch.is_none() => return Err(worker::Error::RustError(e.to_string())),
                Err(e) => worker::console_warn!("shard: root CONTROL unreachable, copy kept: {e}"),
            }
        }
        Ok(self.relay.borrow().read_log(known_epoch))
    }

    /// Load → apply `transition` → keep the new state in memory (no await in between, so the
    /// next command sees it whatever order storage completions arrive in) → store the parts it
    /// changed → answer.
    async fn apply<C: Command>(
        &self,
        transition: impl FnOnce(&mut ControlState) -> (C::Reply, Changed),
    ) -> Result<Response> {
        let mut state = self.load().await?;
        let (reply, changed) = transition(&mut state);
        self.control.replace(Some(state.clone()));
        let storage = self.state.storage();
        if changed.log {
            storage.put(LOG_KEY, &state.log).await?;
        }
        if changed.slo {
            storage.put(SLO_KEY, &state.slo).await?;
        }
        if changed.breakers {
            storage.put(BREAKERS_KEY, &state.breakers).await?;
        }
        if changed.health {
            storage.put(HEALTH_KEY, &state.health).await?;
        }
        durable::reply::<C>(&reply)
    }
}

/// Logs a transition's notices and passes on its reply.
fn notify<R>((reply, changed, notices): (R, Changed, Vec<Notice>)) -> (R, Changed) {
    for notice in notices {
        match notice {
            Notice::Unhealthy { .. } => worker::console_warn!("{notice}"),
            _ => worker::console_log!("{notice}"),
        }
    }
    (reply, changed)
}
