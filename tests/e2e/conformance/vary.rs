//! Vary (RFC 9111 §4.1): a stored response is reused only for a request whose nominated fields
//! match the request that filled it; variants are kept side by side; `Vary: *` never matches.
//! The scripted origin echoes the request's Accept-Language and X-Tenant into its body, so each
//! step shows which variant it got.

use super::{Case, Field, case, get, ok};

const BODY: &str = "lang={req:accept-language} tenant={req:x-tenant}";

fn varying(name: &'static str, clause: &'static str, vary: &str) -> Case {
    case(name, clause).answer(ok("max-age=100", BODY).h("Vary", vary))
}

fn al(value: &str) -> super::Step {
    get().h("Accept-Language", value)
}

pub fn cases() -> Vec<Case> {
    vec![
        varying("identical_request_hits", "RFC 9111 §4.1", "Accept-Language")
            .step(al("en").status(200).miss().body("lang=en tenant=-"))
            .step(al("en").status(200).hit().body("lang=en tenant=-")),
        varying("different_value_misses", "RFC 9111 §4.1", "Accept-Language")
            .step(al("en").status(200).miss())
            .step(al("fr").status(200).miss().sent("accept-language", "fr").body("lang=fr tenant=-")),
        varying("variants_side_by_side", "RFC 9111 §4.1 (a cache can store several responses)", "Accept-Language")
            .note("keeping several variants is what §4.1 describes; replacing one with the next would pass the RFC but fail this row")
            .step(al("en").status(200).miss().body("lang=en tenant=-"))
            .step(al("fr").status(200).miss().body("lang=fr tenant=-"))
            .step(al("en").status(200).hit().body("lang=en tenant=-"))
            .step(al("fr").status(200).hit().body("lang=fr tenant=-"))
            .step(al("en").status(200).hit().body("lang=en tenant=-")),
        varying("whitespace_normalised", "RFC 9111 §4.1 (adding or removing whitespace)", "Accept-Language")
            .note("§4.1 defines such fields as matching, so reuse is allowed (MAY); established caches normalise list whitespace")
            .step(al("en, fr").status(200).miss())
            .step(al("en,fr").status(200).hit()),
        varying("combined_field_lines", "RFC 9111 §4.1 (combining field lines)", "Accept-Language")
            .note("two field lines and one combined line match by §4.1's definition (reuse is a MAY)")
            .step(al("en, fr").status(200).miss())
            .step(al("en").h("Accept-Language", "fr").status(200).hit()),
        varying("vary_name_case_insensitive", "RFC 9110 §5.1 (field names are case-insensitive), RFC 9111 §4.1", "ACCEPT-LANGUAGE")
            .step(al("en").status(200).miss())
            .step(al("en").status(200).hit().body("lang=en tenant=-"))
            .step(al("fr").status(200).miss().body("lang=fr tenant=-")),
        varying("absent_matches_absent", "RFC 9111 §4.1", "Accept-Language")
            .step(get().status(200).miss().body("lang=- tenant=-"))
            .step(get().status(200).hit().body("lang=- tenant=-"))
            .step(al("en").status(200).miss().body("lang=en tenant=-")),
        varying("present_does_not_match_absent", "RFC 9111 §4.1", "Accept-Language")
            .step(al("en").status(200).miss())
            .step(get().status(200).miss().body("lang=- tenant=-")),
        varying("vary_star_never_hits", "RFC 9111 §4.1", "*")
            .step(al("en").status(200).miss())
            .step(al("en").status(200).miss())
            .step(get().status(200).miss()),
        varying("two_fields", "RFC 9111 §4.1", "Accept-Language, X-Tenant")
            .step(al("en").h("X-Tenant", "a").status(200).miss().body("lang=en tenant=a"))
            .step(al("en").h("X-Tenant", "a").status(200).hit().body("lang=en tenant=a"))
            .step(al("en").h("X-Tenant", "b").status(200).miss().sent("x-tenant", "b").body("lang=en tenant=b"))
            .step(al("fr").h("X-Tenant", "a").status(200).miss().body("lang=fr tenant=a"))
            .step(al("en").h("X-Tenant", "a").status(200).hit().body("lang=en tenant=a")),
        case("two_vary_lines", "RFC 9111 §4.1; RFC 9110 §5.3 (field lines combine)")
            .answer(ok("max-age=100", BODY).h("Vary", "Accept-Language").h("Vary", "X-Tenant"))
            .step(al("en").h("X-Tenant", "a").status(200).miss())
            .step(al("en").h("X-Tenant", "a").status(200).hit().body("lang=en tenant=a"))
            .step(al("en").h("X-Tenant", "b").status(200).miss().body("lang=en tenant=b")),
        varying("vary_on_custom_header_forwards_it", "RFC 9111 §4.1; RFC 9110 §7.6 (end-to-end fields are forwarded)", "X-Tenant")
            .step(get().h("X-Tenant", "a").status(200).miss().sent("x-tenant", "a"))
            .step(get().h("X-Tenant", "b").status(200).miss().sent("x-tenant", "b").body("lang=- tenant=b"))
            .step(get().h("X-Tenant", "a").status(200).hit().body("lang=- tenant=a")),
        varying("empty_vary_varies_on_nothing", "RFC 9110 §12.5.5 (Vary = #(\"*\" / field-name): an empty list)", "")
            .step(al("en").status(200).miss())
            .step(al("fr").status(200).hit().body("lang=en tenant=-")),
        varying("vary_is_returned_on_hits", "RFC 9111 §4 (the stored header section)", "Accept-Language")
            .step(al("en").status(200).miss())
            .step(al("en").status(200).hit().field_is("vary", Field::Contains("ccept-".into()))),
        case("vary_star_among_names_never_hits", "RFC 9111 §4.1")
            .answer(ok("max-age=100", BODY).h("Vary", "Accept-Language, *"))
            .step(al("en").status(200).miss())
            .step(al("en").status(200).miss()),
    ]
}
