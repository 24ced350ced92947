//! Copy-on-write text splicing: the rewriters copy their input unchanged except for the byte
//! ranges they replace, so text without references comes out byte-for-byte identical.

/// Builds the output of a rewrite from left-to-right, non-overlapping replacements.
pub(crate) struct Splice<'a> {
    src: &'a str,
    out: String,
    copied: usize,
}

impl<'a> Splice<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Self {
            src,
            out: String::new(),
            copied: 0,
        }
    }

    /// Replaces `src[start..end]` with `with`. Ranges must come in increasing order and lie on
    /// character boundaries (the rewriters only cut at ASCII delimiters).
    pub(crate) fn replace(&mut self, start: usize, end: usize, with: &str) {
        debug_assert!(self.copied <= start && start <= end);
        self.out.push_str(&self.src[self.copied..start]);
        self.out.push_str(with);
        self.copied = end;
    }

    pub(crate) fn finish(mut self) -> String {
        if self.copied == 0 {
            return self.src.to_string();
        }
        self.out.push_str(&self.src[self.copied..]);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_in_order() {
        let mut s = Splice::new("url(a) url(b)");
        s.replace(4, 5, "A1");
        s.replace(11, 12, "B1");
        assert_eq!(s.finish(), "url(A1) url(B1)");
        assert_eq!(Splice::new("same").finish(), "same");
    }
}
