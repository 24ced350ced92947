//! Range requests answered from a stored response (RFC 9110 §14): which bytes of a stored `200`
//! a `GET` with `Range` gets, as a `206`, a `416`, or the whole `200`.
//!
//! The cache answers one range and nothing fancier, as §14.2 allows ("a server MAY ignore the
//! Range header field"):
//! - only a `GET` (§14.2: "a server MUST ignore a Range header field received with a request
//!   method that is unrecognized or for which range handling is not defined"; here, `GET` only)
//!   answered from a stored `200`;
//! - the `bytes` unit (case-insensitive, §14.1) with one `int-range` (`a-b`, `a-`) or
//!   `suffix-range` (`-n`) (§14.1.1); a last-pos past the end is clamped to the last byte;
//! - several ranges, another unit, or a syntactically invalid `Range` (including `b < a`) →
//!   the full response: the field is ignored (§14.2);
//! - a valid range none of whose bytes exist (first-pos ≥ length, `-0`, anything of an empty
//!   body) → `416` with `Content-Range: bytes */length` (§14.1.3, §15.5.17);
//! - `If-Range` (§13.1.5): an entity tag must match the stored `ETag` by strong comparison; a
//!   date must equal the stored `Last-Modified` and that must be a strong validator (the stored
//!   `Date` at least one second later, RFC 9110 §8.8.2.2). Otherwise the full response.

use super::date::{Timestamp, parse_http_date};
use super::etag::EntityTag;
use super::message::HeaderList;

/// How to answer a request from a stored response's body of a known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeReply {
    /// The whole stored response, as stored (`200`).
    Full,
    /// `206` with the bytes `start..=end` of `total`.
    Partial {
        /// First byte, counted from 0.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
        /// The stored body's length.
        total: u64,
    },
    /// `416 Range Not Satisfiable` (§15.5.17).
    Unsatisfiable {
        /// The stored body's length.
        total: u64,
    },
}

impl RangeReply {
    /// The `Content-Range` field value (§14.4): `bytes 0-4/10` for a `206`, `bytes */10` for a
    /// `416`; `None` for the full response.
    pub fn content_range(&self) -> Option<String> {
        match self {
            Self::Full => None,
            Self::Partial { start, end, total } => Some(format!("bytes {start}-{end}/{total}")),
            Self::Unsatisfiable { total } => Some(format!("bytes */{total}")),
        }
    }
}

/// The answer to `method` with `request` headers from a stored response (`stored_status`,
/// `stored` fields) whose body is `body_len` bytes long (see the module doc for the rules).
pub fn range_reply(
    method: &str,
    request: &HeaderList,
    stored_status: u16,
    stored: &HeaderList,
    body_len: u64,
) -> RangeReply {
    if method != "GET" || stored_status != 200 {
        return RangeReply::Full;
    }
    let Some(range) = request.get("range") else {
        return RangeReply::Full;
    };
    if let Some(if_range) = request.get("if-range")
        && !if_range_holds(&if_range, stored)
    {
        return RangeReply::Full;
    }
    match parse_range(&range) {
        Some(spec) => spec.reply(body_len),
        None => RangeReply::Full,
    }
}

/// One byte range as sent (§14.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-` or `first-last`.
    From { first: u64, last: Option<u64> },
    /// `-suffix`: the last `suffix` bytes.
    Suffix(u64),
}

impl Spec {
    /// §14.1.3: satisfiable when first-pos < length, or a suffix-length > 0 of a non-empty body.
    fn reply(self, total: u64) -> RangeReply {
        let last_byte = total.checked_sub(1);
        match (self, last_byte) {
            (Self::From { first, last }, Some(max)) if first <= max => RangeReply::Partial {
                start: first,
                end: last.map_or(max, |l| l.min(max)),
                total,
            },
            (Self::Suffix(n), Some(max)) if n > 0 => RangeReply::Partial {
                start: total.saturating_sub(n),
                end: max,
                total,
            },
            _ => RangeReply::Unsatisfiable { total },
        }
    }
}

/// `bytes=` with exactly one range; `None` when the field is to be ignored.
fn parse_range(value: &str) -> Option<Spec> {
    let (unit, set) = value.trim().split_once('=')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    // RFC 9110 §5.6.1: empty list elements are ignored.
    let mut ranges = set
        .split(',')
        .map(|r| r.trim_matches([' ', '\t']))
        .filter(|r| !r.is_empty());
    let only = ranges.next()?;
    if ranges.next().is_some() {
        return None;
    }
    let (first, last) = only.split_once('-')?;
    match (digits(first), last) {
        (None, _) if first.is_empty() => digits(last).map(Spec::Suffix),
        (Some(first), "") => Some(Spec::From { first, last: None }),
        (Some(first), last) => {
            let last = digits(last)?;
            (last >= first).then_some(Spec::From {
                first,
                last: Some(last),
            })
        }
        (None, _) => None,
    }
}

/// `1*DIGIT`, saturating: a position past any real length stays past it.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// §13.1.5: does the `If-Range` validator match the stored response?
fn if_range_holds(if_range: &str, stored: &HeaderList) -> bool {
    let date = |v: &str| parse_http_date(v, Timestamp::EPOCH);
    if let Some(since) = date(if_range) {
        let last_modified = stored.get("last-modified").and_then(|v| date(&v));
        let generated = stored.get("date").and_then(|v| date(&v));
        // A strong date validator: generated at least a second after the last modification.
        return match (last_modified, generated) {
            (Some(lm), Some(d)) => lm == since && d.since(lm) >= 1,
            _ => false,
        };
    }
    let stored_tag = stored.get("etag").and_then(|t| EntityTag::parse(&t));
    match (EntityTag::parse(if_range), stored_tag) {
        (Some(theirs), Some(ours)) => theirs.strong_eq(&ours),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderList {
        pairs.iter().copied().collect()
    }

    const LM: &str = "Thu, 01 Jan 2015 00:00:00 GMT";

    #[test]
    fn content_range_per_rfc9110_14_4() {
        #[rustfmt::skip]
        let cases = [
            (RangeReply::Partial { start: 0, end: 4, total: 10 }, Some("bytes 0-4/10")),
            (RangeReply::Unsatisfiable { total: 10 }, Some("bytes */10")),
            (RangeReply::Full, None),
        ];
        for (reply, want) in cases {
            assert_eq!(reply.content_range().as_deref(), want, "{reply:?}");
        }
    }

    #[test]
    fn range_reply_table() {
        use RangeReply::{Full, Partial, Unsatisfiable};
        let part = |start, end| Partial {
            start,
            end,
            total: 10,
        };
        let stored = h(&[
            ("ETag", "\"v1\""),
            ("Last-Modified", LM),
            ("Date", "Fri, 02 Jan 2015 00:00:00 GMT"),
        ]);
        let weak = h(&[("ETag", "W/\"v1\"")]);
        let weak_date = h(&[("Last-Modified", LM), ("Date", LM)]);
        // (method, request fields, stored status, stored fields, body length, reply, rule)
        #[rustfmt::skip]
        let cases = [
            ("GET", h(&[("Range", "bytes=0-4")]), 200, &stored, 10, part(0, 4), "§14.1.1: int-range"),
            ("GET", h(&[("Range", "bytes=5-")]), 200, &stored, 10, part(5, 9), "§14.1.1: open int-range"),
            ("GET", h(&[("Range", "bytes=-3")]), 200, &stored, 10, part(7, 9), "§14.1.1: suffix-range"),
            ("GET", h(&[("Range", "bytes=-30")]), 200, &stored, 10, part(0, 9), "§14.1.3: a suffix longer than the body is the body"),
            ("GET", h(&[("Range", "bytes=2-99")]), 200, &stored, 10, part(2, 9), "§14.1.3: last-pos clamped to length − 1"),
            ("GET", h(&[("Range", "bytes=9-9")]), 200, &stored, 10, part(9, 9), "the last byte"),
            ("GET", h(&[("Range", "Bytes = 0-4")]), 200, &stored, 10, Full, "'=' with whitespace is not the grammar: ignored"),
            ("GET", h(&[("Range", "BYTES=0-4")]), 200, &stored, 10, part(0, 4), "§14.1: range units are case-insensitive"),
            ("GET", h(&[("Range", "bytes= 0-4 ,")]), 200, &stored, 10, part(0, 4), "RFC 9110 §5.6.1: OWS and empty elements"),
            ("GET", h(&[("Range", "bytes=10-")]), 200, &stored, 10, Unsatisfiable { total: 10 }, "§14.1.3: first-pos ≥ length → 416"),
            ("GET", h(&[("Range", "bytes=99999999999999999999999-")]), 200, &stored, 10, Unsatisfiable { total: 10 }, "a huge first-pos is past the end"),
            ("GET", h(&[("Range", "bytes=-0")]), 200, &stored, 10, Unsatisfiable { total: 10 }, "§14.1.3: a zero suffix-length is unsatisfiable"),
            ("GET", h(&[("Range", "bytes=0-")]), 200, &stored, 0, Unsatisfiable { total: 0 }, "§14.1.3: nothing of an empty body"),
            ("GET", h(&[("Range", "bytes=0-1,4-5")]), 200, &stored, 10, Full, "§14.2: several ranges, the server may ignore Range"),
            ("GET", h(&[("Range", "bytes=4-1")]), 200, &stored, 10, Full, "§14.1.1: last-pos < first-pos is invalid, ignored"),
            ("GET", h(&[("Range", "bytes=a-b")]), 200, &stored, 10, Full, "§14.2: invalid syntax ignored"),
            ("GET", h(&[("Range", "bytes=-")]), 200, &stored, 10, Full, "no position at all"),
            ("GET", h(&[("Range", "bytes=+1-2")]), 200, &stored, 10, Full, "§14.1.1: positions are 1*DIGIT"),
            ("GET", h(&[("Range", "items=0-4")]), 200, &stored, 10, Full, "§14.2: an unknown unit is ignored"),
            ("GET", h(&[("Range", "0-4")]), 200, &stored, 10, Full, "no unit"),
            ("GET", h(&[]), 200, &stored, 10, Full, "no Range"),
            ("HEAD", h(&[("Range", "bytes=0-4")]), 200, &stored, 10, Full, "§14.2: only GET"),
            ("GET", h(&[("Range", "bytes=0-4")]), 404, &stored, 10, Full, "only a stored 200"),
            ("GET", h(&[("Range", "bytes=0-4"), ("If-Range", "\"v1\"")]), 200, &stored, 10, part(0, 4), "§13.1.5: strong match"),
            ("GET", h(&[("Range", "bytes=0-4"), ("If-Range", "\"v2\"")]), 200, &stored, 10, Full, "§13.1.5: another tag → full"),
            ("GET", h(&[("Range", "bytes=0-4"), ("If-Range", "W/\"v1\"")]), 200, &stored, 10, Full, "§13.1.5: a weak tag never matches"),
            ("GET", h(&[("Range", "bytes=0-4"), ("If-Range", "\"v1\"")]), 200, &weak, 10, Full, "§13.1.5: a weak stored tag never matches"),
            ("GET", h(&[("Range", "bytes=0-4"), ("If-Range", LM)]), 200, &stored, 10, part(0, 4), "§13.1.5: the exact Last-Modified"),
            ("GET", h(&[("Range", "bytes=0-4"), ("If-Range", "Thu, 01 Jan 2015 00:00:01 GMT")]), 200, &stored, 10, Full, "§13.1.5: any other date → full"),
            ("GET", h(&[("Range", "bytes=0-4"), ("If-Range", LM)]), 200, &weak_date, 10, Full, "RFC 9110 §8.8.2.2: Last-Modified = Date is weak"),
            ("GET", h(&[("Range", "bytes=0-4"), ("If-Range", LM)]), 200, &weak, 10, Full, "no Last-Modified to match"),
            ("GET", h(&[("Range", "bytes=0-4"), ("If-Range", "\"v1")]), 200, &stored, 10, Full, "a malformed If-Range never matches"),
            ("GET", h(&[("Range", "bytes=0-1,4-5"), ("If-Range", "\"v2\"")]), 200, &stored, 10, Full, "§13.1.5 with an ignored Range"),
        ];
        for (method, request, status, stored, len, want, rule) in cases {
            assert_eq!(
                range_reply(method, &request, status, stored, len),
                want,
                "{rule}"
            );
        }
    }
}
