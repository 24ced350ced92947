//! Reading the edge's `Cache-Status` (RFC 9211) member, and the report columns of its outcomes.
//!
//! Deliberately lenient (a strict RFC 8941 parser such as `sfv` would reject the whole header
//! on one malformed member): the bench reports whatever the edge says, including tiers and
//! reasons added after this was written.

use crate::stats::Tally;

/// The cache's name in `Cache-Status` (see `src/cache/reply.rs`).
pub const CACHE_NAME: &str = "breakwater";

/// How the edge answered one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Outcome {
    /// Served from a tier: the first `.`-separated component of `detail` (`memory`,
    /// `cache-api`, `kv`, or e.g. `stale-if-error`), or `unknown` without a detail.
    Hit(String),
    /// Waited on another request's origin fetch (`fwd=miss; collapsed`).
    Collapsed,
    /// Went to the origin: the `fwd` value (`miss`, `bypass`, `stale`, ...).
    Forward(String),
    /// No `breakwater` member in the header, or no header.
    #[default]
    Absent,
}

impl Outcome {
    /// The column this outcome is counted in: `hit memory`, `collapsed`, `fwd=miss`, ...
    pub fn label(&self) -> String {
        match self {
            Self::Hit(tier) => format!("hit {tier}"),
            Self::Collapsed => "collapsed".to_owned(),
            Self::Forward(fwd) => format!("fwd={fwd}"),
            Self::Absent => "no status".to_owned(),
        }
    }
}

/// Classifies one `Cache-Status` header value (`None` when the header is missing).
pub fn parse(header: Option<&str>) -> Outcome {
    let Some(member) = header.and_then(own_member) else {
        return Outcome::Absent;
    };
    let mut hit = false;
    let mut collapsed = false;
    let mut fwd = None;
    let mut detail = None;
    for param in member.split(';').skip(1) {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (param.trim(), None),
        };
        match (key.to_ascii_lowercase().as_str(), value) {
            ("hit", None | Some("?1")) => hit = true,
            ("collapsed", None | Some("?1")) => collapsed = true,
            ("fwd", Some(v)) => fwd = Some(v.to_owned()),
            ("detail", Some(v)) => detail = Some(v.to_owned()),
            _ => {}
        }
    }
    if hit {
        let tier = detail
            .as_deref()
            .and_then(|d| d.split('.').next())
            .filter(|t| !t.is_empty())
            .unwrap_or("unknown");
        Outcome::Hit(tier.to_owned())
    } else if collapsed {
        Outcome::Collapsed
    } else {
        Outcome::Forward(fwd.unwrap_or_else(|| "unknown".to_owned()))
    }
}

/// The header's `breakwater` member; other caches may have added their own.
fn own_member(header: &str) -> Option<&str> {
    header.split(',').map(str::trim).find(|m| {
        m.split(';')
            .next()
            .is_some_and(|name| name.trim().trim_matches('"') == CACHE_NAME)
    })
}

/// Report columns for every label seen: the three tiers first (always shown, so an absent tier
/// reads as 0), then other hits, `collapsed`, the `fwd` values, and requests without a status.
pub fn columns<'a>(tallies: impl IntoIterator<Item = &'a Tally>) -> Vec<String> {
    let mut labels: Vec<String> = ["hit memory", "hit cache-api", "hit kv"]
        .map(str::to_owned)
        .to_vec();
    let mut seen: Vec<String> = tallies
        .into_iter()
        .flat_map(|t| t.labels().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    seen.sort_by_key(|l| (order(l), l.clone()));
    seen.dedup();
    for label in seen {
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    labels
}

fn order(label: &str) -> u8 {
    match label {
        l if l.starts_with("hit ") => 0,
        "collapsed" => 1,
        l if l.starts_with("fwd=") => 2,
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(tier: &str) -> Outcome {
        Outcome::Hit(tier.to_owned())
    }

    #[test]
    fn hits_count_the_tier_before_the_reason() {
        assert_eq!(parse(Some("breakwater; hit; detail=memory")), hit("memory"));
        assert_eq!(
            parse(Some(
                "breakwater; hit; detail=memory.stale-while-revalidate"
            )),
            hit("memory")
        );
        assert_eq!(parse(Some("breakwater; hit; detail=kv")), hit("kv"));
        assert_eq!(
            parse(Some(r#"breakwater; hit; detail="cache-api.revalidated""#)),
            hit("cache-api")
        );
        assert_eq!(
            parse(Some("breakwater; hit; detail=stale-if-error")),
            hit("stale-if-error")
        );
        assert_eq!(parse(Some("breakwater; hit")), hit("unknown"));
    }

    #[test]
    fn forwards_and_collapsed() {
        assert_eq!(
            parse(Some("breakwater; fwd=miss; stored")),
            Outcome::Forward("miss".into())
        );
        assert_eq!(
            parse(Some("breakwater; fwd=miss; detail=no-store")),
            Outcome::Forward("miss".into())
        );
        assert_eq!(
            parse(Some("breakwater; fwd=miss; collapsed; detail=memory")),
            Outcome::Collapsed
        );
        assert_eq!(
            parse(Some("breakwater; fwd=bypass; detail=credentials")),
            Outcome::Forward("bypass".into())
        );
    }

    #[test]
    fn finds_our_member_among_others_and_absent_otherwise() {
        assert_eq!(
            parse(Some("OriginCache; hit; ttl=10, breakwater;hit;detail=kv")),
            hit("kv")
        );
        assert_eq!(parse(Some("OriginCache; hit")), Outcome::Absent);
        assert_eq!(parse(None), Outcome::Absent);
        // A name that merely starts with ours is not ours.
        assert_eq!(parse(Some("breakwater2; hit")), Outcome::Absent);
    }

    #[test]
    fn columns_put_tiers_first_and_keep_unknown_labels() {
        let mut a = Tally::default();
        for o in [
            Outcome::Forward("miss".into()),
            hit("memory"),
            hit("memory"),
            Outcome::Collapsed,
            hit("stale-if-error"),
        ] {
            a.add(&o.label());
        }
        let mut b = Tally::default();
        b.add(&Outcome::Absent.label());
        assert_eq!(a.get("hit memory"), 2);
        assert_eq!(
            columns([&a, &b]),
            [
                "hit memory",
                "hit cache-api",
                "hit kv",
                "hit stale-if-error",
                "collapsed",
                "fwd=miss",
                "no status"
            ]
        );
    }
}
