//! A TCP relay in front of the origin that counts the GET and POST requests passing through it,
//! so the bench knows how many requests the edge actually sent to the origin, and that can inject
//! faults into POSTs: drop the connection before the request reaches the origin (the origin is
//! unreachable), or let the origin answer and drop the connection before the answer reaches the
//! edge (the origin committed, the edge never heard: the worst case for a write).
//!
//! Its own minimal copy rather than `#[path]`-including `tests/e2e/proxy.rs`: that file belongs
//! to the end-to-end tests (switched by hand between modes, where the bench needs seeded rates),
//! any change there would break the bench, and this one also counts a request line split
//! across two reads.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::zipf::SplitMix64;

/// The request line prefixes counted. The edge forwards GET and HEAD from the cache and origin
/// stages, and the bench's writes are POSTs.
pub(crate) const GET_LINE: &[u8] = b"GET /";
const POST_LINE: &[u8] = b"POST /";

/// Faults injected into POST requests, each drawn independently per request in the order the
/// requests reach the relay (so the draws are seeded, their assignment to requests is as
/// concurrent as the traffic). GETs always pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Share of POSTs whose connection is closed before the request is forwarded.
    pub refuse: f64,
    /// Share of POSTs forwarded and answered whose connection is closed before the answer's
    /// first byte is relayed back.
    pub drop_response: f64,
    pub seed: u64,
}

impl Faults {
    /// Every request passes.
    pub const NONE: Self = Self {
        refuse: 0.0,
        drop_response: 0.0,
        seed: 0,
    };

    /// Whether the rates are shares that leave some requests through.
    pub fn validate(&self) -> Result<(), String> {
        let share = |x: f64| (0.0..=1.0).contains(&x);
        if share(self.refuse) && share(self.drop_response) && self.refuse + self.drop_response < 1.0
        {
            Ok(())
        } else {
            Err(format!(
                "fault rates must be in 0..1 and add up to less than 1: refuse {}, drop {}",
                self.refuse, self.drop_response
            ))
        }
    }

    /// The fault for the next POST, from a uniform draw `u` in `[0, 1)`.
    fn pick(&self, u: f64) -> Fault {
        if u < self.refuse {
            Fault::Refuse
        } else if u < self.refuse + self.drop_response {
            Fault::DropResponse
        } else {
            Fault::Pass
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Pass,
    Refuse,
    DropResponse,
}

/// What the relay has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// GET request lines relayed to the origin.
    pub gets: u64,
    /// POST request lines seen (refused ones included: they never reached the origin).
    pub posts: u64,
    /// POSTs whose connection was closed before they were forwarded.
    pub refused: u64,
    /// POSTs whose answer was dropped.
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    gets: AtomicU64,
    posts: AtomicU64,
    refused: AtomicU64,
    dropped: AtomicU64,
}

struct Shared {
    upstream: SocketAddr,
    faults: Faults,
    rng: Mutex<SplitMix64>,
    counters: Counters,
}

impl Shared {
    fn draw(&self) -> Fault {
        if self.faults == Faults::NONE {
            return Fault::Pass;
        }
        let u = self.rng.lock().map_or(1.0, |mut rng| rng.next_f64());
        self.faults.pick(u)
    }
}

#[derive(Clone)]
pub struct CountingProxy {
    shared: Arc<Shared>,
}

impl CountingProxy {
    /// Listens on a free loopback port and relays every connection to `upstream`, injecting
    /// `faults` into POSTs.
    pub async fn start(
        upstream: SocketAddr,
        faults: Faults,
    ) -> std::io::Result<(Self, SocketAddr)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            faults,
            rng: Mutex::new(SplitMix64::new(faults.seed)),
            counters: Counters::default(),
        });
        let relayed = shared.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let _ = client.set_nodelay(true);
                tokio::spawn(relay(client, relayed.clone()));
            }
        });
        Ok((Self { shared }, addr))
    }

    pub fn counts(&self) -> Counts {
        let c = &self.shared.counters;
        Counts {
            gets: c.gets.load(Ordering::Relaxed),
            posts: c.posts.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }
}

/// Relays one connection. The edge sends one request at a time on a connection (HTTP/1.1
/// without pipelining), so a fault decided when a POST's request line goes up applies to the
/// next answer coming down.
async fn relay(mut client: TcpStream, shared: Arc<Shared>) {
    let Ok(server) = TcpStream::connect(shared.upstream).await else {
        return; // dropping the client closes it: the edge sees the origin as down
    };
    let _ = server.set_nodelay(true);
    let (mut server_read, mut server_write) = server.into_split();
    let (mut client_read, mut client_write) = client.split();
    let drop_next_answer = AtomicBool::new(false);
    let downstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            // The origin answered (and, for a write, committed), but the edge never hears it.
            if drop_next_answer.load(Ordering::Relaxed)
                || client_write.write_all(&buf[..n]).await.is_err()
            {
                return;
            }
        }
    };
    let upstream = async {
        let (mut gets, mut posts) = (LineCounter::new(GET_LINE), LineCounter::new(POST_LINE));
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let c = &shared.counters;
            c.gets.fetch_add(gets.count(&buf[..n]), Ordering::Relaxed);
            for _ in 0..posts.count(&buf[..n]) {
                c.posts.fetch_add(1, Ordering::Relaxed);
                match shared.draw() {
                    Fault::Pass => {}
                    Fault::Refuse => {
                        c.refused.fetch_add(1, Ordering::Relaxed);
                        return; // closes both sides before the request is forwarded
                    }
                    Fault::DropResponse => {
                        c.dropped.fetch_add(1, Ordering::Relaxed);
                        drop_next_answer.store(true, Ordering::Relaxed);
                    }
                }
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = downstream => {},
        () = upstream => {},
    }
}

/// Counts occurrences of one request line prefix in a byte stream fed in arbitrary chunks.
pub(crate) struct LineCounter {
    line: &'static [u8],
    /// The last `line.len() - 1` bytes seen: too short to hold a whole match, long enough to
    /// complete one that straddles the next chunk.
    tail: Vec<u8>,
}

impl LineCounter {
    pub(crate) fn new(line: &'static [u8]) -> Self {
        Self {
            line,
            tail: Vec::new(),
        }
    }

    pub(crate) fn count(&mut self, chunk: &[u8]) -> u64 {
        let mut joined = std::mem::take(&mut self.tail);
        joined.extend_from_slice(chunk);
        let found = joined
            .windows(self.line.len())
            .filter(|w| *w == self.line)
            .count();
        let keep = joined.len().min(self.line.len() - 1);
        self.tail = joined.split_off(joined.len() - keep);
        found as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_request_lines_across_chunk_boundaries_once() {
        let stream =
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
        for split in 0..stream.len() {
            let (mut g, mut p) = (LineCounter::new(GET_LINE), LineCounter::new(POST_LINE));
            let gets = g.count(&stream[..split]) + g.count(&stream[split..]);
            let posts = p.count(&stream[..split]) + p.count(&stream[split..]);
            assert_eq!((gets, posts), (2, 1), "split at {split}");
        }
        let mut bytewise = LineCounter::new(GET_LINE);
        let total: u64 = stream.iter().map(|b| bytewise.count(&[*b])).sum();
        assert_eq!(total, 2);
    }

    #[test]
    fn faults_split_the_unit_interval_in_order() {
        let f = Faults {
            refuse: 0.1,
            drop_response: 0.2,
            seed: 1,
        };
        assert_eq!(f.pick(0.05), Fault::Refuse);
        assert_eq!(f.pick(0.25), Fault::DropResponse);
        assert_eq!(f.pick(0.35), Fault::Pass);
        assert!(f.validate().is_ok());
        assert!(Faults::NONE.validate().is_ok());
        let bad = |refuse, drop_response| Faults {
            refuse,
            drop_response,
            seed: 0,
        };
        assert!(bad(0.5, 0.5).validate().is_err());
        assert!(bad(-0.1, 0.0).validate().is_err());
        assert!(bad(0.0, f64::NAN).validate().is_err());
    }

    /// One request through the relay with `faults`, to an upstream that answers `hello`.
    async fn through(faults: Faults, method: reqwest::Method) -> (Result<String, String>, Counts) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(|| async { "hello" });
        tokio::spawn(async move { axum::serve(listener, app).await });
        let (proxy, addr) = CountingProxy::start(upstream, faults).await.unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let answer = client
            .request(method, format!("http://{addr}/x"))
            .body("{}")
            .send()
            .await;
        let text = match answer {
            Ok(r) => r.text().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        (text, proxy.counts())
    }

    #[tokio::test]
    async fn refused_and_dropped_posts_get_no_answer_and_gets_pass() {
        let always = |refuse, drop_response| Faults {
            refuse,
            drop_response,
            seed: 7,
        };
        let (text, counts) = through(always(0.0, 0.0), reqwest::Method::POST).await;
        assert_eq!(text.as_deref(), Ok("hello"));
        assert_eq!((counts.posts, counts.refused, counts.dropped), (1, 0, 0));

        let (text, counts) = through(always(0.999, 0.0), reqwest::Method::POST).await;
        assert!(text.is_err());
        assert_eq!((counts.posts, counts.refused), (1, 1));

        let (text, counts) = through(always(0.0, 0.999), reqwest::Method::POST).await;
        assert!(text.is_err());
        assert_eq!((counts.posts, counts.dropped), (1, 1));

        let (text, counts) = through(always(0.999, 0.0), reqwest::Method::GET).await;
        assert_eq!(text.as_deref(), Ok("hello"));
        assert_eq!((counts.gets, counts.refused), (1, 0));
    }
}
