//! Request identity: the `x-request-id` and W3C Trace Context (`traceparent`).
//!
//! Randomness comes in as arguments (the edge draws it from `crypto.getRandomValues`), so these
//! functions stay pure and testable.

use crate::hash::hex;

/// Longest request id accepted from a client; longer ones are replaced, not truncated.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The request id to use: the caller's own if it is short and made of safe characters (it ends
/// up in logs and headers, so nothing that could forge a log line), else a fresh one from `random`.
pub fn request_id(incoming: Option<&str>, random: [u8; 16]) -> String {
    match incoming {
        Some(id)
            if !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) =>
        {
            id.to_owned()
        }
        _ => hex(&random),
    }
}

/// A W3C `traceparent` (version 00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

impl TraceContext {
    /// Parses a `traceparent` header. Returns `None` for anything the spec says to ignore:
    /// wrong lengths, non-lowercase-hex, version `ff`, all-zero ids.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        // Version 00 has exactly four fields; later versions may append more (§3.2.4).
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let _ = unhex::<1>(version)?;
        let trace_id = unhex::<16>(trace)?;
        let span_id = unhex::<8>(span)?;
        let flags = unhex::<1>(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            sampled: flags[0] & 1 == 1,
        })
    }

    /// Continues `incoming` (or starts a new sampled trace) with a fresh span id for our hop.
    pub fn continue_or_start(incoming: Option<&str>, random: [u8; 24]) -> Self {
        let (trace, span) = random.split_at(16);
        let span_id: [u8; 8] = nonzero(span.try_into().unwrap_or([1; 8]));
        match incoming.and_then(Self::parse) {
            Some(parent) => Self { span_id, ..parent },
            None => Self {
                trace_id: nonzero(trace.try_into().unwrap_or([1; 16])),
                span_id,
                sampled: true,
            },
        }
    }

    /// The header value to send downstream.
    pub fn to_header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            u8::from(self.sampled)
        )
    }

    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// This hop's span id, which is the parent id of the next hop.
    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }
}

/// All-zero ids are invalid; flip one bit rather than fail.
fn nonzero<const N: usize>(mut bytes: [u8; N]) -> [u8; N] {
    if bytes == [0; N]
        && let Some(last) = bytes.last_mut()
    {
        *last = 1;
    }
    bytes
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example() {
        let t = TraceContext::parse(VALID).unwrap();
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.span_id_hex(), "00f067aa0ba902b7");
        assert!(t.sampled);
        assert_eq!(t.to_header(), VALID);
    }

    #[test]
    fn rejects_what_the_spec_says_to_ignore() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::parse(bad).is_none(), "accepted {bad:?}");
        }
    }

    #[test]
    fn continues_the_callers_trace_with_a_new_span() {
        let t = TraceContext::continue_or_start(Some(VALID), [7; 24]);
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.span_id, [7; 8]);
        let fresh = TraceContext::continue_or_start(Some("garbage"), [0; 24]);
        assert!(
            TraceContext::parse(&fresh.to_header()).is_some(),
            "zero randomness still valid"
        );
    }

    #[test]
    fn request_id_keeps_safe_ids_and_replaces_the_rest() {
        assert_eq!(request_id(Some("req-1.a_B"), [0; 16]), "req-1.a_B");
        let fresh = "ffffffffffffffffffffffffffffffff";
        assert_eq!(request_id(Some("a\r\nInjected: 1"), [0xff; 16]), fresh);
        assert_eq!(request_id(Some(""), [0xff; 16]), fresh);
        assert_eq!(request_id(Some(&"a".repeat(129)), [0xff; 16]), fresh);
        assert_eq!(request_id(None, [0xff; 16]), fresh);
    }

    proptest! {
        #[test]
        fn generated_contexts_always_round_trip(random in any::<[u8; 24]>(), sampled in any::<bool>()) {
            let mut t = TraceContext::continue_or_start(None, random);
            t.sampled = sampled;
            prop_assert_eq!(TraceContext::parse(&t.to_header()), Some(t));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = TraceContext::parse(&s);
        }
    }
}
