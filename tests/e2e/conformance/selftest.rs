//! The scripted origin itself, spoken to directly over TCP (no edge): answers are served in
//! order and the last repeats, each request head is recorded per path with lower-case names in
//! arrival order, and the raw options do what they say (interim 103, invalid bytes, a claimed
//! Content-Length, a connection closed without an answer, dates relative to now). The table's
//! verdicts about the edge are only worth something if this holds.

use crate::harness::Env;
use crate::scripted::{Answer, Length, ScriptedOrigin, imf_fixdate};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// Sends `request` on a new connection and reads until the origin closes it.
async fn exchange(addr: std::net::SocketAddr, request: &str) -> Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
        .await
        .map_err(|_| format!("no end of answer to {request:?} within 5 s: {out:?}"))?
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n")
}

pub fn run(env: &Env) -> Result<(), String> {
    env.rt.block_on(async {
        let (origin, addr) = ScriptedOrigin::start().await.map_err(|e| e.to_string())?;
        origin.script(
            "/s/seq",
            vec![
                Answer::new(200).h("X-N", "1").body("one"),
                Answer::new(999).reason("Odd").raw_field(b"X-Bad: a\x01b").body("two"),
            ],
        );
        let first = exchange(addr, &get("/s/seq?q=1", "X-Custom: 1\r\nACCEPT-Language: en\r\n")).await?;
        let text = String::from_utf8_lossy(&first);
        check(text.starts_with("HTTP/1.1 200 OK\r\n"), || text.to_string())?;
        check(text.contains("X-N: 1\r\n") && text.ends_with("\r\n\r\none"), || text.to_string())?;
        let second = exchange(addr, &get("/s/seq", "")).await?;
        check(second.starts_with(b"HTTP/1.1 999 Odd\r\n"), || format!("{second:?}"))?;
        check(second.windows(9).any(|w| w == b"X-Bad: a\x01"), || format!("{second:?}"))?;
        let third = exchange(addr, &get("/s/seq", "")).await?;
        check(third.starts_with(b"HTTP/1.1 999 "), || "the last answer repeats".to_owned())?;
        let heads = origin.heads("/s/seq");
        check(origin.count("/s/seq") == 3 && heads.len() == 3, || format!("{heads:?}"))?;
        check(heads[0].line == "GET /s/seq?q=1 HTTP/1.1", || format!("{heads:?}"))?;
        let names: Vec<&str> = heads[0].fields.iter().map(|(n, _)| n.as_str()).collect();
        check(
            names == ["host", "x-custom", "accept-language", "connection"],
            || format!("field order and case: {names:?}"),
        )?;
        check(heads[0].get("accept-language") == Some("en"), || format!("{heads:?}"))?;

        // Interim answers precede the final one; request fields echo into the body.
        origin.script(
            "/s/interim",
            vec![Answer::new(200).interim(103, &["Link: </a>"]).body("xfh={req:x-forwarded-host}")],
        );
        let got = exchange(addr, &get("/s/interim", "X-Forwarded-Host: evil.example\r\n")).await?;
        let text = String::from_utf8_lossy(&got);
        check(
            text.starts_with("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n"),
            || text.to_string(),
        )?;
        check(text.ends_with("xfh=evil.example"), || text.to_string())?;

        // A claimed length that disagrees with the body, then the connection closes.
        origin.script("/s/claim", vec![Answer::new(200).length(Length::Claim(100)).body("short")]);
        let got = exchange(addr, &get("/s/claim", "")).await?;
        let text = String::from_utf8_lossy(&got);
        check(text.contains("Content-Length: 100\r\n") && text.ends_with("short"), || text.to_string())?;

        // Closed without a byte, after the request was read and recorded.
        origin.script("/s/close", vec![Answer::new(200).close_without_answer()]);
        let got = exchange(addr, &get("/s/close", "")).await?;
        check(got.is_empty(), || format!("{got:?}"))?;
        check(origin.count("/s/close") == 1, || "the closed request was recorded".to_owned())?;

        // Dates relative to now, expanded when the answer is sent.
        origin.script("/s/date", vec![Answer::new(200).h("Date", "{date:-100}").h("Expires", "{now}")]);
        let got = exchange(addr, &get("/s/date", "")).await?;
        let text = String::from_utf8_lossy(&got);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        let near = |offset: i64, field: &str| {
            (-2..=2).any(|d| text.contains(&format!("{field}: {}\r\n", imf_fixdate(now + offset + d))))
        };
        check(near(-100, "Date") && near(0, "Expires"), || text.to_string())?;
        check(
            imf_fixdate(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT",
            || imf_fixdate(784_111_777),
        )?;

        // Keep-alive: two requests on one connection, each answered.
        origin.script("/s/keep", vec![Answer::new(200).body("a"), Answer::new(200).body("b")]);
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let two = "GET /s/keep HTTP/1.1\r\nHost: x\r\n\r\nGET /s/keep HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        stream.write_all(two.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
            .await
            .map_err(|_| "keep-alive: the origin did not close after the second".to_owned())?
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out);
        check(text.matches("HTTP/1.1 200 OK").count() == 2 && text.ends_with("b"), || text.to_string())?;

        // Unscripted paths: 404, no-store.
        let got = exchange(addr, &get("/s/none", "")).await?;
        check(got.starts_with(b"HTTP/1.1 404 "), || format!("{got:?}"))?;
        Ok(())
    })
}
