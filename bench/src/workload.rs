//! The request sequences: Zipf-distributed popularity over product pages and list pages, and
//! Poisson arrival times for open-loop runs.

use std::time::Duration;

use crate::zipf::{SplitMix64, Zipf};

/// What to request and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Product ids `1..=products` (the origin seeds 10,000).
    pub products: usize,
    /// List pages `1..=list_pages` of `/api/products?page=k`.
    pub list_pages: usize,
    /// Zipf exponent.
    pub s: f64,
    pub requests: usize,
    pub seed: u64,
}

/// The paths to request, in order. The same spec always gives the same sequence.
///
/// Popularity ranks are assigned to keys by a seeded shuffle, so list pages are spread over the
/// ranks instead of all being the most (or least) popular keys.
pub fn paths(spec: &Spec) -> Vec<String> {
    let mut keys: Vec<String> = (1..=spec.products)
        .map(|id| format!("/api/products/{id}"))
        .chain((1..=spec.list_pages).map(|page| format!("/api/products?page={page}")))
        .collect();
    let mut rng = SplitMix64::new(spec.seed);
    // Fisher-Yates.
    for i in (1..keys.len()).rev() {
        keys.swap(i, rng.below(i + 1));
    }
    let zipf = Zipf::new(keys.len(), spec.s);
    (0..spec.requests)
        .map(|_| keys[zipf.sample(&mut rng) - 1].clone())
        .collect()
}

/// Distinct paths in a sequence: the cold misses any cache must take at least once.
pub fn distinct(paths: &[String]) -> usize {
    let mut sorted: Vec<&String> = paths.iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.len()
}

/// Send times of a Poisson process of `rate` per second from `from` until `until` (exponential
/// gaps, so requests bunch as independent clients' do, rather than arriving evenly spaced).
pub fn poisson(rng: &mut SplitMix64, rate: f64, from: Duration, until: Duration) -> Vec<Duration> {
    assert!(rate > 0.0 && rate.is_finite(), "a positive rate");
    let mut times = Vec::new();
    let mut t = from.as_secs_f64();
    loop {
        // 1 - u is in (0, 1], so the logarithm is finite.
        t += -(1.0 - rng.next_f64()).ln() / rate;
        if t >= until.as_secs_f64() {
            return times;
        }
        times.push(Duration::from_secs_f64(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            products: 100,
            list_pages: 5,
            s: 0.99,
            requests: 5_000,
            seed: 9,
        }
    }

    #[test]
    fn deterministic_and_within_the_key_space() {
        let a = paths(&spec());
        assert_eq!(a, paths(&spec()));
        assert_eq!(a.len(), 5_000);
        for p in &a {
            let ok = p
                .strip_prefix("/api/products/")
                .and_then(|id| id.parse::<usize>().ok())
                .is_some_and(|id| (1..=100).contains(&id))
                || p.strip_prefix("/api/products?page=")
                    .and_then(|k| k.parse::<usize>().ok())
                    .is_some_and(|k| (1..=5).contains(&k));
            assert!(ok, "unexpected path {p}");
        }
        assert!(a.iter().any(|p| p.contains("?page=")));
        assert!(distinct(&a) <= 105);
    }

    #[test]
    fn poisson_arrivals_keep_their_rate_and_window() {
        let mut rng = SplitMix64::new(3);
        let (from, until) = (Duration::from_secs(10), Duration::from_secs(30));
        let times = poisson(&mut rng, 500.0, from, until);
        // 10,000 expected; the standard deviation is 100.
        assert!((9_500..=10_500).contains(&times.len()), "{}", times.len());
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(times.iter().all(|t| (from..until).contains(t)));
    }
}
