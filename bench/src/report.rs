//! The markdown report: one section per scenario, each a few tables, then notes on where and how
//! it ran. The table builder and the tables several scenarios share live here.

use std::fmt::Write;
use std::time::Duration;

use crate::plot::Plot;
use crate::stats::{Summary, Tally};

/// A run of one scenario, named as its table row.
pub struct Run {
    pub name: String,
    pub summary: Summary,
}

pub struct Report {
    pub sections: Vec<Section>,
    /// Lines that say where and how this ran.
    pub notes: Vec<String>,
    /// Goals that fail the run (chaos's exactly-once checks), named.
    pub failed: Vec<String>,
}

/// One scenario's part of the report.
pub struct Section {
    pub title: String,
    /// Paragraphs before the tables (the workload, the configuration).
    pub intro: Vec<String>,
    /// Each table with the sentence above it (empty for none).
    pub tables: Vec<(String, Table)>,
    /// Charts of the same figures, for the HTML report only.
    pub plots: Vec<Plot>,
}

impl Report {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "## Breakwater benchmark\n");
        for section in &self.sections {
            let _ = writeln!(out, "### {}\n", section.title);
            for paragraph in &section.intro {
                let _ = writeln!(out, "{paragraph}\n");
            }
            for (caption, table) in &section.tables {
                if !caption.is_empty() {
                    let _ = writeln!(out, "{caption}\n");
                }
                table.render(&mut out);
                out.push('\n');
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "{note}  ");
        }
        out
    }
}

/// A markdown table: the first column and any marked with [`Table::left`] left-aligned, the
/// others (figures) right-aligned.
pub struct Table {
    columns: Vec<String>,
    left: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: AsRef<str>>(columns: impl IntoIterator<Item = S>) -> Self {
        let columns: Vec<String> = columns.into_iter().map(|c| c.as_ref().to_owned()).collect();
        let left = (0..columns.len()).map(|i| i == 0).collect();
        Self {
            columns,
            left,
            rows: Vec::new(),
        }
    }

    /// Aligns column `index` to the left (text rather than figures).
    pub fn left(mut self, index: usize) -> Self {
        if let Some(l) = self.left.get_mut(index) {
            *l = true;
        }
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len(), "one cell per column");
        self.rows.push(cells);
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    pub fn rows(&self) -> &[Vec<String>] {
        &self.rows
    }

    /// Whether column `index` holds text (left-aligned) rather than figures.
    pub fn is_left(&self, index: usize) -> bool {
        self.left.get(index).copied().unwrap_or(false)
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "| {} |", self.columns.join(" | "));
        let rule: String = self
            .left
            .iter()
            .map(|&l| if l { "---|" } else { "---:|" })
            .collect();
        let _ = writeln!(out, "|{rule}");
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
    }
}

/// Requests, errors, throughput, latency percentiles and what reached the origin, per run.
pub fn latency_table<'a>(runs: impl IntoIterator<Item = &'a Run>) -> Table {
    let mut table = Table::new([
        "run",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "reached origin",
        "origin offload",
    ]);
    for run in runs {
        let s = &run.summary;
        table.row(vec![
            run.name.clone(),
            s.requests.to_string(),
            s.errors.to_string(),
            format!("{:.0}", s.throughput()),
            ms(s.p(50.0)),
            ms(s.p(95.0)),
            ms(s.p(99.0)),
            s.origin_requests.map_or("-".into(), |n| n.to_string()),
            s.offload().map_or("-".into(), percent),
        ]);
    }
    table
}

/// Each run's latency percentiles and throughput relative to those of the summary it is paired
/// with: ratios, and with `differences` also the latency added (`+0.42 ms (1.35×)`).
pub fn ratio_table<'a>(
    pairs: impl IntoIterator<Item = (&'a Run, &'a Summary)>,
    differences: bool,
) -> Table {
    let mut table = Table::new(["run", "p50", "p95", "p99", "throughput"]);
    for (run, base) in pairs {
        let s = &run.summary;
        let lat = |p| {
            let r = ratio(s.p(p).map(secs), base.p(p).map(secs));
            match (differences, s.p(p), base.p(p)) {
                (true, Some(x), Some(b)) => format!("{} ({r})", difference_ms(x, b)),
                _ => r,
            }
        };
        table.row(vec![
            run.name.clone(),
            lat(50.0),
            lat(95.0),
            lat(99.0),
            ratio(Some(s.throughput()), Some(base.throughput())),
        ]);
    }
    table
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Milliseconds with two decimals, `-` for none.
pub fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1e3))
}

/// `x - base` in signed milliseconds.
pub fn difference_ms(x: Duration, base: Duration) -> String {
    let d = (x.as_secs_f64() - base.as_secs_f64()) * 1e3;
    format!("{d:+.2} ms")
}

pub fn percent(f: f64) -> String {
    format!("{:.1}%", f * 100.0)
}

/// `x / base` as `1.50×`, `-` without both or with a zero base.
pub fn ratio(x: Option<f64>, base: Option<f64>) -> String {
    match (x, base) {
        (Some(x), Some(b)) if b > 0.0 => format!("{:.2}×", x / b),
        _ => "-".into(),
    }
}

/// `n` and its share of `of`: `1 (25.0%)`.
pub fn share(n: u64, of: usize) -> String {
    if of == 0 {
        return "-".into();
    }
    format!("{n} ({})", percent(n as f64 / of as f64))
}

/// `0`, or `3 (503 ×2, no answer ×1)`: a count and what it is made of.
pub fn tally_cell(total: u64, tally: &Tally) -> String {
    if total == 0 {
        return "0".into();
    }
    let parts: Vec<String> = tally
        .labels()
        .map(|label| format!("{label} ×{}", tally.get(label)))
        .collect();
    format!("{total} ({})", parts.join(", "))
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
        assert_eq!(
            difference_ms(Duration::from_micros(1500), Duration::from_millis(1)),
            "+0.50 ms"
        );
        assert_eq!(
            difference_ms(Duration::from_millis(1), Duration::from_micros(1500)),
            "-0.50 ms"
        );
    }

    #[test]
    fn tables_align_figures_right_and_text_left() {
        let mut t = Table::new(["run", "n", "what"]).left(2);
        t.row(vec!["a".into(), "1".into(), "x".into()]);
        let mut out = String::new();
        t.render(&mut out);
        assert_eq!(out, "| run | n | what |\n|---|---:|---|\n| a | 1 | x |\n");
    }

    #[test]
    fn differences_come_with_their_ratio() {
        let summary = |ms: u64| Summary {
            requests: 1,
            wall: Duration::from_secs(1),
            latencies: vec![Duration::from_millis(ms)],
            ..Summary::default()
        };
        let run = Run {
            name: "limited".into(),
            summary: summary(3),
        };
        let mut out = String::new();
        ratio_table([(&run, &summary(2))], true).render(&mut out);
        assert!(
            out.contains(
                "| limited | +1.00 ms (1.50×) | +1.00 ms (1.50×) | +1.00 ms (1.50×) | 1.00× |"
            ),
            "{out}"
        );
    }
}
