//! Conditional requests (RFC 9110 §13): does an `If-None-Match` list match our entity tag?

/// True when `if_none_match` matches `etag`, so a `GET`/`HEAD` may be answered `304`.
///
/// `If-None-Match` uses the weak comparison (§13.1.2): `W/"x"` matches `"x"`. `*` matches any
/// current representation. A malformed member never matches, so a broken header costs a full
/// response rather than a wrong `304`.
pub fn if_none_match(if_none_match: &str, etag: &str) -> bool {
    let ours = opaque(etag);
    if ours.is_none() {
        return false;
    }
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|member| member == "*" || (opaque(member).is_some() && opaque(member) == ours))
}

/// The opaque-tag of an entity tag, without the weakness prefix; `None` if malformed.
fn opaque(tag: &str) -> Option<&str> {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let inner = tag.strip_prefix('"')?.strip_suffix('"')?;
    // etagc = %x21 / %x23-7E / obs-text: no DQUOTE, no space, no controls.
    inner
        .bytes()
        .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
        .then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::if_none_match;

    #[test]
    fn table() {
        let etag = "\"abc123\"";
        let cases = [
            ("\"abc123\"", true),
            ("W/\"abc123\"", true),
            ("\"zzz\", \"abc123\"", true),
            ("*", true),
            ("\"zzz\"", false),
            ("abc123", false),
            ("\"abc123", false),
            ("", false),
            ("\"ab c\"", false),
        ];
        for (header, want) in cases {
            assert_eq!(if_none_match(header, etag), want, "If-None-Match: {header}");
        }
    }

    #[test]
    fn a_malformed_stored_etag_never_matches() {
        assert!(!if_none_match("*", "abc"));
    }
}
