//! The retry storm's client: every key is one order that a client sends several times (the
//! first copies at once, like a double submit or a duplicated delivery, the rest one after
//! another) and retries until it has a terminal answer, as a careful client would: `Retry-After`
//! on `409`/`429`/`503` is honoured, other failures back off exponentially with jitter, and a key
//! gives up at its deadline.
//!
//! `Retry-After` is honoured on those statuses only, as common retry libraries do by default
//! (urllib3's `RETRY_AFTER_STATUS_CODES`): the edge also sends `Retry-After: 5` with its `502`
//! and `504`, and a client waiting that long after every lost answer would measure that constant
//! rather than the idempotency lease, which is what decides when a retry can go through.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::answer;
use crate::zipf::SplitMix64;

/// The first backoff after a failure without `Retry-After`; doubled per failure.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// The longest backoff after a failure without `Retry-After`.
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Seed mixed with a key's index for its backoff jitter.
const JITTER_SEED: u64 = 0x4a49_5454;

/// How each key is sent.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    /// Sends per key when nothing fails (more when retries are needed).
    pub attempts: usize,
    /// Of those, sent at once at the start.
    pub concurrent: usize,
    /// A key still without a terminal answer this long after its first send is given up.
    pub deadline: Duration,
    /// Keys in progress at once.
    pub keys_in_flight: usize,
    pub seed: u64,
}

/// One answer (or its absence), as the storm counts it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reply {
    /// `201` without `Idempotent-Replayed`: this attempt placed the order.
    Created,
    /// `201` with `Idempotent-Replayed: true`, from the edge's record or the origin's.
    Replayed,
    /// `422`: the key was used for another request (never expected here: one body per key).
    Mismatch,
    /// `409`: another attempt holds the key.
    InFlight,
    /// A 5xx, with its problem kind (`origin-unreachable`, ...) when the body names one.
    ServerError(u16, Option<String>),
    /// No HTTP answer: a connection failure or the client's own timeout.
    NoAnswer,
    /// Anything else (a `429`, a `400`, ...).
    Other(u16),
}

impl Reply {
    fn classify(status: u16, replayed: bool, body: &[u8]) -> Self {
        match status {
            201 if replayed => Self::Replayed,
            201 => Self::Created,
            422 => Self::Mismatch,
            409 => Self::InFlight,
            500..=599 => Self::ServerError(status, answer::problem_kind(body)),
            _ => Self::Other(status),
        }
    }

    /// The column it is counted in.
    pub fn column(&self) -> &'static str {
        match self {
            Self::Created => "201 fresh",
            Self::Replayed => "201 replayed",
            Self::Mismatch => "422",
            Self::InFlight => "409",
            Self::ServerError(..) => "5xx",
            Self::NoAnswer => "no answer",
            Self::Other(_) => "other",
        }
    }

    /// A 5xx or other answer with what it was (`502 origin-unreachable`), for the detail line.
    pub fn detail(&self) -> String {
        match self {
            Self::ServerError(status, Some(kind)) => format!("{status} {kind}"),
            Self::ServerError(status, None) | Self::Other(status) => status.to_string(),
            other => other.column().to_owned(),
        }
    }

    /// `201` either way, or `422`: the key has its answer.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Created | Self::Replayed | Self::Mismatch)
    }

    /// A client error retrying cannot fix (`400`, `401`, `415`, ...): the key stops.
    fn is_final(&self) -> bool {
        matches!(self, Self::Other(s) if (400..500).contains(s) && *s != 429)
    }
}

/// One send of a key.
#[derive(Debug, Clone)]
pub struct Sent {
    pub reply: Reply,
    /// From the send to the answer (or the failure).
    pub latency: Duration,
    /// `Retry-After` in seconds, if the answer had one and the client honours it there.
    retry_after: Option<u64>,
}

/// Everything one key went through.
#[derive(Debug, Clone, Default)]
pub struct KeyRun {
    pub sends: Vec<Sent>,
    /// From the key's first send to its first terminal answer; `None` if it never had one.
    pub terminal_after: Option<Duration>,
}

impl KeyRun {
    pub fn got_created(&self) -> bool {
        self.sends
            .iter()
            .any(|s| matches!(s.reply, Reply::Created | Reply::Replayed))
    }

    /// The replies in order with their latencies (`409 3ms, 502 origin-unreachable 12ms`).
    pub fn history(&self) -> String {
        let replies: Vec<String> = self
            .sends
            .iter()
            .map(|s| format!("{} {}ms", s.reply.detail(), s.latency.as_millis()))
            .collect();
        replies.join(", ")
    }
}

/// Runs every key (`bodies[i]` under `keys[i]`) against `url`, `client.keys_in_flight` keys at
/// once, counting the keys finished in `done`; returns each key's run, in key order.
pub async fn run(
    http: &reqwest::Client,
    url: &str,
    keys: Arc<[String]>,
    bodies: Arc<[String]>,
    client: Client,
    done: Arc<AtomicUsize>,
) -> Vec<KeyRun> {
    assert_eq!(keys.len(), bodies.len(), "one body per key");
    let next = Arc::new(AtomicUsize::new(0));
    let tenth = (keys.len() / 10).max(1);
    let url: Arc<str> = url.into();
    let workers: Vec<_> = (0..client.keys_in_flight.max(1))
        .map(|_| {
            let (http, url, keys, bodies) =
                (http.clone(), url.clone(), keys.clone(), bodies.clone());
            let (next, done) = (next.clone(), done.clone());
            tokio::spawn(async move {
                let mut runs = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let (Some(key), Some(body)) = (keys.get(i), bodies.get(i)) else {
                        break;
                    };
                    let mut jitter = SplitMix64::new(client.seed ^ JITTER_SEED ^ i as u64);
                    runs.push((
                        i,
                        one_key(&http, &url, key, body, client, &mut jitter).await,
                    ));
                    let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if finished.is_multiple_of(tenth) {
                        eprintln!("    retry storm: {finished}/{} keys", keys.len());
                    }
                }
                runs
            })
        })
        .collect();
    let mut runs = vec![KeyRun::default(); keys.len()];
    for worker in workers {
        // A worker that panicked leaves its keys empty: no sends, no terminal answer.
        if let Ok(done) = worker.await {
            for (i, run) in done {
                runs[i] = run;
            }
        }
    }
    runs
}

/// Sends one key until it has a terminal answer and `client.attempts` sends, or its deadline.
async fn one_key(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    body: &str,
    client: Client,
    jitter: &mut SplitMix64,
) -> KeyRun {
    let started = Instant::now();
    let mut run = KeyRun::default();
    let mut failures = 0;
    let mut batch = client.concurrent.clamp(1, client.attempts.max(1));
    loop {
        let sent_at = started.elapsed();
        let sends: Vec<_> = (0..batch)
            .map(|_| {
                let (http, url, key, body) = (
                    http.clone(),
                    url.to_owned(),
                    key.to_owned(),
                    body.to_owned(),
                );
                tokio::spawn(async move { send(&http, &url, &key, body).await })
            })
            .collect();
        let mut replies = Vec::with_capacity(batch);
        for task in sends {
            let sent = task.await.unwrap_or(Sent {
                reply: Reply::NoAnswer,
                latency: Duration::ZERO,
                retry_after: None,
            });
            if sent.reply.is_terminal() {
                let at = sent_at + sent.latency;
                run.terminal_after = Some(run.terminal_after.map_or(at, |t| t.min(at)));
            }
            replies.push(sent);
        }
        let stop = replies.iter().any(|s| s.reply.is_final());
        run.sends.append(&mut replies);
        let batch_sends = &run.sends[run.sends.len() - batch..];
        if stop || (run.terminal_after.is_some() && run.sends.len() >= client.attempts) {
            return run;
        }
        let wait = if run.terminal_after.is_some() {
            Duration::ZERO // the key has its answer: the rest are duplicate deliveries
        } else {
            failures += 1;
            wait_after(batch_sends, failures, jitter.next_f64())
        };
        if started.elapsed() + wait >= client.deadline {
            return run;
        }
        tokio::time::sleep(wait).await;
        batch = 1;
    }
}

/// How long to wait after a batch without a terminal answer, the `failures`-th such: the longest
/// `Retry-After` it was given, else an exponential backoff with equal jitter (`jitter` in
/// `[0, 1)`): half the step fixed, half random, so retries of many keys spread out.
fn wait_after(batch: &[Sent], failures: u32, jitter: f64) -> Duration {
    if let Some(secs) = batch.iter().filter_map(|s| s.retry_after).max() {
        return Duration::from_secs(secs);
    }
    let step = BACKOFF_BASE
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_MAX);
    step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Whether the client waits as `Retry-After` says after a `status` (see the module's notes).
fn honours_retry_after(status: u16) -> bool {
    matches!(status, 409 | 429 | 503)
}

/// One POST of the order; never fails (a failure is [`Reply::NoAnswer`]).
async fn send(http: &reqwest::Client, url: &str, key: &str, body: String) -> Sent {
    let started = Instant::now();
    let answered = http
        .post(url)
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(body)
        .send()
        .await;
    let no_answer = |started: Instant| Sent {
        reply: Reply::NoAnswer,
        latency: started.elapsed(),
        retry_after: None,
    };
    let Ok(response) = answered else {
        return no_answer(started);
    };
    let status = response.status().as_u16();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let replayed = header("idempotent-replayed").is_some_and(|v| v == "true");
    let retry_after = header("retry-after")
        .filter(|_| honours_retry_after(status))
        .and_then(|v| v.trim().parse().ok());
    let Ok(bytes) = response.bytes().await else {
        return no_answer(started);
    };
    Sent {
        reply: Reply::classify(status, replayed, &bytes),
        latency: started.elapsed(),
        retry_after,
    }
}

#[cfg(test)]
impl KeyRun {
    /// A key that got `replies`, one send each, with no time passing.
    pub fn of(replies: Vec<Reply>) -> Self {
        let terminal = replies.iter().any(Reply::is_terminal);
        Self {
            sends: replies
                .into_iter()
                .map(|reply| Sent {
                    reply,
                    latency: Duration::ZERO,
                    retry_after: None,
                })
                .collect(),
            terminal_after: terminal.then_some(Duration::ZERO),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(reply: Reply, retry_after: Option<u64>) -> Sent {
        Sent {
            reply,
            latency: Duration::ZERO,
            retry_after,
        }
    }

    #[test]
    fn answers_are_told_apart() {
        let problem = br#"{"type":"https://breakwater.dev/problems/origin-unreachable"}"#;
        assert_eq!(Reply::classify(201, false, b"{}"), Reply::Created);
        assert_eq!(Reply::classify(201, true, b"{}"), Reply::Replayed);
        assert_eq!(
            Reply::classify(502, false, problem),
            Reply::ServerError(502, Some("origin-unreachable".into()))
        );
        assert_eq!(
            Reply::classify(502, false, problem).detail(),
            "502 origin-unreachable"
        );
        assert_eq!(Reply::classify(409, false, b"").column(), "409");
        assert!(Reply::classify(422, false, b"").is_terminal());
        assert!(!Reply::classify(409, false, b"").is_terminal());
        assert!(Reply::Other(400).is_final() && !Reply::Other(429).is_final());
        assert!(!Reply::NoAnswer.is_final());
    }

    #[test]
    fn retry_after_wins_over_backoff() {
        let batch = [
            sent(Reply::InFlight, Some(2)),
            sent(Reply::ServerError(502, None), None),
        ];
        assert_eq!(wait_after(&batch, 1, 0.9), Duration::from_secs(2));
        assert!(honours_retry_after(409) && honours_retry_after(503));
        assert!(!honours_retry_after(502) && !honours_retry_after(504));
    }

    #[test]
    fn backoff_doubles_with_equal_jitter_up_to_its_cap() {
        let batch = [sent(Reply::NoAnswer, None)];
        assert_eq!(wait_after(&batch, 1, 0.0), Duration::from_millis(50));
        assert_eq!(wait_after(&batch, 1, 1.0), Duration::from_millis(100));
        assert_eq!(wait_after(&batch, 3, 1.0), Duration::from_millis(400));
        assert_eq!(wait_after(&batch, 40, 1.0), BACKOFF_MAX);
    }

    #[test]
    fn a_key_counts_as_created_by_either_201() {
        let run = KeyRun {
            sends: vec![
                sent(
                    Reply::ServerError(502, Some("origin-unreachable".into())),
                    None,
                ),
                sent(Reply::Replayed, None),
            ],
            terminal_after: Some(Duration::from_secs(2)),
        };
        assert!(run.got_created());
        assert_eq!(
            run.history(),
            "502 origin-unreachable 0ms, 201 replayed 0ms"
        );
        assert!(!KeyRun::default().got_created());
    }
}
