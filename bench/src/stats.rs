//! Latency percentiles and the summary of one run.

use std::time::Duration;

use crate::cache_status::Tally;

/// The nearest-rank percentile (`p` in `0..=100`) of ascending `sorted`; `None` when empty.
///
/// Exact over every sample rather than a histogram's bucket bound: runs are at most a few
/// hundred thousand requests, so keeping and sorting them all is cheap.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub requests: usize,
    pub errors: usize,
    pub wall: Duration,
    /// Latencies of the successful requests, ascending.
    pub latencies: Vec<Duration>,
    pub cache: Tally,
    /// Requests that reached the origin through the counting proxy (edge runs only).
    pub origin_requests: Option<u64>,
}

impl Summary {
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }

    pub fn p(&self, p: f64) -> Option<Duration> {
        percentile(&self.latencies, p)
    }

    /// `1 - origin requests / requests`: the share of requests the edge answered itself.
    pub fn offload(&self) -> Option<f64> {
        let origin = self.origin_requests?;
        (self.requests > 0).then(|| 1.0 - origin as f64 / self.requests as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn nearest_rank_on_one_to_hundred() {
        let d = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&d, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&d, 95.0), Some(Duration::from_millis(95)));
        assert_eq!(percentile(&d, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&d, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&d, 0.0), Some(Duration::from_millis(1)));
    }

    #[test]
    fn small_and_empty_inputs() {
        assert_eq!(percentile(&[], 50.0), None);
        let one = ms(&[7]);
        assert_eq!(percentile(&one, 99.0), Some(Duration::from_millis(7)));
        // Ten samples: p95 is the 10th (ceil(9.5)), p50 the 5th.
        let ten = ms(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 1000]);
        assert_eq!(percentile(&ten, 50.0), Some(Duration::from_millis(5)));
        assert_eq!(percentile(&ten, 95.0), Some(Duration::from_millis(1000)));
    }

    #[test]
    fn offload_counts_the_share_kept_from_the_origin() {
        let s = Summary {
            requests: 200,
            origin_requests: Some(50),
            ..Summary::default()
        };
        assert_eq!(s.offload(), Some(0.75));
        assert_eq!(Summary::default().offload(), None);
    }
}
