//! Which source files reference which, and their bodies once references point at hashed names.
//!
//! HTML and CSS are rewritten; everything else (JavaScript included: it reads the manifest at run
//! time) is served as written.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use breakwater_core::assets::{
    hashed_resolver, is_html, resolve_relative, rewrite_css, rewrite_html,
};

use crate::error::BuildError;
use crate::sources::Source;

/// The kind of text whose references get rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Markup {
    Html,
    Css,
}

fn markup(logical: &str) -> Option<Markup> {
    if is_html(logical) {
        Some(Markup::Html)
    } else if logical.to_ascii_lowercase().ends_with(".css") {
        Some(Markup::Css)
    } else {
        None
    }
}

fn apply(kind: Markup, text: &str, resolve: impl Fn(&str) -> Option<String>) -> String {
    match kind {
        Markup::Html => rewrite_html(text, resolve),
        Markup::Css => rewrite_css(text, resolve),
    }
}

fn text(source: &Source) -> Result<&str, BuildError> {
    std::str::from_utf8(&source.bytes).map_err(|_| BuildError::NotUtf8(source.file.clone()))
}

/// For every source, the other sources whose hashed names its rewritten body will contain.
///
/// Found by running the same rewriter that produces the output with a resolver that only records,
/// so the dependencies are exactly the references that will be rewritten. Links to HTML pages are
/// never rewritten and so are no dependency; two pages linking each other is not a cycle.
pub fn dependencies(
    sources: &BTreeMap<String, Source>,
) -> Result<BTreeMap<String, BTreeSet<String>>, BuildError> {
    let mut deps = BTreeMap::new();
    for (logical, source) in sources {
        let found = RefCell::new(BTreeSet::new());
        if let Some(kind) = markup(logical) {
            apply(kind, text(source)?, |reference| {
                let target = resolve_relative(logical, reference)?;
                if sources.contains_key(&target) && !is_html(&target) {
                    found.borrow_mut().insert(target);
                }
                None
            });
        }
        deps.insert(logical.clone(), found.into_inner());
    }
    Ok(deps)
}

/// The body to serve for `logical`: HTML and CSS with references to files in `current` (logical →
/// hashed path) replaced by the hashed names; other files unchanged.
pub fn rewritten(
    logical: &str,
    source: &Source,
    current: &BTreeMap<String, String>,
) -> Result<Vec<u8>, BuildError> {
    match markup(logical) {
        Some(kind) => {
            Ok(apply(kind, text(source)?, hashed_resolver(logical, current)).into_bytes())
        }
        None => Ok(source.bytes.clone()),
    }
}
