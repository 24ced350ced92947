//! Per-request samples, counts by label, latency percentiles and the summary of a set of
//! requests (a whole run, or the part of one a scenario picks: a phase, a route, a second).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::answer::Answer;
use crate::cache_status::Outcome;

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

/// Counts by label (cache outcomes, answer kinds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally(BTreeMap<String, u64>);

impl Tally {
    pub fn add(&mut self, label: &str) {
        *self.0.entry(label.to_owned()).or_default() += 1;
    }

    pub fn get(&self, label: &str) -> u64 {
        self.0.get(label).copied().unwrap_or(0)
    }

    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How one request went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// To the last body byte (or to the failure). Open-loop runs count from the scheduled send
    /// time, so a late sender adds to it instead of hiding queueing (coordinated omission).
    pub latency: Duration,
    pub answer: Answer,
    /// The HTTP status; `None` without an answer.
    pub status: Option<u16>,
    pub cache: Outcome,
    /// The origin's `breakwater-read-from` (which database served a read), when it sent one.
    pub read_from: Option<String>,
}

/// Every request of one run, in the order of its request sequence.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    pub samples: Vec<Sample>,
    pub wall: Duration,
}

impl Samples {
    /// The whole run.
    pub fn summary(&self) -> Summary {
        Summary::of(&self.samples, self.wall)
    }
}

/// What a set of requests measured.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub requests: usize,
    /// Requests not [`Answer::Served`].
    pub errors: usize,
    pub wall: Duration,
    /// Latencies of the served requests, ascending.
    pub latencies: Vec<Duration>,
    /// `Cache-Status` outcomes of the served requests.
    pub cache: Tally,
    /// Every request by [`Answer::as_str`].
    pub answers: Tally,
    /// Requests without a 2xx answer, by status (`503`) or `no answer`.
    pub non_2xx: Tally,
    /// Served requests by the database their answer says served them (`breakwater-read-from`).
    pub read_from: Tally,
    /// Requests that reached the origin through the counting proxy (edge runs only).
    pub origin_requests: Option<u64>,
}

impl Summary {
    /// Summarises `samples`, which took `wall`.
    pub fn of<'a>(samples: impl IntoIterator<Item = &'a Sample>, wall: Duration) -> Self {
        let mut s = Self {
            wall,
            ..Self::default()
        };
        for sample in samples {
            s.requests += 1;
            s.answers.add(sample.answer.as_str());
            match sample.status {
                Some(200..=299) => {}
                Some(status) => s.non_2xx.add(&status.to_string()),
                None => s.non_2xx.add(Answer::Unanswered.as_str()),
            }
            if sample.answer == Answer::Served {
                s.latencies.push(sample.latency);
                s.cache.add(&sample.cache.label());
                if let Some(source) = &sample.read_from {
                    s.read_from.add(source);
                }
            } else {
                s.errors += 1;
            }
        }
        s.latencies.sort_unstable();
        s
    }

    /// Requests per second over the wall time.
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }

    /// Percentile `p` of the served requests' latencies.
    pub fn p(&self, p: f64) -> Option<Duration> {
        percentile(&self.latencies, p)
    }

    /// Requests without a 2xx answer.
    pub fn non_2xx_count(&self) -> u64 {
        self.non_2xx.labels().map(|l| self.non_2xx.get(l)).sum()
    }

    /// Requests that got `answer`.
    pub fn count(&self, answer: Answer) -> u64 {
        self.answers.get(answer.as_str())
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

    #[test]
    fn only_served_requests_have_latencies_and_cache_outcomes() {
        let sample = |ms: u64, answer, status| Sample {
            latency: Duration::from_millis(ms),
            answer,
            status,
            cache: Outcome::Hit("memory".into()),
            read_from: Some("replica-1".into()),
        };
        let samples = [
            sample(30, Answer::Served, Some(200)),
            sample(1, Answer::RateLimited, Some(429)),
            sample(10, Answer::Served, Some(404)),
            sample(2, Answer::Shed, Some(503)),
            sample(1000, Answer::Unanswered, None),
        ];
        let s = Summary::of(&samples, Duration::from_secs(1));
        assert_eq!(s.read_from.get("replica-1"), 2);
        assert_eq!(s.non_2xx_count(), 4);
        assert_eq!(s.non_2xx.get("404"), 1);
        assert_eq!(s.non_2xx.get("no answer"), 1);
        assert_eq!((s.requests, s.errors), (5, 3));
        assert_eq!(s.latencies, ms(&[10, 30]));
        assert_eq!(s.cache.get("hit memory"), 2);
        assert_eq!(s.count(Answer::Shed), 1);
        assert_eq!(s.count(Answer::CircuitOpen), 0);
        assert_eq!(s.count(Answer::Unanswered), 1);
        assert_eq!(s.throughput(), 5.0);
    }
}
