//! Building blocks for the targets' structured generators: values drawn from the shapes the
//! parsers expect (numbers at their limits, header-ish text, JSON with the right keys), with
//! enough noise mixed in that a parser also sees what it must refuse.
//!
//! Pure random bytes almost never get past a JSON parser or a date's fixed layout; these make
//! most generated inputs valid or nearly so, and the runner's mutations do the rest.

use serde_json::{Map, Number, Value};

use crate::rng::Rng;

/// Something that draws a field value.
pub type Maker<'a> = &'a dyn Fn(&mut Rng) -> String;

/// A plain function that draws a field value.
pub type MakeFn = fn(&mut Rng) -> String;

/// Numbers at the edges parsers get wrong: zero and one, the sign, the limits of each integer
/// width, JavaScript's safe integers, the 2^31 of delta-seconds, and forms that are not plain
/// integers at all.
pub const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "007",
    "+5",
    "1.5",
    "1e3",
    "-0",
    "60",
    "100",
    "101",
    "255",
    "256",
    "1000",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9007199254740991",
    "9007199254740992",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "-9223372036854775808",
];

/// Characters that are not plain ASCII: Latin-1, one that changes length when lower-cased
/// (`İ`), the replacement character, a zero-width space, a no-break space, a line separator, an
/// emoji and a right-to-left override.
pub const UNICODE: &[char] = &[
    'é', 'İ', 'ß', '\u{fffd}', '\u{200b}', '\u{a0}', '\u{2028}', '😀', '\u{202e}', 'Ω', '٣',
];

/// One of `items`, or `""` when there are none.
pub fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    rng.pick(items).copied().unwrap_or("")
}

/// Up to `max` characters from `alphabet`.
pub fn text(rng: &mut Rng, alphabet: &[u8], max: usize) -> String {
    let len = rng.below(max + 1);
    (0..len)
        .filter_map(|_| rng.pick(alphabet).map(|&b| char::from(b)))
        .collect()
}

/// Up to `max` characters of anything: mostly printable ASCII, with controls, delimiters and
/// non-ASCII characters mixed in.
pub fn noise(rng: &mut Rng, max: usize) -> String {
    let len = rng.below(max + 1);
    (0..len)
        .map(|_| match rng.below(10) {
            0 => char::from(rng.range(0, 0x1f) as u8),
            1 => UNICODE[rng.below(UNICODE.len())],
            2 => char::from(*rng.pick(b"\"\\,;=:/%?#&*@ \t()[]{}<>").unwrap_or(&b' ')),
            _ => char::from(rng.range(0x20, 0x7e) as u8),
        })
        .collect()
}

/// A number as text: one of [`NUMBERS`], or a random one of a random width.
pub fn number(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => pick(rng, NUMBERS).to_owned(),
        1 => rng.range(0, 1000).to_string(),
        _ => (rng.next_u64() >> rng.below(64)).to_string(),
    }
}

/// A JSON number: small, at a limit, negative, or a fraction.
pub fn json_number(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 => Value::from(rng.range(0, 10)),
        1 => Value::from(rng.range(0, 100_000)),
        2 => Value::from(rng.next_u64() >> rng.below(64)),
        3 => Value::from(-(rng.range(0, 1 << 40) as i64)),
        4 => Number::from_f64(rng.range(0, 10_000) as f64 / 8.0).map_or(Value::Null, Value::Number),
        _ => pick(rng, NUMBERS)
            .parse::<Value>()
            .unwrap_or(Value::from(0)),
    }
}

/// A JSON value of any type, objects keyed from `keys` (and now and then a key of noise), values
/// from `strings` or noise, at most `depth` levels deep.
pub fn json(rng: &mut Rng, keys: &[&str], strings: &[&str], depth: usize) -> Value {
    let choice = if depth == 0 {
        rng.below(5)
    } else {
        rng.below(7)
    };
    match choice {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2 => json_number(rng),
        3 | 4 => Value::String(if rng.one_in(4) {
            noise(rng, 12)
        } else {
            pick(rng, strings).to_owned()
        }),
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| json(rng, keys, strings, depth - 1))
                .collect(),
        ),
        _ => object(rng, keys, strings, depth - 1),
    }
}

/// A JSON object of up to five members keyed from `keys`.
pub fn object(rng: &mut Rng, keys: &[&str], strings: &[&str], depth: usize) -> Value {
    let mut map = Map::new();
    for _ in 0..rng.below(6) {
        let key = if rng.one_in(12) {
            noise(rng, 8)
        } else {
            pick(rng, keys).to_owned()
        };
        map.insert(key, json(rng, keys, strings, depth));
    }
    Value::Object(map)
}

/// `value` as JSON text, now and then with a syntax slip (a trailing comma, a cut end, a
/// duplicated member), since a parser must refuse those too.
pub fn json_text(rng: &mut Rng, value: &Value) -> String {
    let text = if rng.one_in(2) {
        value.to_string()
    } else {
        serde_json::to_string_pretty(value).unwrap_or_default()
    };
    match rng.below(16) {
        0 => text[..floor_char_boundary(&text, rng.below(text.len() + 1))].to_owned(),
        1 => text.replacen('}', ",}", 1),
        2 => match text.find('{') {
            // The first member twice: a repeated key.
            Some(open) => match text[open..].find(',') {
                Some(comma) => format!("{}{}", &text[..open + comma + 1], &text[open + 1..]),
                None => text,
            },
            None => text,
        },
        _ => text,
    }
}

/// The largest character boundary of `s` at or below `at`.
pub fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_json_is_mostly_valid_and_sometimes_not() {
        let mut rng = Rng::new(1);
        let (mut valid, mut invalid) = (0, 0);
        for _ in 0..2_000 {
            let value = object(&mut rng, &["a", "b"], &["x"], 2);
            match serde_json::from_str::<Value>(&json_text(&mut rng, &value)) {
                Ok(_) => valid += 1,
                Err(_) => invalid += 1,
            }
        }
        assert!(
            valid > invalid && invalid > 0,
            "{valid} valid, {invalid} invalid"
        );
    }

    #[test]
    fn noise_reaches_controls_and_non_ascii() {
        let mut rng = Rng::new(2);
        let all: String = (0..200).map(|_| noise(&mut rng, 20)).collect();
        assert!(all.chars().any(char::is_control));
        assert!(!all.is_ascii());
    }
}
