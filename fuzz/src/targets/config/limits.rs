//! What an accepted configuration must satisfy: the limits the README and the parsers document.

use breakwater_core::cache::options as cache_options;
use breakwater_core::config::EdgeConfig;
use breakwater_core::policy::{CachePolicy, Mode};
use breakwater_core::pool::{PoolConfig, ejection_ms, max_ejected, parse_base_url};
use breakwater_core::writebehind::{MAX_DELAY_SECONDS, PathPattern, WriteBehindConfig, backoff};

use super::drive::{check_admission, check_breaker, check_slo};
use crate::targets::{Outcome, ensure};

pub(super) fn check_config(config: &EdgeConfig, out: &mut Outcome) -> Result<(), String> {
    ensure!(
        parse_base_url(&config.origin_url).as_deref() == Ok(config.origin_url.as_str())
            && !config.origin_url.ends_with('/'),
        "ORIGIN_URL: a base URL, a fixpoint of its parser",
        "{:?}",
        config.origin_url
    );
    let timeout = config.origin_timeout.as_millis();
    ensure!(
        (1..=120_000).contains(&timeout),
        "ORIGIN_TIMEOUT_MS: 1 ms to 2 min",
        "{timeout}"
    );
    ensure!(
        config.memory_tier_bytes <= 64 << 20,
        "CACHE_MEMORY_BYTES: at most 64 MiB"
    );
    ensure!(
        config.purge_sync.as_millis() <= 60_000,
        "PURGE_SYNC_MS: at most a minute"
    );
    ensure!(
        (10..=60_000).contains(&config.control_report.as_millis()),
        "CONTROL_REPORT_MS: 10 ms to a minute"
    );
    ensure!(
        config.control_shards <= 1024,
        "CONTROL_SHARDS: at most 1024"
    );
    ensure!(
        config.warm.len() <= 50 && config.warm.iter().all(|p| p.starts_with('/')),
        "CACHE_WARM: at most 50 paths",
        "{:?}",
        config.warm
    );
    ensure!(
        !config.origin_prefixes.is_empty()
            && config
                .origin_prefixes
                .iter()
                .all(|p| p.starts_with('/') && p != "/"),
        "ORIGIN_PREFIXES: paths, never '/' alone",
        "{:?}",
        config.origin_prefixes
    );
    check_cache(&config.cache, out)?;
    check_admission(&config.admission, out)?;
    check_pool(&config.pool, out)?;
    check_write_behind(&config.write_behind, out)?;
    for route in &config.write_behind.routes {
        let path = route.path.to_string();
        ensure!(
            config
                .origin_prefixes
                .iter()
                .any(|p| path.starts_with(p.as_str())),
            "WRITE_BEHIND: every route is under ORIGIN_PREFIXES",
            "{path:?}"
        );
    }
    ensure!(
        config.slo.validate().is_ok(),
        "SLO: an accepted SLO validates again"
    );
    check_slo(&config.slo)?;
    ensure!(
        config.concurrency.validate().is_ok(),
        "CONCURRENCY: validates again"
    );
    check_breaker(&config.breaker, out)?;

    let idempotency = &config.idempotency;
    let timeout = timeout as u64;
    ensure!(
        idempotency.lease_ms > timeout && idempotency.retention_ms >= 1,
        "IDEMPOTENCY_POLICY: leases outlast the origin timeout",
        "lease {} vs timeout {timeout}",
        idempotency.lease_ms
    );
    for route in &idempotency.routes {
        ensure!(
            route.prefix.starts_with('/'),
            "IDEMPOTENCY_POLICY: route prefixes are paths"
        );
        ensure!(
            idempotency.policy(&route.prefix).validate(timeout).is_ok(),
            "IDEMPOTENCY_POLICY: every route's policy validates"
        );
    }
    Ok(())
}

const YEAR: u32 = 31_536_000;

pub(super) fn check_cache(policy: &CachePolicy, out: &mut Outcome) -> Result<(), String> {
    for (i, route) in policy.routes.iter().enumerate() {
        out.note(route.mode.as_str());
        ensure!(
            route.prefix.starts_with('/'),
            "CACHE_POLICY: prefixes are paths"
        );
        ensure!(
            policy.routes[..i]
                .iter()
                .all(|r| !route.prefix.starts_with(&r.prefix)),
            "CACHE_POLICY: no route is shadowed by an earlier one",
            "{:?}",
            route.prefix
        );
        let ceiling = route.ttl.ceiling.unwrap_or(YEAR);
        ensure!(
            route.ttl.floor <= ceiling
                && ceiling <= YEAR
                && route.stale_while_revalidate <= YEAR
                && route.stale_if_error <= YEAR
                && route.error_ttl_ceiling <= YEAR,
            "CACHE_POLICY: lifetimes and windows within a year, floor ≤ ceiling",
            "{route:?}"
        );
        if route.mode == Mode::Force {
            ensure!(
                route.ttl.ceiling.is_some_and(|c| c > 0),
                "CACHE_POLICY: force has a TTL"
            );
        }
        if route.mode != Mode::Bypass {
            ensure!(
                !route.tiers.is_empty(),
                "CACHE_POLICY: a caching route has tiers"
            );
        }
        ensure!(
            route.tiers.windows(2).all(|w| w[0] < w[1]),
            "CACHE_POLICY: tiers in lookup order, once each"
        );
        ensure!(
            route.key.headers.iter().all(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && h != "authorization"
                    && h != "cookie"
            }),
            "CACHE_POLICY: keyed headers are lower-case names, never credentials",
            "{:?}",
            route.key.headers
        );
        ensure!(
            route
                .key
                .drop_params
                .iter()
                .all(|p| !p.is_empty() && !p.strip_suffix('*').unwrap_or(p).contains('*')),
            "CACHE_POLICY: only a trailing '*' in dropped parameters"
        );
        let opts = cache_options(route);
        ensure!(
            opts.max_lifetime.is_none_or(|max| opts.min_lifetime <= max),
            "CACHE_POLICY: the options' floor is below their ceiling"
        );
    }
    Ok(())
}

pub(super) fn check_pool(pool: &PoolConfig, out: &mut Outcome) -> Result<(), String> {
    out.note_num(pool.origins.len() as u64);
    ensure!(
        (1..=16).contains(&pool.origins.len()),
        "ORIGINS: 1 to 16 origins"
    );
    for (i, origin) in pool.origins.iter().enumerate() {
        ensure!(
            (1..=100).contains(&origin.weight),
            "ORIGINS: weights 1 to 100"
        );
        ensure!(
            pool.origins[..i].iter().all(|o| o.url != origin.url),
            "ORIGINS: urls are distinct"
        );
    }
    let ejection = &pool.ejection;
    for n in [0, 1, 2, 10, 63, 64, 65, u32::MAX] {
        let period = ejection_ms(ejection, n);
        ensure!(
            period <= ejection.max_ejection_ms,
            "ORIGINS: an ejection lasts at most max_ejection_ms",
            "{period} for the {n}th"
        );
    }
    ensure!(
        max_ejected(ejection, 16) <= 16,
        "ORIGINS: never eject more than the pool"
    );
    Ok(())
}

pub(super) fn check_write_behind(
    config: &WriteBehindConfig,
    out: &mut Outcome,
) -> Result<(), String> {
    out.note_num(config.routes.len() as u64);
    ensure!(
        (256..=65_536).contains(&config.max_event_bytes)
            && (1..=100).contains(&config.max_attempts)
            && config.retry_base_seconds >= 1
            && config.retry_base_seconds <= config.retry_max_seconds
            && config.retry_max_seconds <= MAX_DELAY_SECONDS,
        "WRITE_BEHIND: sizes, attempts and delays within bounds",
        "{config:?}"
    );
    for route in &config.routes {
        let text = route.path.to_string();
        ensure!(
            PathPattern::parse(&text).as_ref() == Ok(&route.path),
            "WRITE_BEHIND: a path pattern round-trips",
            "{text:?}"
        );
    }
    for attempt in [0, 1, 2, 30, 64, u32::MAX] {
        for random in [0, 1, u64::MAX] {
            let delay = backoff(
                attempt,
                config.retry_base_seconds,
                config.retry_max_seconds,
                random,
            );
            ensure!(
                delay >= 1 && delay <= config.retry_max_seconds,
                "WRITE_BEHIND: a retry waits 1 s to retry_max_seconds",
                "{delay} after attempt {attempt}"
            );
        }
    }
    Ok(())
}
