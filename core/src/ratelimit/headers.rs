//! The `RateLimit-Policy` and `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers (the
//! structured-field form), and `Retry-After`.
//!
//! Seconds are rounded up everywhere, so a client that trusts them is never early.

use super::{Outcome, Quota};

/// `RateLimit-Policy`: every quota as `"name";q=limit;w=window`, e.g.
/// `"per-second";q=10;w=1, "per-day";q=10000;w=86400`. A period that is not a whole number of
/// seconds is rounded up, which understates the rate rather than overstating it. Empty when there
/// are no quotas: then send no field.
pub fn policy_header(quotas: &[Quota]) -> String {
    list(quotas.iter().map(|q| {
        let window = q.period_ms.div_ceil(1000).max(1);
        format!("{};q={};w={window}", sf_string(&q.name), q.limit)
    }))
}

/// `RateLimit`: every quota's state as `"name";r=remaining;t=seconds-until-full`, e.g.
/// `"per-second";r=3;t=1`. Empty when there are no quotas.
pub fn ratelimit_header(outcome: &Outcome) -> String {
    list(outcome.quotas.iter().map(|s| {
        let reset = s.reset_ms.div_ceil(1000);
        format!("{};r={};t={reset}", sf_string(&s.name), s.remaining)
    }))
}

/// `Retry-After` delay-seconds for a wait in ms: rounded up, and at least 1, since 0 would invite
/// an immediate retry that fails.
pub fn retry_after_secs(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

fn list(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// An sf-string (RFC 9651 §3.3.3): `"` and `\` escaped. A character outside printable ASCII,
/// which the admission policy already refuses in names, becomes `?` so the field stays valid.
fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::{QuotaStatus, Verdict};

    fn quota(name: &str, limit: u32, period_ms: u64) -> Quota {
        Quota {
            name: name.into(),
            limit,
            period_ms,
            burst: limit,
        }
    }

    #[test]
    fn policy_field() {
        let cases: [(&[Quota], &str); 5] = [
            (&[], ""),
            (
                &[
                    quota("per-second", 10, 1_000),
                    quota("per-day", 10_000, 86_400_000),
                ],
                r#""per-second";q=10;w=1, "per-day";q=10000;w=86400"#,
            ),
            (&[quota("fast", 5, 250)], r#""fast";q=5;w=1"#),
            (&[quota("odd", 3, 1_500)], r#""odd";q=3;w=2"#),
            (
                &[
                    quota(r#"say "hi" \ bye"#, 1, 60_000),
                    quota("caf\u{e9}\n", 1, 1),
                ],
                r#""say \"hi\" \\ bye";q=1;w=60, "caf??";q=1;w=1"#,
            ),
        ];
        for (quotas, want) in cases {
            assert_eq!(policy_header(quotas), want, "{quotas:?}");
        }
    }

    #[test]
    fn ratelimit_field() {
        let status = |name: &str, remaining, reset_ms| QuotaStatus {
            name: name.into(),
            limit: 10,
            period_ms: 1_000,
            remaining,
            reset_ms,
            retry_after_ms: None,
        };
        let cases = [
            (vec![], ""),
            (
                vec![status("per-second", 3, 700)],
                r#""per-second";r=3;t=1"#,
            ),
            (vec![status("full", 10, 0)], r#""full";r=10;t=0"#),
            (
                vec![status("a", 0, 1_000), status("b", 7, 1_001)],
                r#""a";r=0;t=1, "b";r=7;t=2"#,
            ),
        ];
        for (quotas, want) in cases {
            let outcome = Outcome {
                verdict: Verdict::Allow,
                quotas,
            };
            assert_eq!(ratelimit_header(&outcome), want);
        }
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_never_zero() {
        let cases = [
            (0, 1),
            (1, 1),
            (999, 1),
            (1_000, 1),
            (1_001, 2),
            (59_999, 60),
            (u64::MAX, u64::MAX.div_ceil(1000)),
        ];
        for (ms, secs) in cases {
            assert_eq!(retry_after_secs(ms), secs, "{ms} ms");
        }
    }
}
