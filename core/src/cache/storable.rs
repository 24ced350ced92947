//! Whether a shared cache may store a response (RFC 9111 §3), and which of its header fields
//! (§3.1).
//!
//! Any final status but `206` and `304` may be stored (§3): with explicit freshness (`max-age`,
//! `s-maxage`, `Expires`), with `public`, or, for a heuristically cacheable status (RFC 9110
//! §15.1), with a validator the §4.2.2 heuristic or a revalidation can use. Errors are stored
//! like anything else; [`CacheOptions::error_max_lifetime`] bounds how long they are reused.
//! `Vary` is stored with the secondary key that selects it (§4.1); only `Vary: *` refuses.

use super::directives::{Delta, FieldScope, RequestDirectives, ResponseDirectives};
use super::freshness::{has_explicit_expiration, is_heuristically_cacheable};
use super::message::{HeaderList, RequestHead};
use super::options::CacheOptions;
use super::vary::vary_fields;
use crate::headers::is_hop_by_hop;

/// Status codes whose semantics this cache implements, for `must-understand` (§5.2.2.3).
pub const UNDERSTOOD: [u16; 14] = [
    200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501,
];

/// The storage decision for one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storable {
    /// Store it (see [`super::Entry::store`]).
    Store,
    /// Do not store it, for this reason.
    NotStorable(NotStorable),
}

impl Storable {
    /// `"store"`, or the reason it is not stored.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::NotStorable(reason) => reason.as_str(),
        }
    }
}

/// Why a response is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStorable {
    /// Only `GET` responses are stored; `HEAD` responses can only update them (§4.3.5).
    Method,
    /// The request said `no-store` (§5.2.1.5).
    RequestNoStore,
    /// Not a final status, or one this cache does not assemble (`206`, `304`) (§3).
    Status,
    /// `must-understand` with a status outside [`UNDERSTOOD`] (§5.2.2.3).
    MustUnderstand,
    /// The response said `no-store` (§5.2.2.5).
    NoStore,
    /// Unqualified `private`: for a single user (§5.2.2.7).
    Private,
    /// The request carried `Authorization` (or a `Cookie`, see
    /// [`CacheOptions::cookie_is_credential`]) and the response did not opt in with `public`,
    /// `s-maxage` or `must-revalidate` (§3.5).
    Credentials,
    /// `Vary: *` (§4.1).
    VaryStar,
    /// `Set-Cookie` while [`CacheOptions::store_set_cookie`] is off.
    SetCookie,
    /// No explicit freshness, not `public`, and not a heuristically cacheable status (RFC 9110
    /// §15.1) with a validator: nothing could ever make it reusable (§3).
    NoFreshness,
}

impl NotStorable {
    /// A stable label for logs and `Cache-Status` details.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Method => "method",
            Self::RequestNoStore => "request-no-store",
            Self::Status => "status",
            Self::MustUnderstand => "must-understand",
            Self::NoStore => "no-store",
            Self::Private => "private",
            Self::Credentials => "credentials",
            Self::VaryStar => "vary-star",
            Self::SetCookie => "set-cookie",
            Self::NoFreshness => "no-freshness",
        }
    }
}

/// May a shared cache store `status` + `headers`, the response to `request`?
pub fn storability(
    request: &RequestHead<'_>,
    status: u16,
    headers: &HeaderList,
    opts: &CacheOptions<'_>,
) -> Storable {
    let directives = ResponseDirectives::for_shared_cache(headers, opts.target_list);
    let kept = headers_to_store(headers, &directives);
    match check(request, status, &kept, &directives, opts) {
        Ok(_) => Storable::Store,
        Err(reason) => Storable::NotStorable(reason),
    }
}

/// The header fields a shared cache keeps (§3.1): everything except the hop-by-hop fields and
/// those named by a qualified `private` or `no-cache`. Dropping the named fields is the simplest
/// behaviour both directives allow (§5.2.2.4, §5.2.2.7): they can then never be served from the
/// cache, with or without validation.
pub fn headers_to_store(headers: &HeaderList, directives: &ResponseDirectives) -> HeaderList {
    let connection = headers.get("connection");
    let named = |scope: &Option<FieldScope>, name: &str| match scope {
        Some(FieldScope::Fields(names)) => names.iter().any(|n| n.eq_ignore_ascii_case(name)),
        _ => false,
    };
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.trim();
            !is_hop_by_hop(name, connection.as_deref())
                && !named(&directives.private, name)
                && !named(&directives.no_cache, name)
        })
        .collect()
}

/// True when a response opted in to being shared with requests that carry credentials
/// (§3.5): `public`, a valid `s-maxage`, or `must-revalidate`.
pub(crate) fn shared_with_credentials(directives: &ResponseDirectives) -> bool {
    directives.public
        || matches!(directives.s_maxage, Some(Delta::Seconds(_)))
        || directives.must_revalidate
}

/// The §3 checks on headers already reduced by [`headers_to_store`]; returns the varied fields.
pub(crate) fn check(
    request: &RequestHead<'_>,
    status: u16,
    headers: &HeaderList,
    directives: &ResponseDirectives,
    opts: &CacheOptions<'_>,
) -> Result<Vec<String>, NotStorable> {
    // §3: "the request method is understood by the cache"; only GET is stored (HEAD: §4.3.5).
    if request.method != "GET" {
        return Err(NotStorable::Method);
    }
    if RequestDirectives::from_headers(request.headers).no_store {
        return Err(NotStorable::RequestNoStore);
    }
    if !(200..=599).contains(&status) || status == 206 || status == 304 {
        return Err(NotStorable::Status);
    }
    // §5.2.2.3: must-understand lets a cache that understands the status ignore no-store.
    let understood = UNDERSTOOD.contains(&status);
    if directives.must_understand && !understood {
        return Err(NotStorable::MustUnderstand);
    }
    if directives.no_store && !(directives.must_understand && understood) && !opts.force {
        return Err(NotStorable::NoStore);
    }
    if directives.private == Some(FieldScope::All) {
        return Err(NotStorable::Private);
    }
    let credentials = request.headers.contains("authorization")
        || (opts.cookie_is_credential && request.headers.contains("cookie"));
    if credentials && !shared_with_credentials(directives) {
        return Err(NotStorable::Credentials);
    }
    // §4.1: any other Vary is stored, selected later by the secondary key.
    let varied = vary_fields(headers).map_err(|_| NotStorable::VaryStar)?;
    if headers.contains("set-cookie") && !opts.store_set_cookie {
        return Err(NotStorable::SetCookie);
    }
    let has_validator = headers.contains("etag") || headers.contains("last-modified");
    if opts.force
        || has_explicit_expiration(headers, directives)
        || directives.public
        || (is_heuristically_cacheable(status) && has_validator)
    {
        Ok(varied)
    } else {
        Err(NotStorable::NoFreshness)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NotStorable::*;

    #[test]
    fn force_overrides_no_store_and_missing_freshness_but_never_privacy() {
        let none = HeaderList::new();
        let request = RequestHead::new("GET", &none);
        let force = CacheOptions {
            force: true,
            ..CacheOptions::default()
        };
        let verdict = |headers: &[(&str, &str)], opts: &CacheOptions| {
            storability(&request, 200, &h(headers), opts)
        };
        for headers in [&[("cache-control", "no-store")][..], &[]] {
            assert_eq!(verdict(headers, &force), Storable::Store, "{headers:?}");
            assert_ne!(verdict(headers, &CacheOptions::default()), Storable::Store);
        }
        assert_eq!(
            verdict(&[("cache-control", "private")], &force),
            Storable::NotStorable(Private)
        );
        assert_eq!(
            verdict(&[("set-cookie", "a=b")], &force),
            Storable::NotStorable(SetCookie)
        );
        let auth = h(&[("authorization", "Bearer x")]);
        assert_eq!(
            storability(&RequestHead::new("GET", &auth), 200, &none, &force),
            Storable::NotStorable(Credentials)
        );
    }

    fn h(pairs: &[(&str, &str)]) -> HeaderList {
        pairs.iter().copied().collect()
    }

    #[test]
    fn storability_table() {
        let opts = CacheOptions::default();
        let cookies = CacheOptions {
            store_set_cookie: true,
            cookie_is_credential: false,
            ..opts
        };
        let none = h(&[]);
        let auth = h(&[("Authorization", "Bearer x")]);
        let cookie = h(&[("Cookie", "sid=1")]);
        let req_no_store = h(&[("Cache-Control", "no-store")]);
        let ok = Storable::Store;
        let no = Storable::NotStorable;
        // (method, request headers, status, response headers, options, want, rule)
        #[rustfmt::skip]
        let cases: Vec<(&str, &HeaderList, u16, HeaderList, &CacheOptions, Storable, &str)> = vec![
            ("GET", &none, 200, h(&[("Cache-Control", "max-age=60")]), &opts, ok, "§3: explicit freshness"),
            ("HEAD", &none, 200, h(&[("Cache-Control", "max-age=60")]), &opts, no(Method), "§4.3.5: HEAD only updates"),
            ("POST", &none, 200, h(&[("Cache-Control", "max-age=60")]), &opts, no(Method), "§3: POST is not stored"),
            ("get", &none, 200, h(&[("Cache-Control", "max-age=60")]), &opts, no(Method), "RFC 9110 §9.1: methods are case-sensitive"),
            ("GET", &req_no_store, 200, h(&[("Cache-Control", "max-age=60")]), &opts, no(RequestNoStore), "§5.2.1.5"),
            ("GET", &none, 101, h(&[("Cache-Control", "max-age=60")]), &opts, no(Status), "§3: final status only"),
            ("GET", &none, 206, h(&[("Cache-Control", "max-age=60")]), &opts, no(Status), "§3: 206 needs range assembly"),
            ("GET", &none, 304, h(&[("Cache-Control", "max-age=60")]), &opts, no(Status), "§4.3.4: 304 only updates"),
            ("GET", &none, 99, h(&[("Cache-Control", "max-age=60")]), &opts, no(Status), "§3: outside 100–599"),
            ("GET", &none, 600, h(&[("Cache-Control", "max-age=60")]), &opts, no(Status), "§3: outside 100–599"),
            ("GET", &none, 404, h(&[("Cache-Control", "max-age=60")]), &opts, ok, "§3: 404 with explicit freshness (T-CA-05: its lifetime is capped)"),
            ("GET", &none, 503, h(&[("Cache-Control", "max-age=5")]), &opts, ok, "§3: any final status with explicit freshness"),
            ("GET", &none, 500, h(&[("Expires", "Thu, 01 Jan 2099 00:00:00 GMT")]), &opts, ok, "§3: Expires on an error"),
            ("GET", &none, 418, h(&[("Cache-Control", "s-maxage=5")]), &opts, ok, "§3: s-maxage on an unusual status"),
            ("GET", &none, 302, h(&[("Cache-Control", "max-age=5")]), &opts, ok, "§3: a redirect with explicit freshness"),
            ("GET", &none, 418, h(&[("Last-Modified", "Thu, 01 Jan 2015 00:00:00 GMT")]), &opts, no(NoFreshness), "RFC 9110 §15.1: 418 is not heuristically cacheable"),
            ("GET", &none, 500, h(&[("ETag", "\"e\"")]), &opts, no(NoFreshness), "RFC 9110 §15.1: 500 is not heuristically cacheable"),
            ("GET", &none, 200, h(&[("Cache-Control", "no-store, max-age=60")]), &opts, no(NoStore), "§5.2.2.5"),
            ("GET", &none, 200, h(&[("Cache-Control", "no-store, must-understand, max-age=60")]), &opts, ok, "§5.2.2.3: understood status ignores no-store"),
            ("GET", &none, 503, h(&[("Cache-Control", "no-store, must-understand, max-age=60")]), &opts, no(MustUnderstand), "§5.2.2.3: not understood"),
            ("GET", &none, 200, h(&[("Cache-Control", "private, max-age=60")]), &opts, no(Private), "§5.2.2.7: shared cache"),
            ("GET", &none, 200, h(&[("Cache-Control", "private=\"x-user\", max-age=60")]), &opts, ok, "§5.2.2.7: qualified private stores the rest"),
            ("GET", &none, 200, h(&[("Cache-Control", "private"), ("CDN-Cache-Control", "max-age=60")]), &opts, ok, "RFC 9213 §2.2: the targeted field overrides private"),
            ("GET", &auth, 200, h(&[("Cache-Control", "max-age=60")]), &opts, no(Credentials), "§3.5: Authorization needs an opt-in"),
            ("GET", &auth, 200, h(&[("Cache-Control", "public, max-age=60")]), &opts, ok, "§3.5: public"),
            ("GET", &auth, 200, h(&[("Cache-Control", "s-maxage=60")]), &opts, ok, "§3.5: s-maxage"),
            ("GET", &auth, 200, h(&[("Cache-Control", "s-maxage=bad")]), &opts, no(Credentials), "an invalid s-maxage does not opt in"),
            ("GET", &auth, 200, h(&[("Cache-Control", "must-revalidate, max-age=60")]), &opts, ok, "§3.5: must-revalidate"),
            ("GET", &cookie, 200, h(&[("Cache-Control", "max-age=60")]), &opts, no(Credentials), "T-CA-01: Cookie treated as a credential"),
            ("GET", &cookie, 200, h(&[("Cache-Control", "max-age=60")]), &cookies, ok, "Cookie rule is an option"),
            ("GET", &none, 200, h(&[("Cache-Control", "max-age=60"), ("Vary", "*")]), &opts, no(VaryStar), "§4.1: Vary * never matches"),
            ("GET", &none, 200, h(&[("Cache-Control", "max-age=60"), ("Vary", "Cookie")]), &opts, ok, "§4.1: stored under its secondary key"),
            ("GET", &none, 200, h(&[("Cache-Control", "max-age=60"), ("Vary", "Accept-Language, *")]), &opts, no(VaryStar), "§4.1: * anywhere in the list"),
            ("GET", &none, 200, h(&[("Cache-Control", "max-age=60"), ("Set-Cookie", "a=1")]), &opts, no(SetCookie), "Cache API never stores Set-Cookie"),
            ("GET", &none, 200, h(&[("Cache-Control", "max-age=60"), ("Set-Cookie", "a=1")]), &cookies, ok, "Set-Cookie rule is an option"),
            ("GET", &none, 200, h(&[("Cache-Control", "no-cache=\"Set-Cookie\", max-age=60"), ("Set-Cookie", "a=1")]), &opts, ok, "§3.1: the named field is not stored"),
            ("GET", &none, 200, h(&[("Cache-Control", "private=set-cookie, max-age=60"), ("Set-Cookie", "a=1")]), &opts, ok, "§5.2.2.7: the named field is not stored"),
            ("GET", &none, 200, h(&[("Expires", "Thu, 01 Jan 2099 00:00:00 GMT")]), &opts, ok, "§3: Expires"),
            ("GET", &none, 200, h(&[("Cache-Control", "public")]), &opts, ok, "§3: public"),
            ("GET", &none, 200, h(&[("Last-Modified", "Thu, 01 Jan 2015 00:00:00 GMT")]), &opts, ok, "§4.2.2: heuristically cacheable"),
            ("GET", &none, 200, h(&[("ETag", "\"v1\"")]), &opts, ok, "heuristic status with a validator"),
            ("GET", &none, 200, h(&[("Cache-Control", "no-cache"), ("ETag", "\"v1\"")]), &opts, ok, "§5.2.2.4: no-cache may be stored"),
            ("GET", &none, 200, h(&[]), &opts, no(NoFreshness), "nothing makes it reusable"),
            ("GET", &none, 302, h(&[("Last-Modified", "Thu, 01 Jan 2015 00:00:00 GMT")]), &opts, no(NoFreshness), "§15.1: 302 is not heuristically cacheable"),
            ("GET", &none, 404, h(&[("Last-Modified", "Thu, 01 Jan 2015 00:00:00 GMT")]), &opts, ok, "§15.1: 404 is"),
            ("GET", &none, 410, h(&[("ETag", "\"gone\"")]), &opts, ok, "§15.1: 410 is"),
        ];
        for (method, req, status, resp, opts, want, rule) in cases {
            let got = storability(&RequestHead::new(method, req), status, &resp, opts);
            assert_eq!(got, want, "{rule}: got {}", got.as_str());
        }
    }

    #[test]
    fn heuristic_freshness_end_to_end_per_rfc9111_4_2_2() {
        use crate::cache::date::{Timestamp, format_http_date};
        use crate::cache::entry::Entry;
        use crate::cache::lookup::{Lookup, lookup};
        let now = Timestamp::from_secs(1_700_000_000);
        let date = format_http_date(now);
        // Modified 10 000 s before Date: a heuristic lifetime of 1 000 s (60 s for an error).
        let lm = format_http_date(Timestamp::from_secs(1_700_000_000 - 10_000));
        let with_date = vec![("Last-Modified", lm.as_str()), ("Date", date.as_str())];
        let lm_only = vec![("Last-Modified", lm.as_str())];
        let public = vec![("Last-Modified", lm.as_str()), ("Cache-Control", "public")];
        let max_age_0 = vec![
            ("Last-Modified", lm.as_str()),
            ("Cache-Control", "max-age=0"),
        ];
        let etag_only = vec![("ETag", "\"v1\"")];
        // (status, response fields, stored?, fresh 1 s later?, fresh 61 s later?, rule)
        #[rustfmt::skip]
        let cases = [
            (200, &with_date, true, true, true, "§4.2.2: 10% of Date − Last-Modified"),
            (200, &lm_only, true, true, true, "§4.2.2: no Date, the response time"),
            (203, &lm_only, true, true, true, "RFC 9110 §15.1: 203"),
            (204, &lm_only, true, true, true, "RFC 9110 §15.1: 204"),
            (300, &lm_only, true, true, true, "RFC 9110 §15.1: 300"),
            (301, &lm_only, true, true, true, "RFC 9110 §15.1: 301"),
            (308, &lm_only, true, true, true, "RFC 9110 §15.1: 308"),
            (404, &lm_only, true, true, false, "RFC 9110 §15.1: 404, capped by error_max_lifetime"),
            (405, &lm_only, true, true, false, "RFC 9110 §15.1: 405"),
            (410, &lm_only, true, true, false, "RFC 9110 §15.1: 410"),
            (414, &lm_only, true, true, false, "RFC 9110 §15.1: 414"),
            (501, &lm_only, true, true, false, "RFC 9110 §15.1: 501"),
            (206, &lm_only, false, false, false, "§3: a 206 is never stored here"),
            (302, &lm_only, false, false, false, "RFC 9110 §15.1: 302 is not heuristically cacheable"),
            (500, &lm_only, false, false, false, "RFC 9110 §15.1: 500 is not"),
            (302, &public, true, true, true, "§4.2.2: public allows a heuristic"),
            (200, &max_age_0, true, false, false, "§4.2.2: never with explicit freshness"),
            (200, &etag_only, true, false, false, "stored for revalidation, no heuristic without Last-Modified"),
        ];
        let none = HeaderList::new();
        let request = RequestHead::new("GET", &none);
        let opts = CacheOptions::default();
        for (status, fields, stored, fresh_1, fresh_61, rule) in cases {
            let resp = h(fields);
            let entry = Entry::store(&request, status, &resp, now, now, &opts);
            assert_eq!(entry.is_ok(), stored, "{rule}: stored");
            if let Ok(entry) = entry {
                let fresh =
                    |later| lookup(&entry, &request, now.plus(later), &opts) == Lookup::Fresh;
                assert_eq!(
                    (fresh(1), fresh(61)),
                    (fresh_1, fresh_61),
                    "{rule}: fresh at +1 s, +61 s"
                );
            }
        }
    }

    #[test]
    fn stored_headers_drop_hop_by_hop_and_named_fields() {
        let headers = h(&[
            (
                "Cache-Control",
                "private=\"X-User\", no-cache=\"set-cookie\", max-age=60",
            ),
            ("Connection", "x-conn"),
            ("X-Conn", "1"),
            ("Keep-Alive", "timeout=5"),
            ("X-User", "alice"),
            ("Set-Cookie", "a=1"),
            ("Content-Type", "text/plain"),
        ]);
        let d = ResponseDirectives::for_shared_cache(&headers, &[]);
        let kept = headers_to_store(&headers, &d);
        let names: Vec<&str> = kept.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Cache-Control", "Content-Type"]);
    }
}
