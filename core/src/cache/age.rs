//! The age of a stored response (RFC 9111 §4.2.3): how long ago the origin generated or validated
//! it, conservatively estimated from `Age`, `Date` and the times the cache sent and received it.

use super::cache_control::delta_seconds;
use super::date::{Timestamp, parse_http_date};
use super::message::HeaderList;

/// `age_value`: the `Age` header (§5.1). A list (several members or lines) keeps its first
/// member and discards the rest; if that is not a delta-seconds (`abc`, `10;x`, `-1`), the field
/// is ignored (0), as §5.1 says a cache SHOULD. Larger values clamp to 2^31 (§1.2.2).
pub fn age_value(headers: &HeaderList) -> u64 {
    headers
        .get("age")
        .and_then(|v| delta_seconds(v.split(',').next().unwrap_or("").trim()))
        .map_or(0, u64::from)
}

/// `date_value`: the `Date` header, or the time the response arrived when it is absent or
/// invalid (RFC 9110 §6.6.1: a recipient that caches a response without `Date` adds one).
pub fn date_value(headers: &HeaderList, response_time: Timestamp) -> Timestamp {
    headers
        .get("date")
        .and_then(|d| parse_http_date(&d, response_time))
        .unwrap_or(response_time)
}

/// `current_age` per §4.2.3, in seconds:
///
/// ```text
/// apparent_age          = max(0, response_time - date_value)
/// response_delay        = response_time - request_time
/// corrected_age_value   = age_value + response_delay
/// corrected_initial_age = max(apparent_age, corrected_age_value)
/// resident_time         = now - response_time
/// current_age           = corrected_initial_age + resident_time
/// ```
///
/// Every difference saturates at 0 (a clock that steps back never makes an age negative) and
/// every sum saturates, so the result is never below `age_value`.
pub fn current_age(
    headers: &HeaderList,
    request_time: Timestamp,
    response_time: Timestamp,
    now: Timestamp,
) -> u64 {
    let apparent_age = response_time.since(date_value(headers, response_time));
    let response_delay = response_time.since(request_time);
    let corrected_age_value = age_value(headers).saturating_add(response_delay);
    let corrected_initial_age = apparent_age.max(corrected_age_value);
    let resident_time = now.since(response_time);
    corrected_initial_age.saturating_add(resident_time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::date::format_http_date;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    #[test]
    fn current_age_table() {
        let date = |s| format_http_date(t(s));
        // (Age, Date, request_time, response_time, now, want, rule)
        #[rustfmt::skip]
        let cases = [
            (None, Some(date(1000)), 1000, 1000, 1000, 0, "fresh from the origin"),
            (None, Some(date(1000)), 1000, 1000, 1060, 60, "resident_time"),
            (Some("30"), Some(date(1000)), 1000, 1000, 1000, 30, "age_value"),
            (None, Some(date(900)), 1000, 1000, 1000, 100, "apparent_age from Date"),
            (Some("10"), Some(date(1000)), 995, 1000, 1000, 15, "response_delay is added to Age"),
            (Some("10"), Some(date(980)), 995, 1000, 1000, 20, "max(apparent_age, corrected_age_value)"),
            (None, Some(date(2000)), 1000, 1000, 1000, 0, "a Date in the future: apparent_age 0"),
            (None, None, 1000, 1000, 1010, 10, "no Date: date_value = response_time"),
            (None, Some("garbage".into()), 1000, 1000, 1010, 10, "an invalid Date is ignored"),
            (Some("x"), None, 1000, 1000, 1000, 0, "§5.1: an invalid Age is ignored"),
            (Some("20, 40"), None, 1000, 1000, 1000, 20, "§5.1: a list keeps its first member"),
            (Some("10,20"), None, 1000, 1000, 1000, 10, "§5.1: first member, no space"),
            (Some("10;x"), None, 1000, 1000, 1000, 0, "§5.1: a parameter makes the value invalid → ignored"),
            (Some("abc"), None, 1000, 1000, 1000, 0, "§5.1: not a non-negative integer → ignored"),
            (Some("-5"), None, 1000, 1000, 1000, 0, "§1.2.2: no sign → ignored"),
            (Some("1.5"), None, 1000, 1000, 1000, 0, "§1.2.2: no fraction → ignored"),
            (Some("x, 10"), None, 1000, 1000, 1000, 0, "§5.1: an invalid first member is not replaced by the second"),
            (Some("2147483648"), None, 1000, 1000, 1000, 1 << 31, "§1.2.2: 2^31"),
            (Some("99999999999"), None, 1000, 1000, 1000, 1 << 31, "§1.2.2: clamped to 2^31"),
            (None, None, 1000, 1000, 500, 0, "clock stepped back: never negative"),
            (None, None, 2000, 1000, 1000, 0, "request after response (bad clock): no delay"),
        ];
        for (age, date, req, resp, now, want, rule) in cases {
            let mut h = HeaderList::new();
            if let Some(a) = age {
                h.push("Age", a);
            }
            if let Some(d) = date {
                h.push("Date", d);
            }
            assert_eq!(current_age(&h, t(req), t(resp), t(now)), want, "{rule}");
        }
    }
}
