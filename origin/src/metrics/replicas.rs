//! Read replicas as `/metrics` shows them, pushed by whatever watches them (a lag monitor):
//! `breakwater_origin_replica_lag_bytes{replica}` and
//! `breakwater_origin_replica_in_rotation{replica}` (1 while reads go to it, else 0). A replica
//! nobody has reported on yet has no series at all.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaLabels {
    replica: String,
}

/// The two replica gauge families.
pub(super) struct Replicas {
    lag: Family<ReplicaLabels, Gauge>,
    in_rotation: Family<ReplicaLabels, Gauge>,
}

impl Replicas {
    pub(super) fn new(registry: &mut Registry) -> Self {
        let lag = Family::default();
        registry.register_with_unit(
            "replica_lag",
            "Bytes of WAL each read replica has yet to replay, as last measured",
            Unit::Bytes,
            lag.clone(),
        );
        let in_rotation = Family::default();
        registry.register(
            "replica_in_rotation",
            "1 while reads are sent to the replica, 0 while it is taken out (too far behind or \
             unreachable)",
            in_rotation.clone(),
        );
        Self { lag, in_rotation }
    }

    pub(super) fn set_lag(&self, replica: &str, lag_bytes: u64) {
        self.lag
            .get_or_create(&labels(replica))
            .set(i64::try_from(lag_bytes).unwrap_or(i64::MAX));
    }

    pub(super) fn set_in_rotation(&self, replica: &str, in_rotation: bool) {
        self.in_rotation
            .get_or_create(&labels(replica))
            .set(i64::from(in_rotation));
    }

    pub(super) fn forget(&self, replica: &str) {
        self.lag.remove(&labels(replica));
        self.in_rotation.remove(&labels(replica));
    }
}

fn labels(replica: &str) -> ReplicaLabels {
    ReplicaLabels {
        replica: replica.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Metrics;

    #[tokio::test]
    async fn replicas_show_what_was_last_set_and_vanish_when_forgotten() {
        let metrics = Metrics::new();
        metrics.set_replica_lag("replica-1", 4096);
        metrics.set_replica_lag("replica-1", 128);
        metrics.set_replica_in_rotation("replica-1", true);
        metrics.set_replica_in_rotation("replica-2", false);
        let text = metrics.render().await.unwrap();
        for line in [
            "# TYPE breakwater_origin_replica_lag_bytes gauge",
            "breakwater_origin_replica_lag_bytes{replica=\"replica-1\"} 128",
            "breakwater_origin_replica_in_rotation{replica=\"replica-1\"} 1",
            "breakwater_origin_replica_in_rotation{replica=\"replica-2\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        // Never measured: no lag series, rather than a lag of 0.
        assert!(!text.contains("lag_bytes{replica=\"replica-2\"}"), "{text}");

        metrics.forget_replica("replica-1");
        let text = metrics.render().await.unwrap();
        assert!(!text.contains("replica-1"), "{text}");
        assert!(text.contains("replica-2"), "{text}");
    }
}
