//! The one input format every target reads: header-like fields, a blank line, then a body.
//!
//! ```text
//! :method: GET
//! :url: https://edge.example/api/products/1
//! cache-control: max-age=60
//!
//! {"body": "bytes, passed on as they are"}
//! ```
//!
//! Corpus files stay readable and easy to write by hand, and the byte-level mutations of the
//! runner still reach every part: a field, its value, the separator, the body. Fields whose name
//! starts with `:` are the target's own settings (like HTTP/2 pseudo-headers); the rest are what
//! the name says, usually request or response header fields. A target decides what each means.
//! Nothing is refused: a line without `:` is a field with an empty value, and invalid UTF-8 in
//! the fields becomes U+FFFD, which the parsers behind should handle like any other character.

/// A parsed input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// `(name, value)` in order; names as written (case kept), values without the one space
    /// after the colon.
    pub fields: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Envelope {
    /// Reads `input`: fields up to the first blank line, the rest is the body.
    pub fn parse(input: &[u8]) -> Self {
        // A blank first line: no fields, all body.
        let (head, body) = match input.strip_prefix(b"\n") {
            Some(body) => (&[][..], body),
            None => match input.windows(2).position(|w| w == b"\n\n") {
                Some(at) => (&input[..at], &input[at + 2..]),
                None => (input, &[][..]),
            },
        };
        let head = String::from_utf8_lossy(head);
        let fields = head
            .split('\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                // A pseudo-field's name keeps its leading ':'; its value starts after the next.
                let from = usize::from(line.starts_with(':'));
                match line[from..].find(':') {
                    Some(at) => {
                        let (name, value) = line.split_at(from + at);
                        let value = &value[1..];
                        (
                            name.to_owned(),
                            value.strip_prefix(' ').unwrap_or(value).to_owned(),
                        )
                    }
                    None => (line.to_owned(), String::new()),
                }
            })
            .collect();
        Self {
            fields,
            body: body.to_vec(),
        }
    }

    /// An empty envelope, to build inputs with [`Envelope::field`] and [`Envelope::with_body`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a field.
    pub fn field(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.fields.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The input bytes [`Envelope::parse`] reads back as this envelope (when no value holds a
    /// line break).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in &self.fields {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out
    }

    /// The first value of the field `name` (compared case-insensitively).
    pub fn get<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.all(name).next()
    }

    /// Every value of the field `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A pseudo-field read as a number, else `default`.
    pub fn number(&self, name: &str, default: u64) -> u64 {
        self.get(name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    }

    /// The fields that are not pseudo-fields (no leading `:`), in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .filter(|(n, _)| !n.starts_with(':'))
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_pseudo_fields_and_body() {
        let input =
            b":url: http://h/a?b=c\nCache-Control: max-age=5\nbare\nx:  two spaces\n\nbody\n\nmore";
        let e = Envelope::parse(input);
        assert_eq!(
            e.fields,
            [
                (":url".to_owned(), "http://h/a?b=c".to_owned()),
                ("Cache-Control".to_owned(), "max-age=5".to_owned()),
                ("bare".to_owned(), String::new()),
                ("x".to_owned(), " two spaces".to_owned()),
            ]
        );
        assert_eq!(e.body, b"body\n\nmore");
        assert_eq!(e.get("cache-control"), Some("max-age=5"));
        assert_eq!(e.headers().count(), 3);
    }

    #[test]
    fn built_envelopes_read_back() {
        let e = Envelope::new()
            .field(":now", "5")
            .field("etag", "\"v\"")
            .with_body(b"{}".to_vec());
        assert_eq!(Envelope::parse(&e.to_bytes()), e);
        let body_only = Envelope::new().with_body(b"{\"a\": 1}".to_vec());
        assert_eq!(Envelope::parse(&body_only.to_bytes()), body_only);
        assert_eq!(e.number(":now", 0), 5);
        assert_eq!(e.number(":missing", 9), 9);
    }

    #[test]
    fn anything_is_an_envelope() {
        assert_eq!(Envelope::parse(b""), Envelope::default());
        let odd = Envelope::parse(b"\xff:\xfe\n:\n::\n\n");
        assert_eq!(odd.fields.len(), 3);
        assert!(odd.body.is_empty());
    }
}
