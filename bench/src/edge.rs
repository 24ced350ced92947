//! The edge under workerd, through `bench/miniflare.mjs` (the Miniflare API, not `wrangler dev`).
//!
//! [`Edge`] owns the Node process and its persist directory: dropping it (also while unwinding
//! from a panic) closes the script's stdin, which makes it dispose workerd and exit. Should the
//! bench die without unwinding, that pipe closes all the same. Signals are only the fallback:
//! Miniflare's bundled `signal-exit` copies can re-raise SIGTERM before the script's handler
//! runs (see `bench/miniflare.mjs`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The route an edge started with `scheduled` answers by running the worker's `scheduled`
/// handler (Miniflare's `unsafeTriggerHandlers`; `cron` and `time` in the query), `200 ok` or
/// `500` with the outcome.
pub const SCHEDULED_PATH: &str = "/cdn-cgi/local/scheduled";

/// Loading wrangler, starting workerd and compiling the wasm; generous for a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long Miniflare may take to dispose workerd before the process group is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Edge {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Versions from the READY line: `miniflare=… workerd=… node=…`.
    pub versions: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    /// KV, Durable Objects and Cache API state; removed after the process has stopped.
    _persist: tempfile::TempDir,
}

impl Edge {
    /// Starts the built worker with `ORIGIN_URL = origin` and `vars` (vars or secrets, each
    /// replacing wrangler.toml's value; table vars as JSON), with `scheduled` also answering
    /// [`SCHEDULED_PATH`], and returns once the script reports workerd ready.
    pub fn start(
        root: &Path,
        origin: &str,
        vars: &[(&str, String)],
        scheduled: bool,
        verbose: bool,
    ) -> Result<Self, String> {
        use std::os::unix::process::CommandExt;
        // Miniflare 5 needs Node >= 22.12; package.json pins that Node into node_modules/.bin.
        let node = root.join("node_modules/.bin/node");
        if !node.exists() {
            return Err(format!("{} is missing: run make setup", node.display()));
        }
        let persist = tempfile::Builder::new()
            .prefix("breakwater-bench-edge-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let mut cmd = Command::new(&node);
        cmd.current_dir(root)
            .arg(root.join("bench/miniflare.mjs"))
            .args(["--origin", origin])
            .arg("--persist")
            .arg(persist.path())
            .arg("--var")
            .arg(format!("EDGE_KEY={}", crate::origin::EDGE_KEY));
        for (name, value) in vars {
            cmd.arg("--var").arg(format!("{name}={value}"));
        }
        if scheduled {
            cmd.arg("--scheduled-route");
        }
        if verbose {
            cmd.arg("--verbose");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Its own group, so stopping can reach workerd too; a terminal's Ctrl-C reaches it
            // through the stdin pipe closing instead.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("could not run {}: {e}", node.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let mut edge = Self {
            url: String::new(),
            versions: String::new(),
            child: Some(child),
            stdin,
            _persist: persist,
        };

        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("READY ") {
                    let _ = tx.send(line);
                } else {
                    eprintln!("[miniflare] {line}");
                }
            }
        });
        let line = rx.recv_timeout(READY_TIMEOUT).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => {
                format!("Miniflare not ready after {READY_TIMEOUT:?} (see its output above)")
            }
            mpsc::RecvTimeoutError::Disconnected => {
                "bench/miniflare.mjs exited before it was ready (see its output above)".into()
            }
        })?;
        let mut words = line.split_whitespace().skip(1);
        edge.url = words.next().ok_or("READY line without a URL")?.to_owned();
        edge.versions = words.collect::<Vec<_>>().join(" ");
        Ok(edge)
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // End of input asks the script to dispose Miniflare and exit.
        drop(self.stdin.take());
        let pid = child.id().to_string();
        let (done, exited) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _ = child.wait();
            let _ = done.send(());
        });
        if exited.recv_timeout(STOP_TIMEOUT).is_err() {
            eprintln!("bench: Miniflare did not stop within {STOP_TIMEOUT:?}; terminating it");
            signal("TERM", &pid);
            if exited.recv_timeout(STOP_TIMEOUT).is_err() {
                signal("KILL", &pid);
            }
        }
        // Anything left in its process group (workerd, had Node died without disposing it).
        signal("KILL", &format!("-{pid}"));
        let _ = waiter.join();
    }
}

/// `kill -s SIG -- TARGET` (a pid, or `-pgid` for a process group); a target that is already
/// gone is fine, so its complaint is not shown.
fn signal(sig: &str, target: &str) {
    let _ = Command::new("kill")
        .args(["-s", sig, "--", target])
        .stderr(Stdio::null())
        .status();
}
