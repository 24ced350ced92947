//! Active health checks: the cron trigger asks each origin's health path, and an origin's
//! [`HealthRecord`] turns unhealthy after `unhealthy_threshold` failed checks in a row and healthy
//! again after `healthy_threshold` passes in a row. The records live in `CONTROL`; isolates learn
//! them with their periodic report and pass over unhealthy origins while a healthy one is left.

use super::HealthConfig;
use serde::{Deserialize, Serialize};

/// One origin's check history. An origin never checked is healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthRecord {
    pub healthy: bool,
    /// Checks in a row with the same result as the last one.
    pub passes: u32,
    pub failures: u32,
    /// When the last check was made, and the last that passed.
    pub checked_ms: Option<u64>,
    pub passed_ms: Option<u64>,
    /// Why the last failed check failed (`None` after a pass).
    pub detail: Option<String>,
}

impl Default for HealthRecord {
    fn default() -> Self {
        Self {
            healthy: true,
            passes: 0,
            failures: 0,
            checked_ms: None,
            passed_ms: None,
            detail: None,
        }
    }
}

/// The outcome of one check: `Ok` for a `2xx` in time, else why not.
pub type CheckResult = Result<(), String>;

impl HealthRecord {
    /// Whether a check is due at `now_ms`: never checked, or the interval has passed.
    pub fn due(&self, config: &HealthConfig, now_ms: u64) -> bool {
        self.checked_ms
            .is_none_or(|at| now_ms >= at.saturating_add(config.interval_ms))
    }

    /// Records a check made at `at_ms`. Returns the new state when it changed. A result older
    /// than the last one recorded (two cron runs racing) is ignored.
    pub fn observe(
        &mut self,
        config: &HealthConfig,
        at_ms: u64,
        result: CheckResult,
    ) -> Option<bool> {
        if self.checked_ms.is_some_and(|last| at_ms < last) {
            return None;
        }
        self.checked_ms = Some(at_ms);
        let was = self.healthy;
        match result {
            Ok(()) => {
                self.passes = self.passes.saturating_add(1);
                self.failures = 0;
                self.passed_ms = Some(at_ms);
                self.detail = None;
                if self.passes >= config.healthy_threshold {
                    self.healthy = true;
                }
            }
            Err(detail) => {
                self.failures = self.failures.saturating_add(1);
                self.passes = 0;
                self.detail = Some(detail);
                if self.failures >= config.unhealthy_threshold {
                    self.healthy = false;
                }
            }
        }
        (self.healthy != was).then_some(self.healthy)
    }
}
