//! The markdown tables printed at the end of a run.

use std::fmt::Write;
use std::time::Duration;

use crate::cache_status::{self, Tally};
use crate::stats::Summary;

/// One timed run of the Zipf workload.
pub struct Run {
    pub name: String,
    pub summary: Summary,
}

/// One stampede round.
pub struct Stampede {
    pub path: String,
    pub summary: Summary,
}

pub struct Report {
    /// Describes the workload, e.g. `Zipf s=0.99 over 10100 keys, ...`.
    pub workload: String,
    pub baseline: Run,
    pub edges: Vec<Run>,
    pub stampedes: Vec<Stampede>,
    /// Lines that say where and how this ran.
    pub notes: Vec<String>,
}

impl Report {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "## Breakwater cache tiering benchmark\n");
        let _ = writeln!(out, "{}\n", self.workload);
        self.latency_table(&mut out);
        self.ratio_table(&mut out);
        self.cache_table(&mut out);
        self.stampede_table(&mut out);
        for note in &self.notes {
            let _ = writeln!(out, "{note}  ");
        }
        out
    }

    fn latency_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "| run | requests | errors | req/s | p50 ms | p95 ms | p99 ms | reached origin | origin offload |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for run in std::iter::once(&self.baseline).chain(&self.edges) {
            let s = &run.summary;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} |",
                run.name,
                s.requests,
                s.errors,
                s.throughput(),
                ms(s.p(50.0)),
                ms(s.p(95.0)),
                ms(s.p(99.0)),
                s.origin_requests.map_or("-".into(), |n| n.to_string()),
                s.offload().map_or("-".into(), percent),
            );
        }
        out.push('\n');
    }

    fn ratio_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "Edge / baseline, same run (latency: below 1 is faster than the origin alone; \
             throughput: above 1 is more requests per second)\n\n\
             | run | p50 | p95 | p99 | throughput |\n|---|---:|---:|---:|---:|"
        );
        let b = &self.baseline.summary;
        for run in &self.edges {
            let s = &run.summary;
            let lat = |p| ratio(s.p(p).map(secs), b.p(p).map(secs));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                run.name,
                lat(50.0),
                lat(95.0),
                lat(99.0),
                ratio(Some(s.throughput()), Some(b.throughput())),
            );
        }
        out.push('\n');
    }

    fn cache_table(&self, out: &mut String) {
        let columns = cache_status::columns(self.edges.iter().map(|r| &r.summary.cache));
        let _ = writeln!(
            out,
            "Edge answers by `Cache-Status` (share of all requests)\n\n| run | {} |\n|---|{}",
            columns.join(" | "),
            "---:|".repeat(columns.len())
        );
        for run in &self.edges {
            let cells: Vec<String> = columns
                .iter()
                .map(|c| share(run.summary.cache.get(c), run.summary.requests))
                .collect();
            let _ = writeln!(out, "| {} | {} |", run.name, cells.join(" | "));
        }
        out.push('\n');
    }

    fn stampede_table(&self, out: &mut String) {
        if self.stampedes.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "Stampede: concurrent requests for one cold key, released together (target: 1 \
             reaches the origin)\n\n\
             | key | requests | errors | reached origin | p50 ms | p99 ms | Cache-Status |\n\
             |---|---:|---:|---:|---:|---:|---|"
        );
        for st in &self.stampedes {
            let s = &st.summary;
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} | {} |",
                st.path,
                s.requests,
                s.errors,
                s.origin_requests.map_or("-".into(), |n| n.to_string()),
                ms(s.p(50.0)),
                ms(s.p(99.0)),
                breakdown(&s.cache),
            );
        }
        out.push('\n');
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1e3))
}

fn percent(f: f64) -> String {
    format!("{:.1}%", f * 100.0)
}

fn ratio(x: Option<f64>, base: Option<f64>) -> String {
    match (x, base) {
        (Some(x), Some(b)) if b > 0.0 => format!("{:.2}×", x / b),
        _ => "-".into(),
    }
}

fn share(n: u64, of: usize) -> String {
    if of == 0 {
        return "-".into();
    }
    format!("{n} ({})", percent(n as f64 / of as f64))
}

fn breakdown(tally: &Tally) -> String {
    if tally.is_empty() {
        return "-".into();
    }
    cache_status::columns([tally])
        .iter()
        .filter(|c| tally.get(c) > 0)
        .map(|c| format!("{c}: {}", tally.get(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_shares_format() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), "1.50×");
        assert_eq!(ratio(Some(3.0), Some(0.0)), "-");
        assert_eq!(share(1, 4), "1 (25.0%)");
        assert_eq!(ms(Some(Duration::from_micros(1500))), "1.50");
    }
}
