//! A scriptable origin for the conformance table: a loopback TCP server with a hand-written
//! HTTP/1.1 request parser and a response writer that sends exactly the bytes a script says, so it
//! can answer what a foreign origin might (status 999, a `103` before the final answer, header
//! bytes no library would emit, a `Content-Length` that disagrees with the body, a closed
//! connection instead of an answer).
//!
//! Each case registers a script for its own path: an ordered list of answers. Each request to
//! that path takes the next answer, and the last one repeats. Every request head received for a
//! path is recorded (request line and fields in order, lower-case names), so a case can count how
//! many requests reached the origin and read what they carried, independently of anything the
//! edge says about itself. Unregistered paths are answered `404` with `Cache-Control: no-store`.

use crate::proxy::Head;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the answer's `Content-Length` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// The body's length.
    Auto,
    /// This value, whatever the body is (the connection is closed after the body).
    Claim(u64),
    /// No `Content-Length`: the body is delimited by closing the connection.
    None,
}

/// One answer of a script.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub reason: String,
    /// Raw field lines without CRLF (`b"Cache-Control: max-age=10"`). In values, `{date:+N}` and
    /// `{date:-N}` become an HTTP-date N seconds from the moment the answer is sent (`{now}` is
    /// `{date:+0}`), so a script can make an answer already stale on arrival without sleeping.
    pub fields: Vec<Vec<u8>>,
    /// The body; `{req:NAME}` becomes the value of request field NAME (lower case), or `-`.
    pub body: Vec<u8>,
    /// Interim (1xx) answers sent before this one, each with its raw field lines.
    pub interim: Vec<(u16, Vec<Vec<u8>>)>,
    /// Read the request, then close the connection without a byte.
    pub close_without_answer: bool,
    pub length: Length,
    /// Keep the connection open for a next request (else `Connection: close` and close).
    pub keep_alive: bool,
    /// Held until this gate opens: an origin busy with the request for as long as the test says.
    pub gate: Option<Gate>,
}

impl Answer {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            reason: reason_for(status).to_owned(),
            fields: Vec::new(),
            body: Vec::new(),
            interim: Vec::new(),
            close_without_answer: false,
            length: Length::Auto,
            keep_alive: true,
            gate: None,
        }
    }

    /// Answers only once `gate` opens (a busy origin, for as long as the test decides).
    pub fn held_by(mut self, gate: &Gate) -> Self {
        self.gate = Some(gate.clone());
        self
    }

    /// Adds the field line `name: value`.
    pub fn h(mut self, name: &str, value: &str) -> Self {
        self.fields.push(format!("{name}: {value}").into_bytes());
        self
    }

    /// Adds a field line byte for byte (invalid bytes allowed).
    pub fn raw_field(mut self, line: &[u8]) -> Self {
        self.fields.push(line.to_vec());
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.as_bytes().to_vec();
        self
    }

    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = reason.to_owned();
        self
    }

    pub fn interim(mut self, status: u16, fields: &[&str]) -> Self {
        self.interim.push((
            status,
            fields.iter().map(|f| f.as_bytes().to_vec()).collect(),
        ));
        self
    }

    pub fn close_without_answer(mut self) -> Self {
        self.close_without_answer = true;
        self
    }

    pub fn length(mut self, length: Length) -> Self {
        self.length = length;
        self
    }

    pub fn close(mut self) -> Self {
        self.keep_alive = false;
        self
    }

    fn render(&self, request: &Head) -> Vec<u8> {
        let mut out = Vec::new();
        for (status, fields) in &self.interim {
            out.extend_from_slice(
                format!("HTTP/1.1 {status} {}\r\n", reason_for(*status)).as_bytes(),
            );
            for f in fields {
                out.extend_from_slice(&expand_dates(f));
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"\r\n");
        }
        let body = expand_request(&self.body, request);
        out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", self.status, self.reason).as_bytes());
        for f in &self.fields {
            out.extend_from_slice(&expand_dates(f));
            out.extend_from_slice(b"\r\n");
        }
        // No Content-Length where the status forbids one or where it would describe the selected
        // representation rather than this (absent) content (RFC 9110 §8.6).
        let no_length =
            self.status == 204 || self.status == 304 || (100..200).contains(&self.status);
        match self.length {
            Length::Auto if no_length => {}
            Length::Auto => {
                out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes())
            }
            Length::Claim(n) => {
                out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes())
            }
            Length::None => {}
        }
        if !self.keeps_alive() {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        // A body only where the method and status allow one.
        let bodiless = request.line.starts_with("HEAD ")
            || self.status == 204
            || self.status == 304
            || (100..200).contains(&self.status);
        if !bodiless {
            out.extend_from_slice(&body);
        }
        out
    }

    fn keeps_alive(&self) -> bool {
        self.keep_alive && self.length != Length::None && !matches!(self.length, Length::Claim(_))
    }
}

fn reason_for(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        414 => "URI Too Long",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

/// An IMF-fixdate `offset_secs` from now (RFC 9110 §5.6.7).
pub fn http_date(offset_secs: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    imf_fixdate(now + offset_secs)
}

pub fn imf_fixdate(unix: i64) -> String {
    let (y, m, d, wd, hh, mm, ss) = civil(unix);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {d:02} {} {y} {hh:02}:{mm:02}:{ss:02} GMT",
        DAYS[wd],
        MONTHS[m as usize - 1]
    )
}

/// The obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) `offset_secs` from now.
pub fn rfc850_date(offset_secs: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (y, m, d, wd, hh, mm, ss) = civil(now + offset_secs);
    const DAYS: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {d:02}-{}-{:02} {hh:02}:{mm:02}:{ss:02} GMT",
        DAYS[wd],
        MONTHS[m as usize - 1],
        y % 100
    )
}

/// The obsolete asctime form (`Sun Nov  6 08:49:37 1994`) `offset_secs` from now.
pub fn asctime_date(offset_secs: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (y, m, d, wd, hh, mm, ss) = civil(now + offset_secs);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {d:>2} {hh:02}:{mm:02}:{ss:02} {y}",
        DAYS[wd],
        MONTHS[m as usize - 1]
    )
}

/// (year, month, day, weekday index from Thursday, hour, minute, second) of a Unix time.
fn civil(unix: i64) -> (i64, u32, u32, usize, i64, i64, i64) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wd = days.rem_euclid(7) as usize;
    (y, m, d, wd, secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Replaces `{now}` and `{date:±N}` in a field line.
fn expand_dates(line: &[u8]) -> Vec<u8> {
    expand(line, |token| {
        let offset = if token == "now" {
            Some(0)
        } else {
            token
                .strip_prefix("date:")
                .and_then(|n| n.trim_start_matches('+').parse::<i64>().ok())
        };
        offset.map(http_date)
    })
}

/// Replaces `{req:NAME}` in a body with the request's field NAME (`-` when absent).
fn expand_request(body: &[u8], request: &Head) -> Vec<u8> {
    expand(body, |token| {
        let name = token.strip_prefix("req:")?;
        Some(request.get(name).unwrap_or("-").to_owned())
    })
}

/// Replaces each `{token}` in `text` that `value` knows; leaves the rest (and non-UTF-8 bytes)
/// as they are.
fn expand(text: &[u8], value: impl Fn(&str) -> Option<String>) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(text) else {
        return text.to_vec();
    };
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let Some(end) = tail.find('}') else {
            rest = tail;
            break;
        };
        match value(&tail[1..end]) {
            Some(v) => out.push_str(&v),
            None => out.push_str(&tail[..=end]),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out.into_bytes()
}

/// Holds the answers scripted with [`Answer::held_by`] until [`Gate::open`].
#[derive(Debug, Clone)]
pub struct Gate(Arc<tokio::sync::Semaphore>);

impl Gate {
    pub fn new() -> Self {
        Self(Arc::new(tokio::sync::Semaphore::new(0)))
    }

    /// Lets every held answer, and every later one, go.
    pub fn open(&self) {
        self.0.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    }

    async fn passed(&self) {
        // A permit is taken and given back at once: the gate stays open for the next.
        let _ = self.0.acquire().await;
    }
}

#[derive(Default)]
struct Script {
    answers: Vec<Answer>,
    served: usize,
    heads: Vec<Head>,
}

#[derive(Clone)]
pub struct ScriptedOrigin {
    scripts: Arc<Mutex<HashMap<String, Script>>>,
    /// Woken each time a request is recorded ([`ScriptedOrigin::reached`]).
    arrivals: Arc<tokio::sync::Notify>,
}

impl ScriptedOrigin {
    /// Listens on a free loopback port. Returns the origin and its address.
    pub async fn start() -> std::io::Result<(Self, std::net::SocketAddr)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let origin = Self {
            scripts: Arc::new(Mutex::new(HashMap::new())),
            arrivals: Arc::new(tokio::sync::Notify::new()),
        };
        let serving = origin.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serving.clone().serve(stream));
            }
        });
        Ok((origin, addr))
    }

    /// Registers (or replaces) the script of `path` (without query: a request's query is ignored
    /// when its script is looked up) and forgets what that path received.
    pub fn script(&self, path: &str, answers: Vec<Answer>) {
        assert!(!answers.is_empty(), "a script needs an answer");
        self.scripts.lock().unwrap().insert(
            path.to_owned(),
            Script {
                answers,
                served: 0,
                heads: Vec::new(),
            },
        );
    }

    /// Every request head received for `path` so far, oldest first.
    pub fn heads(&self, path: &str) -> Vec<Head> {
        self.scripts
            .lock()
            .unwrap()
            .get(path)
            .map(|s| s.heads.clone())
            .unwrap_or_default()
    }

    /// How many requests reached `path`.
    pub fn count(&self, path: &str) -> usize {
        self.scripts
            .lock()
            .unwrap()
            .get(path)
            .map_or(0, |s| s.heads.len())
    }

    /// Waits until every path in `paths` has received a request, woken by each arrival (no
    /// polling); false if `limit` passes first.
    pub async fn reached(&self, paths: &[String], limit: std::time::Duration) -> bool {
        let all_reached = async {
            loop {
                let arrival = self.arrivals.notified();
                tokio::pin!(arrival);
                // Registered before the check, so an arrival in between is not missed.
                arrival.as_mut().enable();
                if paths.iter().all(|p| self.count(p) > 0) {
                    return;
                }
                arrival.await;
            }
        };
        tokio::time::timeout(limit, all_reached).await.is_ok()
    }

    /// Records `head` and picks the answer it gets.
    fn next(&self, head: &Head) -> Answer {
        let target = head.line.split(' ').nth(1).unwrap_or("/");
        let path = target.split('?').next().unwrap_or(target);
        let mut scripts = self.scripts.lock().unwrap();
        match scripts.get_mut(path) {
            Some(script) => {
                script.heads.push(head.clone());
                self.arrivals.notify_waiters();
                let i = script.served.min(script.answers.len() - 1);
                script.served += 1;
                script.answers[i].clone()
            }
            None => Answer::new(404)
                .h("Cache-Control", "no-store")
                .body("no script for this path"),
        }
    }

    async fn serve(self, mut stream: TcpStream) {
        let mut buf = Vec::new();
        loop {
            let Some((head, consumed)) = read_request(&mut stream, &mut buf).await else {
                return;
            };
            buf.drain(..consumed);
            let answer = self.next(&head);
            if answer.close_without_answer {
                return;
            }
            if let Some(gate) = &answer.gate {
                gate.passed().await;
            }
            if stream.write_all(&answer.render(&head)).await.is_err() {
                return;
            }
            let _ = stream.flush().await;
            let client_closes = head
                .get("connection")
                .is_some_and(|c| c.to_ascii_lowercase().contains("close"));
            if !answer.keeps_alive() || client_closes {
                let _ = stream.shutdown().await;
                return;
            }
        }
    }
}

/// Reads one request (head and body) from `stream`, buffering in `buf`. Returns the head and how
/// many bytes of `buf` the request took, or `None` at end of stream or on a malformed request.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(Head, usize)> {
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        more(stream, buf).await?;
    };
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let line = lines.next()?.to_owned();
    let fields: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let head = Head { line, fields };
    let mut at = end + 4;
    if let Some(len) = head
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        while buf.len() < at + len {
            more(stream, buf).await?;
        }
        at += len;
    } else if head
        .get("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
    {
        // Chunked body: skip chunks until the zero-size one and its trailer end.
        loop {
            let size_end = line_end(stream, buf, at).await?;
            let size_text = String::from_utf8_lossy(&buf[at..size_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            at = size_end + 2;
            if size == 0 {
                // Trailer fields (usually none), then the final CRLF.
                loop {
                    let p = line_end(stream, buf, at).await?;
                    let empty = p == at;
                    at = p + 2;
                    if empty {
                        break;
                    }
                }
                break;
            }
            while buf.len() < at + size + 2 {
                more(stream, buf).await?;
            }
            at += size + 2;
        }
    }
    Some((head, at))
}

/// Where the line starting at `at` ends (its CRLF), reading more as needed.
async fn line_end(stream: &mut TcpStream, buf: &mut Vec<u8>, at: usize) -> Option<usize> {
    loop {
        if let Some(p) = buf[at..].windows(2).position(|w| w == b"\r\n") {
            return Some(at + p);
        }
        more(stream, buf).await?;
    }
}

/// Reads what `stream` has next onto `buf`; `None` at end of stream or on an error.
async fn more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await.ok()?;
    if n == 0 {
        return None;
    }
    buf.extend_from_slice(&chunk[..n]);
    Some(())
}
