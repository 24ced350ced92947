//! What kind of answer a request got: served, refused by the edge's admission control (and by
//! which part of it), or failed (and on whose side), read from the status and the problem
//! `type` of the body (RFC 9457; the edge writes `https://breakwater.dev/problems/<kind>`).

/// Base of the problem `type` URIs the edge and the origin write (`core::problem::TYPE_BASE`).
const PROBLEM_BASE: &str = "https://breakwater.dev/problems/";

/// One request's fate, as the report counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Answer {
    /// 2xx, 3xx or 404: the request reached an answer (the origin's, or the cache's).
    Served,
    /// `429`: a rate limit refused it.
    RateLimited,
    /// `503 overloaded`: shed by the SLO controller.
    Shed,
    /// `503 origin-circuit-open`: refused by the open circuit breaker.
    CircuitOpen,
    /// A 5xx for the origin's sake: the edge's `502`/`504` (`origin-unreachable`,
    /// `origin-timeout`) or a 5xx the origin wrote. An admitted request that failed.
    OriginError,
    /// Any other 5xx: the edge failing on its own (`edge-internal`, `edge-misconfigured`,
    /// `limiter-unavailable`).
    EdgeError,
    /// Any other 4xx (`401 unknown-api-key`, `403 insufficient-capacity`, ...).
    Rejected,
    /// No HTTP answer: a connection failure or the client's own timeout.
    Unanswered,
}

impl Answer {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Served => "served",
            Self::RateLimited => "429",
            Self::Shed => "503 overloaded",
            Self::CircuitOpen => "503 origin-circuit-open",
            Self::OriginError => "origin 5xx",
            Self::EdgeError => "edge 5xx",
            Self::Rejected => "other 4xx",
            Self::Unanswered => "no answer",
        }
    }

    /// Classifies an answer by its status and, for errors, its problem kind (the last part of
    /// the `type` URI, see [`problem_kind`]).
    pub fn classify(status: u16, problem: Option<&str>) -> Self {
        match (status, problem) {
            (200..=399 | 404, _) => Self::Served,
            (429, _) => Self::RateLimited,
            (503, Some("overloaded")) => Self::Shed,
            (503, Some("origin-circuit-open")) => Self::CircuitOpen,
            (500..=599, Some("edge-internal" | "edge-misconfigured" | "limiter-unavailable")) => {
                Self::EdgeError
            }
            (500..=599, _) => Self::OriginError,
            _ => Self::Rejected,
        }
    }
}

/// The problem kind of an `application/problem+json` body: `overloaded` for
/// `{"type": "https://breakwater.dev/problems/overloaded", ...}`; the whole `type` when it has
/// another base; `None` when the body is not such an object.
pub fn problem_kind(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let uri = value.get("type")?.as_str()?;
    Some(uri.strip_prefix(PROBLEM_BASE).unwrap_or(uri).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_apart_by_their_problem_kind() {
        let problem = |kind: &str| {
            format!(r#"{{"type":"{PROBLEM_BASE}{kind}","title":"t","status":503}}"#).into_bytes()
        };
        let classify =
            |status, body: &[u8]| Answer::classify(status, problem_kind(body).as_deref());
        assert_eq!(classify(503, &problem("overloaded")), Answer::Shed);
        assert_eq!(
            classify(503, &problem("origin-circuit-open")),
            Answer::CircuitOpen
        );
        assert_eq!(
            classify(503, &problem("limiter-unavailable")),
            Answer::EdgeError
        );
        assert_eq!(classify(500, &problem("edge-internal")), Answer::EdgeError);
        assert_eq!(
            classify(504, &problem("origin-timeout")),
            Answer::OriginError
        );
        assert_eq!(
            classify(502, &problem("origin-unreachable")),
            Answer::OriginError
        );
        // The origin's own 503 (its database), and a bare 500 without a problem body.
        assert_eq!(classify(503, &problem("database")), Answer::OriginError);
        assert_eq!(classify(500, b"oops"), Answer::OriginError);
        assert_eq!(classify(429, b""), Answer::RateLimited);
        assert_eq!(classify(401, &problem("unknown-api-key")), Answer::Rejected);
    }

    #[test]
    fn served_includes_not_found() {
        assert_eq!(Answer::classify(200, None), Answer::Served);
        assert_eq!(Answer::classify(304, None), Answer::Served);
        assert_eq!(Answer::classify(404, None), Answer::Served);
        assert_eq!(Answer::classify(400, None), Answer::Rejected);
    }

    #[test]
    fn problem_kinds_from_other_bases_are_kept_whole() {
        assert_eq!(
            problem_kind(br#"{"type":"about:blank"}"#).as_deref(),
            Some("about:blank")
        );
        assert_eq!(problem_kind(br#"[1]"#), None);
        assert_eq!(problem_kind(b"not json"), None);
    }
}
