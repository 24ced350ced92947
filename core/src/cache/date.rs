//! Time for the cache: a [`Timestamp`] in whole seconds since the Unix epoch, and HTTP-date
//! parsing and formatting (RFC 9110 §5.6.7).
//!
//! Hand-written rather than `httpdate` because RFC 9110 §5.6.7 makes the two-digit year of an
//! rfc850-date relative to the current time ("more than 50 years in the future" means the previous
//! century), which needs `now`; `httpdate` pins the century at 1970. It also rejects the leap
//! second `:60` the grammar allows and dates before 1970 (which, for `Expires` and
//! `Last-Modified`, are simply "in the past"). The grammar is fixed and small; a parse error is
//! `None`, never a panic.

#![expect(
    clippy::indexing_slicing,
    reason = "every fixed-width field is sliced after its length is checked; the parser is fuzzed (target cache-headers)"
)]

use serde::{Deserialize, Serialize};

/// Whole seconds since 1970-01-01T00:00:00Z. The core never reads a clock: the edge passes these in.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// 1970-01-01T00:00:00Z.
    pub const EPOCH: Self = Self(0);

    /// The instant `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs)
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// Seconds from `earlier` to `self`, or 0 if `earlier` is later (clocks can step back).
    pub const fn since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The instant `secs` seconds later, saturating rather than overflowing.
    pub const fn plus(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs))
    }
}

const DAY: i64 = 86_400;
const SHORT_DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses an HTTP-date in any of the three forms a recipient MUST accept (RFC 9110 §5.6.7):
/// IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, rfc850-date `Sunday, 06-Nov-94 08:49:37 GMT`
/// and asctime-date `Sun Nov  6 08:49:37 1994`.
///
/// `now` resolves the rfc850 two-digit year. Dates before 1970 become [`Timestamp::EPOCH`]: every
/// use the cache has for them only needs "in the past". `None` for anything else, including the
/// value `0` (RFC 9111 §5.3 then treats an `Expires` as already expired).
pub fn parse_http_date(value: &str, now: Timestamp) -> Option<Timestamp> {
    let s = value.trim().as_bytes();
    // An asctime-date whose one-digit day lacks its padding space (`Thu Aug 8 02:01:18 2050`)
    // is read as the padded form.
    let padded;
    let s = if s.len() == 23 && !s.contains(&b',') && s.get(9) == Some(&b' ') {
        padded = [&s[..8], b" ", &s[8..]].concat();
        padded.as_slice()
    } else {
        s
    };
    let (year, month, day, clock) = match s.iter().position(|&b| b == b',') {
        Some(comma) => {
            let (name, rest) = (&s[..comma], s[comma + 1..].strip_prefix(b" ")?);
            if name.len() == 3 {
                // date1 SP time-of-day SP GMT: "06 Nov 1994 08:49:37 GMT"
                day_name(name, &SHORT_DAYS)?;
                if rest.len() != 24 || [rest[2], rest[6], rest[11]] != [b' '; 3] {
                    return None;
                }
                gmt(&rest[20..])?;
                let year = number(&rest[7..11])?;
                (
                    year,
                    month(&rest[3..6])?,
                    number(&rest[0..2])?,
                    &rest[12..20],
                )
            } else {
                // date2 SP time-of-day SP GMT: "06-Nov-94 08:49:37 GMT"
                day_name(name, &LONG_DAYS)?;
                if rest.len() != 22 || [rest[2], rest[6], rest[9]] != [b'-', b'-', b' '] {
                    return None;
                }
                gmt(&rest[18..])?;
                let year = two_digit_year(number(&rest[7..9])?, now);
                (
                    year,
                    month(&rest[3..6])?,
                    number(&rest[0..2])?,
                    &rest[10..18],
                )
            }
        }
        None => {
            // day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP time-of-day SP year
            if s.len() != 24 || [s[3], s[7], s[10], s[19]] != [b' '; 4] {
                return None;
            }
            day_name(&s[..3], &SHORT_DAYS)?;
            let day = match s[8] {
                b' ' => number(&s[9..10])?,
                _ => number(&s[8..10])?,
            };
            (number(&s[20..24])?, month(&s[4..7])?, day, &s[11..19])
        }
    };
    let (hour, minute, second) = time_of_day(clock)?;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * DAY + hour * 3600 + minute * 60 + second;
    Some(Timestamp(u64::try_from(secs).unwrap_or(0)))
}

/// Formats `t` as an IMF-fixdate, the form a sender MUST generate (RFC 9110 §5.6.7).
pub fn format_http_date(t: Timestamp) -> String {
    // i64 holds every u64 second count up to year ~292e9; beyond that, clamp to year 9999.
    let secs = i64::try_from(t.0).unwrap_or(i64::MAX).min(253_402_300_799);
    let (days, rem) = (secs.div_euclid(DAY), secs.rem_euclid(DAY));
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = SHORT_DAYS[usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0)];
    format!(
        "{weekday}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        MONTHS[usize::try_from(month - 1).unwrap_or(0)],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn day_name(name: &[u8], names: &[&str; 7]) -> Option<()> {
    names
        .iter()
        .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
        .then_some(())
}

/// ` GMT`; the case is not checked, as established caches accept `gmt` (a recipient of a
/// non-conforming date may recover, RFC 9110 §5.6.7).
fn gmt(s: &[u8]) -> Option<()> {
    s.eq_ignore_ascii_case(b" GMT").then_some(())
}

fn month(name: &[u8]) -> Option<i64> {
    let index = MONTHS
        .iter()
        .position(|m| m.as_bytes().eq_ignore_ascii_case(name))?;
    i64::try_from(index).ok().map(|i| i + 1)
}

/// A run of ASCII digits (never a sign or space) as a number.
fn number(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

/// `HH:MM:SS`; second 60 is allowed for a leap second (RFC 9110 §5.6.7).
fn time_of_day(s: &[u8]) -> Option<(i64, i64, i64)> {
    if s.len() != 8 || s[2] != b':' || s[5] != b':' {
        return None;
    }
    let (h, m, sec) = (number(&s[0..2])?, number(&s[3..5])?, number(&s[6..8])?);
    (h < 24 && m < 60 && sec <= 60).then_some((h, m, sec))
}

/// RFC 9110 §5.6.7: a two-digit year that would be more than 50 years in the future is the most
/// recent past year with the same last two digits.
fn two_digit_year(yy: i64, now: Timestamp) -> i64 {
    let (current, _, _) = civil_from_days(i64::try_from(now.0).unwrap_or(i64::MAX) / DAY);
    let past = current - (current % 100 - yy).rem_euclid(100);
    if past + 100 - current <= 50 {
        past + 100
    } else {
        past
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2026-06-01T00:00:00Z, a fixed "now" for the two-digit-year rule.
    const NOW: Timestamp = Timestamp(1_780_272_000);

    #[test]
    fn the_three_formats_of_rfc9110_5_6_7() {
        let want = Some(Timestamp(784_111_777));
        #[rustfmt::skip]
        let cases = [
            ("Sun, 06 Nov 1994 08:49:37 GMT", want, "IMF-fixdate"),
            ("Sunday, 06-Nov-94 08:49:37 GMT", want, "rfc850-date"),
            ("Sun Nov  6 08:49:37 1994", want, "asctime-date, space-padded day"),
            ("  Sun, 06 Nov 1994 08:49:37 GMT ", want, "OWS around a field value"),
            ("sun, 06 nov 1994 08:49:37 GMT", want, "names compared case-insensitively"),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(Timestamp::EPOCH), "the epoch"),
            ("Wed, 31 Dec 1969 23:59:59 GMT", Some(Timestamp::EPOCH), "before the epoch: clamped"),
            ("Wed, 31 Dec 2016 23:59:60 GMT", Some(Timestamp(1_483_228_800)), "a leap second"),
            ("Thu, 29 Feb 2024 00:00:00 GMT", Some(Timestamp(1_709_164_800)), "a leap day"),
            ("0", None, "RFC 9111 §5.3: \"0\" is invalid (already expired)"),
            ("", None, "empty"),
            ("-1", None, "a delta, not a date"),
            ("Sun, 06 Nov 1994 08:49:37 UTC", None, "the zone must be GMT"),
            ("Sun, 06 Nov 1994 08:49:37 gmt", want, "lenient: the zone in another case"),
            ("Sunday, 06-Nov-94 08:49:37 Gmt", want, "lenient: rfc850-date, zone in another case"),
            ("Sun Nov 6 08:49:37 1994", want, "lenient: asctime-date without the day's padding"),
            ("SUN NOV  6 08:49:37 1994", want, "asctime-date, names in another case"),
            ("Sun Nov 6 08:49:37 94", None, "an asctime year is still 4DIGIT"),
            ("Sun Nov 16 08:49:37 199", None, "a 23-byte value with a two-digit day is no asctime-date"),
            ("Sun, 06 Nov 1994 8:49:37 GMT", None, "a one-digit hour"),
            ("Sun, 06 Nov 1994 08.49.37 GMT", None, "periods in the time"),
            ("Sun 06 Nov 1994 08:49:37 GMT", None, "no comma"),
            ("Sun, 6 Nov 1994 08:49:37 GMT", None, "an IMF day is 2DIGIT"),
            ("Sun, 29 Feb 2023 08:49:37 GMT", None, "no 29 February in 2023"),
            ("Sun, 31 Apr 2023 08:49:37 GMT", None, "no 31 April"),
            ("Sun, 06 Nov 1994 24:00:00 GMT", None, "hour 24"),
            ("Sun, 06 Nov 1994 08:60:00 GMT", None, "minute 60"),
            ("Sun, 06 Foo 1994 08:49:37 GMT", None, "an unknown month"),
            ("Xyz, 06 Nov 1994 08:49:37 GMT", None, "an unknown day name"),
            ("Sun, 06 Nov +994 08:49:37 GMT", None, "a sign in the year"),
            ("Sun, 06 Nov 1994 08:49:37 GMT, x", None, "trailing garbage"),
            ("Sun Nov 06 08:49:37 94", None, "an asctime year is 4DIGIT"),
            ("Sunday, 06 Nov 1994 08:49:37 GMT", None, "a long day name with an IMF date"),
        ];
        for (input, want, why) in cases {
            assert_eq!(parse_http_date(input, NOW), want, "{why}: {input:?}");
        }
    }

    #[test]
    fn rfc850_two_digit_years_are_never_more_than_50_years_ahead() {
        let year = |yy: &str| {
            let t = parse_http_date(&format!("Monday, 01-Jan-{yy} 00:00:00 GMT"), NOW).unwrap();
            civil_from_days(i64::try_from(t.as_secs()).unwrap() / DAY).0
        };
        assert_eq!(year("94"), 1994, "68 years ahead → last century");
        assert_eq!(year("30"), 2030);
        assert_eq!(year("76"), 2076, "exactly 50 years ahead is allowed");
        assert_eq!(year("77"), 1977);
        assert_eq!(year("26"), 2026);
    }

    #[test]
    fn formats_imf_fixdate() {
        assert_eq!(
            format_http_date(Timestamp(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            format_http_date(Timestamp::EPOCH),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(
            format_http_date(Timestamp(u64::MAX)),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(secs in 0u64..253_402_300_800) {
            let t = Timestamp(secs);
            prop_assert_eq!(parse_http_date(&format_http_date(t), NOW), Some(t));
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,40}") {
            let _ = parse_http_date(&s, NOW);
        }
    }
}
