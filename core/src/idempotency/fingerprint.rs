//! The request fingerprint: what makes a retry "the same request" as the one a key was first used
//! for. A key sent again with a different fingerprint is a 422, never a replay.
//!
//! It is SHA-256 over the method, the path and query, and the SHA-256 of the body, each
//! length-prefixed so that no two different requests encode alike (`GE` + `T/x` is not `GET` +
//! `/x`). Each part is taken as raw bytes:
//!
//! - The method as sent: methods are case-sensitive (RFC 9110 §9.1).
//! - The path and query as the edge forwards them to the origin, so two requests with one
//!   fingerprint are one request to the origin. A different method or route with the same key is
//!   therefore a mismatch.
//! - The body bytes, not a canonical form of its JSON. A client retrying sends the bytes it sent
//!   before; canonicalising (RFC 8785) would make the edge parse every body and make the answer
//!   depend on how a parser reads `1.0` versus `1`. Semantically equal but differently written
//!   JSON is a different request, consistently.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// A request fingerprint; serialised as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Fingerprints a request. See the module documentation.
pub fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> Fingerprint {
    let body_digest = Sha256::digest(body);
    let mut hasher = Sha256::new();
    for part in [
        b"breakwater idempotency fingerprint v1".as_slice(),
        method.as_bytes(),
        path_and_query.as_bytes(),
        body_digest.as_slice(),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    Fingerprint(hasher.finalize().into())
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl From<Fingerprint> for String {
    fn from(fingerprint: Fingerprint) -> Self {
        fingerprint.to_string()
    }
}

impl TryFrom<String> for Fingerprint {
    type Error = String;

    fn try_from(hex: String) -> Result<Self, Self::Error> {
        let invalid = || format!("a fingerprint is 64 lowercase hex digits, not {hex:?}");
        if hex.len() != 64 {
            return Err(invalid());
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks(2)) {
            let digit = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            };
            *byte = match pair {
                &[high, low] => match (digit(high), digit(low)) {
                    (Some(high), Some(low)) => high << 4 | low,
                    _ => return Err(invalid()),
                },
                _ => return Err(invalid()),
            };
        }
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_part_counts_and_parts_cannot_shift() {
        let base = fingerprint("POST", "/api/orders", b"{}");
        assert_eq!(base, fingerprint("POST", "/api/orders", b"{}"));
        for other in [
            fingerprint("PUT", "/api/orders", b"{}"),
            fingerprint("post", "/api/orders", b"{}"),
            fingerprint("POST", "/api/orders?x=1", b"{}"),
            fingerprint("POST", "/api/orders", b"{ }"),
            fingerprint("POS", "T/api/orders", b"{}"),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn serialises_as_hex_and_refuses_anything_else() {
        let fp = fingerprint("POST", "/", b"");
        let json = serde_json::to_string(&fp).unwrap();
        assert_eq!(json.len(), 66);
        assert_eq!(serde_json::from_str::<Fingerprint>(&json).unwrap(), fp);
        for bad in ["\"\"", &json.to_uppercase(), &json.replace('"', "\"0")] {
            assert!(serde_json::from_str::<Fingerprint>(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Distinct requests never share a fingerprint, and equal ones always do. Tiny alphabets
        /// make both equal requests and parts that differ only by where one ends common.
        #[test]
        fn fingerprints_are_injective(
            a in ("[A/]{0,3}", "[A/]{0,3}", prop::collection::vec(0u8..2, 0..3)),
            b in ("[A/]{0,3}", "[A/]{0,3}", prop::collection::vec(0u8..2, 0..3)),
        ) {
            let fa = fingerprint(&a.0, &a.1, &a.2);
            let fb = fingerprint(&b.0, &b.1, &b.2);
            prop_assert_eq!(a == b, fa == fb);
            prop_assert_eq!(Fingerprint::try_from(String::from(fa)), Ok(fa));
        }
    }
}
