//! Bearer-token checks for operator endpoints: the token is compared in constant time, so the
//! time a refusal takes says nothing about how much of a guess was right. And the account a
//! sign-in names, for its own rate-limit bucket ([`login_account`]).

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Where the origin signs users in: `POST` with `{"email", "password"}`.
pub const LOGIN_PATH: &str = "/api/auth/login";

/// The account a sign-in body names, as the name of its rate-limit bucket: a hash of the e-mail
/// address, trimmed and lower-cased as the origin stores it, so `Alice@x` and `alice@x ` share
/// one bucket and the address itself is never a storage name. `None` when the body names none
/// (the origin refuses such a body anyway).
pub fn login_account(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Login {
        email: String,
    }
    let login: Login = serde_json::from_slice(body).ok()?;
    let email = login.email.trim().to_lowercase();
    if email.is_empty() {
        return None;
    }
    let mut hasher = Sha256::new();
    hasher.update(b"breakwater login account v1\0");
    hasher.update(email.as_bytes());
    hasher.finalize().get(..16).map(crate::hash::hex)
}

/// The token in an `Authorization: Bearer <token>` value (scheme case-insensitive, RFC 6750
/// §2.1); `None` for any other scheme or shape.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

/// Equality whose running time depends only on the lengths, not on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// True when `authorization` carries exactly `expected` as a bearer token.
pub fn bearer_matches(authorization: Option<&str>, expected: &str) -> bool {
    authorization
        .and_then(bearer_token)
        .is_some_and(|token| constant_time_eq(token.as_bytes(), expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_names_its_account_by_a_hash_of_the_normalised_address() {
        let alice = login_account(br#"{"email": "alice@example.com", "password": "x"}"#);
        let key = alice.clone().unwrap();
        assert_eq!(key.len(), 32);
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!key.contains("alice"));
        // (body, same account as alice)
        let cases: [(&[u8], Option<bool>); 6] = [
            (
                br#"{"email": " Alice@Example.COM ", "password": "y"}"#,
                Some(true),
            ),
            (
                br#"{"password": "y", "email": "alice@example.com"}"#,
                Some(true),
            ),
            (
                br#"{"email": "bob@example.com", "password": "x"}"#,
                Some(false),
            ),
            (br#"{"email": "   ", "password": "x"}"#, None),
            (br#"{"password": "x"}"#, None),
            (b"not json", None),
        ];
        for (body, same) in cases {
            let got = login_account(body);
            assert_eq!(
                got.as_ref().map(|k| Some(k) == alice.as_ref()),
                same,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_bearer_scheme_is_parsed_case_insensitively() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        for bad in ["Bearer", "Bearer ", "Bearerabc", "abc"] {
            assert_eq!(bearer_token(bad), None, "{bad:?}");
        }
        assert_eq!(bearer_token("Bearer a b"), None);
    }

    #[test]
    fn only_the_exact_token_matches() {
        assert!(bearer_matches(Some("Bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer s3cret!"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer S3CRET"), "s3cret"));
        assert!(!bearer_matches(None, "s3cret"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(constant_time_eq(b"", b""));
    }
}
