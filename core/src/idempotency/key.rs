//! The `Idempotency-Key` request header, parsed once at the edge into an [`IdempotencyKey`] that
//! can only hold a valid key.
//!
//! The draft makes the field an RFC 8941 Item whose value is an sf-string: `"`, printable ASCII
//! with `\"` and `\\` as the only escapes, `"`. The key is the string's content, 1 to 255
//! characters. Spaces around the item are discarded, as RFC 8941 §4.2 says.
//!
//! A bare value is accepted too, as the same key as its quoted form (`abc` = `"abc"`). Most
//! clients copy Stripe's convention and send an unquoted UUID, which is not even an sf-token (it
//! may start with a digit), so refusing bare values would turn working clients into 400s for no
//! safety gain. A bare value may hold only token characters (RFC 9110 `tchar`, plus the `:` and
//! `/` that sf-tokens allow), so it never contains a quote, backslash, space or comma and the two
//! forms cannot be confused.
//!
//! Parameters (`"k";p=1`) are refused rather than ignored: the draft defines none, and ignoring
//! them would make `"k";a` and `"k";b` silently the same key. Two header lines, which the runtime
//! joins as `"a", "b"`, fail as [`KeyError::Multiple`]: a request carries at most one key.

use sha2::{Digest, Sha256};

/// The request header that carries the key.
pub const HEADER: &str = "idempotency-key";
/// Most characters a key may hold, after unescaping.
pub const MAX_KEY_CHARS: usize = 255;

/// A valid key: 1 to [`MAX_KEY_CHARS`] printable ASCII characters. Opaque: it is hashed into
/// storage names ([`record_name`]) and never interpolated into paths, SQL or headers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This key if it has at least `min_chars` characters: the edge's floor
    /// (`IDEMPOTENCY_POLICY.min_key_chars`, 16 by default), so a key is unlikely to be anyone
    /// else's by chance (`1`, `order`, a counter). A UUID has 36.
    pub fn at_least(self, min_chars: usize) -> Result<Self, KeyError> {
        match self.0.len() {
            chars if chars < min_chars => Err(KeyError::TooShort {
                chars,
                min: min_chars,
            }),
            _ => Ok(self),
        }
    }
}

/// Why an `Idempotency-Key` value was refused (a 400). Offsets are byte offsets into the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is empty")]
    Empty,
    #[error("the key has {chars} characters; at most {MAX_KEY_CHARS} are allowed")]
    TooLong { chars: usize },
    #[error(
        "the key has {chars} characters; at least {min} are required (send a fresh UUID per \
         operation)"
    )]
    TooShort { chars: usize, min: usize },
    #[error("byte {at} is not printable ASCII (control characters and non-ASCII are refused)")]
    NotPrintableAscii { at: usize },
    #[error("byte {at}: only \\\" and \\\\ may follow a backslash")]
    BadEscape { at: usize },
    #[error("the quoted string has no closing quote")]
    Unterminated,
    #[error("byte {at}: an unquoted key holds only token characters; send it as \"...\"")]
    NotQuoted { at: usize },
    #[error("more than one key (was the header sent twice?)")]
    Multiple,
    #[error("byte {at}: nothing may follow the key (parameters are not defined)")]
    Trailing { at: usize },
}

/// Parses an `Idempotency-Key` field value. See the module documentation for what is accepted.
pub fn parse_key(header_value: &str) -> Result<IdempotencyKey, KeyError> {
    let bytes = header_value.as_bytes();
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().take_while(|b| is_space(b)).count();
    let end = bytes.len() - bytes.iter().rev().take_while(|b| is_space(b)).count();
    if start >= end {
        return Err(KeyError::Empty);
    }
    let (key, rest_at) = if bytes.get(start) == Some(&b'"') {
        quoted(bytes, start)?
    } else {
        bare(header_value, start, end)?
    };
    if rest_at < end {
        // `end` follows a non-space byte, so one lies between here and there.
        let at = rest_at
            + bytes
                .get(rest_at..end)
                .unwrap_or_default()
                .iter()
                .take_while(|b| is_space(b))
                .count();
        return Err(match bytes.get(at) {
            Some(b',') => KeyError::Multiple,
            _ => KeyError::Trailing { at },
        });
    }
    match key.len() {
        0 => Err(KeyError::Empty),
        chars if chars > MAX_KEY_CHARS => Err(KeyError::TooLong { chars }),
        _ => Ok(IdempotencyKey(key)),
    }
}

/// The content of the sf-string opening at `open`, and the offset just past its closing quote.
fn quoted(bytes: &[u8], open: usize) -> Result<(String, usize), KeyError> {
    let mut key = String::new();
    let mut at = open + 1;
    while let Some(&b) = bytes.get(at) {
        match b {
            b'"' => return Ok((key, at + 1)),
            b'\\' => match bytes.get(at + 1) {
                Some(&escaped @ (b'"' | b'\\')) => {
                    key.push(char::from(escaped));
                    at += 1;
                }
                Some(_) => return Err(KeyError::BadEscape { at: at + 1 }),
                None => return Err(KeyError::Unterminated),
            },
            0x20..=0x7e => key.push(char::from(b)),
            _ => return Err(KeyError::NotPrintableAscii { at }),
        }
        at += 1;
    }
    Err(KeyError::Unterminated)
}

/// A bare token from `start`, and the offset of the first byte that is not part of it.
fn bare(value: &str, start: usize, end: usize) -> Result<(String, usize), KeyError> {
    let bytes = value.as_bytes();
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b);
    let len = bytes
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| token(b))
        .count();
    let stop = start + len;
    match bytes.get(stop) {
        Some(b' ' | b'\t' | b',') | None => {}
        Some(0x21..=0x7e) => return Err(KeyError::NotQuoted { at: stop }),
        Some(_) => return Err(KeyError::NotPrintableAscii { at: stop }),
    }
    // Everything before `stop` is ASCII, so `stop` is a character boundary.
    Ok((value[start..stop].to_owned(), stop))
}

/// The name of the record (and Durable Object) for `key` sent by `principal`: a SHA-256 over both,
/// length-prefixed, as 64 hex digits. Two principals never share a record, so user B cannot be
/// replayed user A's response, and the key itself never reaches a storage path.
pub fn record_name(principal: &str, key: &IdempotencyKey) -> String {
    let mut hasher = Sha256::new();
    for part in [
        b"breakwater idempotency record v1".as_slice(),
        principal.as_bytes(),
        key.as_str().as_bytes(),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    crate::hash::hex(&hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_key_below_the_floor_is_refused_with_both_lengths() {
        let key = |v: &str| parse_key(v).unwrap();
        assert_eq!(
            key("0123456789abcdef").at_least(16),
            Ok(key("0123456789abcdef"))
        );
        assert_eq!(
            key("\"0123456789abcde\"").at_least(16),
            Err(KeyError::TooShort { chars: 15, min: 16 })
        );
        let err = key("1").at_least(16).unwrap_err().to_string();
        assert!(err.contains("1 characters; at least 16"), "{err}");
        assert_eq!(key("1").at_least(1), Ok(key("1")));
    }

    #[test]
    fn values_parse_to_their_content_or_say_why_not() {
        let long = |n: usize| format!("\"{}\"", "k".repeat(n));
        let k255 = "k".repeat(255);
        let uuid = "8e03978e-40d5-43e8-bc93-6894a57f9324";
        use KeyError::*;
        #[rustfmt::skip]
        let cases: Vec<(String, Result<&str, KeyError>)> = vec![
            (r#""abc""#.into(), Ok("abc")),
            (r#"  "abc" "#.into(), Ok("abc")),
            (r#""a\"b\\c""#.into(), Ok(r#"a"b\c"#)),
            (r#""../etc/passwd' OR 1=1; --""#.into(), Ok("../etc/passwd' OR 1=1; --")),
            (r#""with space""#.into(), Ok("with space")),
            (uuid.into(), Ok(uuid)),
            ("tok:en/1".into(), Ok("tok:en/1")),
            (long(255), Ok(&k255)),
            (long(256), Err(TooLong { chars: 256 })),
            ("k".repeat(256), Err(TooLong { chars: 256 })),
            ("".into(), Err(Empty)),
            ("   ".into(), Err(Empty)),
            (r#""""#.into(), Err(Empty)),
            (r#""abc"#.into(), Err(Unterminated)),
            (r#""abc\"#.into(), Err(Unterminated)),
            (r#""a\nb""#.into(), Err(BadEscape { at: 3 })),
            ("\"a\u{7}b\"".into(), Err(NotPrintableAscii { at: 2 })),
            ("\"a\tb\"".into(), Err(NotPrintableAscii { at: 2 })),
            ("\"clé\"".into(), Err(NotPrintableAscii { at: 3 })),
            ("clé".into(), Err(NotPrintableAscii { at: 2 })),
            ("a\u{0}".into(), Err(NotPrintableAscii { at: 1 })),
            ("a=b".into(), Err(NotQuoted { at: 1 })),
            ("a\"b".into(), Err(NotQuoted { at: 1 })),
            ("a;p=1".into(), Err(NotQuoted { at: 1 })),
            ("two words".into(), Err(Trailing { at: 4 })),
            (r#""a";p=1"#.into(), Err(Trailing { at: 3 })),
            (r#""a""b""#.into(), Err(Trailing { at: 3 })),
            (r#""a", "b""#.into(), Err(Multiple)),
            ("a, b".into(), Err(Multiple)),
            ("a,b".into(), Err(Multiple)),
        ];
        for (value, want) in cases {
            let got = parse_key(&value);
            assert_eq!(
                got.as_ref().map(IdempotencyKey::as_str),
                want.as_ref().map(|s| *s),
                "{value:?}"
            );
        }
    }

    #[test]
    fn quoted_and_bare_forms_are_the_same_key() {
        assert_eq!(parse_key("abc-1"), parse_key(r#""abc-1""#));
    }

    #[test]
    fn record_names_separate_principals_and_never_contain_the_key() {
        let key = parse_key(r#""../k""#).unwrap();
        let a = record_name("user:a", &key);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, record_name("user:b", &key));
        // Length prefixes: moving a character across the boundary changes the name.
        assert_ne!(
            record_name("ab", &parse_key("c").unwrap()),
            record_name("a", &parse_key("bc").unwrap())
        );
    }

    /// An sf-string holding `content` (RFC 8941 §4.1.6).
    fn serialize(content: &str) -> String {
        let escaped = content.replace('\\', r"\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn serialized_keys_round_trip(content in "[ -~]{1,255}") {
            let key = parse_key(&serialize(&content)).unwrap();
            prop_assert_eq!(key.as_str(), content.as_str());
        }

        #[test]
        fn anything_parses_or_fails_without_panicking(value in any::<String>()) {
            if let Ok(key) = parse_key(&value) {
                prop_assert!((1..=MAX_KEY_CHARS).contains(&key.as_str().len()));
                prop_assert!(key.as_str().bytes().all(|b| (0x20..=0x7e).contains(&b)));
            }
        }
    }
}
