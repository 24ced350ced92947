//! Byte-level mutations of an input taken from the pool: the classic set (flip, insert, delete,
//! duplicate, splice) plus the target's dictionary and numbers at their limits, stacked a few at
//! a time. They know nothing of the envelope format, so they also break it: a field loses its
//! colon, a value grows a line break, the body swallows a field.

use crate::draw::{NUMBERS, UNICODE};
use crate::rng::Rng;

/// Bytes that end, start or escape something in the formats under test.
const INTERESTING_BYTES: &[u8] = b"\0\x01\x7f\x80\xff%\"',;=\\\n\r \t:/.-*{}[]()09?#&@+eE";

/// Most mutations stacked on one input.
const MAX_STACK: usize = 6;

/// Applies one to [`MAX_STACK`] mutations to `input`, drawing tokens from `dictionary` and
/// splice material from `pool`, and keeps the result within `max_len` bytes.
pub fn mutate(
    rng: &mut Rng,
    input: &mut Vec<u8>,
    dictionary: &[&str],
    pool: &[Vec<u8>],
    max_len: usize,
) {
    // Mostly one or two: small steps from an input that already reaches somewhere.
    let stack = 1 + rng.below(MAX_STACK).min(rng.below(MAX_STACK));
    for _ in 0..stack {
        once(rng, input, dictionary, pool, max_len);
    }
    input.truncate(max_len);
}

fn once(rng: &mut Rng, input: &mut Vec<u8>, dictionary: &[&str], pool: &[Vec<u8>], max: usize) {
    let len = input.len();
    let at = rng.below(len + 1);
    match rng.below(15) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = rng.next_u64() as u8;
        }
        2 if len > 0 => {
            let i = rng.below(len);
            input[i] = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
        }
        3 if len > 0 => {
            let (from, to) = span(rng, len);
            input.drain(from..to);
        }
        4 if len > 0 => {
            let (from, to) = span(rng, len);
            let chunk = input[from..to].to_vec();
            splice_in(input, at, &chunk);
        }
        5 | 6 => {
            let token = token(rng, dictionary);
            splice_in(input, at, token.as_bytes());
        }
        7 if len > 0 => {
            let (from, to) = span(rng, len);
            let token = token(rng, dictionary);
            input.splice(from..to, token.bytes());
        }
        8 => replace_number(rng, input),
        9 => {
            let c = UNICODE[rng.below(UNICODE.len())];
            splice_in(input, at, c.to_string().as_bytes());
        }
        10 => {
            if let Some(other) = rng.pick(pool).filter(|o| !o.is_empty()) {
                let (from, to) = span(rng, other.len());
                splice_in(input, at, &other[from..to]);
            }
        }
        11 if len > 0 => input.truncate(rng.below(len)),
        12 if len > 0 => {
            // A chunk repeated up to the length limit: for size limits and quadratic parsers.
            let (from, to) = span(rng, len.min(16));
            let chunk = input[from..to].to_vec();
            if !chunk.is_empty() {
                let times = rng.below(max / chunk.len() + 1);
                let repeated = chunk.repeat(times.min(max / chunk.len()));
                splice_in(input, at, &repeated);
            }
        }
        13 if len > 1 => {
            let (from, to) = span(rng, len);
            let mid = from + (to - from) / 2;
            input[from..to].rotate_left(mid - from);
        }
        _ => {
            let b = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
            splice_in(input, at, &[b]);
        }
    }
}

/// A dictionary token, a number at a limit, or a couple of random printable bytes.
fn token(rng: &mut Rng, dictionary: &[&str]) -> String {
    match rng.below(8) {
        0 => NUMBERS[rng.below(NUMBERS.len())].to_owned(),
        1 => (0..rng.range(1, 3))
            .map(|_| char::from(rng.range(0x20, 0x7e) as u8))
            .collect(),
        _ => rng.pick(dictionary).map_or("", |t| t).to_owned(),
    }
}

/// A random `from..to` within `len` (`len` > 0), short more often than long.
fn span(rng: &mut Rng, len: usize) -> (usize, usize) {
    let from = rng.below(len);
    let room = len - from;
    let size = 1 + rng.below(room).min(rng.below(room.min(64)));
    (from, from + size)
}

fn splice_in(input: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    let at = at.min(input.len());
    input.splice(at..at, bytes.iter().copied());
}

/// Replaces one run of ASCII digits (and a sign before it) with a number at a limit.
fn replace_number(rng: &mut Rng, input: &mut Vec<u8>) {
    let starts: Vec<usize> = (0..input.len())
        .filter(|&i| input[i].is_ascii_digit() && (i == 0 || !input[i - 1].is_ascii_digit()))
        .collect();
    let Some(&start) = rng.pick(&starts) else {
        return;
    };
    let end = start
        + input[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
    let start = if start > 0 && input[start - 1] == b'-' {
        start - 1
    } else {
        start
    };
    let number = NUMBERS[rng.below(NUMBERS.len())];
    input.splice(start..end, number.bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_change_inputs_and_respect_the_limit() {
        let mut rng = Rng::new(3);
        let seed = b":status: 200\ncache-control: max-age=60\n\n{}".to_vec();
        let pool = vec![seed.clone()];
        let mut changed = 0;
        for _ in 0..5_000 {
            let mut input = seed.clone();
            mutate(&mut rng, &mut input, &["max-age", "no-store"], &pool, 64);
            assert!(input.len() <= 64);
            changed += usize::from(input != seed);
        }
        assert!(changed > 4_500, "only {changed} of 5000 changed");
    }

    #[test]
    fn numbers_are_replaced_whole() {
        let mut rng = Rng::new(4);
        let mut input = b"max-age=-60".to_vec();
        replace_number(&mut rng, &mut input);
        let text = String::from_utf8(input).unwrap();
        let number = text.strip_prefix("max-age=").unwrap();
        assert!(NUMBERS.contains(&number), "{text}");
    }

    #[test]
    fn empty_inputs_can_grow() {
        let mut rng = Rng::new(5);
        let grown = (0..100).any(|_| {
            let mut input = Vec::new();
            mutate(&mut rng, &mut input, &["x"], &[], 16);
            !input.is_empty()
        });
        assert!(grown);
    }
}
