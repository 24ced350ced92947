//! Signed edge → origin requests: the origin believes a request's `Breakwater-Principal`, and
//! serves its internal routes, only when the edge vouches for the request with a signature made
//! with a key the two share (`EDGE_KEY` at the edge, `BREAKWATER_EDGE_KEYS` at the origin).
//!
//! The edge signs, per attempt, with HMAC-SHA-256 over a canonical text of
//!
//! ```text
//! breakwater-v1
//! <unix seconds>
//! <nonce>
//! <METHOD>
//! <path and query, as sent>
//! <Breakwater-Principal, or empty>
//! <SHA-256 of the body, hex>
//! ```
//!
//! and sends `Breakwater-Signature: t=<unix seconds>, n=<nonce>, v1=<hex HMAC>`. Every line is
//! ASCII without line breaks (a principal is visible ASCII, a path and query is what a URL
//! parser produced), so no two requests share a text. The origin recomputes the text from the
//! request it received and accepts the signature under any of its keys (the current one and,
//! during a rotation, the previous), within [`MAX_SKEW_S`] of its own clock; a nonce it has seen
//! within that window is a replay (the origin keeps them, see `origin/src/edge.rs`).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::hash::hex;

/// The request header carrying the signature.
pub const HEADER: &str = "breakwater-signature";

/// How far the signature's time may be from the verifier's clock, either way, in seconds.
pub const MAX_SKEW_S: u64 = 60;

/// The shortest key accepted at either end: 32 characters, about 190 bits as random base64.
pub const MIN_KEY_LEN: usize = 32;

/// Longest nonce accepted: the edge's are 32 hex digits.
const MAX_NONCE_LEN: usize = 64;

const VERSION: &str = "breakwater-v1";

type HmacSha256 = Hmac<Sha256>;

/// What a signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signed<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub principal: Option<&'a str>,
    pub body: &'a [u8],
}

/// A `Breakwater-Signature` value, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub timestamp_s: u64,
    pub nonce: String,
    mac: Vec<u8>,
}

/// Why a signature was refused, as the `401` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the Breakwater-Signature header is malformed")]
    Malformed,
    #[error("the signature is more than {MAX_SKEW_S} s from the origin's clock")]
    Stale,
    #[error("the signature does not match the request under any configured edge key")]
    Mismatch,
    #[error("the signature was already used")]
    Replayed,
}

/// The header value signing `request` with `key` at `timestamp_s` under `nonce` (visible ASCII
/// without `,` or spaces; the edge uses random hex).
pub fn sign(key: &[u8], timestamp_s: u64, nonce: &str, request: &Signed<'_>) -> String {
    let mac = mac(key, timestamp_s, nonce, request)
        .finalize()
        .into_bytes();
    format!("t={timestamp_s}, n={nonce}, v1={}", hex(&mac))
}

impl Signature {
    /// Parses `t=<digits>, n=<nonce>, v1=<64 hex>`, parameters in any order, each once.
    pub fn parse(value: &str) -> Result<Self, Refused> {
        let (mut t, mut n, mut v1) = (None, None, None);
        for part in value.split(',') {
            let (name, val) = part.trim().split_once('=').ok_or(Refused::Malformed)?;
            let slot = match name {
                "t" => &mut t,
                "n" => &mut n,
                "v1" => &mut v1,
                _ => return Err(Refused::Malformed),
            };
            if slot.replace(val).is_some() {
                return Err(Refused::Malformed);
            }
        }
        let (Some(t), Some(n), Some(v1)) = (t, n, v1) else {
            return Err(Refused::Malformed);
        };
        let timestamp_s = (!t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
            .ok_or(Refused::Malformed)?;
        let nonce_ok = (1..=MAX_NONCE_LEN).contains(&n.len())
            && n.bytes().all(|b| b.is_ascii_graphic() && b != b',');
        let mac = unhex(v1).filter(|m| m.len() == 32);
        match (nonce_ok, mac) {
            (true, Some(mac)) => Ok(Self {
                timestamp_s,
                nonce: n.to_owned(),
                mac,
            }),
            _ => Err(Refused::Malformed),
        }
    }

    /// Checks the time against `now_s` and the MAC under each of `keys` in turn (in constant time
    /// per key). Replays are the caller's to detect, by [`Signature::nonce`].
    pub fn verify<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        now_s: u64,
        request: &Signed<'_>,
    ) -> Result<(), Refused> {
        if self.timestamp_s.abs_diff(now_s) > MAX_SKEW_S {
            return Err(Refused::Stale);
        }
        let matches = |key: &K| {
            mac(key.as_ref(), self.timestamp_s, &self.nonce, request)
                .verify_slice(&self.mac)
                .is_ok()
        };
        if keys.iter().any(matches) {
            Ok(())
        } else {
            Err(Refused::Mismatch)
        }
    }
}

#[expect(
    clippy::expect_used,
    reason = "HMAC takes a key of any length: new_from_slice cannot fail"
)]
fn mac(key: &[u8], timestamp_s: u64, nonce: &str, request: &Signed<'_>) -> HmacSha256 {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    let body = hex(&Sha256::digest(request.body));
    for line in [
        VERSION,
        &timestamp_s.to_string(),
        nonce,
        request.method,
        request.path_and_query,
        request.principal.unwrap_or(""),
    ] {
        mac.update(line.as_bytes());
        mac.update(b"\n");
    }
    mac.update(body.as_bytes());
    mac
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |b: u8| (b as char).to_digit(16);
            match pair {
                &[high, low] => Some((digit(high)? * 16 + digit(low)?) as u8),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const OLD: &[u8] = b"fedcba9876543210fedcba9876543210";
    const NOW: u64 = 1_800_000_000;

    fn order() -> Signed<'static> {
        Signed {
            method: "POST",
            path_and_query: "/api/orders?x=1",
            principal: Some("user:42"),
            body: br#"{"items":[{"product_id":1,"quantity":2}]}"#,
        }
    }

    fn signed(key: &[u8], at: u64, request: &Signed<'_>) -> Signature {
        Signature::parse(&sign(key, at, "00112233445566778899aabbccddeeff", request)).unwrap()
    }

    #[test]
    fn a_signature_verifies_under_its_key_within_the_skew() {
        for at in [NOW, NOW - MAX_SKEW_S, NOW + MAX_SKEW_S] {
            assert_eq!(
                signed(KEY, at, &order()).verify(&[KEY], NOW, &order()),
                Ok(())
            );
        }
        let stale = [NOW - MAX_SKEW_S - 1, NOW + MAX_SKEW_S + 1, 0, u64::MAX];
        for at in stale {
            let sig = signed(KEY, at, &order());
            assert_eq!(
                sig.verify(&[KEY], NOW, &order()),
                Err(Refused::Stale),
                "{at}"
            );
        }
    }

    #[test]
    fn either_key_of_a_rotation_verifies_and_a_third_does_not() {
        let by_old = signed(OLD, NOW, &order());
        assert_eq!(by_old.verify(&[KEY, OLD], NOW, &order()), Ok(()));
        assert_eq!(by_old.verify(&[KEY], NOW, &order()), Err(Refused::Mismatch));
        let none: [&[u8]; 0] = [];
        assert_eq!(by_old.verify(&none, NOW, &order()), Err(Refused::Mismatch));
    }

    #[test]
    fn every_covered_part_is_bound() {
        let sig = signed(KEY, NOW, &order());
        let base = order();
        let changed = [
            Signed {
                method: "PUT",
                ..base
            },
            Signed {
                path_and_query: "/api/orders?x=2",
                ..base
            },
            Signed {
                path_and_query: "/api/orders",
                ..base
            },
            Signed {
                principal: Some("user:43"),
                ..base
            },
            Signed {
                principal: None,
                ..base
            },
            Signed {
                body: b"{}",
                ..base
            },
            Signed { body: b"", ..base },
        ];
        for other in changed {
            assert_eq!(
                sig.verify(&[KEY], NOW, &other),
                Err(Refused::Mismatch),
                "{other:?}"
            );
        }
        // The nonce and the time are covered too.
        let header = sign(KEY, NOW, "aa", &base);
        let moved = header.replace("n=aa", "n=ab");
        assert_eq!(
            Signature::parse(&moved).unwrap().verify(&[KEY], NOW, &base),
            Err(Refused::Mismatch)
        );
        let later = header.replace(&format!("t={NOW}"), &format!("t={}", NOW + 1));
        assert_eq!(
            Signature::parse(&later).unwrap().verify(&[KEY], NOW, &base),
            Err(Refused::Mismatch)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let good = sign(KEY, NOW, "n1", &order());
        assert!(Signature::parse(&good).is_ok());
        let mac = &good[good.find("v1=").unwrap() + 3..];
        let cases = [
            String::new(),
            "t=1".into(),
            format!("t=1, n=a, v1={mac}, t=2"),
            format!("t=1, n=a, v1={mac}, x=2"),
            format!("t=-1, n=a, v1={mac}"),
            format!("t=, n=a, v1={mac}"),
            format!("t=99999999999999999999999, n=a, v1={mac}"),
            format!("t=1, n=, v1={mac}"),
            format!("t=1, n=a b, v1={mac}"),
            format!("t=1, n={}, v1={mac}", "a".repeat(65)),
            "t=1, n=a, v1=zz".into(),
            format!("t=1, n=a, v1={}", &mac[1..]),
            format!("t=1, n=a, v1={}", &mac[2..]),
            format!("t=1, n=a, v1={mac}00"),
            format!("t=1, n=a, v1={}é", &mac[..62]),
            format!("t=1 n=a v1={mac}"),
        ];
        for case in cases {
            assert_eq!(Signature::parse(&case), Err(Refused::Malformed), "{case:?}");
        }
        let reordered = format!("v1={mac},n=n1,  t={NOW}");
        assert_eq!(
            Signature::parse(&reordered)
                .unwrap()
                .verify(&[KEY], NOW, &order()),
            Ok(())
        );
    }
}
