//! A TCP relay in front of one origin that can be killed and restarted the way a crashed origin
//! process is, for the failover scenario, counting what reached the origin meanwhile.
//!
//! Why a relay rather than a `breakwater-origin` process to SIGKILL: only a socket that stays
//! open can count the connections the dead origin refused and time the first request after the
//! restart; the origin's runtime and database are not torn down and rebuilt between phases (a
//! restarted process would also measure its own start-up: migrations, seeding); and it can be
//! tested here without a process. What the edge sees is a crash's: on [`KillableRelay::kill`]
//! every open connection, idle keep-alive ones included, is reset (`SO_LINGER` 0, an RST) with
//! whatever was in flight on it; while down, every new connection is reset as soon as it is
//! accepted, before a byte is read. That differs from a closed port (the kernel's RST to the SYN,
//! `ECONNREFUSED`) only in that the handshake completes first: workerd's `fetch` rejects with a
//! network error either way, which the edge counts as an unreachable origin (`502`, a failure for
//! ejection and the breaker), before any answer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::proxy::{GET_LINE, LineCounter};

/// What the relay has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// GET request lines relayed to the origin while it was up.
    pub gets: u64,
    /// Connections accepted while down and reset at once: requests the dead origin refused.
    pub refused: u64,
    /// Open connections reset by a kill.
    pub reset: u64,
}

impl Counts {
    /// What happened between `before` and `self`.
    pub fn since(self, before: Self) -> Self {
        Self {
            gets: self.gets - before.gets,
            refused: self.refused - before.refused,
            reset: self.reset - before.reset,
        }
    }
}

#[derive(Default)]
struct Counters {
    gets: AtomicU64,
    refused: AtomicU64,
    reset: AtomicU64,
}

/// Up or down; every change is seen by the connections open at the time.
#[derive(Debug, Clone, Copy)]
struct Life {
    up: bool,
    /// When the origin last came back.
    restarted: Option<Instant>,
}

struct Shared {
    upstream: SocketAddr,
    counters: Counters,
    life: watch::Sender<Life>,
    /// Set by a restart, cleared by the first GET relayed after it.
    awaiting_first: AtomicBool,
    /// When the first GET after the last restart was relayed.
    first_after_restart: Mutex<Option<Instant>>,
}

impl Shared {
    fn count_gets(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.counters.gets.fetch_add(n, Ordering::Relaxed);
        if self.awaiting_first.swap(false, Ordering::AcqRel)
            && let Ok(mut first) = self.first_after_restart.lock()
        {
            *first = Some(Instant::now());
        }
    }
}

/// The relay; clones share it.
#[derive(Clone)]
pub struct KillableRelay {
    shared: Arc<Shared>,
}

impl KillableRelay {
    /// Listens on a free loopback port and relays every connection to `upstream`, up.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<(Self, SocketAddr)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (life, _) = watch::channel(Life {
            up: true,
            restarted: None,
        });
        let shared = Arc::new(Shared {
            upstream,
            counters: Counters::default(),
            life,
            awaiting_first: AtomicBool::new(false),
            first_after_restart: Mutex::new(None),
        });
        let accepting = shared.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                // Subscribed before the state is read: a kill after this line reaches the
                // connection through `changed`, one before it is seen here.
                let life = accepting.life.subscribe();
                if !life.borrow().up {
                    accepting.counters.refused.fetch_add(1, Ordering::Relaxed);
                    reset(client);
                    continue;
                }
                let _ = client.set_nodelay(true);
                tokio::spawn(relay(client, accepting.clone(), life));
            }
        });
        Ok((Self { shared }, addr))
    }

    /// The origin crashes: open connections are reset, new ones refused.
    pub fn kill(&self) {
        self.shared.life.send_modify(|life| life.up = false);
    }

    /// The origin accepts again.
    pub fn restart(&self) {
        if let Ok(mut first) = self.shared.first_after_restart.lock() {
            *first = None;
        }
        self.shared.awaiting_first.store(true, Ordering::Release);
        self.shared.life.send_modify(|life| {
            life.up = true;
            life.restarted = Some(Instant::now());
        });
    }

    pub fn counts(&self) -> Counts {
        let c = &self.shared.counters;
        Counts {
            gets: c.gets.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            reset: c.reset.load(Ordering::Relaxed),
        }
    }

    /// From the last restart to the first GET relayed after it; `None` before either.
    pub fn first_request_after_restart(&self) -> Option<Duration> {
        let restarted = self.shared.life.borrow().restarted?;
        let first = (*self.shared.first_after_restart.lock().ok()?)?;
        Some(first.saturating_duration_since(restarted))
    }
}

/// Closes `stream` with an RST rather than a FIN, as the kernel does for a crashed process's
/// connection the peer still writes to.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Relays one connection both ways until either side closes or the origin is killed (any change
/// of its life after this connection was accepted starts with a kill).
async fn relay(mut client: TcpStream, shared: Arc<Shared>, mut life: watch::Receiver<Life>) {
    let killed = life.changed();
    tokio::pin!(killed);
    let server = tokio::select! {
        server = TcpStream::connect(shared.upstream) => server,
        _ = &mut killed => {
            shared.counters.reset.fetch_add(1, Ordering::Relaxed);
            return reset(client);
        }
    };
    let Ok(server) = server else {
        return reset(client); // the origin behind is really gone
    };
    let _ = server.set_nodelay(true);
    let (mut server_read, mut server_write) = server.into_split();
    let was_killed = {
        let (mut client_read, mut client_write) = client.split();
        let downstream = async {
            let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        };
        let upstream = async {
            let mut gets = LineCounter::new(GET_LINE);
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match client_read.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                shared.count_gets(gets.count(&buf[..n]));
                if server_write.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        };
        tokio::select! {
            () = downstream => false,
            () = upstream => false,
            _ = &mut killed => true,
        }
    };
    if was_killed {
        shared.counters.reset.fetch_add(1, Ordering::Relaxed);
        reset(client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relay in front of an upstream that answers `hello` to everything.
    async fn relay_to_hello() -> (KillableRelay, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(|| async { "hello" });
        tokio::spawn(async move { axum::serve(listener, app).await });
        KillableRelay::start(upstream).await.unwrap()
    }

    async fn get(client: &reqwest::Client, addr: SocketAddr) -> Result<String, reqwest::Error> {
        client
            .get(format!("http://{addr}/x"))
            .send()
            .await?
            .text()
            .await
    }

    /// Reads from `stream` until it closes: `Err` for a reset, `Ok` for an orderly close.
    async fn read_to_close(stream: &mut TcpStream) -> std::io::Result<()> {
        let mut buf = [0u8; 64];
        loop {
            if stream.read(&mut buf).await? == 0 {
                return Ok(());
            }
        }
    }

    #[tokio::test]
    async fn a_kill_resets_open_connections_and_refuses_new_ones_until_restarted() {
        let (relay, addr) = relay_to_hello().await;
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        assert_eq!(get(&client, addr).await.unwrap(), "hello");
        assert_eq!(relay.counts().gets, 1);
        assert_eq!(relay.first_request_after_restart(), None);

        // An idle keep-alive connection, open when the origin dies.
        let mut open = TcpStream::connect(addr).await.unwrap();
        open.write_all(b"GET /y HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        open.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        relay.kill();
        let error = read_to_close(&mut open).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);

        let mut fresh = TcpStream::connect(addr).await.unwrap();
        let error = read_to_close(&mut fresh).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
        assert!(get(&client, addr).await.is_err());
        let down = relay.counts();
        assert_eq!(down.gets, 2, "nothing passes while down");
        assert!(down.refused >= 2, "{down:?}");
        assert!(down.reset >= 1, "{down:?}");

        relay.restart();
        assert_eq!(relay.first_request_after_restart(), None);
        assert_eq!(get(&client, addr).await.unwrap(), "hello");
        let up = relay.counts().since(down);
        assert_eq!((up.gets, up.refused), (1, 0));
        assert!(relay.first_request_after_restart().is_some());
    }
}
