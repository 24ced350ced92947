//! A seeded Zipf sampler: ranks `1..=n` with probability proportional to `1 / rank^s`.
//!
//! Hand-written rather than `rand_distr::Zipf` so that the key sequence depends only on this file
//! and the seed: `rand` documents that its generators and sampling algorithms may change values
//! between versions, and a benchmark compared across commits needs the same workload every time.

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny generator with full 64-bit period that passes
/// BigCrush; plenty for picking keys, and its output is fixed forever by the algorithm.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..bound` (`bound > 0`); the modulo bias is below 2^-40 for any bound used here.
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}

/// Inverse-CDF sampling over precomputed cumulative weights: O(n) memory, O(log n) per sample.
#[derive(Debug, Clone)]
pub struct Zipf {
    /// `cumulative[i]` = sum of the weights of ranks `1..=i+1`.
    cumulative: Vec<f64>,
}

impl Zipf {
    /// `n` ranks with exponent `s` (`s = 0` is uniform). Panics if `n == 0` or `s` is not finite.
    pub fn new(n: usize, s: f64) -> Self {
        assert!(n > 0, "Zipf needs at least one rank");
        assert!(
            s.is_finite() && s >= 0.0,
            "Zipf exponent must be finite and >= 0"
        );
        let mut total = 0.0;
        let cumulative = (1..=n)
            .map(|rank| {
                total += (rank as f64).powf(-s);
                total
            })
            .collect();
        Self { cumulative }
    }

    /// A rank in `1..=n`.
    pub fn sample(&self, rng: &mut SplitMix64) -> usize {
        let target = rng.next_f64() * self.total();
        // The first rank whose cumulative weight exceeds the target; `min` guards the last rank
        // against rounding in the final sum.
        let index = self.cumulative.partition_point(|&c| c <= target);
        index.min(self.cumulative.len() - 1) + 1
    }

    fn total(&self) -> f64 {
        self.cumulative[self.cumulative.len() - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Zipf {
        /// The probability of `rank` (1-based) implied by the cumulative table.
        fn probability(&self, rank: usize) -> f64 {
            let below = if rank > 1 {
                self.cumulative[rank - 2]
            } else {
                0.0
            };
            (self.cumulative[rank - 1] - below) / self.total()
        }
    }

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // First outputs for seed 1234567 from the reference C implementation (Vigna).
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn every_sample_is_a_valid_rank() {
        let zipf = Zipf::new(50, 1.2);
        let mut rng = SplitMix64::new(7);
        let mut seen = [false; 51];
        for _ in 0..100_000 {
            let rank = zipf.sample(&mut rng);
            assert!((1..=50).contains(&rank), "rank {rank} out of range");
            seen[rank] = true;
        }
        assert!(seen[1..].iter().all(|&s| s), "some rank never drawn");
    }

    #[test]
    fn frequencies_match_the_theory() {
        let (n, s, draws) = (10_000, 0.99, 400_000);
        let zipf = Zipf::new(n, s);
        let harmonic: f64 = (1..=n).map(|k| (k as f64).powf(-s)).sum();
        let mut rng = SplitMix64::new(42);
        let mut counts = vec![0u32; n + 1];
        for _ in 0..draws {
            counts[zipf.sample(&mut rng)] += 1;
        }
        for rank in [1usize, 2, 10, 100] {
            let expected = 1.0 / (rank as f64).powf(s) / harmonic;
            assert!((zipf.probability(rank) - expected).abs() < 1e-12);
            let observed = f64::from(counts[rank]) / draws as f64;
            // Five standard deviations of a binomial proportion.
            let sigma = (expected * (1.0 - expected) / draws as f64).sqrt();
            assert!(
                (observed - expected).abs() < 5.0 * sigma,
                "rank {rank}: observed {observed:.5}, expected {expected:.5}"
            );
        }
    }

    #[test]
    fn same_seed_same_sequence() {
        let zipf = Zipf::new(1000, 0.99);
        let draw = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..100).map(|_| zipf.sample(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }
}
