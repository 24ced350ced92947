//! Charts for the HTML report ([`crate::html`]): each an inline SVG with its axes, ticks and
//! legend, so the report needs no script and no network.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// One chart of a report section.
#[derive(Debug, Clone)]
pub struct Plot {
    pub title: String,
    pub y_label: String,
    pub kind: Kind,
    pub series: Vec<Series>,
}

#[derive(Debug, Clone)]
pub enum Kind {
    /// Points joined by lines against a numeric x axis (seconds into a run), with vertical marks
    /// (phase boundaries) at the given x values.
    Lines {
        x_label: String,
        marks: Vec<(f64, String)>,
    },
    /// Grouped bars: one group per category, one bar per series (its `values[i]` for category
    /// `i`).
    Bars { categories: Vec<String> },
}

/// A named line (its points as x, y) or a named bar series (its values in `points`' y, by
/// category).
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
        }
    }

    /// A bar series: one value per category.
    pub fn bars(name: impl Into<String>, values: impl IntoIterator<Item = f64>) -> Self {
        Self::new(
            name,
            values
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i as f64, v))
                .collect(),
        )
    }
}

/// The `p`-th percentile (nearest rank) of the latencies in each whole second of a run, in ms:
/// `(second, latency)` for every second that has one, from `(when, latency)` pairs.
pub fn percentile_per_second(
    samples: impl IntoIterator<Item = (Duration, Duration)>,
    p: f64,
) -> Vec<(f64, f64)> {
    let mut by_second: BTreeMap<u64, Vec<Duration>> = BTreeMap::new();
    for (at, latency) in samples {
        by_second.entry(at.as_secs()).or_default().push(latency);
    }
    by_second
        .into_iter()
        .map(|(second, mut latencies)| {
            latencies.sort_unstable();
            let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
            let pick = latencies[rank.clamp(1, latencies.len()) - 1];
            (second as f64, pick.as_secs_f64() * 1000.0)
        })
        .collect()
}

/// How many of `times` fall in each whole second from 0 to the last one: `(second, count)`.
pub fn count_per_second(times: impl IntoIterator<Item = Duration>) -> Vec<(f64, f64)> {
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    for at in times {
        *counts.entry(at.as_secs()).or_default() += 1;
    }
    let last = counts.keys().next_back().copied().unwrap_or(0);
    (0..=last)
        .map(|s| (s as f64, counts.get(&s).copied().unwrap_or(0) as f64))
        .collect()
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 64.0;
/// Series colours, distinguishable in light and dark and for the common colour blindnesses.
const PALETTE: [&str; 6] = [
    "#0f766e", "#d97706", "#2563eb", "#db2777", "#65a30d", "#7c3aed",
];

/// `plot` as an `<svg>` element.
pub fn svg(plot: &Plot) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}">"#,
        escape(&plot.title)
    );
    let y_max = nice_max(
        plot.series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let plot_h = HEIGHT - TOP - BOTTOM;
    let y_of = |v: f64| TOP + plot_h * (1.0 - v / y_max);
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let y = y_of(v);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            tick(v)
        );
    }
    let _ = write!(
        out,
        r#"<text class="label" transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + plot_h / 2.0,
        escape(&plot.y_label)
    );
    match &plot.kind {
        Kind::Lines { x_label, marks } => lines(&mut out, plot, x_label, marks, &y_of),
        Kind::Bars { categories } => bars(&mut out, plot, categories, &y_of),
    }
    legend(&mut out, &plot.series);
    out.push_str("</svg>");
    out
}

fn lines(
    out: &mut String,
    plot: &Plot,
    x_label: &str,
    marks: &[(f64, String)],
    y_of: &dyn Fn(f64) -> f64,
) {
    let x_max = nice_max(
        plot.series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .chain(marks.iter().map(|m| m.0))
            .fold(0.0, f64::max),
    );
    let plot_w = WIDTH - LEFT - RIGHT;
    let x_of = |v: f64| LEFT + plot_w * v / x_max;
    for i in 0..=5 {
        let v = x_max * f64::from(i) / 5.0;
        let _ = write!(
            out,
            r#"<text class="tick" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            x_of(v),
            HEIGHT - BOTTOM + 16.0,
            tick(v)
        );
    }
    let _ = write!(
        out,
        r#"<text class="label" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - BOTTOM + 34.0,
        escape(x_label)
    );
    for (x, name) in marks {
        let x = x_of(*x);
        let _ = write!(
            out,
            r#"<line class="mark" x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{}"/><text class="tick" x="{:.1}" y="{}">{}</text>"#,
            HEIGHT - BOTTOM,
            x + 4.0,
            TOP + 10.0,
            escape(name)
        );
    }
    for (i, series) in plot.series.iter().enumerate() {
        let points: Vec<String> = series
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", x_of(*x), y_of(*y)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            colour(i),
            points.join(" ")
        );
    }
}

fn bars(out: &mut String, plot: &Plot, categories: &[String], y_of: &dyn Fn(f64) -> f64) {
    let plot_w = WIDTH - LEFT - RIGHT;
    let group = plot_w / categories.len().max(1) as f64;
    let bar = group * 0.8 / plot.series.len().max(1) as f64;
    for (c, category) in categories.iter().enumerate() {
        let x0 = LEFT + group * c as f64 + group * 0.1;
        for (s, series) in plot.series.iter().enumerate() {
            let value = series.points.get(c).map_or(0.0, |p| p.1);
            let (y, base) = (y_of(value), y_of(0.0));
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {}</title></rect>"#,
                x0 + bar * s as f64,
                (bar - 2.0).max(1.0),
                (base - y).max(0.0),
                colour(s),
                escape(&series.name),
                tick(value)
            );
        }
        let _ = write!(
            out,
            r#"<text class="tick" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            x0 + group * 0.4,
            HEIGHT - BOTTOM + 16.0,
            escape(category)
        );
    }
}

fn legend(out: &mut String, series: &[Series]) {
    let mut x = LEFT;
    for (i, s) in series.iter().enumerate() {
        let _ = write!(
            out,
            r#"<rect x="{x:.1}" y="{}" width="12" height="12" fill="{}"/><text class="tick" x="{:.1}" y="{}">{}</text>"#,
            HEIGHT - 20.0,
            colour(i),
            x + 16.0,
            HEIGHT - 10.0,
            escape(&s.name)
        );
        x += 28.0 + 7.0 * s.name.chars().count() as f64;
    }
}

fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// The smallest 1, 2 or 5 times a power of ten at or above `max` (1 for nothing to plot).
fn nice_max(max: f64) -> f64 {
    if !(max > 0.0 && max.is_finite()) {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&candidate| candidate >= max)
        .unwrap_or(10.0 * magnitude)
}

/// A tick's label: whole numbers without decimals, small ones with two.
fn tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if v.abs() < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

/// Text for SVG and HTML: `&`, `<`, `>` and `"` escaped.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers_above_the_data() {
        for (max, nice) in [
            (0.0, 1.0),
            (0.7, 1.0),
            (1.0, 1.0),
            (1.3, 2.0),
            (37.0, 50.0),
            (501.0, 1000.0),
        ] {
            assert_eq!(nice_max(max), nice, "{max}");
        }
        assert_eq!(nice_max(f64::NAN), 1.0);
    }

    #[test]
    fn a_chart_has_every_series_and_escapes_names() {
        let plot = Plot {
            title: "p99 <by> second".into(),
            y_label: "ms".into(),
            kind: Kind::Lines {
                x_label: "s".into(),
                marks: vec![(10.0, "surge".into())],
            },
            series: vec![
                Series::new("a & b", vec![(0.0, 1.0), (20.0, 3.0)]),
                Series::new("c", vec![(0.0, 2.0)]),
            ],
        };
        let drawn = svg(&plot);
        assert_eq!(drawn.matches("<polyline").count(), 2);
        assert!(
            drawn.contains("a &amp; b") && drawn.contains("p99 &lt;by&gt; second"),
            "{drawn}"
        );
        assert!(!drawn.contains("a & b"));
        let bars = Plot {
            kind: Kind::Bars {
                categories: vec!["x".into(), "y".into()],
            },
            ..plot
        };
        assert_eq!(svg_of_bars_rects(&svg(&bars)), 4, "2 series × 2 categories");
    }

    #[test]
    fn per_second_figures_group_by_whole_seconds() {
        let ms = Duration::from_millis;
        let samples = [
            (ms(100), ms(5)),
            (ms(900), ms(1)),
            (ms(950), ms(9)),
            (ms(2500), ms(7)),
        ];
        assert_eq!(
            percentile_per_second(samples, 50.0),
            [(0.0, 5.0), (2.0, 7.0)]
        );
        assert_eq!(percentile_per_second(samples, 99.0)[0], (0.0, 9.0));
        assert_eq!(
            count_per_second(samples.iter().map(|s| s.0)),
            [(0.0, 3.0), (1.0, 0.0), (2.0, 1.0)]
        );
    }

    /// Bars drawn (legend swatches are `<rect … height="12"`, without a tooltip).
    fn svg_of_bars_rects(svg: &str) -> usize {
        svg.matches("<title>").count()
    }
}
