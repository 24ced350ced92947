//! Property tests of token verification (T-AU-01, T-AU-02): the time window is exactly the
//! documented one at every leeway and near the ends of the clock's range, no change to a token's
//! text survives, and no input is accepted or panics that was not issued. Failures persist to
//! `properties.regressions` beside this file (check it in).
//!
//! Fewer cases than the pure-arithmetic properties elsewhere: each case signs and verifies with
//! Ed25519 in an unoptimised test build.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::tests::{NOW, SIGNER, b64, claims, verifier};
use super::*;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

/// Where the clock stands: an ordinary date, or near either end of its range.
fn epoch() -> impl Strategy<Value = u64> {
    prop_oneof![Just(NOW), Just(0u64), Just(u64::MAX - 10), 0u64..=u64::MAX]
}

proptest! {
    #![proptest_config(config(2_000))]

    #[test]
    fn accepted_exactly_inside_the_window(
        base in epoch(),
        leeway in prop::sample::select(vec![0u64, 1, DEFAULT_LEEWAY_SECS, 300]),
        exp_offset in -40i64..=40,
        nbf_offset in -40i64..=40,
        iat_offset in -40i64..=40,
        now_offset in -80i64..=80,
        anywhere in prop::option::weighted(0.1, any::<u64>()),
    ) {
        // Every time relative to `base`; now and then a clock anywhere at all.
        let now = anywhere.unwrap_or(base.saturating_add_signed(now_offset));
        let claims = Claims {
            exp: base.saturating_add_signed(exp_offset),
            nbf: base.saturating_add_signed(nbf_offset),
            iat: base.saturating_add_signed(iat_offset),
            ..claims()
        };
        let token = SIGNER.sign(&claims);
        let outcome = verifier().with_leeway(leeway).verify(&token, now);
        let inside = u128::from(now) <= u128::from(claims.exp) + u128::from(leeway)
            && u128::from(now) + u128::from(leeway) >= u128::from(claims.nbf)
            && u128::from(now) + u128::from(leeway) >= u128::from(claims.iat);
        prop_assert_eq!(outcome.is_ok(), inside, "{:?} at {} with leeway {}", claims, now, leeway);
        if let Ok(read) = outcome {
            prop_assert_eq!(read, claims);
        } else {
            let reason = outcome.unwrap_err();
            prop_assert!(matches!(reason, TokenError::Expired | TokenError::NotYetValid));
        }
    }

    #[test]
    fn any_change_to_an_issued_token_is_refused(
        position in any::<prop::sample::Index>(),
        replacement in prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ".chars().collect::<Vec<_>>()
        ),
    ) {
        let token = SIGNER.sign(&claims());
        let i = position.index(token.len());
        let original = token.as_bytes()[i] as char;
        prop_assume!(original != replacement);
        let mut changed = token.clone();
        changed.replace_range(i..=i, &replacement.to_string());
        prop_assert!(verifier().verify(&changed, NOW).is_err(), "{}", changed);
    }

    #[test]
    fn foreign_algorithms_are_refused(alg in "\\PC{0,12}") {
        prop_assume!(alg != ALGORITHM);
        let header = serde_json::json!({ "alg": alg, "typ": "JWT", "kid": SIGNER.kid().as_str() });
        let token = SIGNER
            .sign_raw(header.to_string().as_bytes(), serde_json::to_string(&claims()).unwrap().as_bytes());
        prop_assert_eq!(verifier().verify(&token, NOW), Err(TokenError::UnsupportedAlgorithm));
    }
}

proptest! {
    #![proptest_config(config(10_000))]

    #[test]
    fn arbitrary_text_is_never_accepted(token in "\\PC{0,300}") {
        prop_assert!(verifier().verify(&token, NOW).is_err());
    }

    #[test]
    fn arbitrary_segments_are_never_accepted(
        header in prop::collection::vec(any::<u8>(), 0..80),
        payload in prop::collection::vec(any::<u8>(), 0..200),
        signature in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let token = format!("{}.{}.{}", b64(&header), b64(&payload), b64(&signature));
        prop_assert!(verifier().verify(&token, NOW).is_err());
    }
}
