//! The `Cache-Control` field syntax (RFC 9111 §5.2): a comma-separated list of
//! `token [ "=" ( token / quoted-string ) ]`, and the delta-seconds argument (§1.2.2).
//!
//! The meaning of each directive is in [`super::directives`]; this module only splits the field.
//! It is total: any input yields a list, never a panic.
//!
//! The grammar has no whitespace around `=` (§5.2: `token [ "=" ( token / quoted-string ) ]`),
//! so `max-age = 5` or `max-age= 5` is a malformed argument, not `5`: a directive whose author
//! did not follow the syntax is invalid (stale, §4.2.1) rather than guessed at. The quoted form
//! `max-age="5"` is the one deviation §5.2 asks recipients to accept.

/// One directive as received: its name lower-cased (names are case-insensitive, §5.2) and its
/// argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawDirective {
    pub name: String,
    pub arg: Arg,
}

/// A directive's argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    /// `no-store`
    None,
    /// `max-age=5` or `max-age="5"`, unquoted and unescaped: §5.2 asks recipients to accept both
    /// forms whichever one the directive prefers.
    Value(String),
    /// An argument that is not a token or a complete quoted-string (`x="unterminated`,
    /// `x="a"b`, `x=`).
    Malformed,
}

/// Splits a `Cache-Control` field value into directives, in order. Empty list elements are
/// skipped (RFC 9110 §5.6.1); a comma inside a quoted-string does not split.
pub(crate) fn parse(value: &str) -> Vec<RawDirective> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.next_if(|&c| c == ',' || is_ows(c)).is_some() {}
        if chars.peek().is_none() {
            return out;
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|&c| c != ',' && c != '=') {
            name.push(c.to_ascii_lowercase());
        }
        let spaced = name.ends_with(is_ows);
        let name = name.trim_matches(is_ows).to_owned();
        let arg = if chars.next_if_eq(&'=').is_none() {
            Arg::None
        } else {
            let arg = argument(&mut chars);
            // Whitespace before '=' is outside the grammar.
            if spaced { Arg::Malformed } else { arg }
        };
        if !name.is_empty() {
            out.push(RawDirective { name, arg });
        }
    }
}

/// Reads an argument up to (not including) the next list separator.
fn argument(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Arg {
    // Whitespace after '=' is outside the grammar.
    let spaced = chars.peek().copied().is_some_and(is_ows);
    let mut value = String::new();
    let mut malformed;
    if chars.next_if_eq(&'"').is_some() {
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    closed = true;
                    break;
                }
                // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                '\\' => match chars.next() {
                    Some(escaped) => value.push(escaped),
                    None => break,
                },
                c => value.push(c),
            }
        }
        malformed = !closed;
        // Anything but whitespace between the closing quote and the next comma is junk.
        while let Some(c) = chars.next_if(|&c| c != ',') {
            malformed |= !is_ows(c);
        }
    } else {
        while let Some(c) = chars.next_if(|&c| c != ',') {
            value.push(c);
        }
        let token = value.trim_matches(is_ows);
        malformed = token.is_empty() || !token.bytes().all(is_tchar);
        value = token.to_owned();
    }
    if malformed || spaced {
        Arg::Malformed
    } else {
        Arg::Value(value)
    }
}

/// The largest delta-seconds a cache must represent; larger values and overflows become this
/// (RFC 9111 §1.2.2).
pub(crate) const DELTA_MAX: u32 = 1 << 31;

/// Parses `1*DIGIT` as delta-seconds, clamping to 2^31 (§1.2.2). `None` for anything else
/// (a sign, a fraction, an empty string, spaces inside).
pub(crate) fn delta_seconds(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = s.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10)
            .saturating_add(u64::from(d - b'0'))
            .min(u64::from(DELTA_MAX))
    });
    u32::try_from(n).ok()
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// tchar (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(name: &str, arg: Arg) -> RawDirective {
        RawDirective {
            name: name.into(),
            arg,
        }
    }

    fn v(s: &str) -> Arg {
        Arg::Value(s.into())
    }

    #[test]
    fn splits_per_rfc9111_5_2() {
        #[rustfmt::skip]
        let cases: [(&str, Vec<RawDirective>, &str); 16] = [
            ("", vec![], "an empty field"),
            (" , ,", vec![], "RFC 9110 §5.6.1: empty list elements are ignored"),
            ("Max-Age=5, PRIVATE", vec![d("max-age", v("5")), d("private", Arg::None)], "§5.2: names are case-insensitive"),
            ("max-age=\"5\"", vec![d("max-age", v("5"))], "§5.2: the quoted form is accepted"),
            ("no-cache=\"Set-Cookie, X-Foo\", max-age=1", vec![d("no-cache", v("Set-Cookie, X-Foo")), d("max-age", v("1"))], "a comma inside a quoted-string does not split"),
            ("private=\"a\\\"b\"", vec![d("private", v("a\"b"))], "a quoted-pair is unescaped"),
            ("no-cache=\"unterminated, max-age=5", vec![d("no-cache", Arg::Malformed)], "an unterminated quote swallows the rest"),
            ("max-age=\"5\"x, public", vec![d("max-age", Arg::Malformed), d("public", Arg::None)], "junk after a quoted-string"),
            ("max-age=, s-maxage=1 0", vec![d("max-age", Arg::Malformed), d("s-maxage", Arg::Malformed)], "empty and space-broken tokens"),
            ("\tmax-age=5 ", vec![d("max-age", v("5"))], "RFC 9110 §5.6.1: OWS around list elements"),
            ("max-age = 5, public", vec![d("max-age", Arg::Malformed), d("public", Arg::None)], "§5.2: no whitespace around '='"),
            ("max-age =5", vec![d("max-age", Arg::Malformed)], "§5.2: no whitespace before '='"),
            ("max-age= 5", vec![d("max-age", Arg::Malformed)], "§5.2: no whitespace after '='"),
            ("max-age=\"\"", vec![d("max-age", v(""))], "§5.2: an empty quoted-string is well-formed (and no delta)"),
            ("max-age='5'", vec![d("max-age", v("'5'"))], "§5.2: single quotes are token characters, not quoting (no delta)"),
            ("=5, x", vec![d("x", Arg::None)], "a nameless element is dropped"),
        ];
        for (input, want, why) in cases {
            assert_eq!(parse(input), want, "{why}: {input:?}");
        }
    }

    #[test]
    fn delta_seconds_per_rfc9111_1_2_2() {
        let cases = [
            ("0", Some(0)),
            ("007", Some(7)),
            ("2147483647", Some(2_147_483_647)),
            ("2147483648", Some(DELTA_MAX)),
            ("99999999999999999999999", Some(DELTA_MAX)),
            ("-1", None),
            ("+1", None),
            ("1.5", None),
            ("", None),
            ("1 2", None),
            ("٣", None),
        ];
        for (input, want) in cases {
            assert_eq!(delta_seconds(input), want, "{input:?}");
        }
    }
}
