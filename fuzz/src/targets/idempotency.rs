//! `idempotency`: the `Idempotency-Key` header, the request fingerprint, the kept answer, the
//! stored record and the lifecycle that moves it (`core/src/idempotency/`).
//!
//! Input: `idempotency-key` field lines (several are joined with `, `, as the runtime joins
//! them); `:principal`, `:method`, `:path`; the origin's answer headers as `< name: value`;
//! `:record`, a stored record's JSON; `:ops`, a script of lifecycle steps run from `:now` with a
//! `:lease`, `:retention` and `:max-body` policy (`b0`..`b2` begin with one of three requests,
//! `c201` complete the last claim with a status, `r` release it, `+5000`/`-5000` move the clock);
//! the body is the request body.
//!
//! Asserts: an accepted key is 1 to 255 printable ASCII characters, reads back from its sf-string
//! form (and bare form when it is a token) as the same key, and names a record of 64 hex digits
//! that differs per principal; fingerprints and stored answers round-trip through their wire
//! forms; a kept answer holds only the allowed headers and only a body within the limit; stored
//! records round-trip; and along any script, a claim lasts exactly the lease, a retry waits at
//! most a lease, only the same request replays and only the claim's holder completes or
//! releases.

use breakwater_core::idempotency::{
    Answer, Begin, Claim, CompleteError, Fingerprint, KeyError, MAX_KEY_CHARS, Policy,
    REPLAYED_HEADERS, Record, StoredResponse, begin, complete, fingerprint, is_expired,
    is_replayable, parse_key, record_name, release,
};

use super::{Outcome, Target, ensure};
use crate::draw::{self, pick};
use crate::envelope::Envelope;
use crate::rng::Rng;

pub const TARGET: Target = Target {
    name: "idempotency",
    about: "Idempotency-Key values, request fingerprints, kept answers, stored records and the \
            begin/complete/release lifecycle",
    generate,
    run,
    dictionary: DICTIONARY,
    max_len: 4 * 1024,
};

const DICTIONARY: &[&str] = &[
    "\"",
    "\\\"",
    "\\\\",
    "\\n",
    ",",
    ";p=1",
    " ",
    "\t",
    "=",
    "idempotency-key: ",
    ":ops: ",
    " b0",
    " b1",
    " b2",
    " c201",
    " c409",
    " c500",
    " r",
    " +30000",
    " +1",
    " -1000",
    " +18446744073709551615",
    ":now: ",
    ":lease: ",
    ":record: ",
    "< etag: ",
    "< set-cookie: ",
    "{\"state\":\"in-flight\"",
    "{\"state\":\"completed\"",
    "\"fingerprint\":",
    "\"attempt\":",
    "\"lease_until_ms\":",
    "\"expires_ms\":",
    "\"response\":",
    "\"body\":",
    "\"body_len\":",
    "8e03978e-40d5-43e8-bc93-6894a57f9324",
    "é",
    "\u{7f}",
];

fn generate(rng: &mut Rng) -> Vec<u8> {
    let key = match rng.below(6) {
        0 => "8e03978e-40d5-43e8-bc93-6894a57f9324".to_owned(),
        1 => format!("\"{}\"", draw::text(rng, b"abc \\\"'/;=,-", 20)),
        2 => draw::noise(rng, 30),
        3 => "k".repeat(rng.range(250, 260) as usize),
        4 => format!("\"a\", \"{}\"", draw::noise(rng, 4)),
        _ => draw::text(rng, b"abcXYZ019-_.:/!#$%&'*+^`|~", 16),
    };
    let mut e = Envelope::new()
        .field("idempotency-key", key)
        .field(
            ":principal",
            pick(rng, &["ip:203.0.113.9", "key:abc", "user:1", ""]),
        )
        .field(":method", pick(rng, &["POST", "PUT", "post"]))
        .field(":path", pick(rng, &["/api/orders", "/api/orders?x=1", "/"]));
    if rng.one_in(4) {
        e = e.field("idempotency-key", draw::noise(rng, 6));
    }
    for (name, value) in [
        ("< content-type", "application/json"),
        ("< Set-Cookie", "s=1"),
        ("< ETag ", "\"v\""),
        ("< x-request-id", "r"),
    ] {
        if rng.one_in(2) {
            e = e.field(name, value);
        }
    }
    let steps = [
        "b0",
        "b1",
        "b2",
        "c201",
        "c200",
        "c409",
        "c500",
        "c399",
        "r",
        "+1",
        "+29999",
        "+30000",
        "+86400000",
        "-5000",
        "+18446744073709551615",
    ];
    let ops: Vec<&str> = (0..rng.below(12)).map(|_| pick(rng, &steps)).collect();
    e = e.field(":ops", ops.join(" "));
    for (name, values) in [
        (
            ":now",
            &[
                "0",
                "1700000000000",
                "18446744073709551615",
                "18446744073709500000",
            ][..],
        ),
        (":lease", &["30000", "0", "1", "18446744073709551615"]),
        (":retention", &["86400000", "1", "18446744073709551615"]),
        (":max-body", &["0", "2", "65536"]),
    ] {
        if rng.one_in(3) {
            e = e.field(name, pick(rng, values));
        }
    }
    if rng.one_in(3) {
        let fp = fingerprint("POST", "/api/orders", b"{}").to_string();
        let record = match rng.below(3) {
            0 => format!(
                r#"{{"state":"in-flight","fingerprint":"{fp}","attempt":{},"lease_until_ms":{}}}"#,
                draw::number(rng),
                draw::number(rng)
            ),
            1 => format!(
                r#"{{"state":"completed","fingerprint":"{fp}","response":{{"status":{},"headers":[["etag","x"]],"body":[1,2],"body_len":2}},"expires_ms":5}}"#,
                draw::number(rng)
            ),
            _ => draw::noise(rng, 40),
        };
        e = e.field(":record", record);
    }
    e.with_body(draw::noise(rng, 40).into_bytes()).to_bytes()
}

fn run(input: &[u8]) -> Result<Outcome, String> {
    let e = Envelope::parse(input);
    let mut out = Outcome::default();
    let principal = e.get(":principal").unwrap_or("ip:203.0.113.9");
    let lines: Vec<&str> = e.all("idempotency-key").collect();
    if !lines.is_empty() {
        check_key(&lines.join(", "), principal, &mut out)?;
    }

    let method = e.get(":method").unwrap_or("POST");
    let path = e.get(":path").unwrap_or("/api/orders");
    let fp = fingerprint(method, path, &e.body);
    let hex = fp.to_string();
    ensure!(
        hex.len() == 64 && Fingerprint::try_from(hex.clone()) == Ok(fp),
        "fingerprint: 64 hex digits that read back",
        "{hex}"
    );
    let json = serde_json::to_string(&fp).unwrap_or_default();
    ensure!(
        serde_json::from_str::<Fingerprint>(&json).ok() == Some(fp),
        "fingerprint: JSON round-trips"
    );

    let policy = Policy {
        lease_ms: e.number(":lease", 30_000),
        retention_ms: e.number(":retention", 86_400_000),
        max_body_bytes: e.number(":max-body", 65_536) as usize,
    };
    let answer_headers: Vec<(String, String)> = e
        .headers()
        .filter_map(|(n, v)| {
            n.strip_prefix('<')
                .map(|n| (n.trim().to_owned(), v.to_owned()))
        })
        .collect();
    let answer = Answer {
        status: 201,
        headers: &answer_headers,
        body: &e.body,
    };
    let kept = StoredResponse::from_answer(&answer, policy.max_body_bytes);
    ensure!(
        kept.headers
            .iter()
            .all(|(n, _)| REPLAYED_HEADERS.contains(&n.as_str())),
        "answer: only allowed headers are kept, lower-case",
        "{:?}",
        kept.headers
    );
    ensure!(
        kept.body.is_some() == (e.body.len() <= policy.max_body_bytes)
            && kept.body_len == e.body.len() as u64,
        "answer: the body is kept iff within the limit"
    );
    let json = serde_json::to_string(&kept).unwrap_or_default();
    ensure!(
        serde_json::from_str::<StoredResponse>(&json).ok().as_ref() == Some(&kept),
        "answer: JSON round-trips"
    );

    if let Some(raw) = e.get(":record")
        && let Ok(record) = serde_json::from_str::<Record>(raw)
    {
        out.note(record.as_str());
        let json = serde_json::to_string(&record).unwrap_or_default();
        ensure!(
            serde_json::from_str::<Record>(&json).ok().as_ref() == Some(&record),
            "record: a stored record round-trips",
            "{raw}"
        );
    }
    run_script(&e, &policy, &mut out)?;
    Ok(out)
}

fn check_key(value: &str, principal: &str, out: &mut Outcome) -> Result<(), String> {
    match parse_key(value) {
        Ok(key) => {
            out.note("key");
            let k = key.as_str();
            ensure!(
                (1..=MAX_KEY_CHARS).contains(&k.len())
                    && k.bytes().all(|b| (0x20..=0x7e).contains(&b)),
                "key: 1 to 255 printable ASCII characters",
                "{k:?}"
            );
            let quoted = format!("\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\""));
            ensure!(
                parse_key(&quoted).as_ref() == Ok(&key),
                "key: its sf-string reads back",
                "{quoted:?}"
            );
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b);
            if k.bytes().all(token) {
                ensure!(
                    parse_key(k).as_ref() == Ok(&key),
                    "key: a token reads back bare",
                    "{k:?}"
                );
            }
            let name = record_name(principal, &key);
            ensure!(
                name.len() == 64
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "key: a record name is 64 hex digits"
            );
            ensure!(
                record_name(&format!("{principal}x"), &key) != name,
                "key: another principal names another record"
            );
            ensure!(
                key.clone().at_least(16).is_ok() == (k.len() >= 16),
                "key: the floor refuses exactly the shorter keys",
                "{k:?}"
            );
        }
        Err(error) => {
            out.note(&format!("{:?}", std::mem::discriminant(&error)));
            ensure!(!error.to_string().is_empty(), "key: a refusal says why");
            if let KeyError::Multiple = error {
                ensure!(
                    value.contains(','),
                    "key: Multiple only for a list",
                    "{value:?}"
                );
            }
        }
    }
    Ok(())
}

/// Runs the `:ops` script against one key's record and checks every step.
fn run_script(e: &Envelope, policy: &Policy, out: &mut Outcome) -> Result<(), String> {
    let Some(script) = e.get(":ops") else {
        return Ok(());
    };
    let fingerprints = [
        fingerprint("POST", "/api/orders", b"{\"n\":0}"),
        fingerprint("POST", "/api/orders", b"{\"n\":1}"),
        fingerprint("PUT", "/api/orders", b""),
    ];
    let mut now = e.number(":now", 1_700_000_000_000);
    let mut record: Option<Record> = None;
    let mut claim: Option<Claim> = None;
    for step in script.split_whitespace().take(64) {
        let (op, arg) = step.split_at(step.char_indices().nth(1).map_or(step.len(), |(i, _)| i));
        match op {
            "+" => now = now.saturating_add(arg.parse().unwrap_or(0)),
            "-" => now = now.saturating_sub(arg.parse().unwrap_or(0)),
            "b" => {
                let fp = fingerprints[arg.parse::<usize>().unwrap_or(0) % fingerprints.len()];
                let live = record.as_ref().filter(|r| !is_expired(r, now));
                let decision = begin(record.as_ref(), &fp, now, policy);
                out.note(decision.as_str());
                match &decision {
                    Begin::Proceed(c) => {
                        ensure!(live.is_none(), "begin: proceeds only on a free key");
                        ensure!(
                            c.lease_until_ms == now.saturating_add(policy.lease_ms)
                                && c.fingerprint == fp,
                            "begin: a claim holds exactly one lease"
                        );
                        let previous = match &record {
                            Some(Record::InFlight(held)) if held.fingerprint == fp => {
                                held.attempt.saturating_add(1)
                            }
                            _ => 1,
                        };
                        ensure!(
                            c.attempt == previous,
                            "begin: attempts count takeovers",
                            "{} vs {previous}",
                            c.attempt
                        );
                        record = Some(Record::InFlight(*c));
                        claim = Some(*c);
                    }
                    Begin::InFlight { retry_after_ms } => {
                        ensure!(
                            matches!(live, Some(Record::InFlight(h)) if h.fingerprint == fp),
                            "begin: in flight only for the same request's live claim"
                        );
                        // A policy the config accepts has a lease of at least 2 ms.
                        let valid = policy.validate(1).is_ok();
                        ensure!(
                            *retry_after_ms <= policy.lease_ms && (*retry_after_ms >= 1 || !valid),
                            "begin: a retry waits 1 ms to one lease",
                            "{retry_after_ms}"
                        );
                    }
                    Begin::Mismatch => ensure!(
                        live.is_some_and(|r| *r.fingerprint() != fp),
                        "begin: a mismatch is another request's live record"
                    ),
                    Begin::Replay(response) => ensure!(
                        matches!(live, Some(Record::Completed { fingerprint, response: kept, .. })
                            if *fingerprint == fp && kept == response && kept.body.is_some()),
                        "begin: replays only the same request's kept answer"
                    ),
                    Begin::ReplayFromOrigin => ensure!(
                        matches!(live, Some(Record::Completed { fingerprint, response, .. })
                            if *fingerprint == fp && response.body.is_none()),
                        "begin: replay from the origin only without a kept body"
                    ),
                }
            }
            "c" => {
                let Some(c) = claim else { continue };
                let status = arg.parse().unwrap_or(201);
                let answer = Answer {
                    status,
                    headers: &[],
                    body: b"{}",
                };
                match complete(record.as_ref(), &c, &answer, now, policy) {
                    Ok(done) => {
                        out.note("completed");
                        ensure!(
                            is_replayable(status) && record == Some(Record::InFlight(c)),
                            "complete: only the holder, only a replayable answer"
                        );
                        ensure!(
                            matches!(&done, Record::Completed { expires_ms, .. } if *expires_ms == now.saturating_add(policy.retention_ms)),
                            "complete: kept for exactly the retention"
                        );
                        record = Some(done);
                    }
                    Err(why) => out.note(match why {
                        CompleteError::NotReplayable(_) => "not-replayable",
                        CompleteError::NoRecord => "no-record",
                        CompleteError::Superseded => "superseded",
                        CompleteError::AlreadyCompleted => "already-completed",
                    }),
                }
            }
            "r" => {
                let Some(c) = claim else { continue };
                if release(record.as_ref(), &c) {
                    out.note("released");
                    ensure!(
                        record == Some(Record::InFlight(c)),
                        "release: only the holder's claim"
                    );
                    record = None;
                }
            }
            _ => {}
        }
    }
    Ok(())
}
