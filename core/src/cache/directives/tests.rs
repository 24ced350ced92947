use super::*;
use Delta::{Invalid, Seconds};

/// The directives parsed from `Cache-Control` with `set` applied to an empty set: every row
/// compares the whole struct, so a directive that leaks into another field fails too.
fn cc(set: impl FnOnce(&mut ResponseDirectives)) -> ResponseDirectives {
    let mut d = ResponseDirectives::empty(DirectiveSource::CacheControl);
    set(&mut d);
    d
}

fn fields(names: &[&str]) -> Option<FieldScope> {
    Some(FieldScope::Fields(
        names.iter().map(|n| n.to_string()).collect(),
    ))
}

#[test]
fn response_directives_table() {
    #[rustfmt::skip]
    let cases: Vec<(&str, ResponseDirectives, &str)> = vec![
        ("max-age=60", cc(|d| d.max_age = Some(Seconds(60))), "RFC 9111 §5.2.2.1"),
        ("MAX-AGE=60", cc(|d| d.max_age = Some(Seconds(60))), "§5.2: names are case-insensitive"),
        ("max-age=\"60\"", cc(|d| d.max_age = Some(Seconds(60))), "§5.2: recipients accept the quoted form"),
        ("max-age=abc", cc(|d| d.max_age = Some(Invalid)), "§4.2.1: invalid → stale"),
        ("max-age", cc(|d| d.max_age = Some(Invalid)), "§5.2.2.1: the argument is required"),
        ("max-age=-5", cc(|d| d.max_age = Some(Invalid)), "§1.2.2: delta-seconds has no sign"),
        ("max-age=5, max-age=10", cc(|d| d.max_age = Some(Seconds(5))), "§4.2.1: duplicates → the first occurrence"),
        ("max-age=100, max-age=5", cc(|d| d.max_age = Some(Seconds(100))), "§4.2.1: the first occurrence, whichever is longer"),
        ("max-age=x, max-age=5", cc(|d| d.max_age = Some(Invalid)), "§4.2.1: an invalid first occurrence stays stale"),
        ("s-maxage=1, s-maxage=9, stale-if-error=3, stale-if-error=4", cc(|d| { d.s_maxage = Some(Seconds(1)); d.stale_if_error = Some(Seconds(3)); }), "§4.2.1: every delta directive"),
        ("max-age = 5", cc(|d| d.max_age = Some(Invalid)), "§5.2: whitespace around '=' is invalid syntax → stale"),
        ("max-age=100a", cc(|d| d.max_age = Some(Invalid)), "§1.2.2: delta-seconds is 1*DIGIT"),
        ("max-age=1.5", cc(|d| d.max_age = Some(Invalid)), "§1.2.2: no fraction"),
        ("max-age=-1", cc(|d| d.max_age = Some(Invalid)), "§1.2.2: no sign"),
        ("max-age=\"\"", cc(|d| d.max_age = Some(Invalid)), "§1.2.2: an empty quoted value"),
        ("max-age=\"5\"", cc(|d| d.max_age = Some(Seconds(5))), "§5.2: a recipient SHOULD accept the quoted form"),
        ("max-age=2147483648", cc(|d| d.max_age = Some(Seconds(1 << 31))), "§1.2.2: 2^31 itself"),
        ("max-age=5, max-age=5", cc(|d| d.max_age = Some(Seconds(5))), "identical duplicates are harmless"),
        ("max-age=9999999999", cc(|d| d.max_age = Some(Seconds(1 << 31))), "§1.2.2: overflow → 2^31"),
        ("s-maxage=30", cc(|d| d.s_maxage = Some(Seconds(30))), "§5.2.2.10"),
        ("no-cache", cc(|d| d.no_cache = Some(FieldScope::All)), "§5.2.2.4 unqualified"),
        ("no-cache=\"Set-Cookie, x-a\"", cc(|d| d.no_cache = fields(&["set-cookie", "x-a"])), "§5.2.2.4 qualified, lower-cased"),
        ("no-cache=Set-Cookie", cc(|d| d.no_cache = fields(&["set-cookie"])), "§5.2: token form accepted"),
        ("no-cache=\"x\", no-cache", cc(|d| d.no_cache = Some(FieldScope::All)), "§4.2.1: the most restrictive wins"),
        ("no-cache=\"a\", no-cache=\"b\"", cc(|d| d.no_cache = fields(&["a", "b"])), "qualified lists merge"),
        ("no-cache=\"\"", cc(|d| d.no_cache = Some(FieldScope::All)), "an empty list reads as unqualified"),
        ("no-cache=\"oops", cc(|d| d.no_cache = Some(FieldScope::All)), "a malformed list reads as unqualified"),
        ("private", cc(|d| d.private = Some(FieldScope::All)), "§5.2.2.7"),
        ("private=\"X-User\"", cc(|d| d.private = fields(&["x-user"])), "§5.2.2.7 qualified"),
        ("no-store=1", cc(|d| d.no_store = true), "a restrictive directive keeps its effect despite an argument"),
        ("public=yes", cc(|_| {}), "a widening directive with an argument is ignored"),
        ("immutable=1", cc(|_| {}), "likewise immutable"),
        ("public, must-revalidate, proxy-revalidate, must-understand, no-transform, immutable",
            cc(|d| { d.public = true; d.must_revalidate = true; d.proxy_revalidate = true; d.must_understand = true; d.no_transform = true; d.immutable = true; }),
            "§5.2.2 flags"),
        ("stale-while-revalidate=30, stale-if-error=600",
            cc(|d| { d.stale_while_revalidate = Some(Seconds(30)); d.stale_if_error = Some(Seconds(600)); }), "RFC 5861 §3, §4"),
        ("stale-if-error=soon", cc(|d| d.stale_if_error = Some(Invalid)), "RFC 5861: invalid → no window"),
        ("x-ext=\"a,b\", max-age=3", cc(|d| d.max_age = Some(Seconds(3))), "§5.2.3: unknown extensions ignored"),
        ("", cc(|_| {}), "empty field"),
    ];
    for (input, want, rule) in cases {
        assert_eq!(ResponseDirectives::parse(input), want, "{rule}: {input:?}");
    }
}

#[test]
fn derived_predicates() {
    let p = ResponseDirectives::parse;
    assert!(
        p("s-maxage=1").forbids_stale(),
        "§5.2.2.10: s-maxage implies proxy-revalidate"
    );
    assert!(p("must-revalidate").forbids_stale(), "§5.2.2.2");
    assert!(p("proxy-revalidate").forbids_stale(), "§5.2.2.8");
    assert!(!p("max-age=1, stale-while-revalidate=5").forbids_stale());
    assert!(p("no-cache").requires_validation(), "§5.2.2.4 unqualified");
    assert!(
        !p("no-cache=\"x\"").requires_validation(),
        "§5.2.2.4 qualified"
    );
}

#[test]
fn request_directives_table() {
    let rd = |set: fn(&mut RequestDirectives)| {
        let mut d = RequestDirectives::default();
        set(&mut d);
        d
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, RequestDirectives, &str)> = vec![
        ("max-age=0", rd(|d| d.max_age = Some(Seconds(0))), "§5.2.1.1"),
        ("max-age=x", rd(|d| d.max_age = Some(Invalid)), "an invalid max-age never relaxes (read as 0)"),
        ("max-age=1, max-age=2", rd(|d| d.max_age = Some(Invalid)), "conflicting duplicates"),
        ("max-stale", rd(|d| d.max_stale = Some(MaxStale::Any)), "§5.2.1.2 without a value"),
        ("max-stale=30", rd(|d| d.max_stale = Some(MaxStale::Seconds(30))), "§5.2.1.2"),
        ("max-stale=x", rd(|_| {}), "a malformed max-stale is ignored"),
        ("max-stale=5, max-stale=6", rd(|_| {}), "conflicting max-stale is ignored"),
        ("min-fresh=10", rd(|d| d.min_fresh = Some(Seconds(10))), "§5.2.1.3"),
        ("min-fresh=ten", rd(|d| d.min_fresh = Some(Invalid)), "an invalid min-fresh cannot be met"),
        ("No-Cache, no-store, only-if-cached, no-transform",
            rd(|d| { d.no_cache = true; d.no_store = true; d.only_if_cached = true; d.no_transform = true; }), "§5.2.1.4–7"),
        ("stale-if-error=60", rd(|d| d.stale_if_error = Some(60)), "RFC 5861 §4 request form"),
        ("stale-if-error=x", rd(|_| {}), "RFC 5861: malformed → ignored"),
    ];
    for (input, want, rule) in cases {
        assert_eq!(RequestDirectives::parse(input), want, "{rule}: {input:?}");
    }
}

#[test]
fn targeted_field_takes_precedence_per_rfc9213() {
    let targets = ["cloudflare-cdn-cache-control", "cdn-cache-control"];
    let h = |pairs: &[(&str, &str)]| pairs.iter().copied().collect::<HeaderList>();
    #[rustfmt::skip]
    let cases = [
        (h(&[("Cache-Control", "no-store"), ("CDN-Cache-Control", "max-age=600")]),
            DirectiveSource::Targeted(1), Some(Seconds(600)), false, "§2.2: Cache-Control ignored entirely"),
        (h(&[("Cache-Control", "max-age=1"), ("CDN-Cache-Control", "max-age=2"), ("Cloudflare-CDN-Cache-Control", "max-age=3")]),
            DirectiveSource::Targeted(0), Some(Seconds(3)), false, "§2.2: first in target-list order"),
        (h(&[("Cache-Control", "max-age=1"), ("CDN-Cache-Control", "Max-Age=2")]),
            DirectiveSource::CacheControl, Some(Seconds(1)), false, "§2.1: an invalid dictionary (upper-case key) is ignored"),
        (h(&[("Cache-Control", "max-age=1"), ("CDN-Cache-Control", "")]),
            DirectiveSource::CacheControl, Some(Seconds(1)), false, "§2.1: an empty field is ignored"),
        (h(&[("CDN-Cache-Control", "max-age=\"60\"")]),
            DirectiveSource::Targeted(1), Some(Invalid), false, "§2.1: a String max-age is not consumed"),
        (h(&[("CDN-Cache-Control", "max-age=5, max-age=10")]),
            DirectiveSource::Targeted(1), Some(Seconds(10)), false, "RFC 8941 §4.2.2: the last member wins"),
        (h(&[("CDN-Cache-Control", "none"), ("Cache-Control", "no-store")]),
            DirectiveSource::Targeted(1), None, false, "§3.1: 'none' lets only the CDN store"),
        (h(&[("CDN-Cache-Control", "no-store=?0")]),
            DirectiveSource::Targeted(1), None, true, "restrictive directives are honoured whatever the value"),
        (h(&[("Cache-Control", "max-age=7"), ("X-Other-Cache-Control", "max-age=9")]),
            DirectiveSource::CacheControl, Some(Seconds(7)), false, "§2.2: fields off the target list change nothing"),
    ];
    for (headers, source, max_age, no_store, rule) in cases {
        let d = ResponseDirectives::for_shared_cache(&headers, &targets);
        assert_eq!(
            (d.source, d.max_age, d.no_store),
            (source, max_age, no_store),
            "{rule}"
        );
    }
}
