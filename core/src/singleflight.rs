//! Single-flight bookkeeping for cache misses: concurrent misses for one key in an isolate make
//! one origin fetch, and lock timeouts keep a hung fetch from stalling everyone.
//!
//! Pure: the edge owns the futures and the timers; this decides who fetches and who waits.

use std::collections::HashMap;

/// Lock timeouts, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A leader older than this is presumed hung: the next miss takes over and fetches itself.
    pub max_leader_age_ms: u64,
    /// How long a follower waits for the leader before giving up (to fetch, or to serve stale).
    pub max_follower_wait_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            max_leader_age_ms: 10_000,
            max_follower_wait_ms: 5_000,
        }
    }
}

/// What a miss should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// Nobody is fetching this key: fetch it; call [`Flights::finish`] with `generation` after.
    Lead { generation: u64 },
    /// A fetch is under way: wait for it, at most `wait_ms`.
    Follow { generation: u64, wait_ms: u64 },
    /// The current leader is too old to trust: fetch it yourself and become the leader.
    TakeOver { generation: u64 },
}

impl Join {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Lead { .. } => "lead",
            Self::Follow { .. } => "follow",
            Self::TakeOver { .. } => "take-over",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Flight {
    started_ms: u64,
    generation: u64,
}

/// The fetches in flight in one isolate, by cache key.
#[derive(Debug, Default)]
pub struct Flights {
    timeouts: Timeouts,
    in_flight: HashMap<String, Flight>,
    next_generation: u64,
}

impl Flights {
    pub fn new(timeouts: Timeouts) -> Self {
        Self {
            timeouts,
            ..Self::default()
        }
    }

    /// A miss for `key` at `now_ms`.
    pub fn join(&mut self, key: &str, now_ms: u64) -> Join {
        if let Some(flight) = self.in_flight.get(key) {
            let age = now_ms.saturating_sub(flight.started_ms);
            if age < self.timeouts.max_leader_age_ms {
                let left = self.timeouts.max_leader_age_ms - age;
                return Join::Follow {
                    generation: flight.generation,
                    wait_ms: left.min(self.timeouts.max_follower_wait_ms),
                };
            }
            let generation = self.start(key, now_ms);
            return Join::TakeOver { generation };
        }
        Join::Lead {
            generation: self.start(key, now_ms),
        }
    }

    /// The leader of `generation` is done (whatever the outcome). A leader that was taken over
    /// finishing late must not end its successor's flight, hence the generation check.
    pub fn finish(&mut self, key: &str, generation: u64) {
        if self
            .in_flight
            .get(key)
            .is_some_and(|f| f.generation == generation)
        {
            self.in_flight.remove(key);
        }
    }

    /// Number of keys being fetched; bounded by the concurrency of the isolate.
    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    fn start(&mut self, key: &str, now_ms: u64) -> u64 {
        self.next_generation += 1;
        let flight = Flight {
            started_ms: now_ms,
            generation: self.next_generation,
        };
        self.in_flight.insert(key.to_owned(), flight);
        self.next_generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn flights() -> Flights {
        Flights::new(Timeouts {
            max_leader_age_ms: 1_000,
            max_follower_wait_ms: 300,
        })
    }

    #[test]
    fn one_leader_then_followers_then_free_again() {
        let mut f = flights();
        let Join::Lead { generation } = f.join("k", 0) else {
            panic!("first miss leads")
        };
        assert_eq!(
            f.join("k", 10),
            Join::Follow {
                generation,
                wait_ms: 300
            }
        );
        assert_eq!(
            f.join("k", 900),
            Join::Follow {
                generation,
                wait_ms: 100
            },
            "never past the leader's age limit"
        );
        assert!(
            matches!(f.join("other", 10), Join::Lead { .. }),
            "keys are independent"
        );
        f.finish("k", generation);
        assert!(matches!(f.join("k", 20), Join::Lead { .. }));
    }

    #[test]
    fn a_hung_leader_is_taken_over_and_its_late_finish_is_ignored() {
        let mut f = flights();
        let Join::Lead { generation: old } = f.join("k", 0) else {
            panic!()
        };
        let Join::TakeOver { generation: new } = f.join("k", 1_000) else {
            panic!("old leader should be taken over")
        };
        f.finish("k", old);
        assert!(matches!(f.join("k", 1_001), Join::Follow { generation, .. } if generation == new));
        f.finish("k", new);
        assert!(f.is_empty());
    }

    proptest! {
        /// At any instant at most one leader per key is trusted, followers never wait past the
        /// leader's deadline, and finishing every generation empties the table.
        #[test]
        fn invariants(steps in proptest::collection::vec((0u8..4, 0u64..400), 1..200)) {
            let mut f = flights();
            let mut now = 0;
            let mut leaders: Vec<(String, u64)> = Vec::new();
            for (key, dt) in steps {
                now += dt;
                let key = key.to_string();
                match f.join(&key, now) {
                    Join::Lead { generation } | Join::TakeOver { generation } => leaders.push((key, generation)),
                    Join::Follow { wait_ms, .. } => prop_assert!(wait_ms <= 300 && wait_ms > 0),
                }
                prop_assert!(f.len() <= 4);
            }
            for (key, generation) in leaders {
                f.finish(&key, generation);
            }
            prop_assert!(f.is_empty());
        }
    }
}
