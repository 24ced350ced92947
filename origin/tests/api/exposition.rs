//! A reader for the Prometheus text format (0.0.4), so tests assert on parsed samples rather than
//! substrings. Written here because the crate for it (`prometheus-parse`) cuts label values at
//! the first `}`, and our route templates (`/api/products/{id}`) contain one.

use std::collections::{BTreeMap, HashMap};

/// One sample line: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A whole scrape: its samples in order, and the `# TYPE` of each metric family.
#[derive(Debug, Default)]
pub struct Exposition {
    pub types: HashMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Parses `text`, panicking with the offending line on anything malformed.
    pub fn parse(text: &str) -> Exposition {
        let mut exposition = Exposition::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(declaration) = line.strip_prefix("# TYPE ") {
                let (name, kind) = declaration
                    .split_once(' ')
                    .unwrap_or_else(|| panic!("malformed TYPE line {line:?}"));
                let previous = exposition.types.insert(name.to_owned(), kind.to_owned());
                assert!(previous.is_none(), "{name} declared twice");
            } else if !line.starts_with('#') {
                exposition
                    .samples
                    .push(sample(line).unwrap_or_else(|| panic!("malformed sample line {line:?}")));
            }
        }
        exposition
    }

    /// The value of the sample `name` whose labels are exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut matching = self
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels == wanted);
        let found = matching.next().map(|s| s.value);
        assert!(matching.next().is_none(), "{name} {labels:?} appears twice");
        found
    }

    /// Every sample named `name`.
    pub fn series<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }
}

fn sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let (name, mut rest) = line.split_at(name_end);
    let mut labels = BTreeMap::new();
    if let Some(mut inside) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = inside.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after_key) = inside.split_once("=\"")?;
            let (value, after_value) = quoted(after_key)?;
            labels.insert(key.to_owned(), value);
            inside = after_value.strip_prefix(',').unwrap_or(after_value);
        }
    }
    let value = rest.trim().split(' ').next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// A label value up to its closing quote, unescaped, and what follows the quote.
fn quoted(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[at + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                escaped => value.push(escaped),
            },
            c => value.push(c),
        }
    }
    None
}

#[test]
fn the_reader_handles_braces_escapes_and_bare_samples() {
    let text = "# TYPE a_total counter\n\
                a_total{route=\"/p/{id}\",q=\"x\\\"y\"} 3\n\
                b 7\n\
                c_bucket{le=\"+Inf\"} 2\n";
    let scrape = Exposition::parse(text);
    assert_eq!(scrape.types["a_total"], "counter");
    assert_eq!(
        scrape.value("a_total", &[("route", "/p/{id}"), ("q", "x\"y")]),
        Some(3.0)
    );
    assert_eq!(scrape.value("b", &[]), Some(7.0));
    assert_eq!(scrape.value("c_bucket", &[("le", "+Inf")]), Some(2.0));
    assert_eq!(scrape.value("a_total", &[("route", "/p/{id}")]), None);
}
