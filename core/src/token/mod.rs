//! Access tokens: compact JWS (RFC 7515) JWTs (RFC 7519) signed with Ed25519 (RFC 8037), issued
//! by the origin and verified by the origin and, with the origin's published public keys, by the
//! edge.
//!
//! The rules that keep the classic JWT attacks out (RFC 8725) are decided here, once:
//!
//! - **The algorithm is pinned.** `alg` must be exactly `EdDSA`; it is checked, never used to
//!   choose how to verify, so `none`, `HS256` signed with the public key as an HMAC secret, and
//!   any other algorithm are refused before a key is even looked up.
//! - **Keys are looked up by `kid` only.** A token names its key; the key itself comes from the
//!   [`Verifier`]'s own set. Headers that carry or point at keys (`jwk`, `jku`, `x5u`, `x5c`) are
//!   ignored, never fetched, and `crit` is refused (no extension is understood).
//! - **The signature is checked before the claims are read**, with Ed25519's strict verification
//!   (no malleable or small-order signatures).
//! - **Claims are checked explicitly**: issuer, audience, `exp` and `nbf` (and `iat` not in the
//!   future), with a configured leeway for clock skew ([`DEFAULT_LEEWAY_SECS`]).
//!
//! Everything here is a pure function of its inputs: `now` (Unix seconds) comes in as an
//! argument, and the one secret, a signing key's 32-byte seed, is given to [`Signer`]. Nothing
//! needs randomness: Ed25519 signatures are deterministic.

mod claims;
mod keys;
mod sign;
mod verify;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

pub use claims::Claims;
pub use keys::{Jwk, JwkSet, KeyError, KeyId, PublicKey, SEED_LEN};
pub use sign::Signer;
pub use verify::{DEFAULT_LEEWAY_SECS, MAX_TOKEN_LEN, TokenError, Verifier};

/// The one JWS algorithm accepted and produced (RFC 8037 §3.1).
pub const ALGORITHM: &str = "EdDSA";
/// The `typ` header of an access token (RFC 7519 §5.1).
pub const TYPE: &str = "JWT";

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// base64url without padding, as every JWS segment and JWK member is written.
pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The strict inverse of [`b64_encode`]: no padding, no other alphabet, no stray trailing bits,
/// so each byte string has exactly one accepted encoding.
pub(crate) fn b64_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}
