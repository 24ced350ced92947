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
use std::time::{Duration, Instant};

/// The route an edge started with `scheduled` answers by running the worker's `scheduled`
/// handler (Miniflare's `unsafeTriggerHandlers`; `cron` and `time` in the query), `200 ok` or
/// `500` with the outcome.
pub const SCHEDULED_PATH: &str = "/cdn-cgi/local/scheduled";

/// The bare worker's wrangler.toml and build output, relative to the repository.
const BARE_CONFIG: &str = "bench/bare/wrangler.toml";
const BARE_CONFIG_NO_ASSETS: &str = "bench/bare/wrangler-no-assets.toml";
const BARE_BUILD: &str = "bench/bare/build/index.js";
/// Loading wrangler, starting workerd and compiling the wasm; generous for a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long Miniflare may take to dispose workerd before the process group is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Edge {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Versions from the READY line: `miniflare=… workerd=… node=…`.
    pub versions: String,
    /// From spawning Node to the READY line: loading wrangler's config, starting workerd and
    /// compiling the worker.
    pub ready_after: Duration,
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
        let mut args = vec![
            "--origin".to_owned(),
            origin.to_owned(),
            "--var".into(),
            format!("EDGE_KEY={}", crate::origin::EDGE_KEY),
        ];
        for (name, value) in vars {
            args.extend(["--var".into(), format!("{name}={value}")]);
        }
        if scheduled {
            args.push("--scheduled-route".into());
        }
        Self::spawn(root, &args, verbose)
    }

    /// Starts the hot-path benchmark's baseline, the bare worker of `bench/bare` (built by
    /// `scripts/bench.sh`), the same way as the edge: routed through the edge's `[assets]`, or
    /// with `assets` false without them.
    pub fn start_bare(root: &Path, assets: bool, verbose: bool) -> Result<Self, String> {
        let config = root.join(if assets {
            BARE_CONFIG
        } else {
            BARE_CONFIG_NO_ASSETS
        });
        if !root.join(BARE_BUILD).exists() {
            return Err(format!(
                "{BARE_BUILD} is missing: run make bench BENCH_ARGS=\"--scenario hotpath\" \
                 (it builds the bare worker)"
            ));
        }
        let args = [
            // The script requires an origin; the bare worker reads no vars.
            "--origin".to_owned(),
            "http://127.0.0.1:9".to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
        ];
        Self::spawn(root, &args, verbose)
    }

    fn spawn(root: &Path, args: &[String], verbose: bool) -> Result<Self, String> {
        use std::os::unix::process::CommandExt;
        let spawned = Instant::now();
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
            .args(args)
            .arg("--persist")
            .arg(persist.path());
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
            ready_after: Duration::ZERO,
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
        edge.ready_after = spawned.elapsed();
        Ok(edge)
    }

    /// CPU time (user and system) the workerd processes of this edge have used so far: what
    /// serving its requests cost, without the load generator's share of the machine. Miniflare's
    /// Node process is left out; it only started workerd and is idle while requests flow.
    pub fn workerd_cpu(&self) -> Result<Duration, String> {
        let group = self.child.as_ref().ok_or("the edge has stopped")?.id();
        let mut ticks = 0;
        let mut found = false;
        let procs = std::fs::read_dir("/proc").map_err(|e| format!("/proc: {e}"))?;
        for entry in procs.flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            if let Some(used) = workerd_ticks(&stat, group) {
                ticks += used;
                found = true;
            }
        }
        if !found {
            return Err(format!("no workerd process in process group {group}"));
        }
        Ok(Duration::from_secs_f64(
            ticks as f64 / clock_ticks_per_second(),
        ))
    }
}

/// `utime + stime` of a `/proc/PID/stat` line, if it is a workerd in process group `group`.
/// The command sits in parentheses and may hold spaces, so fields are counted after the last
/// `)`: state is the 3rd field, pgrp the 5th, utime the 14th and stime the 15th.
fn workerd_ticks(stat: &str, group: u32) -> Option<u64> {
    let (head, rest) = stat.rsplit_once(')')?;
    let (_, comm) = head.split_once('(')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let pgrp: u32 = fields.get(2)?.parse().ok()?;
    if comm != "workerd" || pgrp != group {
        return None;
    }
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The kernel's `USER_HZ` (`getconf CLK_TCK`), which `/proc` counts CPU time in; 100 on every
/// Linux this runs on, which is also the fallback.
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workerd_ticks_reads_only_workerd_in_the_group() {
        let line = |comm: &str, pgrp: u32| {
            format!("4242 ({comm}) S 1 {pgrp} {pgrp} 0 -1 4194560 10 0 0 0 150 25 0 0 20 0 9 0")
        };
        assert_eq!(workerd_ticks(&line("workerd", 77), 77), Some(175));
        assert_eq!(workerd_ticks(&line("workerd", 78), 77), None);
        assert_eq!(workerd_ticks(&line("node", 77), 77), None);
        // A command with a space and a parenthesis in it.
        assert_eq!(workerd_ticks(&line("work (x) d", 77), 77), None);
        assert_eq!(workerd_ticks("garbage", 77), None);
    }
}
