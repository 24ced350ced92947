//! Where the edge's wasm bytes go: code bytes per crate, plus the data and custom sections, as
//! `twiggy` would report them but as a library, so the bench installs nothing. The edge runs under
//! a Workers size limit, and a per-crate view says which dependency to trim when it grows.
//!
//! Functions are named from the `name` custom section (subsection 1, function names) and
//! attributed by the first segment of their demangled path; see [`crate_of`].

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use wasmparser::{KnownCustom, Name, NameSectionReader, Parser, Payload, TypeRef};

use crate::report::{Table, percent};

/// The group for `core`, `alloc` and `std`: one standard library, whichever crate a symbol names.
pub const STD: &str = "std (core, alloc)";
/// Named functions without a Rust path: wasm-bindgen's exported glue (`__wbg_…`,
/// `__wbindgen_…`) and C-style symbols (`memcpy`, `dlmalloc`-style allocators).
pub const GLUE: &str = "wasm-bindgen glue / unnamed";
/// Functions the `name` section does not name (a stripped or partial name section).
pub const UNNAMED: &str = "unnamed";

/// Code bytes attributed to one crate, or to a group ([`STD`], [`GLUE`], [`UNNAMED`]): one row of
/// the report.
pub struct Share {
    /// The crate as its symbols spell it (`breakwater_core`), or a group such as [`STD`].
    pub name: String,
    /// The function bodies attributed to it, each with its size prefix.
    pub bytes: u64,
}

/// A wasm module's size by section and its code by crate: what to cut when the module grows.
pub struct Breakdown {
    /// The file size.
    pub total: u64,
    /// Code section bytes (the section's contents, without its id and size).
    pub code: u64,
    /// Data section bytes: static data, string literals, tables baked into the binary.
    pub data: u64,
    /// Custom sections (name, producers, `__wasm_bindgen_unstable`, ...): not code, and mostly
    /// removable by stripping, so apart from the rest.
    pub names_and_custom: u64,
    /// Code bytes per crate, largest first.
    pub crates: Vec<Share>,
}

/// Reads the module at `wasm` and attributes its code to crates, so a size regression can be
/// traced to a dependency. Errors name the file and what could not be read.
pub fn breakdown(wasm: &Path) -> Result<Breakdown, String> {
    let bytes = std::fs::read(wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
    breakdown_of(&bytes).map_err(|e| format!("{}: {e}", wasm.display()))
}

/// [`breakdown`] of a module already in memory.
fn breakdown_of(bytes: &[u8]) -> Result<Breakdown, String> {
    let module = Module::parse(bytes)?;
    Ok(Breakdown {
        total: bytes.len() as u64,
        code: module.code,
        data: module.data,
        names_and_custom: module.custom,
        crates: module.crates(),
    })
}

impl Breakdown {
    /// The `top` largest crates with their share of the code, the rest summed in one row, then
    /// the sections that are not code: the markdown table the report prints.
    pub fn table(&self, top: usize) -> Table {
        let mut table = Table::new(["crate", "KiB", "share of code"]);
        for share in self.crates.iter().take(top) {
            table.row(self.code_row(&share.name, share.bytes));
        }
        let rest = self.crates.get(top..).unwrap_or_default();
        if !rest.is_empty() {
            let bytes = rest.iter().map(|s| s.bytes).sum();
            table.row(self.code_row(&format!("other {} crates", rest.len()), bytes));
        }
        for (name, bytes) in self.sections() {
            table.row(vec![name.into(), kib(bytes), "-".into()]);
        }
        table
    }

    /// A row of code bytes with its share of the code section.
    fn code_row(&self, name: &str, bytes: u64) -> Vec<String> {
        let share = if self.code == 0 {
            "-".into()
        } else {
            percent(bytes as f64 / self.code as f64)
        };
        vec![name.into(), kib(bytes), share]
    }

    /// The rows after the crates: the whole code section, the other sections and the file, so
    /// the table adds up to the file size.
    fn sections(&self) -> [(&'static str, u64); 5] {
        let rest = self
            .total
            .saturating_sub(self.code + self.data + self.names_and_custom);
        [
            ("code section", self.code),
            ("data section", self.data),
            (
                "custom sections (names, producers, …)",
                self.names_and_custom,
            ),
            ("other sections and headers", rest),
            ("file", self.total),
        ]
    }
}

/// Bytes as KiB with one decimal.
fn kib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1024.0)
}

/// What one pass over the module collects: section sizes, the size of each function body by
/// function index, and the function names.
#[derive(Default)]
struct Module<'a> {
    code: u64,
    data: u64,
    custom: u64,
    /// Function imports come first in the function index space and have no body.
    imported_functions: u32,
    /// Body sizes (with their size prefix), in code section order.
    bodies: Vec<u64>,
    names: HashMap<u32, &'a str>,
}

impl<'a> Module<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        let mut module = Module::default();
        for payload in Parser::new(0).parse_all(bytes) {
            let payload = payload.map_err(|e| format!("not a wasm module: {e}"))?;
            module.take(payload)?;
        }
        Ok(module)
    }

    /// Records what one section (or one function body) says about sizes and names.
    fn take(&mut self, payload: Payload<'a>) -> Result<(), String> {
        match payload {
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let import = import.map_err(|e| format!("import section: {e}"))?;
                    if matches!(import.ty, TypeRef::Func(_) | TypeRef::FuncExact(_)) {
                        self.imported_functions += 1;
                    }
                }
            }
            Payload::CodeSectionStart { range, .. } => self.code += len(&range),
            Payload::CodeSectionEntry(body) => {
                let size = len(&body.range());
                self.bodies.push(size + leb128_len(size));
            }
            Payload::DataSection(data) => self.data += len(&data.range()),
            Payload::CustomSection(custom) => {
                self.custom += len(&custom.range());
                if let KnownCustom::Name(names) = custom.as_known() {
                    self.take_names(names)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The function names (subsection 1) of the `name` section; the other subsections (locals,
    /// labels, types) do not say which crate code belongs to.
    fn take_names(&mut self, names: NameSectionReader<'a>) -> Result<(), String> {
        for subsection in names {
            let subsection = subsection.map_err(|e| format!("name section: {e}"))?;
            if let Name::Function(map) = subsection {
                for naming in map {
                    let naming = naming.map_err(|e| format!("function names: {e}"))?;
                    self.names.insert(naming.index, naming.name);
                }
            }
        }
        Ok(())
    }

    /// Code bytes per crate, largest first (ties by name, so reports are stable).
    fn crates(&self) -> Vec<Share> {
        let mut bytes: HashMap<String, u64> = HashMap::new();
        for (i, size) in self.bodies.iter().enumerate() {
            let index = self.imported_functions.saturating_add(i as u32);
            let name = self.names.get(&index).map_or(UNNAMED.into(), |n| owner(n));
            *bytes.entry(name).or_default() += size;
        }
        let mut crates: Vec<Share> = bytes
            .into_iter()
            .map(|(name, bytes)| Share { name, bytes })
            .collect();
        crates.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
        crates
    }
}

fn len(range: &Range<usize>) -> u64 {
    (range.end - range.start) as u64
}

/// Bytes of `n` as an unsigned LEB128: the size prefix each function body carries.
fn leb128_len(n: u64) -> u64 {
    let bits = 64 - u64::from(n.leading_zeros());
    bits.div_ceil(7).max(1)
}

/// The crate (or group) a symbol from the `name` section belongs to: demangled if it is a Rust
/// symbol (legacy `_ZN…E` or v0 `_R…`), else taken as written, then [`crate_of`].
fn owner(symbol: &str) -> String {
    let demangled = match rustc_demangle::try_demangle(symbol) {
        // `{:#}` leaves out the hash (`::h0123…`) and v0 crate disambiguators.
        Ok(d) => format!("{d:#}"),
        Err(_) => symbol.to_owned(),
    };
    crate_of(&demangled).as_deref().map_or(GLUE.into(), group)
}

/// `core`, `alloc` and `std` as one group; other crates as they are spelled in symbols.
fn group(krate: &str) -> String {
    match krate {
        "core" | "alloc" | "std" => STD.into(),
        _ => krate.into(),
    }
}

/// The crate of a demangled symbol: the first segment of its path (`serde_json::de::parse` →
/// `serde_json`). For `<A as B>::f` and `<impl B for A>::f`, the crate of the implementing type
/// `A` when it names one, else of the trait `B` (inherent impls on primitives, `<str>::f`, are
/// the standard library's); except that when `A` is a standard library type
/// and `B` a trait of another crate, the impl can only live in `B`'s crate (the orphan rule), so
/// `<alloc::vec::Vec<T> as serde::Serialize>::serialize` is serde's code. `None` for names that
/// are not Rust paths (`__wbindgen_malloc`, `memcpy`).
pub fn crate_of(demangled: &str) -> Option<String> {
    let name = demangled.trim();
    if name.starts_with('<') {
        return qualified_crate(name);
    }
    let (first, rest) = first_segment(name);
    // A bare identifier is a C-style or `#[no_mangle]` symbol (or a generic `T`), not a path.
    if !rest.starts_with("::") {
        return None;
    }
    Some(normalise(first)).filter(|k| !k.is_empty())
}

/// The crate of a `<…>::f` symbol (see [`crate_of`]).
fn qualified_crate(name: &str) -> Option<String> {
    let inner = name.get(1..closing(name)?)?;
    let (ty, tr) = match inner.strip_prefix("impl ") {
        Some(imp) => match split_top(imp, " for ") {
            Some((tr, ty)) => (ty, Some(tr)),
            None => (imp, None),
        },
        None => match split_top(inner, " as ") {
            Some((ty, tr)) => (ty, Some(tr)),
            None => (inner, None),
        },
    };
    let of_type = type_crate(ty);
    let of_trait = tr.and_then(crate_of);
    match (of_type, of_trait) {
        (Some(t), Some(b)) if is_std(&t) && !is_std(&b) => Some(b),
        (Some(t), _) => Some(t),
        (None, Some(b)) => Some(b),
        // An inherent impl on a primitive, slice or tuple (`<str>::to_lowercase`, as v0 symbols
        // spell it without the crate) can only be the standard library's.
        (None, None) if tr.is_none() => Some("core".into()),
        (None, None) => None,
    }
}

/// The crate of a type in a qualified path: references, pointers and `dyn` looked through;
/// `None` for generics (`T`), primitives, slices, arrays, tuples and function pointers.
fn type_crate(ty: &str) -> Option<String> {
    let ty = ty.trim();
    for prefix in ["&", "mut ", "*const ", "*mut ", "dyn ", "const "] {
        if let Some(rest) = ty.strip_prefix(prefix) {
            return type_crate(rest);
        }
    }
    if ty.starts_with('<') {
        return qualified_crate(ty);
    }
    if ty.starts_with(['[', '(']) || ty.starts_with("fn(") || ty.starts_with("unsafe ") {
        return None;
    }
    crate_of(ty)
}

/// Whether a crate name is the standard library's.
fn is_std(krate: &str) -> bool {
    matches!(krate, "core" | "alloc" | "std")
}

/// The first path segment and what follows it: `serde_json::de` → (`serde_json`, `::de`).
fn first_segment(path: &str) -> (&str, &str) {
    let end = path.find([':', '<', ' ', '>', ',']).unwrap_or(path.len());
    path.split_at(end)
}

/// A crate name without a hash suffix: `serde_json[1a2b3c4d]` or `serde_json-1a2b3c4d` →
/// `serde_json`, so one crate is one row whichever build it came from.
fn normalise(krate: &str) -> String {
    let krate = krate.split('[').next().unwrap_or(krate);
    let krate = match krate.rsplit_once('-') {
        Some((name, hash)) if is_hash(hash) => name,
        _ => krate,
    };
    krate.to_owned()
}

fn is_hash(s: &str) -> bool {
    s.len() >= 8 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// The index of the `>` that closes the `<` at the start of `s` (`->` in function types is not
/// a bracket).
fn closing(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match c {
            '<' => depth += 1,
            '>' if prev != '-' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        prev = c;
    }
    None
}

/// `s` split at the first `sep` outside any brackets: `Vec<A as B> as C` splits before `C`.
fn split_top<'s>(s: &'s str, sep: &str) -> Option<(&'s str, &'s str)> {
    let mut depth = 0i32;
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' if prev != '-' => depth -= 1,
            ')' | ']' => depth -= 1,
            _ if depth == 0 && s[i..].starts_with(sep) => {
                return Some((&s[..i], &s[i + sep.len()..]));
            }
            _ => {}
        }
        prev = c;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use wasm_encoder::{
        CodeSection, CustomSection, DataSection, EntityType, Function, FunctionSection,
        ImportSection, Instruction, NameMap, NameSection, TypeSection,
    };

    use super::*;
    use crate::report::{Report, Section};

    /// A module with one imported function, then one body per `(name, padding)` in function
    /// index order (`None` leaves it out of the name section), a data segment and the names.
    fn module(functions: &[(Option<&str>, usize)]) -> Vec<u8> {
        let mut types = TypeSection::new();
        types.ty().function([], []);
        let mut imports = ImportSection::new();
        imports.import("env", "imported", EntityType::Function(0));
        let mut declared = FunctionSection::new();
        let mut code = CodeSection::new();
        let mut names = NameMap::new();
        names.append(0, "_ZN6worker3env6import17h0000000000000000E");
        for (i, (name, padding)) in functions.iter().enumerate() {
            declared.function(0);
            code.function(&body(*padding));
            if let Some(name) = name {
                names.append(i as u32 + 1, name);
            }
        }
        let mut data = DataSection::new();
        data.passive([7u8; 100]);
        let mut name_section = NameSection::new();
        name_section.functions(&names);
        let mut module = wasm_encoder::Module::new();
        module
            .section(&types)
            .section(&imports)
            .section(&declared)
            .section(&code)
            .section(&data)
            .section(&name_section)
            .section(&CustomSection {
                name: Cow::Borrowed("producers"),
                data: Cow::Borrowed(&[0u8; 10]),
            });
        module.finish()
    }

    /// A body of `padding` nops: no locals (1 byte), the nops, `end` (1 byte).
    fn body(padding: usize) -> Function {
        let mut f = Function::new([]);
        for _ in 0..padding {
            f.instruction(&Instruction::Nop);
        }
        f.instruction(&Instruction::End);
        f
    }

    fn bytes_of(b: &Breakdown, name: &str) -> Option<u64> {
        b.crates.iter().find(|s| s.name == name).map(|s| s.bytes)
    }

    #[test]
    fn size_attributes_named_bodies_to_crates_after_the_imports() {
        let wasm = module(&[
            (Some("_ZN10serde_json2de5parse17h0123456789abcdefE"), 198),
            (Some("_ZN10serde_json3ser5write17h0123456789abcdefE"), 8),
            (Some("_ZN4core3fmt5write17h0123456789abcdefE"), 48),
            (Some("_ZN5alloc7raw_vec4grow17h0123456789abcdefE"), 8),
            (Some("__wbindgen_malloc"), 18),
            (None, 28),
        ]);
        let b = breakdown_of(&wasm).expect("a module");
        // Each body is its padding, a locals count and `end`, and a one-byte size prefix; the
        // one at 198 + 2 = 200 bytes takes a two-byte prefix.
        assert_eq!(bytes_of(&b, "serde_json"), Some(202 + 11));
        assert_eq!(bytes_of(&b, STD), Some(51 + 11));
        assert_eq!(bytes_of(&b, GLUE), Some(21));
        assert_eq!(bytes_of(&b, UNNAMED), Some(31));
        // The import (function 0) has no body and its name does not shift the others.
        assert_eq!(bytes_of(&b, "worker"), None);
        let names: Vec<&str> = b.crates.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["serde_json", STD, UNNAMED, GLUE]);
        // The bodies and the count of them (one byte) are the code section.
        assert_eq!(b.code, 213 + 62 + 21 + 31 + 1);
        assert_eq!(b.total, wasm.len() as u64);
        assert!(b.data >= 100, "{}", b.data);
        assert!(b.names_and_custom > 10, "{}", b.names_and_custom);
        assert!(b.code + b.data + b.names_and_custom < b.total);
    }

    #[test]
    fn size_reads_no_module_from_what_is_not_wasm() {
        assert!(breakdown_of(b"not wasm").is_err());
        let missing = breakdown(Path::new("/nonexistent/breakwater.wasm"));
        assert!(missing.is_err_and(|e| e.contains("/nonexistent/breakwater.wasm")));
    }

    #[test]
    fn size_attributes_demangled_paths_to_crates() {
        let cases = [
            (
                "<worker::Request as core::clone::Clone>::clone",
                Some("worker"),
            ),
            // Vec is std's, so the impl can only be serde's (the orphan rule).
            (
                "<alloc::vec::Vec<T> as serde::Serialize>::serialize",
                Some("serde"),
            ),
            (
                "breakwater_core::cache::key::normalise",
                Some("breakwater_core"),
            ),
            ("serde_json::de::parse", Some("serde_json")),
            ("serde_json::de::parse::{{closure}}", Some("serde_json")),
            (
                "<alloc::vec::Vec<T> as core::clone::Clone>::clone",
                Some("alloc"),
            ),
            ("<T as core::convert::Into<U>>::into", Some("core")),
            (
                "<&mut serde_json::de::Deserializer<R> as serde::de::Deserializer>::deserialize_any",
                Some("serde_json"),
            ),
            ("<[T] as core::fmt::Debug>::fmt", Some("core")),
            ("<(A, B) as serde::Serialize>::serialize", Some("serde")),
            (
                "<impl core::fmt::Debug for worker::Error>::fmt",
                Some("worker"),
            ),
            ("<impl serde::Serialize for u32>::serialize", Some("serde")),
            ("<worker::Headers>::new", Some("worker")),
            ("<str>::to_lowercase", Some("core")),
            ("<[T]>::sort_by", Some("core")),
            (
                "<<worker::Env as core::clone::Clone>::Target as serde::Serialize>::serialize",
                Some("worker"),
            ),
            ("<fn() -> T as core::ops::Fn<()>>::call", Some("core")),
            ("core::ptr::drop_in_place<worker::Request>", Some("core")),
            (
                "hashbrown[5f1e2d3c4b5a6978]::raw::RawTable<T>::reserve",
                Some("hashbrown"),
            ),
            ("js_sys-0123456789abcdef::Array::new", Some("js_sys")),
            ("__wbg_fetch_1234abcd", None),
            ("__wbindgen_malloc", None),
            ("dlmalloc", None),
            ("memcpy", None),
            ("", None),
        ];
        for (name, krate) in cases {
            assert_eq!(crate_of(name).as_deref(), krate, "{name}");
        }
    }

    #[test]
    fn size_groups_std_and_demangles_symbols() {
        assert_eq!(owner("_ZN4core3fmt5write17h0123456789abcdefE"), STD);
        assert_eq!(owner("_ZN3std2io5stdio6_print17h0123456789abcdefE"), STD);
        assert_eq!(
            owner("_ZN15breakwater_core5cache3key9normalise17h0123456789abcdefE"),
            "breakwater_core"
        );
        // `<worker::Request as core::clone::Clone>::clone`, mangled the legacy way.
        assert_eq!(
            owner(
                "_ZN54_$LT$worker..Request$u20$as$u20$core..clone..Clone$GT$5clone17h0123456789abcdefE"
            ),
            "worker"
        );
        // v0 symbols, as the standard library's are: an inherent impl on `str` names no crate.
        assert_eq!(
            owner("_RNvMs3_NtCs5cOc02OMXlo_5alloc3stre12to_lowercase"),
            STD
        );
        assert_eq!(owner("__wbindgen_realloc"), GLUE);
    }

    #[test]
    fn size_table_lists_the_top_crates_then_the_rest_and_the_sections() {
        let b = Breakdown {
            total: 10_240,
            code: 4_096,
            data: 2_048,
            names_and_custom: 1_024,
            crates: ["a", "b", "c", "d"]
                .iter()
                .zip([2_048, 1_024, 512, 512])
                .map(|(name, bytes)| Share {
                    name: (*name).into(),
                    bytes,
                })
                .collect(),
        };
        let out = render(b.table(2));
        for row in [
            "| crate | KiB | share of code |",
            "| a | 2.0 | 50.0% |",
            "| b | 1.0 | 25.0% |",
            "| other 2 crates | 1.0 | 25.0% |",
            "| code section | 4.0 | - |",
            "| data section | 2.0 | - |",
            "| custom sections (names, producers, …) | 1.0 | - |",
            "| other sections and headers | 3.0 | - |",
            "| file | 10.0 | - |",
        ] {
            assert!(out.contains(row), "{row} in\n{out}");
        }
        assert!(!render(b.table(4)).contains("other 0"));
    }

    /// A table as the report prints it (`Table::render` is the report's own).
    fn render(table: Table) -> String {
        Report {
            sections: vec![Section {
                plots: Vec::new(),
                title: "size".into(),
                intro: vec![],
                tables: vec![(String::new(), table)],
            }],
            notes: vec![],
            failed: vec![],
        }
        .render()
    }

    #[test]
    fn size_counts_leb128_prefixes() {
        assert_eq!(leb128_len(0), 1);
        assert_eq!(leb128_len(127), 1);
        assert_eq!(leb128_len(128), 2);
        assert_eq!(leb128_len(16_383), 2);
        assert_eq!(leb128_len(16_384), 3);
    }
}
