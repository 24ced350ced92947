//! Dashboard sessions: a browser signs in once with the admin token (`POST /_breakwater/session`)
//! and gets a cookie that stands in for the token on the operator endpoints for [`MAX_AGE_S`],
//! so the token is never kept where scripts can read it.
//!
//! The cookie is `__Secure-breakwater-admin=<expiry>.<MAC>`, `HttpOnly; Secure;
//! SameSite=Strict; Path=/_breakwater`: scripts cannot read it, it travels over HTTPS only (and to
//! `localhost`), no other site's request carries it, and it never goes to the origin (no origin
//! path lies under `/_breakwater`). The MAC is keyed with the admin token itself, so a new token
//! ends every session.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::constant_time_eq;
use crate::hash::hex;

/// The cookie's name; `__Secure-` makes browsers refuse it unless `Secure`.
pub const COOKIE: &str = "__Secure-breakwater-admin";

/// How long a session lasts: one hour.
pub const MAX_AGE_S: u64 = 3600;

/// Hex digits of the MAC in a cookie (128 bits).
const MAC_HEX: usize = 32;

#[expect(
    clippy::expect_used,
    reason = "HMAC takes a key of any length: new_from_slice cannot fail"
)]
fn mac(token: &str, expires_s: u64) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(b"breakwater admin session v1\0");
    mac.update(&expires_s.to_be_bytes());
    let digest: [u8; 32] = mac.finalize().into_bytes().into();
    hex(&digest).split_off(64 - MAC_HEX)
}

/// The `Set-Cookie` value of a session opened at `now_s` with `token`.
pub fn set_cookie(token: &str, now_s: u64) -> String {
    let expires = now_s + MAX_AGE_S;
    format!(
        "{COOKIE}={expires}.{}; Max-Age={MAX_AGE_S}; Path=/_breakwater; Secure; HttpOnly; \
         SameSite=Strict",
        mac(token, expires)
    )
}

/// The `Set-Cookie` value that ends a session.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Max-Age=0; Path=/_breakwater; Secure; HttpOnly; SameSite=Strict")
}

/// Whether a `Cookie` header carries exactly one session cookie, made with `token` and not
/// expired at `now_s`.
pub fn valid(token: &str, header: &str, now_s: u64) -> bool {
    let mut values = header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value);
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Some((expires, tag)) = value.split_once('.') else {
        return false;
    };
    let Ok(expires_s) = expires.parse::<u64>() else {
        return false;
    };
    // A well-formed expiry is written without sign or leading zeros: the MAC covers the number,
    // so only one spelling of it may pass.
    let canonical = expires_s.to_string() == expires;
    canonical
        && now_s < expires_s
        && expires_s <= now_s.saturating_add(MAX_AGE_S)
        && constant_time_eq(mac(token, expires_s).as_bytes(), tag.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "an-admin-token-of-at-least-32-characters";
    const NOW: u64 = 1_800_000_000;

    fn header_of(set_cookie: &str) -> String {
        set_cookie.split(';').next().unwrap().to_owned()
    }

    #[test]
    fn a_session_opens_and_lasts_an_hour() {
        let set = set_cookie(TOKEN, NOW);
        for attribute in [
            "Path=/_breakwater",
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=3600",
        ] {
            assert!(set.contains(attribute), "{set}");
        }
        let header = format!("theme=dark; {}; other=1", header_of(&set));
        assert!(valid(TOKEN, &header, NOW));
        assert!(valid(TOKEN, &header, NOW + MAX_AGE_S - 1));
        assert!(!valid(TOKEN, &header, NOW + MAX_AGE_S), "expired");
        assert!(!valid(
            "another-token-of-at-least-32-characters",
            &header,
            NOW
        ));
    }

    #[test]
    fn forged_and_doubled_cookies_are_refused() {
        let good = header_of(&set_cookie(TOKEN, NOW));
        let value = good.split_once('=').unwrap().1;
        let (expires, tag) = value.split_once('.').unwrap();
        let later: u64 = expires.parse::<u64>().unwrap() + 10;
        for forged in [
            String::new(),
            format!("{COOKIE}="),
            format!("{COOKIE}={expires}"),
            format!("{COOKIE}={later}.{tag}"),
            format!("{COOKIE}=0{expires}.{tag}"),
            format!("{COOKIE}=+{expires}.{tag}"),
            format!("{COOKIE}={expires}.{}", "0".repeat(MAC_HEX)),
            format!("{COOKIE}={expires}.{tag}0"),
            format!("{good}; {good}"),
            format!("x{COOKIE}={value}"),
            clear_cookie(),
        ] {
            assert!(!valid(TOKEN, &forged, NOW), "{forged}");
        }
        // A session from far in the future (a clock or key mishap) is refused too.
        let future = header_of(&set_cookie(TOKEN, NOW + 10 * MAX_AGE_S));
        assert!(!valid(TOKEN, &future, NOW));
    }
}
