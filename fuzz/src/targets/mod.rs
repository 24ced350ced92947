//! The fuzz targets: one per boundary where outside bytes meet a parser, each a function from
//! input bytes to an [`Outcome`] or a broken invariant.
//!
//! A target never panics on purpose: a panic is always a bug in the code under test. A broken
//! invariant is an `Err` whose text starts with the rule's name, then `: ` and the details, so
//! the runner can tell two failures of one rule apart from two rules while it shrinks an input.

use std::sync::OnceLock;

use breakwater_core::policy::CachePolicy;
use serde_json::json;

use crate::rng::Rng;

mod cache_entry;
mod cache_headers;
mod config;
mod edge_auth;
mod idempotency;
mod intake;
mod origin;
mod token;
mod writebehind;

/// A fuzz target.
pub struct Target {
    /// The name on the command line and of its corpus and artifact directories.
    pub name: &'static str,
    /// What it feeds and what it asserts, for `list`.
    pub about: &'static str,
    /// A fresh structured input.
    pub generate: fn(&mut Rng) -> Vec<u8>,
    /// Runs one input: its outcome, or the invariant it broke.
    pub run: fn(&[u8]) -> Result<Outcome, String>,
    /// Tokens the mutator splices in: the grammar's keywords and delimiters.
    pub dictionary: &'static [&'static str],
    /// Longest input tried; longer ones are cut.
    pub max_len: usize,
}

/// Every target, in the order `make fuzz` runs them.
pub const TARGETS: &[Target] = &[
    intake::TARGET,
    cache_headers::TARGET,
    cache_entry::TARGET,
    config::TARGET,
    idempotency::TARGET,
    token::TARGET,
    edge_auth::TARGET,
    writebehind::TARGET,
    origin::TARGET,
];

/// The target called `name`.
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// What an input did: the set of labels a target notes on the way (which branch, which error
/// kind, which lookup decision), as 64-bit hashes. The runner keeps an input whose set it has not
/// seen before: without coverage instrumentation on stable Rust, a new combination of outcomes
/// is the signal that an input reaches somewhere new. A set, not a sequence, so that repeating
/// or reordering the same steps is nothing new.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome(Vec<u64>);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(bytes: impl IntoIterator<Item = u8>, start: u64) -> u64 {
    bytes
        .into_iter()
        .fold(start, |h, b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

impl Outcome {
    /// Adds a label.
    pub fn note(&mut self, label: &str) {
        self.0.push(fnv(label.bytes(), FNV_OFFSET));
    }

    /// Adds a small number as a label (a status, a count bucket).
    pub fn note_num(&mut self, n: u64) {
        self.0.push(fnv(n.to_le_bytes(), FNV_PRIME));
    }

    /// The digest of the set of labels.
    pub fn digest(&self) -> u64 {
        let mut labels = self.0.clone();
        labels.sort_unstable();
        labels.dedup();
        labels
            .iter()
            .fold(FNV_OFFSET, |h, label| fnv(label.to_le_bytes(), h))
    }
}

/// `Err("rule: details")` unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $rule:literal) => {
        if !$cond {
            return Err(String::from($rule));
        }
    };
    ($cond:expr, $rule:literal, $($details:tt)+) => {
        if !$cond {
            return Err(format!("{}: {}", $rule, format!($($details)+)));
        }
    };
}
pub(crate) use ensure;

/// A count as a coarse bucket (0, 1, 2-3, 4-7, ...), so outcomes do not multiply by every length.
pub fn bucket(n: usize) -> u64 {
    u64::from(usize::BITS - n.leading_zeros())
}

/// The cache policy keys and purges are checked under: `wrangler.toml`'s routes, with a keyed
/// header added so that part of the key is exercised too.
pub fn cache_policy() -> &'static CachePolicy {
    static POLICY: OnceLock<CachePolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        CachePolicy::from_value(json!({"routes": [
            {"prefix": "/api/products", "ttl": {"floor": 0, "ceiling": 3600},
             "stale_while_revalidate": 30, "stale_if_error": 600,
             "key": {"sort_query": true, "drop_params": ["utm_*", "fbclid", "gclid"],
                     "headers": ["accept-language"]}},
            {"prefix": "/api/", "mode": "bypass"}
        ]}))
        .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_findable() {
        for t in TARGETS {
            assert_eq!(find(t.name).map(|f| f.name), Some(t.name));
        }
        let mut names: Vec<_> = TARGETS.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TARGETS.len());
        assert!(find("nope").is_none());
    }

    #[test]
    fn the_cache_policy_parses() {
        assert_eq!(cache_policy().routes.len(), 2);
    }

    #[test]
    fn outcomes_are_sets_of_labels() {
        let digest = |labels: &[&str]| {
            let mut o = Outcome::default();
            labels.iter().for_each(|l| o.note(l));
            o.digest()
        };
        assert_eq!(digest(&["a", "b"]), digest(&["b", "a", "a"]));
        assert_ne!(digest(&["a", "b"]), digest(&["a"]));
        assert_ne!(digest(&["ab"]), digest(&["a", "b"]));
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(3), 2);
        assert_eq!(bucket(4), 3);
    }
}
