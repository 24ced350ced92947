//! The failover scenario's clock: three phases of fixed length (before the kill, the outage,
//! after the restart), which phase an answer belongs to, and the figures a phase is judged by.

use std::time::Duration;

use crate::load::Timed;
use crate::stats::Sample;

/// A part of a failover run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Every origin up.
    Before,
    /// The killed origin down.
    During,
    /// The killed origin restarted.
    After,
}

impl Phase {
    pub const ALL: [Self; 3] = [Self::Before, Self::During, Self::After];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Before => "before",
            Self::During => "during",
            Self::After => "after",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Self::Before => 0,
            Self::During => 1,
            Self::After => 2,
        }
    }
}

/// The phases' lengths, back to back from the run's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phases {
    pub before: Duration,
    pub during: Duration,
    pub after: Duration,
}

impl Phases {
    /// When the origin is killed: the end of [`Phase::Before`].
    pub fn kill_at(&self) -> Duration {
        self.before
    }

    /// When it is restarted: the end of [`Phase::During`].
    pub fn restart_at(&self) -> Duration {
        self.before + self.during
    }

    pub fn total(&self) -> Duration {
        self.before + self.during + self.after
    }

    pub fn length(&self, phase: Phase) -> Duration {
        match phase {
            Phase::Before => self.before,
            Phase::During => self.during,
            Phase::After => self.after,
        }
    }

    /// The phase of an answer (or failure) that came `at` after the start. An answer belongs to
    /// the phase it arrived in, so a request in flight at the kill and reset by it counts as
    /// the outage's; one that arrives after the end (sent before it) as the last phase's.
    pub fn of(&self, at: Duration) -> Phase {
        if at < self.kill_at() {
            Phase::Before
        } else if at < self.restart_at() {
            Phase::During
        } else {
            Phase::After
        }
    }

    /// The samples of each phase, in [`Phase::ALL`] order.
    pub fn split<'a>(&self, timed: &'a [Timed]) -> [Vec<&'a Sample>; 3] {
        let mut phases: [Vec<&Sample>; 3] = Default::default();
        for t in timed {
            phases[self.of(t.at).index()].push(&t.sample);
        }
        phases
    }
}

/// The share of `requests` without a 2xx answer (no answer counts); `None` without requests.
pub fn error_rate(non_2xx: u64, requests: usize) -> Option<f64> {
    (requests > 0).then(|| non_2xx as f64 / requests as f64)
}

/// One second of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Second {
    /// Answers (and failures) that came in it.
    pub requests: u64,
    /// Of them, without a 2xx answer.
    pub non_2xx: u64,
}

/// Answers per second of the run, `total` long (a late answer counts in the last second).
pub fn per_second(timed: &[Timed], total: Duration) -> Vec<Second> {
    let n = total.as_secs_f64().ceil().max(1.0) as usize;
    let mut seconds = vec![Second::default(); n];
    for t in timed {
        let second = &mut seconds[(t.at.as_secs() as usize).min(n - 1)];
        second.requests += 1;
        if !t.sample.status.is_some_and(|s| (200..300).contains(&s)) {
            second.non_2xx += 1;
        }
    }
    seconds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Answer;
    use crate::cache_status::Outcome;

    fn phases() -> Phases {
        Phases {
            before: Duration::from_secs(5),
            during: Duration::from_secs(10),
            after: Duration::from_secs(10),
        }
    }

    fn at(ms: u64, status: Option<u16>) -> Timed {
        Timed {
            at: Duration::from_millis(ms),
            sample: Sample {
                latency: Duration::from_millis(1),
                answer: status.map_or(Answer::Unanswered, |s| Answer::classify(s, None)),
                status,
                cache: Outcome::Absent,
                read_from: None,
            },
        }
    }

    #[test]
    fn answers_belong_to_the_phase_they_arrive_in() {
        let p = phases();
        assert_eq!(
            (p.kill_at(), p.restart_at()),
            (p.before, p.before + p.during)
        );
        assert_eq!(p.total(), Duration::from_secs(25));
        assert_eq!(p.of(Duration::ZERO), Phase::Before);
        assert_eq!(p.of(Duration::from_millis(4_999)), Phase::Before);
        assert_eq!(p.of(Duration::from_secs(5)), Phase::During);
        assert_eq!(p.of(Duration::from_millis(14_999)), Phase::During);
        assert_eq!(p.of(Duration::from_secs(15)), Phase::After);
        assert_eq!(p.of(Duration::from_secs(60)), Phase::After);
        let timed = [
            at(10, Some(200)),
            at(5_000, Some(502)),
            at(4_999, Some(200)),
            at(30_000, None),
        ];
        let [before, during, after] = p.split(&timed);
        assert_eq!((before.len(), during.len(), after.len()), (2, 1, 1));
        assert_eq!(during[0].status, Some(502));
        assert_eq!(after[0].status, None);
    }

    #[test]
    fn error_rates_count_every_non_2xx_among_all_requests() {
        assert_eq!(error_rate(0, 0), None);
        assert_eq!(error_rate(0, 10), Some(0.0));
        assert_eq!(error_rate(5, 20), Some(0.25));
        assert_eq!(error_rate(20, 20), Some(1.0));
    }

    #[test]
    fn seconds_count_answers_and_failures_where_they_arrived() {
        let timed = [
            at(0, Some(200)),
            at(999, Some(503)),
            at(1_000, None),
            at(2_500, Some(200)),
            at(9_000, Some(502)), // late: counts in the last second
        ];
        let s = per_second(&timed, Duration::from_secs(3));
        let second = |requests, non_2xx| Second { requests, non_2xx };
        assert_eq!(s, vec![second(2, 1), second(1, 1), second(2, 1)]);
    }
}
