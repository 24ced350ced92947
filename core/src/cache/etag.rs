//! Entity tags (RFC 9110 §8.8.3) as origins really send them, and the two comparisons
//! (§8.8.3.2). One parser serves every use: selecting a stored response for a `304` (RFC 9111
//! §4.3.4), `HEAD` freshening (§4.3.5), `If-None-Match` (RFC 9110 §13.1.2) and `If-Range`
//! (§13.1.5).
//!
//! The grammar is `entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE`. Like established caches (the
//! `conditional-etag-*` cases of the HTTP caching tests), the parser also accepts what origins
//! get wrong without being ambiguous: a lower-case `w/`, a weak prefix without its slash
//! (`W"x"`), and an unquoted tag (`x`, read as the strong tag `"x"`). It still refuses an empty
//! value, a lone or inner `DQUOTE`, whitespace or a control character inside the tag: those
//! cannot be told apart from a list or a broken header, and a tag that might be wrong must never
//! produce a `304`.

use std::fmt;

/// An entity tag: its weakness and its opaque-tag, without the quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag {
    /// `W/` was present (RFC 9110 §8.8.1).
    pub weak: bool,
    /// The characters between the quotes (or the whole unquoted tag).
    pub opaque: String,
}

impl EntityTag {
    /// Parses one entity tag leniently (see the module doc); `None` if it is not one.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim_matches([' ', '\t']);
        let (weak, tag) = match value.as_bytes() {
            [b'W' | b'w', b'/', ..] => (true, &value[2..]),
            [b'W' | b'w', b'"', ..] => (true, &value[1..]),
            _ => (false, value),
        };
        let opaque = match tag.strip_prefix('"') {
            Some(quoted) => quoted.strip_suffix('"')?,
            // Unquoted: at least one character, and none of them a quote.
            None if tag.is_empty() => return None,
            None => tag,
        };
        // etagc = %x21 / %x23-7E / obs-text: no DQUOTE, no whitespace, no controls.
        opaque
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
            .then(|| Self {
                weak,
                opaque: opaque.to_owned(),
            })
    }

    /// Strong comparison (§8.8.3.2): neither is weak and the opaque-tags are identical.
    pub fn strong_eq(&self, other: &Self) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison (§8.8.3.2): the opaque-tags are identical, whatever the weakness.
    pub fn weak_eq(&self, other: &Self) -> bool {
        self.opaque == other.opaque
    }
}

/// The canonical form, `"x"` or `W/"x"`: what the cache sends when it generates a conditional
/// request from a stored tag, whatever form the origin used.
impl fmt::Display for EntityTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = if self.weak { "W/" } else { "" };
        write!(f, "{prefix}\"{}\"", self.opaque)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(weak: bool, opaque: &str) -> Option<EntityTag> {
        Some(EntityTag {
            weak,
            opaque: opaque.into(),
        })
    }

    #[test]
    fn parse_table() {
        #[rustfmt::skip]
        let cases = [
            ("\"abc\"", tag(false, "abc"), "RFC 9110 §8.8.3: strong"),
            ("W/\"abc\"", tag(true, "abc"), "§8.8.3: weak"),
            ("  W/\"abc\"\t", tag(true, "abc"), "RFC 9110 §5.5: OWS around the value"),
            ("\"\"", tag(false, ""), "§8.8.3: an empty opaque-tag is valid"),
            ("\"a,b!#\"", tag(false, "a,b!#"), "§8.8.3: etagc includes ',' and '!'"),
            ("\"caf\u{e9}\"", tag(false, "caf\u{e9}"), "§8.8.3: obs-text inside"),
            ("w/\"abc\"", tag(true, "abc"), "lenient: lower-case w/"),
            ("W\"abc\"", tag(true, "abc"), "lenient: weak prefix without its slash"),
            ("abc", tag(false, "abc"), "lenient: unquoted is the strong tag"),
            ("W/abc", tag(true, "abc"), "lenient: unquoted weak"),
            ("Wabc", tag(false, "Wabc"), "a leading W without a quote is part of an unquoted tag"),
            ("", None, "empty value"),
            ("W/", None, "a prefix alone"),
            ("\"abc", None, "unterminated quote"),
            ("abc\"", None, "§8.8.3: DQUOTE is not etagc"),
            ("\"a\"b\"", None, "DQUOTE in the middle"),
            ("\"a b\"", None, "§8.8.3: whitespace inside"),
            ("a b", None, "whitespace inside, unquoted"),
            ("\"a\u{1}b\"", None, "§8.8.3: a control inside"),
            ("\"a\", \"b\"", None, "a list is not one tag"),
        ];
        for (input, want, rule) in cases {
            assert_eq!(EntityTag::parse(input), want, "{rule}: {input:?}");
        }
    }

    #[test]
    fn comparison_per_rfc9110_8_8_3_2() {
        let p = |s| EntityTag::parse(s).unwrap();
        // The table of §8.8.3.2: (ETag 1, ETag 2, strong, weak).
        #[rustfmt::skip]
        let cases = [
            ("W/\"1\"", "W/\"1\"", false, true),
            ("W/\"1\"", "W/\"2\"", false, false),
            ("W/\"1\"", "\"1\"", false, true),
            ("\"1\"", "\"1\"", true, true),
            ("1", "\"1\"", true, true),
            ("w/\"1\"", "W\"1\"", false, true),
        ];
        for (a, b, strong, weak) in cases {
            assert_eq!(p(a).strong_eq(&p(b)), strong, "strong: {a} {b}");
            assert_eq!(p(a).weak_eq(&p(b)), weak, "weak: {a} {b}");
        }
        assert_eq!(p("abc").to_string(), "\"abc\"", "canonical form is quoted");
        assert_eq!(p("w/abc").to_string(), "W/\"abc\"");
    }
}
