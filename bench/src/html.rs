//! The report as one self-contained HTML page: the same sections and tables as the markdown,
//! plus each section's charts ([`crate::plot`]) as inline SVG. No script, no font, no network;
//! light and dark follow the reader's system.

use std::fmt::Write;

use crate::plot::{escape, svg};
use crate::report::{Report, Table};

const STYLE: &str = "
:root { color-scheme: light dark; --fg: #13201f; --muted: #5b6b69; --bg: #f6f8f8; --line: #dbe4e2; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6efed; --muted: #93a6a3; --bg: #0c1312; --line: #24403c; } }
body { font: 15px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); margin: 0 auto; max-width: 72rem; padding: 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2.5rem; border-bottom: 1px solid var(--line); }
p { max-width: 60rem; } .note { color: var(--muted); font-size: 0.85rem; }
.wrap { overflow-x: auto; } table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1.25rem; }
th, td { padding: 0.3rem 0.7rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
code { font: 0.85em ui-monospace, monospace; }
figure { margin: 1rem 0 1.5rem; } figcaption { font-weight: 600; margin-bottom: 0.25rem; }
svg.plot { width: 100%; max-width: 720px; height: auto; }
svg .grid { stroke: var(--line); } svg .mark { stroke: var(--muted); stroke-dasharray: 4 3; }
svg .tick, svg .label { fill: var(--muted); font-size: 11px; } svg .label { font-size: 12px; }
";

/// The whole report as an HTML document.
pub fn render(report: &Report) -> String {
    let mut out = String::from("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    let _ = write!(
        out,
        "<title>Breakwater benchmark</title><style>{STYLE}</style></head><body><h1>Breakwater benchmark</h1>"
    );
    for section in &report.sections {
        let _ = write!(out, "<h2>{}</h2>", inline(&section.title));
        for paragraph in &section.intro {
            let _ = write!(out, "<p>{}</p>", inline(paragraph));
        }
        for plot in &section.plots {
            let _ = write!(
                out,
                "<figure><figcaption>{}</figcaption>{}</figure>",
                escape(&plot.title),
                svg(plot)
            );
        }
        for (caption, table) in &section.tables {
            if !caption.is_empty() {
                let _ = write!(out, "<p>{}</p>", inline(caption));
            }
            table_html(&mut out, table);
        }
    }
    for note in &report.notes {
        let _ = write!(out, "<p class=\"note\">{}</p>", inline(note));
    }
    out.push_str("</body></html>\n");
    out
}

fn table_html(out: &mut String, table: &Table) {
    out.push_str("<div class=\"wrap\"><table><thead><tr>");
    for column in table.columns() {
        let _ = write!(out, "<th>{}</th>", inline(column));
    }
    out.push_str("</tr></thead><tbody>");
    for row in table.rows() {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = if table.is_left(i) { "" } else { " class=\"n\"" };
            let _ = write!(out, "<td{class}>{}</td>", inline(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
}

/// Markdown's inline code and bold as HTML, everything else escaped.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(text).split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            for (j, piece) in part.split("**").enumerate() {
                if j % 2 == 1 {
                    let _ = write!(out, "<strong>{piece}</strong>");
                } else {
                    out.push_str(piece);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::{Kind, Plot, Series};
    use crate::report::Section;

    #[test]
    fn the_page_holds_every_section_table_and_chart_and_escapes_text() {
        let mut table = Table::new(["run", "p99 ms"]);
        table.row(vec!["`edge` <fresh>".into(), "1.5".into()]);
        let report = Report {
            sections: vec![Section {
                title: "Surge & brownout".into(),
                intro: vec!["**3×** the rate".into()],
                tables: vec![("caption".into(), table)],
                plots: vec![Plot {
                    title: "p99".into(),
                    y_label: "ms".into(),
                    kind: Kind::Bars {
                        categories: vec!["a".into()],
                    },
                    series: vec![Series::bars("edge", [1.0])],
                }],
            }],
            notes: vec!["ran here".into()],
            failed: vec![],
        };
        let html = render(&report);
        for expected in [
            "<h2>Surge &amp; brownout</h2>",
            "<strong>3×</strong> the rate",
            "<code>edge</code> &lt;fresh&gt;",
            "<td class=\"n\">1.5</td>",
            "<svg class=\"plot\"",
            "ran here",
        ] {
            assert!(html.contains(expected), "{expected} missing");
        }
        assert!(!html.contains("<script"), "no script");
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no network"
        );
    }
}
