//! A fixed-length, non-cryptographic name for a string: 128-bit FNV-1a as 32 hex digits. Used
//! where a key must be short (KV keys, Durable Object names) and must not reveal its input
//! verbatim (API keys in logs). Collisions are not an attack surface where it is used: the
//! inputs are chosen by the operator or checked against the full value.

/// `bytes` as lower-case hex, two digits each.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

pub fn fnv1a_128_hex(input: &str) -> String {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let hash = input
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u128::from(b)).wrapping_mul(PRIME));
    format!("{hash:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_value_and_fixed_length() {
        // FNV-1a 128 of the empty string is the offset basis.
        assert_eq!(fnv1a_128_hex(""), "6c62272e07bb014262b821756295c58d");
        assert_eq!(fnv1a_128_hex(&"x".repeat(10_000)).len(), 32);
        assert_ne!(fnv1a_128_hex("a"), fnv1a_128_hex("b"));
    }
}
