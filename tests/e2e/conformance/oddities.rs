//! Answers no well-behaved origin sends (RFC 9110 §15 status codes are three digits 100-599;
//! RFC 9110 §5.5 field values; RFC 9112 §6.3 message length): each gets a prompt answer, never a
//! hang beyond the origin timeout plus a second. An interim 103 before a final 200 is just the
//! 200 (RFC 9110 §15.2). Everything else is an invalid answer: a 502 problem+json (RFC 9457) for
//! that request only, so the next request to the same path, answered normally, is a 200.

use super::{Body, Case, Field, PROMPT_MS, case, get, ok};
use crate::scripted::{Answer, Length};

const PROBLEM: &str = "application/problem+json";

/// The origin sends `odd` once, then a normal answer.
fn odd(name: &'static str, clause: &'static str, odd: Answer) -> Case {
    case(name, clause)
        .answer(odd)
        .answer(ok("no-store", "after"))
        .step(
            get()
                .status(502)
                .miss()
                .field_is("content-type", Field::Contains(PROBLEM.into()))
                .within_ms(PROMPT_MS),
        )
        .step(get().status(200).miss().body("after").within_ms(PROMPT_MS))
}

/// Like [`odd`] but the RFC also allows relaying a repaired answer (`status` with `body`).
fn odd_or(name: &'static str, clause: &'static str, bad: Answer, status: u16, body: &str) -> Case {
    case(name, clause)
        .answer(bad)
        .answer(ok("no-store", "after"))
        .step(
            get()
                .statuses(&[status, 502])
                .miss()
                .field_if(502, "content-type", Field::Contains(PROBLEM.into()))
                .body_if(status, Body::Is(body.as_bytes().to_vec()))
                .within_ms(PROMPT_MS),
        )
        .step(get().status(200).miss().body("after").within_ms(PROMPT_MS))
}

fn plain(status: u16) -> Answer {
    Answer::new(status)
        .h("Cache-Control", "max-age=100")
        .body("odd")
}

pub fn cases() -> Vec<Case> {
    vec![
        odd("status_999", "RFC 9110 §15 (status-code = 3DIGIT, 100-599 defined)", plain(999)),
        odd("status_600", "RFC 9110 §15", plain(600)),
        odd("status_two_digits", "RFC 9112 §4 (status-code = 3DIGIT)", plain(20)),
        // Only the 199 (repeated, should the edge retry the closed connection): no final answer.
        case("status_1xx_as_the_only_answer", "RFC 9110 §15.2 (1xx is interim; no final answer)")
            .answer(Answer::new(199).body("odd").close())
            .step(
                get()
                    .status(502)
                    .miss()
                    .field_is("content-type", Field::Contains(PROBLEM.into()))
                    .within_ms(PROMPT_MS),
            ),
        case("arbitrary_reason_phrase", "RFC 9112 §4 (a client SHOULD ignore the reason-phrase)")
            .answer(ok("max-age=100", "reason").reason("Totally Fine"))
            .step(get().status(200).miss().body("reason").within_ms(PROMPT_MS))
            .step(get().status(200).hit().body("reason")),
        case("interim_103_then_200", "RFC 9110 §15.2, RFC 8297")
            .answer(ok("max-age=100", "final").interim(103, &["Link: </style.css>; rel=preload"]))
            .step(get().status(200).miss().body("final").within_ms(PROMPT_MS))
            .step(get().status(200).hit().body("final")),
        odd("interim_103_then_999", "RFC 9110 §15", plain(999).interim(103, &["Link: </a.css>; rel=preload"])),
        odd("invalid_field_byte", "RFC 9110 §5.5 (field-value has no CTL)", plain(200).raw_field(b"X-Bad: a\x01b"))
            .note("§5.5 lets a recipient retain other CTLs for robustness (MAY); this row expects the answer refused, as the brief asks"),
        odd_or("nul_in_field", "RFC 9110 §5.5 (NUL: reject, or replace with SP)", ok("no-store", "nul").raw_field(b"X-Nul: a\x00b"), 200, "nul"),
        odd("field_without_colon", "RFC 9112 §5 (field-line = field-name \":\" ...)", plain(200).raw_field(b"NoColonHere")),
        odd_or("obs_fold", "RFC 9112 §5.2 (a proxy MUST reject obs-fold or replace it with SP)", ok("no-store", "folded").raw_field(b"X-Fold: a\r\n b"), 200, "folded"),
        odd("content_length_longer_than_body", "RFC 9112 §6.3 (closed before Content-Length octets: incomplete)", plain(200).length(Length::Claim(100))),
        odd_or(
            "content_length_shorter_than_body",
            "RFC 9112 §6.3 (the message ends after Content-Length octets)",
            ok("no-store", "0123456789").length(Length::Claim(5)),
            200,
            "01234",
        )
        .note("the first 5 octets are a complete message; relaying them (200) or refusing the connection's garbage (502) are both accepted"),
        odd("two_content_lengths_disagree", "RFC 9112 §6.3 (differing Content-Length values: unrecoverable)", plain(200).h("Content-Length", "2")),
    ]
}
