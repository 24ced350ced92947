//! A count-min sketch of access frequencies with periodic halving, the "TinyLFU" half of the
//! memory tier's admission policy (Einziger, Friedman & Manes, "TinyLFU", 2017).

/// Estimated recent access counts, saturating at 15 (four bits are enough to rank keys).
#[derive(Debug, Clone)]
pub struct FrequencySketch {
    rows: [Vec<u8>; DEPTH],
    mask: u64,
    additions: u64,
    /// After this many additions every counter is halved, so the sketch forgets old popularity.
    sample_size: u64,
}

const DEPTH: usize = 4;
const MAX_COUNT: u8 = 15;
/// Per-row seeds (odd 64-bit constants) that make the four rows independent hash functions.
const SEEDS: [u64; DEPTH] = [
    0x9E37_79B9_7F4A_7C15,
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
    0x85EB_CA77_C2B2_AE63,
];

impl FrequencySketch {
    /// A sketch sized for about `expected_items` distinct hot keys.
    pub fn new(expected_items: usize) -> Self {
        let width = expected_items.max(16).next_power_of_two();
        Self {
            rows: std::array::from_fn(|_| vec![0; width]),
            mask: width as u64 - 1,
            additions: 0,
            sample_size: 10 * width as u64,
        }
    }

    /// Records one access of the key whose 64-bit hash is `hash`.
    pub fn increment(&mut self, hash: u64) {
        let mut added = false;
        for (row, seed) in SEEDS.iter().enumerate() {
            let i = self.index(hash, *seed);
            let Some(counter) = self.rows.get_mut(row).and_then(|r| r.get_mut(i)) else {
                continue;
            };
            if *counter < MAX_COUNT {
                *counter += 1;
                added = true;
            }
        }
        if added {
            self.additions += 1;
            if self.additions >= self.sample_size {
                self.halve();
            }
        }
    }

    /// The estimated count: the minimum over the rows, which never underestimates.
    pub fn estimate(&self, hash: u64) -> u8 {
        SEEDS
            .iter()
            .enumerate()
            .filter_map(|(row, seed)| {
                let i = self.index(hash, *seed);
                self.rows.get(row).and_then(|r| r.get(i)).copied()
            })
            .min()
            .unwrap_or(0)
    }

    fn halve(&mut self) {
        for row in &mut self.rows {
            for c in row.iter_mut() {
                *c /= 2;
            }
        }
        self.additions /= 2;
    }

    fn index(&self, hash: u64, seed: u64) -> usize {
        // A multiply-xorshift mix per row spreads one hash into DEPTH independent positions.
        let mut h = hash.wrapping_add(seed).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 31;
        (h & self.mask) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate_and_never_underestimate() {
        let mut s = FrequencySketch::new(64);
        for _ in 0..5 {
            s.increment(42);
        }
        assert!(s.estimate(42) >= 5);
        for _ in 0..100 {
            s.increment(7);
        }
        assert_eq!(s.estimate(7), MAX_COUNT);
        assert_eq!(
            s.estimate(123_456),
            0,
            "an unseen key in an almost empty sketch"
        );
    }

    #[test]
    fn halving_forgets_old_popularity() {
        let mut s = FrequencySketch::new(16);
        for _ in 0..15 {
            s.increment(1);
        }
        let before = s.estimate(1);
        // Enough distinct additions to trigger at least one halving.
        for k in 0..(s.sample_size * 2) {
            s.increment(1_000 + k);
        }
        assert!(s.estimate(1) < before, "{} !< {before}", s.estimate(1));
    }
}
