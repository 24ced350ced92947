//! Guest sessions: who owns an order placed without an access token or an API key. Never the
//! client's address, which everyone behind one NAT shares: a guest is a random-looking id the
//! edge issues in a signed cookie on the first order, and every later request that presents the
//! cookie acts as that guest (`guest:<id>`) at the origin.
//!
//! The first order has no cookie yet, and neither has its retry when the answer was lost (or a
//! double click sent it twice before the answer came): so the id of a new session is derived
//! from the order's `Idempotency-Key` and the client's address, with the edge's key,
//! `HMAC(EDGE_KEY, "guest" ‖ address ‖ key)`. Both copies land in the same session and the
//! idempotency record (principal, key) dedupes them; anyone else needs the key and the address
//! and still gets only that one session. A retry from another address before the cookie arrived
//! opens another session (and could place a second order); the cookie ends that window.
//!
//! The cookie is `__Host-breakwater-guest=<id>.<MAC of the id>`, `HttpOnly; Secure;
//! SameSite=Lax; Path=/`, for [`MAX_AGE_S`]: scripts cannot read it, it travels over HTTPS only
//! (and to `localhost`), and another site's form posts do not carry it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::constant_time_eq;
use crate::hash::hex;

/// The cookie's name; `__Host-` makes browsers refuse it unless `Secure`, `Path=/` and without
/// `Domain`, so no subdomain can set or shadow it.
pub const COOKIE: &str = "__Host-breakwater-guest";

/// How long a guest session lasts: 30 days.
pub const MAX_AGE_S: u64 = 30 * 24 * 3600;

/// The prefix of a guest principal; token subjects may not use it.
pub const PRINCIPAL_PREFIX: &str = "guest:";

/// Hex digits in an id (128 bits) and in a cookie's MAC.
const ID_HEX: usize = 32;

#[expect(
    clippy::expect_used,
    reason = "HMAC takes a key of any length: new_from_slice cannot fail"
)]
fn mac(key: &[u8], parts: &[&str]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        // Length-prefixed, so no two lists of parts feed the same bytes.
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    mac.finalize().into_bytes().into()
}

/// The id of the session a first order opens: see the module documentation.
pub fn new_id(key: &[u8], address: &str, idempotency_key: &str) -> String {
    let digest = mac(key, &["breakwater guest id v1", address, idempotency_key]);
    hex(&digest).split_off(64 - ID_HEX)
}

/// The cookie value carrying `id`.
pub fn cookie_value(key: &[u8], id: &str) -> String {
    let digest = mac(key, &["breakwater guest cookie v1", id]);
    format!("{id}.{}", &hex(&digest)[..ID_HEX])
}

/// The `Set-Cookie` value issuing `id`.
pub fn set_cookie(key: &[u8], id: &str) -> String {
    format!(
        "{COOKIE}={}; Max-Age={MAX_AGE_S}; Path=/; Secure; HttpOnly; SameSite=Lax",
        cookie_value(key, id)
    )
}

/// The guest id in a `Cookie` header, if it carries exactly one guest cookie and its MAC holds
/// under `key`.
pub fn from_cookie_header(key: &[u8], header: &str) -> Option<String> {
    let mut values = header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value);
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let (id, _) = value.split_once('.')?;
    let valid_id = id.len() == ID_HEX && id.bytes().all(|b| b.is_ascii_hexdigit());
    (valid_id && constant_time_eq(cookie_value(key, id).as_bytes(), value.as_bytes()))
        .then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_first_order_and_its_retry_share_a_session_and_nobody_else_does() {
        let id = new_id(KEY, "ip:203.0.113.7", "order-key-0000000001");
        assert_eq!(id.len(), ID_HEX);
        assert_eq!(id, new_id(KEY, "ip:203.0.113.7", "order-key-0000000001"));
        for other in [
            new_id(KEY, "ip:203.0.113.8", "order-key-0000000001"),
            new_id(KEY, "ip:203.0.113.7", "order-key-0000000002"),
            new_id(
                b"another-key-0123456789abcdef0123",
                "ip:203.0.113.7",
                "order-key-0000000001",
            ),
            // The parts are length-prefixed: moving a character across the boundary differs.
            new_id(KEY, "ip:203.0.113.7o", "rder-key-0000000001"),
        ] {
            assert_ne!(other, id);
        }
    }

    #[test]
    fn the_cookie_round_trips_and_forgeries_are_ignored() {
        let id = new_id(KEY, "ip:203.0.113.7", "order-key-0000000001");
        let set = set_cookie(KEY, &id);
        assert!(set.starts_with(&format!("{COOKIE}={id}.")), "{set}");
        for attribute in [
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
            "Max-Age=2592000",
        ] {
            assert!(set.contains(attribute), "{set}");
        }
        let value = cookie_value(KEY, &id);
        let header = format!("theme=dark; {COOKIE}={value}; other=1");
        assert_eq!(from_cookie_header(KEY, &header), Some(id.clone()));

        let other_id = "0".repeat(ID_HEX);
        let forged = [
            String::new(),
            format!("{COOKIE}={id}"),
            format!("{COOKIE}={id}.{}", "0".repeat(ID_HEX)),
            format!("{COOKIE}={other_id}.{}", &value[ID_HEX + 1..]),
            format!(
                "{COOKIE}={}",
                cookie_value(b"another-key-0123456789abcdef0123", &id)
            ),
            format!("{COOKIE}={value}x"),
            format!("{COOKIE}={value}; {COOKIE}={value}"),
            format!("x{COOKIE}={value}"),
            format!("{COOKIE}=g{}", &value[1..]),
        ];
        for header in forged {
            assert_eq!(from_cookie_header(KEY, &header), None, "{header:?}");
        }
    }
}
