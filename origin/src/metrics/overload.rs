//! The overload limiter of each request bulkhead as `/metrics` shows it (see
//! [`crate::overload`]), pushed by the limiter as it changes:
//!
//! - `breakwater_origin_overload_requests{bulkhead,state}`: requests `queued` for a slot and
//!   `in_flight` (holding one) right now;
//! - `breakwater_origin_overload_max_in_flight{bulkhead}`: the slots;
//! - `breakwater_origin_overload_dropping{bulkhead}`: 1 while the limiter sheds by queue time;
//! - `breakwater_origin_overload_shed_total{bulkhead,reason}`: requests answered `503
//!   overloaded`, by why: `queue_delay` (CoDel's dropping state) or `max_wait` (the hard bound).
//!
//! Each limiter holds its own series (atomics), so a request costs no label lookup. The series
//! of a bulkhead exist, at zero, from the moment its limiter is built: a shed counter that
//! appears only with the first shed request would hide the first increase from `rate()`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::overload::ShedReason;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BulkheadLabels {
    bulkhead: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    bulkhead: String,
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShedLabels {
    bulkhead: String,
    reason: &'static str,
}

/// The overload families, registered once in the long-lived registry.
pub(super) struct OverloadFamilies {
    requests: Family<StateLabels, Gauge>,
    max_in_flight: Family<BulkheadLabels, Gauge>,
    dropping: Family<BulkheadLabels, Gauge>,
    shed: Family<ShedLabels, Counter>,
}

impl OverloadFamilies {
    pub(super) fn new(registry: &mut Registry) -> Self {
        let requests = Family::default();
        registry.register(
            "overload_requests",
            "Requests of each bulkhead queued for a slot (state=\"queued\") and holding one \
             (state=\"in_flight\")",
            requests.clone(),
        );
        let max_in_flight = Family::default();
        registry.register(
            "overload_max_in_flight",
            "The requests each bulkhead runs at once; the rest queue",
            max_in_flight.clone(),
        );
        let dropping = Family::default();
        registry.register(
            "overload_dropping",
            "1 while a bulkhead's queueing delay has stayed above its target for an interval and \
             requests that wait longer than the target are shed, else 0",
            dropping.clone(),
        );
        let shed = Family::default();
        registry.register(
            "overload_shed",
            "Requests answered 503 overloaded by a bulkhead's overload limiter, by reason \
             (queue_delay: shed in the dropping state; max_wait: waited the hard maximum)",
            shed.clone(),
        );
        Self {
            requests,
            max_in_flight,
            dropping,
            shed,
        }
    }

    pub(super) fn series(&self, bulkhead: &str, max_in_flight: usize) -> OverloadSeries {
        // One lookup per statement: `get_or_create` returns a read guard on the family, and a
        // second lookup that must insert while the first guard lives would wait for it forever.
        let gauge = |family: &Family<StateLabels, Gauge>, state| {
            let labels = StateLabels {
                bulkhead: bulkhead.to_owned(),
                state,
            };
            family.get_or_create(&labels).clone()
        };
        let shed = |reason: ShedReason| {
            let labels = ShedLabels {
                bulkhead: bulkhead.to_owned(),
                reason: reason.as_str(),
            };
            self.shed.get_or_create(&labels).clone()
        };
        let labels = BulkheadLabels {
            bulkhead: bulkhead.to_owned(),
        };
        self.max_in_flight
            .get_or_create(&labels)
            .set(i64::try_from(max_in_flight).unwrap_or(i64::MAX));
        let queued = gauge(&self.requests, "queued");
        let in_flight = gauge(&self.requests, "in_flight");
        let dropping = self.dropping.get_or_create(&labels).clone();
        let shed_queue_delay = shed(ShedReason::QueueDelay);
        let shed_max_wait = shed(ShedReason::MaxWait);
        OverloadSeries {
            queued,
            in_flight,
            dropping,
            shed_queue_delay,
            shed_max_wait,
        }
    }
}

/// One bulkhead's series, held by its limiter (clones share the values).
#[derive(Debug, Clone)]
pub struct OverloadSeries {
    queued: Gauge,
    in_flight: Gauge,
    dropping: Gauge,
    shed_queue_delay: Counter,
    shed_max_wait: Counter,
}

impl OverloadSeries {
    /// Sets how many requests wait for a slot and how many hold one.
    pub fn set_occupancy(&self, queued: usize, in_flight: usize) {
        self.queued.set(i64::try_from(queued).unwrap_or(i64::MAX));
        self.in_flight
            .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
    }

    pub fn set_dropping(&self, dropping: bool) {
        self.dropping.set(i64::from(dropping));
    }

    /// Counts one request shed for `reason`.
    pub fn count_shed(&self, reason: ShedReason) {
        match reason {
            ShedReason::QueueDelay => self.shed_queue_delay.inc(),
            ShedReason::MaxWait => self.shed_max_wait.inc(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Metrics, sorted_lines};
    use super::*;

    #[tokio::test]
    async fn a_bulkhead_shows_its_slots_from_the_start_and_counts_sheds_by_reason() {
        let metrics = Metrics::new();
        let reads = metrics.overload_series("reads", 32);
        let text = metrics.render().await.unwrap();
        assert_eq!(
            sorted_lines(&text, "breakwater_origin_overload_"),
            [
                "breakwater_origin_overload_dropping{bulkhead=\"reads\"} 0",
                "breakwater_origin_overload_max_in_flight{bulkhead=\"reads\"} 32",
                "breakwater_origin_overload_requests{bulkhead=\"reads\",state=\"in_flight\"} 0",
                "breakwater_origin_overload_requests{bulkhead=\"reads\",state=\"queued\"} 0",
                "breakwater_origin_overload_shed_total{bulkhead=\"reads\",reason=\"max_wait\"} 0",
                "breakwater_origin_overload_shed_total{bulkhead=\"reads\",reason=\"queue_delay\"} 0",
            ]
        );

        reads.set_occupancy(5, 32);
        reads.set_dropping(true);
        reads.count_shed(ShedReason::QueueDelay);
        reads.count_shed(ShedReason::QueueDelay);
        reads.count_shed(ShedReason::MaxWait);
        metrics
            .overload_series("writes", 16)
            .count_shed(ShedReason::MaxWait);
        let text = metrics.render().await.unwrap();
        for line in [
            "breakwater_origin_overload_dropping{bulkhead=\"reads\"} 1",
            "breakwater_origin_overload_requests{bulkhead=\"reads\",state=\"queued\"} 5",
            "breakwater_origin_overload_requests{bulkhead=\"reads\",state=\"in_flight\"} 32",
            "breakwater_origin_overload_shed_total{bulkhead=\"reads\",reason=\"queue_delay\"} 2",
            "breakwater_origin_overload_shed_total{bulkhead=\"reads\",reason=\"max_wait\"} 1",
            "breakwater_origin_overload_shed_total{bulkhead=\"writes\",reason=\"max_wait\"} 1",
            "breakwater_origin_overload_max_in_flight{bulkhead=\"writes\"} 16",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
