//! A TCP proxy between the edge and the origin that can refuse or stall connections on demand,
//! so tests can make the origin "down" or "slow" without killing it. It also keeps the heads of
//! the last requests it relayed, so tests can assert what the origin received.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Relay bytes both ways.
    Pass = 0,
    /// Close the connection before anything reaches the origin (origin down).
    Refuse = 1,
    /// Accept and read, but never answer (origin hung).
    Stall = 2,
    /// Relay the request, let the origin answer, then cut the connection before the answer
    /// reaches the edge (the origin died after committing).
    DropResponse = 3,
}

#[derive(Clone)]
pub struct FaultProxy {
    mode: Arc<AtomicU8>,
    /// GET requests relayed to the origin, counted by request line (`GET /`), so tests can show
    /// how many reached the origin (the edge's cache and single-flight).
    gets: Arc<AtomicU64>,
    /// POST requests relayed, counted the same way.
    posts: Arc<AtomicU64>,
    /// Connections (or pooled connections' next requests) closed by `Refuse`.
    refused: Arc<AtomicU64>,
    /// The request lines of the answers `DropResponse` cut before they reached the edge.
    dropped: Arc<Mutex<Vec<String>>>,
    /// The last [`HEADS_KEPT`] request heads relayed, oldest first.
    heads: Arc<Mutex<VecDeque<Head>>>,
}

const HEADS_KEPT: usize = 256;

/// A request head as the origin received it: the request line, and the fields with lower-case
/// names in arrival order.
#[derive(Debug, Clone)]
pub struct Head {
    pub line: String,
    pub fields: Vec<(String, String)>,
}

impl Head {
    fn parse(bytes: &[u8]) -> Option<Self> {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
        let text = String::from_utf8_lossy(&bytes[..end]);
        let mut lines = text.split("\r\n");
        let line = lines.next()?.to_owned();
        let fields = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Some(Self { line, fields })
    }

    /// The value of field `name` (lower case), if present once or more (the first).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl FaultProxy {
    /// Listens on a free loopback port and relays to `upstream`. Returns the proxy's address.
    pub async fn start(
        upstream: std::net::SocketAddr,
    ) -> std::io::Result<(Self, std::net::SocketAddr)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let proxy = Self {
            mode: Arc::new(AtomicU8::new(Mode::Pass as u8)),
            gets: Arc::new(AtomicU64::new(0)),
            posts: Arc::new(AtomicU64::new(0)),
            refused: Arc::new(AtomicU64::new(0)),
            dropped: Arc::new(Mutex::new(Vec::new())),
            heads: Arc::new(Mutex::new(VecDeque::new())),
        };
        let counters = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, counters.clone()));
            }
        });
        Ok((proxy, addr))
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// GET requests relayed to the origin so far.
    pub fn gets(&self) -> u64 {
        self.gets.load(Ordering::SeqCst)
    }

    /// POST requests relayed to the origin so far.
    pub fn posts(&self) -> u64 {
        self.posts.load(Ordering::SeqCst)
    }

    /// Connection attempts `Refuse` turned away so far: the origin calls an outage failed.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    /// How many answers to requests whose line starts with `prefix` `DropResponse` has cut.
    pub fn dropped(&self, prefix: &str) -> usize {
        let dropped = self.dropped.lock().unwrap();
        dropped
            .iter()
            .filter(|line| line.starts_with(prefix))
            .count()
    }

    /// The relayed request heads whose request line starts with `prefix` (`"GET /api/x"`).
    pub fn heads(&self, prefix: &str) -> Vec<Head> {
        let heads = self.heads.lock().unwrap();
        heads
            .iter()
            .filter(|h| h.line.starts_with(prefix))
            .cloned()
            .collect()
    }

    fn record(&self, chunk: &[u8]) {
        // The edge writes each request whole, so a request starts a chunk.
        const METHODS: [&[u8]; 7] = [
            b"GET ",
            b"HEAD ",
            b"POST ",
            b"PUT ",
            b"PATCH ",
            b"DELETE ",
            b"OPTIONS ",
        ];
        let starts_request = METHODS.iter().any(|m| chunk.starts_with(m));
        if let Some(head) = starts_request.then(|| Head::parse(chunk)).flatten() {
            let mut heads = self.heads.lock().unwrap();
            if heads.len() == HEADS_KEPT {
                heads.pop_front();
            }
            heads.push_back(head);
        }
    }

    fn current(mode: &AtomicU8) -> Mode {
        match mode.load(Ordering::SeqCst) {
            1 => Mode::Refuse,
            2 => Mode::Stall,
            3 => Mode::DropResponse,
            _ => Mode::Pass,
        }
    }
}

/// The mode is checked on every chunk either side sends, so a pooled keep-alive connection obeys
/// a mode switch on its next request just like a new connection does.
async fn relay(mut client: TcpStream, upstream: std::net::SocketAddr, proxy: FaultProxy) {
    let mode = proxy.mode.clone();
    if FaultProxy::current(&mode) == Mode::Refuse {
        proxy.refused.fetch_add(1, Ordering::SeqCst);
        return; // dropping the socket closes it
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut server_read, mut server_write) = server.into_split();
    let back = tokio::spawn(async move {
        let (mut client_read, mut client_write) = client.split();
        // The request line of the request the origin is answering (one at a time per connection).
        let asked = Mutex::new(String::new());
        let downstream = async {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match server_read.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                // The origin answered, but the edge never hears it: both ends are dropped.
                if FaultProxy::current(&mode) == Mode::DropResponse {
                    let line = asked.lock().unwrap().clone();
                    proxy.dropped.lock().unwrap().push(line);
                    return;
                }
                if client_write.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        };
        let upstream = async {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match client_read.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                match FaultProxy::current(&mode) {
                    Mode::Pass | Mode::DropResponse => {
                        // A request line starts a chunk: the edge writes each request whole.
                        let count = |line: &[u8]| {
                            buf[..n].windows(line.len()).filter(|w| *w == line).count() as u64
                        };
                        proxy.gets.fetch_add(count(b"GET /"), Ordering::SeqCst);
                        proxy.posts.fetch_add(count(b"POST /"), Ordering::SeqCst);
                        proxy.record(&buf[..n]);
                        if let Some(line) = request_line(&buf[..n]) {
                            *asked.lock().unwrap() = line;
                        }
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                    Mode::Refuse => {
                        proxy.refused.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    // Swallow the request and keep reading until the edge gives up.
                    Mode::Stall => continue,
                }
            }
        };
        tokio::select! {
            _ = downstream => {},
            _ = upstream => {},
        }
    });
    let _ = back.await;
}

/// The request line a chunk starts with, if it starts a request (`POST /api/orders HTTP/1.1`).
fn request_line(chunk: &[u8]) -> Option<String> {
    let end = chunk.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(chunk.get(..end)?).ok()?;
    let method = line.split(' ').next()?;
    (!method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase())).then(|| line.to_owned())
}
