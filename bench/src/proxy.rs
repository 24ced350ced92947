//! A TCP relay in front of the origin that counts the GET requests passing through it, so the
//! bench knows how many requests the edge actually sent to the origin.
//!
//! Its own minimal copy rather than `#[path]`-including `tests/e2e/proxy.rs`: that file belongs
//! to the end-to-end tests (its fault modes would be dead code here, failing `-D warnings`, and
//! any change there would break the bench), and this one also counts a request line split
//! across two reads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The request line prefix counted (the edge only forwards GET and HEAD; the bench sends GET).
const REQUEST_LINE: &[u8] = b"GET /";

#[derive(Clone)]
pub struct CountingProxy {
    gets: Arc<AtomicU64>,
}

impl CountingProxy {
    /// Listens on a free loopback port and relays every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<(Self, SocketAddr)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let gets = Arc::new(AtomicU64::new(0));
        let counter = gets.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let _ = client.set_nodelay(true);
                tokio::spawn(relay(client, upstream, counter.clone()));
            }
        });
        Ok((Self { gets }, addr))
    }

    /// GET requests relayed so far.
    pub fn gets(&self) -> u64 {
        self.gets.load(Ordering::Relaxed)
    }
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, gets: Arc<AtomicU64>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return; // dropping the client closes it: the edge sees the origin as down
    };
    let _ = server.set_nodelay(true);
    let (mut server_read, mut server_write) = server.into_split();
    let (mut client_read, mut client_write) = client.split();
    let downstream = tokio::io::copy(&mut server_read, &mut client_write);
    let upstream = async {
        let mut lines = LineCounter::default();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            gets.fetch_add(lines.count(&buf[..n]), Ordering::Relaxed);
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = downstream => {},
        () = upstream => {},
    }
}

/// Counts [`REQUEST_LINE`] occurrences in a byte stream fed in arbitrary chunks.
#[derive(Default)]
struct LineCounter {
    /// The last `REQUEST_LINE.len() - 1` bytes seen: too short to hold a whole match, long
    /// enough to complete one that straddles the next chunk.
    tail: Vec<u8>,
}

impl LineCounter {
    fn count(&mut self, chunk: &[u8]) -> u64 {
        let mut joined = std::mem::take(&mut self.tail);
        joined.extend_from_slice(chunk);
        let found = joined
            .windows(REQUEST_LINE.len())
            .filter(|w| *w == REQUEST_LINE)
            .count();
        let keep = joined.len().min(REQUEST_LINE.len() - 1);
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
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
        for split in 0..stream.len() {
            let mut c = LineCounter::default();
            let total = c.count(&stream[..split]) + c.count(&stream[split..]);
            assert_eq!(total, 3, "split at {split}");
        }
        let mut bytewise = LineCounter::default();
        let total: u64 = stream.iter().map(|b| bytewise.count(&[*b])).sum();
        assert_eq!(total, 3);
    }
}
