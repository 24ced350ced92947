//! Freshness lifetime (RFC 9111 §4.2.1, §4.2.2): how long after its generation a stored
//! response may be reused without asking the origin.

use super::age::date_value;
use super::date::{Timestamp, parse_http_date};
use super::directives::{DirectiveSource, ResponseDirectives};
use super::message::HeaderList;

/// Status codes that are heuristically cacheable (RFC 9110 §15.1).
pub const HEURISTICALLY_CACHEABLE: [u16; 12] =
    [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];

/// True when RFC 9110 §15.1 makes `status` heuristically cacheable.
pub fn is_heuristically_cacheable(status: u16) -> bool {
    HEURISTICALLY_CACHEABLE.contains(&status)
}

/// Where a freshness lifetime came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifetimeSource {
    /// `s-maxage` (a shared cache prefers it, §4.2.1).
    SMaxage,
    /// `max-age`.
    MaxAge,
    /// `Expires` − `Date`.
    Expires,
    /// A heuristic from `Last-Modified` (§4.2.2).
    Heuristic,
    /// No explicit or heuristic freshness: the response is stale at once.
    None,
}

impl LifetimeSource {
    /// A stable label for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::SMaxage => "s-maxage",
            Self::MaxAge => "max-age",
            Self::Expires => "expires",
            Self::Heuristic => "heuristic",
            Self::None => "none",
        }
    }
}

/// A freshness lifetime in seconds and what set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Seconds after generation during which the response is fresh.
    pub seconds: u64,
    /// What set it.
    pub source: LifetimeSource,
}

/// True when the response carries explicit freshness information (§4.2.1) that forbids a
/// heuristic (§4.2.2), valid or not.
pub fn has_explicit_expiration(headers: &HeaderList, directives: &ResponseDirectives) -> bool {
    directives.s_maxage.is_some()
        || directives.max_age.is_some()
        || (directives.source == DirectiveSource::CacheControl && headers.contains("expires"))
}

/// The freshness lifetime of a response received at `response_time`, for a shared cache.
///
/// §4.2.1, first match wins: `s-maxage`, `max-age`, `Expires` − `Date`; a repeated directive or
/// `Expires` line counts by its first occurrence (see [`super::directives`]). An invalid value is a
/// lifetime of 0: "caches are encouraged to consider responses that have invalid freshness
/// information to be stale", and an invalid `Expires` (including `0`) means "already expired"
/// (§5.3). With a targeted field in charge, `Expires` is ignored (RFC 9213 §2.2).
///
/// Without explicit freshness, a heuristically cacheable status or `public` allows a heuristic
/// (§4.2.2): 10% of the time since `Last-Modified`, capped at `heuristic_max`.
pub fn freshness_lifetime(
    status: u16,
    headers: &HeaderList,
    directives: &ResponseDirectives,
    response_time: Timestamp,
    heuristic_max: u64,
) -> Lifetime {
    let explicit = |seconds: Option<u64>, source| Lifetime {
        seconds: seconds.unwrap_or(0),
        source,
    };
    if let Some(d) = directives.s_maxage {
        return explicit(d.seconds(), LifetimeSource::SMaxage);
    }
    if let Some(d) = directives.max_age {
        return explicit(d.seconds(), LifetimeSource::MaxAge);
    }
    let date = date_value(headers, response_time);
    if directives.source == DirectiveSource::CacheControl
        && let Some(expires) = headers.get_all("expires").next()
    {
        // Several Expires lines: "first or stale" (§4.2.1); the first, as for max-age.
        let seconds = parse_http_date(expires, response_time).map(|e| e.since(date));
        return explicit(seconds, LifetimeSource::Expires);
    }
    if is_heuristically_cacheable(status) || directives.public {
        let last_modified = headers
            .get("last-modified")
            .and_then(|lm| parse_http_date(&lm, response_time));
        if let Some(lm) = last_modified {
            return Lifetime {
                seconds: (date.since(lm) / 10).min(heuristic_max),
                source: LifetimeSource::Heuristic,
            };
        }
    }
    Lifetime {
        seconds: 0,
        source: LifetimeSource::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::date::format_http_date;
    use crate::cache::options::DEFAULT_TARGETS;

    const NOW: u64 = 1_700_000_000;

    fn date(offset: i64) -> String {
        format_http_date(Timestamp::from_secs(NOW.saturating_add_signed(offset)))
    }

    /// (status, response fields, lifetime, its source, rule)
    type Row = (
        u16,
        Vec<(&'static str, String)>,
        u64,
        LifetimeSource,
        &'static str,
    );

    #[test]
    fn lifetime_table() {
        use LifetimeSource::*;
        let day: u64 = 86_400;
        #[rustfmt::skip]
        let cases: Vec<Row> = vec![
            (200, vec![("Cache-Control", "s-maxage=10, max-age=20".into())], 10, SMaxage, "§4.2.1: s-maxage first"),
            (200, vec![("Cache-Control", "max-age=20".into()), ("Expires", date(60))], 20, MaxAge, "§5.3: max-age beats Expires"),
            (200, vec![("Date", date(0)), ("Expires", date(60))], 60, Expires, "§4.2.1: Expires − Date"),
            (200, vec![("Expires", date(60))], 60, Expires, "no Date: the arrival time"),
            (200, vec![("Date", date(0)), ("Expires", date(-60))], 0, Expires, "Expires in the past"),
            (200, vec![("Expires", "0".into())], 0, Expires, "§5.3: invalid Expires = already expired"),
            (200, vec![("Expires", date(60)), ("Expires", date(120))], 60, Expires, "§4.2.1: duplicate Expires → the first"),
            (200, vec![("Expires", "soon".into()), ("Expires", date(120))], 0, Expires, "§4.2.1: an invalid first Expires → stale"),
            (200, vec![("Cache-Control", "max-age=100".into()), ("Cache-Control", "max-age=5".into())], 100, MaxAge, "§4.2.1: duplicates on separate lines → the first"),
            (200, vec![("Cache-Control", "max-age = 100".into()), ("Expires", date(60))], 0, MaxAge, "§5.2: max-age with spaces is invalid → stale, Expires not consulted"),
            (200, vec![("Date", date(0)), ("Expires", date(60).replace("GMT", "gmt"))], 60, Expires, "RFC 9110 §5.6.7: a lower-case zone accepted"),
            (200, vec![("Cache-Control", "max-age=99999999999".into())], 1 << 31, MaxAge, "§1.2.2: clamped to 2^31"),
            (200, vec![("Cache-Control", "max-age=oops".into()), ("Expires", date(60))], 0, MaxAge, "§4.2.1: invalid max-age → stale, Expires not consulted"),
            (200, vec![("Cache-Control", "s-maxage=x, max-age=60".into())], 0, SMaxage, "an invalid s-maxage still takes precedence"),
            (200, vec![("Date", date(0)), ("Last-Modified", date(-1000))], 100, Heuristic, "§4.2.2: 10% of Date − Last-Modified"),
            (200, vec![("Date", date(0)), ("Last-Modified", date(-8_640_000))], day, Heuristic, "the heuristic is capped"),
            (200, vec![("Date", date(0)), ("Last-Modified", date(100))], 0, Heuristic, "Last-Modified after Date"),
            (404, vec![("Date", date(0)), ("Last-Modified", date(-1000))], 100, Heuristic, "RFC 9110 §15.1: 404 is heuristically cacheable"),
            (302, vec![("Date", date(0)), ("Last-Modified", date(-1000))], 0, None, "302 is not"),
            (302, vec![("Cache-Control", "public".into()), ("Date", date(0)), ("Last-Modified", date(-1000))], 100, Heuristic, "§4.2.2: public allows a heuristic"),
            (200, vec![("Cache-Control", "max-age=0".into()), ("Last-Modified", date(-1000))], 0, MaxAge, "§4.2.2: no heuristic with explicit expiration"),
            (200, vec![], 0, None, "nothing to go on"),
            (200, vec![("CDN-Cache-Control", "max-age=300".into()), ("Cache-Control", "max-age=5".into())], 300, MaxAge, "RFC 9213 §2.2: the targeted field wins"),
            (200, vec![("CDN-Cache-Control", "public".into()), ("Expires", date(60))], 0, None, "RFC 9213 §2.2: Expires ignored under a targeted field"),
        ];
        for (status, pairs, seconds, source, rule) in cases {
            let headers: HeaderList = pairs.into_iter().collect();
            let d = ResponseDirectives::for_shared_cache(&headers, DEFAULT_TARGETS);
            let got = freshness_lifetime(status, &headers, &d, Timestamp::from_secs(NOW), day);
            assert_eq!((got.seconds, got.source), (seconds, source), "{rule}");
        }
    }
}
