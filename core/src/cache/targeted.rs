//! Targeted cache-control fields such as `CDN-Cache-Control` (RFC 9213): a Structured Fields
//! Dictionary (RFC 8941 §3.2) whose members are response cache directives.
//!
//! RFC 9213 §2.1 warns that a `Cache-Control` parser "can introduce interoperability issues"
//! because the error handling differs: any syntax error makes the whole field invalid, and then
//! the cache ignores it and falls back to `Cache-Control`. Hence this strict parser. It covers the
//! full dictionary grammar (inner lists, parameters, every bare item type) so that a valid field is
//! never mistaken for an invalid one; only the values the directives need are kept.

use super::cache_control::DELTA_MAX;
use super::directives::{Delta, FieldScope, Parsed, field_scope};

/// A bare item or inner list, reduced to what cache directives can use.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Integer(i64),
    String(String),
    Boolean(bool),
    /// Decimal, Token, Byte Sequence or Inner List: valid syntax, never a valid directive value.
    Other,
}

/// Parses a targeted field into typed directives, in member order; `None` when the field is
/// empty or not a valid dictionary (RFC 9213 §2.1: "that field MUST be ignored").
pub(crate) fn parse(field: &str) -> Option<Vec<Parsed>> {
    let members = dictionary(field.trim_matches([' ', '\t']).as_bytes())?;
    if members.is_empty() {
        return None;
    }
    Some(members.into_iter().map(|(k, v)| directive(&k, v)).collect())
}

/// Maps one member. RFC 9213 §2.1: implementations "SHOULD NOT consume values that violate these
/// inferred constraints", so a non-Integer `max-age` is [`Delta::Invalid`] (stale, as a malformed
/// `Cache-Control` max-age is) rather than coerced.
fn directive(key: &str, value: Value) -> Parsed {
    let delta = |v: &Value| match v {
        Value::Integer(n) if *n >= 0 => {
            Delta::Seconds(u32::try_from(*n).unwrap_or(DELTA_MAX).min(DELTA_MAX))
        }
        _ => Delta::Invalid,
    };
    let scope = |v: &Value| match v {
        Value::String(list) => field_scope(list),
        _ => FieldScope::All,
    };
    let yes = value == Value::Boolean(true);
    match key {
        "max-age" => Parsed::MaxAge(delta(&value)),
        "s-maxage" => Parsed::SMaxage(delta(&value)),
        "stale-while-revalidate" => Parsed::StaleWhileRevalidate(delta(&value)),
        "stale-if-error" => Parsed::StaleIfError(delta(&value)),
        "no-cache" => Parsed::NoCache(scope(&value)),
        "private" => Parsed::Private(scope(&value)),
        "no-store" => Parsed::NoStore,
        "no-transform" => Parsed::NoTransform,
        "must-revalidate" => Parsed::MustRevalidate,
        "proxy-revalidate" => Parsed::ProxyRevalidate,
        "must-understand" => Parsed::MustUnderstand,
        "public" if yes => Parsed::Public,
        "immutable" if yes => Parsed::Immutable,
        _ => Parsed::Unknown,
    }
}

/// A cursor over the field's bytes.
struct Input<'a> {
    s: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.at += usize::from(hit);
        hit
    }

    fn skip(&mut self, set: &[u8]) {
        while self.peek().is_some_and(|b| set.contains(&b)) {
            self.at += 1;
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &[u8] {
        let start = self.at;
        while self.peek().is_some_and(&f) {
            self.at += 1;
        }
        self.s.get(start..self.at).unwrap_or_default()
    }
}

/// RFC 8941 §4.2.2. Repeated keys: the later member overwrites the earlier one, in place.
fn dictionary(s: &[u8]) -> Option<Vec<(String, Value)>> {
    let mut input = Input { s, at: 0 };
    let mut members: Vec<(String, Value)> = Vec::new();
    while input.peek().is_some() {
        let name = key(&mut input)?;
        let value = if input.eat(b'=') {
            item_or_inner_list(&mut input)?
        } else {
            parameters(&mut input)?;
            Value::Boolean(true)
        };
        match members.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => members.push((name, value)),
        }
        input.skip(b" \t");
        if input.peek().is_none() {
            break;
        }
        if !input.eat(b',') {
            return None;
        }
        input.skip(b" \t");
        input.peek()?; // a trailing comma is an error
    }
    Some(members)
}

/// RFC 8941 §4.2.3.3: `( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )`.
fn key(input: &mut Input<'_>) -> Option<String> {
    if !input
        .peek()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'*')
    {
        return None;
    }
    let k =
        input.take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.*".contains(&b));
    Some(String::from_utf8_lossy(k).into_owned())
}

fn item_or_inner_list(input: &mut Input<'_>) -> Option<Value> {
    if input.eat(b'(') {
        loop {
            input.skip(b" ");
            if input.eat(b')') {
                parameters(input)?;
                return Some(Value::Other);
            }
            bare_item(input)?;
            parameters(input)?;
            if !matches!(input.peek(), Some(b' ' | b')')) {
                return None;
            }
        }
    }
    let value = bare_item(input)?;
    parameters(input)?;
    Some(value)
}

/// RFC 8941 §4.2.3.2; parameter values are parsed and dropped (RFC 9213 §2.1: "Parameters
/// received on cache directives are to be ignored").
fn parameters(input: &mut Input<'_>) -> Option<()> {
    while input.eat(b';') {
        input.skip(b" ");
        key(input)?;
        if input.eat(b'=') {
            bare_item(input)?;
        }
    }
    Some(())
}

/// RFC 8941 §4.2.3.1.
fn bare_item(input: &mut Input<'_>) -> Option<Value> {
    match input.peek()? {
        b'-' | b'0'..=b'9' => number(input),
        b'"' => string(input),
        b'?' => {
            input.at += 1;
            let v = match input.peek()? {
                b'0' => false,
                b'1' => true,
                _ => return None,
            };
            input.at += 1;
            Some(Value::Boolean(v))
        }
        b':' => {
            input.at += 1;
            input.take_while(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
            input.eat(b':').then_some(Value::Other)
        }
        b if b.is_ascii_alphabetic() || b == b'*' => {
            // sf-token: ( ALPHA / "*" ) *( tchar / ":" / "/" )
            input.take_while(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b));
            Some(Value::Other)
        }
        _ => None,
    }
}

/// RFC 8941 §4.2.4: at most 15 integer digits; a decimal has at most 12 before and 1–3 after.
fn number(input: &mut Input<'_>) -> Option<Value> {
    let negative = input.eat(b'-');
    let int = input.take_while(|b| b.is_ascii_digit());
    let int_len = int.len();
    let int_value = int.iter().fold(0i64, |n, d| {
        n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    if int_len == 0 {
        return None;
    }
    if input.eat(b'.') {
        let frac = input.take_while(|b| b.is_ascii_digit()).len();
        return (int_len <= 12 && (1..=3).contains(&frac)).then_some(Value::Other);
    }
    (int_len <= 15).then_some(Value::Integer(if negative {
        -int_value
    } else {
        int_value
    }))
}

/// RFC 8941 §4.2.5: printable ASCII; only `\"` and `\\` may be escaped.
fn string(input: &mut Input<'_>) -> Option<Value> {
    input.at += 1;
    let mut out = String::new();
    loop {
        let b = input.peek()?;
        input.at += 1;
        match b {
            b'"' => return Some(Value::String(out)),
            b'\\' => {
                let escaped = input.peek().filter(|&e| e == b'"' || e == b'\\')?;
                input.at += 1;
                out.push(char::from(escaped));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_syntax_per_rfc8941() {
        let ok = |s: &str| dictionary(s.as_bytes()).is_some();
        let valid = [
            "max-age=60",
            "max-age=60, private",
            "no-cache=\"set-cookie\"",
            "a=?1, b=?0, c=:aGk=:, d=tok/en, e=1.5, f=(1 2);p=1, g;p",
            "max-age=60;ext=1",
            "none",
            "*x=1",
            "max-age=-1",
        ];
        let invalid = [
            "Max-Age=60",
            "max-age=60,",
            "max-age=60 private",
            "max-age==60",
            "x=\"unterminated",
            "x=\"bad\\escape\"",
            "x=1234567890123456",
            "x=1.",
            "x=1.2345",
            "x=?2",
            "x=(1 2",
            "x=:abc",
            "1x=1",
            "x=@1",
        ];
        for s in valid {
            assert!(ok(s), "valid: {s:?}");
        }
        for s in invalid {
            assert!(!ok(s), "invalid: {s:?}");
        }
    }

    #[test]
    fn members_become_directives() {
        let fields = |n: &[&str]| FieldScope::Fields(n.iter().map(|s| s.to_string()).collect());
        #[rustfmt::skip]
        let cases = [
            ("max-age=60", vec![Parsed::MaxAge(Delta::Seconds(60))]),
            ("max-age=-1", vec![Parsed::MaxAge(Delta::Invalid)]),
            ("max-age=1.5", vec![Parsed::MaxAge(Delta::Invalid)]),
            ("max-age=999999999999999", vec![Parsed::MaxAge(Delta::Seconds(DELTA_MAX))]),
            ("private=\"x-a, X-B\"", vec![Parsed::Private(fields(&["x-a", "x-b"]))]),
            ("no-cache", vec![Parsed::NoCache(FieldScope::All)]),
            ("no-cache=tok", vec![Parsed::NoCache(FieldScope::All)]),
            ("public=?0", vec![Parsed::Unknown]),
            ("public;x=1", vec![Parsed::Public]),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), Some(want), "{input:?}");
        }
        assert_eq!(parse(""), None, "an empty field is ignored (RFC 9213 §2.1)");
        assert_eq!(parse("  "), None);
    }
}
