//! Bearer-token checks for operator endpoints: the token is compared in constant time, so the
//! time a refusal takes says nothing about how much of a guess was right.

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
