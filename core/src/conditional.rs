//! Conditional requests (RFC 9110 §13): does an `If-None-Match` list match our entity tag?
//!
//! Each member is parsed by the one lenient entity-tag parser, [`EntityTag::parse`], so a tag an
//! origin sent unquoted or with a lower-case `w/` is compared as established caches compare it.

use crate::cache::EntityTag;

/// True when `if_none_match` matches `etag`, so a `GET`/`HEAD` may be answered `304`.
///
/// `If-None-Match` uses the weak comparison (§13.1.2): `W/"x"` matches `"x"`. `*` matches any
/// current representation, whatever its tag. A malformed member never matches (nor does any
/// member when our own tag is malformed), so a broken header costs a full response rather than a
/// wrong `304`.
pub fn if_none_match(if_none_match: &str, etag: &str) -> bool {
    let ours = EntityTag::parse(etag);
    members(if_none_match).any(|member| {
        member == "*"
            || ours
                .as_ref()
                .zip(EntityTag::parse(member))
                .is_some_and(|(ours, theirs)| ours.weak_eq(&theirs))
    })
}

/// The members of a comma-separated list of entity tags, trimmed and non-empty. A comma inside
/// quotes is part of a tag (`etagc` includes it), so it does not split.
fn members(list: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    list.split(move |c| {
        if c == '"' {
            quoted = !quoted;
        }
        c == ',' && !quoted
    })
    .map(|m| m.trim_matches([' ', '\t']))
    .filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::if_none_match;

    #[test]
    fn table() {
        let etag = "\"abc123\"";
        #[rustfmt::skip]
        let cases = [
            ("\"abc123\"", true, "RFC 9110 §13.1.2: the same tag"),
            ("W/\"abc123\"", true, "§13.1.2: weak comparison"),
            ("w/\"abc123\"", true, "lenient: lower-case w/"),
            ("W\"abc123\"", true, "lenient: no slash"),
            ("abc123", true, "lenient: an unquoted member"),
            ("\"zzz\", \"abc123\"", true, "§13.1.2: any member of the list"),
            ("\"zzz\",W/\"abc123\" ,", true, "RFC 9110 §5.6.1: OWS and empty elements"),
            ("*", true, "§13.1.2: * matches a current representation"),
            ("\"zzz\"", false, "another tag"),
            ("\"abc123", false, "unterminated"),
            ("", false, "empty"),
            ("\"ab c\"", false, "whitespace inside"),
            ("\"abc123\" \"zzz\"", false, "members must be comma-separated"),
        ];
        for (header, want, rule) in cases {
            assert_eq!(
                if_none_match(header, etag),
                want,
                "{rule}: If-None-Match: {header}"
            );
        }
        assert!(
            if_none_match("\"a,b\"", "\"a,b\""),
            "a comma inside quotes does not split"
        );
        assert!(if_none_match("\"abc\"", "abc"), "an unquoted stored tag");
        assert!(
            if_none_match("W/\"\u{e9}t\u{e9}\"", "\"\u{e9}t\u{e9}\""),
            "obs-text"
        );
    }

    #[test]
    fn a_malformed_stored_etag_matches_only_star() {
        assert!(!if_none_match("\"a b\"", "\"a b\""));
        assert!(if_none_match("*", "\"a b\""), "§13.1.2: * needs no tag");
    }
}
