//! The request sequence: Zipf-distributed popularity over product pages and list pages.

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
}
