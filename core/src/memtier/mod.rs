//! The isolate-memory tier: a byte-bounded cache with W-TinyLFU admission.
//!
//! New entries enter a small LRU *window* (1% of the bytes). When the window overflows, its
//! oldest entry becomes a candidate for the *main* space (segmented LRU: probation, then
//! protected on a second hit) and is admitted only if the frequency sketch says it is requested
//! more often than the entries it would evict. A scan of one-off keys therefore churns only the
//! window and never flushes the hot set, which plain LRU would (Einziger et al., "TinyLFU", 2017;
//! the design of Caffeine).
//!
//! Pure and clock-free: freshness is the caller's business (it stores expiry in `V`).

#![expect(
    clippy::indexing_slicing,
    reason = "segment slots index the three per-segment arrays; a node is looked up only while it is held"
)]

mod sketch;

pub use sketch::FrequencySketch;
use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Window,
    Probation,
    Protected,
}

#[derive(Debug)]
struct Node<V> {
    value: V,
    bytes: usize,
    segment: Segment,
    /// Position in its segment's recency order (larger = more recent).
    tick: u64,
}

/// Why an insert did not keep the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Larger than the per-entry limit (an eighth of the capacity).
    TooLarge,
}

/// A byte-bounded W-TinyLFU cache.
#[derive(Debug)]
pub struct MemoryTier<V> {
    nodes: HashMap<String, Node<V>>,
    order: [BTreeMap<u64, String>; 3],
    bytes: [usize; 3],
    budget: [usize; 3],
    capacity: usize,
    tick: u64,
    sketch: FrequencySketch,
}

fn slot(segment: Segment) -> usize {
    match segment {
        Segment::Window => 0,
        Segment::Probation => 1,
        Segment::Protected => 2,
    }
}

fn hash(key: &str) -> u64 {
    // DefaultHasher::new() uses fixed keys: deterministic, which a pure core needs.
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

impl<V> MemoryTier<V> {
    /// A tier holding at most `capacity` bytes, sized for entries of about `typical_entry` bytes.
    pub fn new(capacity: usize, typical_entry: usize) -> Self {
        let window = (capacity / 100).max(1);
        let main = capacity - window;
        let protected = main * 4 / 5;
        Self {
            nodes: HashMap::new(),
            order: Default::default(),
            bytes: [0; 3],
            budget: [window, main - protected, protected],
            capacity,
            tick: 0,
            sketch: FrequencySketch::new(capacity / typical_entry.max(1)),
        }
    }

    /// Bytes currently held; never more than the capacity.
    pub fn bytes(&self) -> usize {
        self.bytes.iter().sum()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Looks `key` up, counting the access and refreshing its recency.
    pub fn get(&mut self, key: &str) -> Option<&V> {
        self.sketch.increment(hash(key));
        let segment = self.nodes.get(key)?.segment;
        match segment {
            Segment::Window | Segment::Protected => self.move_to(key, segment),
            // A second hit earns the protected segment; protected overflow goes back to probation.
            Segment::Probation => {
                self.move_to(key, Segment::Protected);
                while self.bytes[2] > self.budget[2] {
                    let Some(oldest) = self.oldest(Segment::Protected) else {
                        break;
                    };
                    self.move_to(&oldest, Segment::Probation);
                }
            }
        }
        self.nodes.get(key).map(|n| &n.value)
    }

    /// Inserts or replaces `key`. The entry may later lose admission to hotter keys.
    /// A refused insert still removes the key's older value: it is no longer the latest.
    pub fn insert(&mut self, key: String, value: V, bytes: usize) -> Result<(), Rejected> {
        self.remove(&key);
        if bytes > self.capacity / 8 {
            return Err(Rejected::TooLarge);
        }
        self.sketch.increment(hash(&key));
        self.tick += 1;
        self.order[0].insert(self.tick, key.clone());
        self.bytes[0] += bytes;
        self.nodes.insert(
            key,
            Node {
                value,
                bytes,
                segment: Segment::Window,
                tick: self.tick,
            },
        );
        while self.bytes[0] > self.budget[0] {
            let Some(candidate) = self.oldest(Segment::Window) else {
                break;
            };
            self.admit(candidate);
        }
        Ok(())
    }

    /// Removes `key` (purge, or an entry the caller found expired).
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let node = self.nodes.remove(key)?;
        let s = slot(node.segment);
        self.order[s].remove(&node.tick);
        self.bytes[s] -= node.bytes;
        Some(node.value)
    }

    /// Moves the window's oldest entry into main space if it is more popular than what it
    /// would displace; otherwise drops it.
    fn admit(&mut self, candidate: String) {
        let size = self.nodes[&candidate].bytes;
        let main_budget = self.budget[1] + self.budget[2];
        let mut need = (self.bytes[1] + self.bytes[2] + size).saturating_sub(main_budget);
        let mut victims = Vec::new();
        let victim_order = self.order[1].values().chain(self.order[2].values());
        for victim in victim_order {
            if need == 0 {
                break;
            }
            need = need.saturating_sub(self.nodes[victim].bytes);
            victims.push(victim.clone());
        }
        let candidate_freq = self.sketch.estimate(hash(&candidate));
        let wins = victims
            .iter()
            .all(|v| candidate_freq > self.sketch.estimate(hash(v)));
        if wins {
            for v in &victims {
                self.remove(v);
            }
            self.move_to(&candidate, Segment::Probation);
        } else {
            self.remove(&candidate);
        }
    }

    fn oldest(&self, segment: Segment) -> Option<String> {
        self.order[slot(segment)].values().next().cloned()
    }

    fn move_to(&mut self, key: &str, to: Segment) {
        self.tick += 1;
        let tick = self.tick;
        let Some(node) = self.nodes.get_mut(key) else {
            return;
        };
        let from = slot(node.segment);
        self.order[from].remove(&node.tick);
        self.bytes[from] -= node.bytes;
        node.segment = to;
        node.tick = tick;
        self.order[slot(to)].insert(tick, key.to_owned());
        self.bytes[slot(to)] += node.bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_scan_does_not_flush_the_hot_set() {
        // 100 hot keys of 100 bytes in a 20 kB tier, each requested several times.
        let mut tier = MemoryTier::new(20_000, 100);
        for round in 0..5 {
            for k in 0..100 {
                let key = format!("hot{k}");
                if tier.get(&key).is_none() {
                    tier.insert(key, round, 100).unwrap();
                }
            }
        }
        // A scan of 10,000 one-off keys (a crawler, or an attacker walking the catalogue).
        for k in 0..10_000 {
            tier.insert(format!("scan{k}"), 0, 100).unwrap();
        }
        let survivors = (0..100)
            .filter(|k| tier.get(&format!("hot{k}")).is_some())
            .count();
        assert!(
            survivors >= 90,
            "only {survivors}/100 hot keys survived the scan"
        );
        assert!(tier.bytes() <= 20_000);
    }

    #[test]
    fn plain_lru_would_have_lost_them() {
        // The same workload against a window-only tier (no admission filter) loses the hot set,
        // which shows the test above is measuring admission, not luck.
        let mut tier = MemoryTier::new(20_000, 100);
        tier.budget = [20_000, 0, 0];
        for k in 0..100 {
            tier.insert(format!("hot{k}"), 0, 100).unwrap();
        }
        for k in 0..10_000 {
            tier.insert(format!("scan{k}"), 0, 100).unwrap();
        }
        let survivors = (0..100)
            .filter(|k| tier.get(&format!("hot{k}")).is_some())
            .count();
        assert_eq!(survivors, 0);
    }

    #[test]
    fn oversized_entries_are_refused_and_replacement_keeps_accounting() {
        let mut tier = MemoryTier::new(8_000, 100);
        assert_eq!(tier.insert("big".into(), 1, 1_001), Err(Rejected::TooLarge));
        tier.insert("k".into(), 1, 50).unwrap();
        assert_eq!(tier.insert("k".into(), 9, 5_000), Err(Rejected::TooLarge));
        assert_eq!(
            tier.get("k"),
            None,
            "a too-large update still drops the older value"
        );
        tier.insert("k".into(), 1, 50).unwrap();
        tier.insert("k".into(), 2, 70).unwrap();
        assert_eq!(tier.get("k"), Some(&2));
        assert_eq!(tier.bytes(), 70);
        assert_eq!(tier.remove("k"), Some(2));
        assert_eq!(tier.bytes(), 0);
        assert!(tier.is_empty());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Get(u8),
        Insert(u8, u32, u16),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<u8>().prop_map(Op::Get),
            (any::<u8>(), any::<u32>(), 1u16..600).prop_map(|(k, v, b)| Op::Insert(k, v, b)),
            any::<u8>().prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// Against a map of what was last written: the tier may forget, but never holds a value
        /// that was not the latest write, and never exceeds its byte capacity.
        #[test]
        fn never_stale_never_over_budget(ops in proptest::collection::vec(op(), 1..400)) {
            let mut tier = MemoryTier::new(4_000, 100);
            let mut model = HashMap::new();
            for op in ops {
                match op {
                    Op::Get(k) => {
                        let got = tier.get(&k.to_string()).copied();
                        if let Some(v) = got {
                            prop_assert_eq!(Some(&v), model.get(&k));
                        }
                    }
                    Op::Insert(k, v, b) => {
                        if tier.insert(k.to_string(), v, b as usize).is_ok() {
                            model.insert(k, v);
                        } else {
                            model.remove(&k);
                        }
                    }
                    Op::Remove(k) => {
                        tier.remove(&k.to_string());
                        model.remove(&k);
                    }
                }
                prop_assert!(tier.bytes() <= 4_000);
                prop_assert_eq!(tier.bytes(), tier.nodes.values().map(|n| n.bytes).sum::<usize>());
                prop_assert_eq!(tier.len(), tier.order.iter().map(BTreeMap::len).sum::<usize>());
            }
        }
    }
}
