//! Ed25519 public keys, the key ids derived from them, and their JWK form (RFC 8037), in which
//! the origin publishes them and the edge reads them.

use std::borrow::Borrow;
use std::fmt;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ALGORITHM, b64_decode, b64_encode};

/// Bytes in an Ed25519 private key seed (RFC 8032 §5.1.5) and in a public key.
pub const SEED_LEN: usize = 32;
/// Hex digits of the SHA-256 of the public key that make its key id.
const KID_HEX_DIGITS: usize = 16;

/// An Ed25519 public key that may verify tokens: a valid curve point, not of small order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// The key whose compressed point is `bytes`; refused when they are not a point or the point
    /// is weak (small order), since such a key would accept forged signatures.
    pub fn from_bytes(bytes: &[u8; SEED_LEN]) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::Invalid)?;
        if key.is_weak() {
            return Err(KeyError::Invalid);
        }
        Ok(Self(key))
    }

    pub fn to_bytes(&self) -> [u8; SEED_LEN] {
        self.0.to_bytes()
    }

    /// This key's id (see [`KeyId`]).
    pub fn kid(&self) -> KeyId {
        KeyId::of(self)
    }

    /// This key as a JWK with every member filled in: `kty`, `crv`, `x`, `kid`, `alg`, `use`.
    pub fn to_jwk(&self) -> Jwk {
        Jwk {
            kty: OKP.to_owned(),
            crv: ED25519.to_owned(),
            x: b64_encode(self.0.as_bytes()),
            kid: Some(self.kid().0),
            alg: Some(ALGORITHM.to_owned()),
            use_: Some(SIGNATURE_USE.to_owned()),
        }
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.kid())
    }
}

/// A key id: the first 16 hex digits of the SHA-256 of the public key's 32 bytes. Derived, so no
/// configuration can give one key's id to another, and a new key gets a new id by itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    pub fn of(key: &PublicKey) -> Self {
        let digest = Sha256::digest(key.0.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Self(hex[..KID_HEX_DIGITS].to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lets a verifier look a key up by the `kid` a token names, without building a [`KeyId`] from
/// untrusted input. Sound because `KeyId` orders exactly as its string does.
impl Borrow<str> for KeyId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const OKP: &str = "OKP";
const ED25519: &str = "Ed25519";
const SIGNATURE_USE: &str = "sig";

/// An RFC 7517 JSON Web Key as RFC 8037 writes an Ed25519 public key. Members other than these
/// are ignored when read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    /// The public key's 32 bytes, base64url.
    pub x: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

impl Jwk {
    /// The public key this JWK describes. Refused unless it is an Ed25519 signing key (`kty`
    /// `OKP`, `crv` `Ed25519`, `alg` and `use`, when present, `EdDSA` and `sig`) whose `kid`,
    /// when present, is the id derived from the key itself.
    pub fn to_public_key(&self) -> Result<PublicKey, KeyError> {
        if self.kty != OKP || self.crv != ED25519 {
            return Err(KeyError::Unsupported);
        }
        let alg_ok = self.alg.as_deref().is_none_or(|alg| alg == ALGORITHM);
        let use_ok = self.use_.as_deref().is_none_or(|u| u == SIGNATURE_USE);
        if !(alg_ok && use_ok) {
            return Err(KeyError::WrongUse);
        }
        let bytes: [u8; SEED_LEN] = b64_decode(&self.x)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(KeyError::Encoding)?;
        let key = PublicKey::from_bytes(&bytes)?;
        match &self.kid {
            Some(kid) if *kid != key.kid().0 => Err(KeyError::KidMismatch(kid.clone())),
            _ => Ok(key),
        }
    }
}

/// A JWK Set (RFC 7517 §5): what `/.well-known/jwks.json` serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// The set publishing `keys`.
    pub fn of<'a>(keys: impl IntoIterator<Item = &'a PublicKey>) -> Self {
        Self {
            keys: keys.into_iter().map(PublicKey::to_jwk).collect(),
        }
    }
}

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not an Ed25519 public key (kty \"OKP\", crv \"Ed25519\")")]
    Unsupported,
    #[error("the key is not for EdDSA signatures (alg \"EdDSA\", use \"sig\")")]
    WrongUse,
    #[error("`x` is not 32 bytes of unpadded base64url")]
    Encoding,
    #[error("not a valid Ed25519 public key")]
    Invalid,
    #[error("`kid` {0:?} is not the id of this key")]
    KidMismatch(String),
}

#[cfg(test)]
mod tests {
    use super::super::tests::{KID, SEED, b64};
    use super::*;
    use crate::token::Signer;

    #[test]
    fn a_jwk_round_trips_and_names_its_key() {
        let key = Signer::from_seed(&SEED).public_key();
        let set = JwkSet::of([&key]);
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            format!(
                r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"{KID}","alg":"EdDSA","use":"sig"}}]}}"#
            )
        );
        let read: JwkSet = serde_json::from_str(&serde_json::to_string(&set).unwrap()).unwrap();
        assert_eq!(read.keys[0].to_public_key(), Ok(key));
        let minimal: Jwk = serde_json::from_str(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"ignored"}"#,
        )
        .unwrap();
        assert_eq!(minimal.to_public_key(), Ok(key));
    }

    #[test]
    fn jwks_for_other_keys_or_uses_are_refused() {
        let good = Signer::from_seed(&SEED).public_key().to_jwk();
        let change = |f: &dyn Fn(&mut Jwk)| {
            let mut jwk = good.clone();
            f(&mut jwk);
            jwk.to_public_key()
        };
        assert_eq!(change(&|j| j.kty = "EC".into()), Err(KeyError::Unsupported));
        assert_eq!(
            change(&|j| j.crv = "X25519".into()),
            Err(KeyError::Unsupported)
        );
        assert_eq!(
            change(&|j| j.alg = Some("HS256".into())),
            Err(KeyError::WrongUse)
        );
        assert_eq!(
            change(&|j| j.use_ = Some("enc".into())),
            Err(KeyError::WrongUse)
        );
        assert_eq!(change(&|j| j.x.push('=')), Err(KeyError::Encoding));
        assert_eq!(change(&|j| j.x = b64([1u8; 31])), Err(KeyError::Encoding));
        // The identity point, of small order: it would "verify" forged signatures.
        let mut identity = [0u8; SEED_LEN];
        identity[0] = 1;
        assert_eq!(change(&|j| j.x = b64(identity)), Err(KeyError::Invalid));
        assert_eq!(PublicKey::from_bytes(&identity), Err(KeyError::Invalid));
        assert_eq!(
            change(&|j| j.kid = Some("0000000000000000".into())),
            Err(KeyError::KidMismatch("0000000000000000".into()))
        );
    }
}
