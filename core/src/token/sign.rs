//! Signing access tokens with an Ed25519 key given by its seed.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey};
use serde::Serialize;

use super::{ALGORITHM, Claims, KeyId, PublicKey, SEED_LEN, TYPE, b64_encode};

/// Signs tokens with one Ed25519 key. Holds the secret: its `Debug` names only the key id, and
/// the key is zeroed when dropped.
pub struct Signer {
    key: SigningKey,
    public: PublicKey,
}

/// The header every token is issued with, in this member order.
#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

impl Signer {
    /// The signer for the private key whose 32-byte seed is `seed` (RFC 8032 §5.1.5).
    #[expect(
        clippy::expect_used,
        reason = "a key derived from a seed is never of small order"
    )]
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let public = PublicKey::from_bytes(key.verifying_key().as_bytes())
            .expect("a key derived from a seed is never of small order");
        Self { key, public }
    }

    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    pub fn kid(&self) -> KeyId {
        self.public.kid()
    }

    /// A token carrying `claims`, with header `{"alg":"EdDSA","typ":"JWT","kid":<this key's id>}`.
    pub fn sign(&self, claims: &Claims) -> String {
        let kid = self.kid();
        let header = Header {
            alg: ALGORITHM,
            typ: TYPE,
            kid: kid.as_str(),
        };
        // Structs of strings and integers always serialise.
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        self.sign_raw(&header, &payload)
    }

    /// A compact JWS of exactly these header and payload bytes, signed with this key whatever the
    /// header says: for tools and tests that need tokens the origin would never issue.
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> String {
        let signing_input = format!("{}.{}", b64_encode(header), b64_encode(payload));
        let signature = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", b64_encode(&signature.to_bytes()))
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({})", self.kid())
    }
}
