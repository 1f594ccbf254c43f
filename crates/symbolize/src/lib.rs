//! memtrail-symbolize: names the native stacks of a recording.
//!
//! `memtrail run --native` records, for each process, the modules it had
//! loaded ([`NativeModule`]: path, address range, load bias, build id) and
//! the call stacks of sampled allocations ([`NativeStack`]: return
//! addresses); censuses of source `native` count live bytes by `stack:ID`.
//! A [`Symbolizer`] learns modules and stacks as the records go by and
//! turns each stack into [`Frame`]s (function, file:line, module) with the
//! gimli project's DWARF reader (addr2line), falling back to the ELF symbol
//! table. Symbolizing happens here, when a recording is read, never in the
//! target, so a recording can be named later or elsewhere as long as the
//! same builds (same build ids) are on disk; separate debug files under
//! `/usr/lib/debug/.build-id/` are used when present.
//!
//! [`Symbolizer::site`] names a stack the way a leak report needs: the
//! innermost frame of the program itself (not the allocator, the C++ or
//! Rust runtime, nor memtrail's preloaded library) and its callers, and
//! [`Symbolizer::name_census`] rewrites a `native` census's keys so, e.g.,
//! `analyze` judges `census:native:Registry::add (registry.cpp:14) ← main`.
//!
//! ```
//! use memtrail_format::{Census, CensusCount, NativeStack, Record};
//! use memtrail_symbolize::Symbolizer;
//!
//! let mut names = Symbolizer::new();
//! names.learn(&Record::NativeStack(Box::new(NativeStack {
//!     time_us: 1,
//!     process: None,
//!     id: 0xab,
//!     frames: vec![0x1000, 0x2000],
//! })));
//! let census = Census {
//!     time_us: 2,
//!     process: None,
//!     source: "native".into(),
//!     counts: vec![CensusCount { key: "stack:00000000000000ab".into(), count: 4096 }],
//! };
//! // No module covers these addresses: they are named by address.
//! let named = names.name_census(census);
//! assert_eq!(named.counts[0].key, "0x1000 ← 0x2000");
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use memtrail_format::{Census, CensusCount, NativeModule, NativeStack, ProcessId, Record};

/// The census source of native allocation sites.
pub const SOURCE: &str = "native";

/// One frame of a named stack, innermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The function, demangled (`Registry::add(int)`, `leak::grow`), when
    /// debug info or the symbol table knows it.
    pub function: Option<String>,
    /// The source file and line, when debug info has them.
    pub file: Option<String>,
    pub line: Option<u32>,
    /// The module's file name (`libc.so.6`), or `?` when no module covers
    /// the address.
    pub module: String,
    /// The address, as the process saw it.
    pub address: u64,
    /// Part of the allocator or a language runtime, not the program's own
    /// code: left out when naming the site.
    pub runtime: bool,
}

impl Frame {
    /// `function (file.c:12)`, `function`, or `module+0xoffset`.
    fn describe(&self, with_line: bool) -> String {
        match (&self.function, &self.file, self.line) {
            (Some(f), Some(file), Some(line)) if with_line => {
                let base = Path::new(file)
                    .file_name()
                    .map_or(file.as_str(), |n| n.to_str().unwrap_or(file));
                format!("{} ({base}:{line})", short(f))
            }
            (Some(f), _, _) => short(f).to_string(),
            _ if self.module == "?" => format!("{:#x}", self.address),
            _ => format!("{}+{:#x}", self.module, self.address),
        }
    }
}

/// A function name without its parameter list: `Registry::add(int)` is
/// `Registry::add`; Rust names are already without their hash.
fn short(f: &str) -> &str {
    // Cut at the parameter list's `(`, not at one inside template arguments.
    let mut depth = 0i32;
    for (i, c) in f.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            '(' if depth == 0 && i > 0 => return &f[..i],
            _ => {}
        }
    }
    f
}

/// Modules whose frames are never "the program": the C library, the
/// dynamic loader, the C++ and GCC runtimes, and memtrail's own library.
fn runtime_module(name: &str) -> bool {
    const PREFIXES: [&str; 9] = [
        "libc.so",
        "libc-",
        "ld-linux",
        "ld-musl",
        "libstdc++.so",
        "libgcc_s.so",
        "libc++.so",
        "libc++abi.so",
        "libmemtrail_preload",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Functions of a language runtime compiled into the program (inlined
/// templates, Rust's standard library): not where the program allocates.
fn runtime_function(f: &str) -> bool {
    const PREFIXES: [&str; 22] = [
        "std::",
        "<std::",
        "core::",
        "<core::",
        "alloc::",
        "<alloc::",
        "hashbrown::",
        "<hashbrown::",
        "__rust",
        "__rdl_",
        "__rg_",
        "__gnu_cxx::",
        "operator new",
        "__cxa_",
        "__libc_",
        "malloc",
        "calloc",
        "realloc",
        "posix_memalign",
        "aligned_alloc",
        "_Znwm",
        "_Znam",
    ];
    // Process start-up, before main.
    const START: [&str; 3] = ["_start", "__libc_start_main", "__libc_start_call_main"];
    // Trait methods of the Rust runtime on any type:
    // `<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem`.
    const TRAITS: [&str; 4] = [" as alloc::", " as core::", " as std::", " as hashbrown::"];
    PREFIXES.iter().any(|p| f.starts_with(p))
        || START.contains(&f)
        || (f.starts_with('<') && TRAITS.iter().any(|t| f.contains(t)))
}

/// A module's file, opened once: its DWARF and symbols.
struct Loaded {
    loader: addr2line::Loader,
    /// The separate debug file (by build id), when there is one.
    debug: Option<addr2line::Loader>,
    /// Function symbols of the file and its debug file, with their sizes.
    symbols: Symbols,
}

/// Function symbols by address, with their sizes: an address is named by
/// the symbol that contains it, not merely the nearest one before it. A
/// library stripped to its exported symbols (most distribution packages)
/// has local functions between them; the nearest exported symbol before
/// such a function is another function, and naming it would send the user
/// to the wrong code (`ffi_prep_go_closure` for libffi's internal
/// `ffi_call_unix64`). An address no symbol contains stays unnamed
/// (`libffi.so.8+0x7c1a`).
#[derive(Debug, Default)]
struct Symbols(Vec<(u64, u64, String)>);

impl Symbols {
    /// The function symbols (`.symtab` and `.dynsym`) of `files`.
    fn of(files: &[&object::File<'_>]) -> Symbols {
        use object::{Object, ObjectSymbol, SymbolKind};
        let mut all = Vec::new();
        for file in files {
            all.extend(
                file.symbols()
                    .chain(file.dynamic_symbols())
                    .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
                    .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_owned()))),
            );
        }
        // One entry per address, the one with a known size first.
        all.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        all.dedup_by_key(|e| e.0);
        Symbols(all)
    }

    /// The symbol containing `address`. A symbol of size 0 (hand-written
    /// assembly without `.size`) is taken to reach the next symbol.
    fn find(&self, address: u64) -> Option<&str> {
        let at = self.0.partition_point(|e| e.0 <= address);
        let (start, size, name) = self.0.get(at.checked_sub(1)?)?;
        (*size == 0 || address - start < *size).then_some(name.as_str())
    }
}

/// Learns modules and stacks, names stacks. See the crate doc.
#[derive(Default)]
pub struct Symbolizer {
    modules: HashMap<Option<ProcessId>, Vec<NativeModule>>,
    stacks: HashMap<(Option<ProcessId>, u64), Vec<u64>>,
    /// Files by path and build id; None when unusable (missing, another build).
    files: HashMap<(String, Vec<u8>), Option<Rc<Loaded>>>,
    sites: HashMap<(Option<ProcessId>, u64), String>,
    /// Where to look for separate debug files (`.build-id/xx/rest.debug`).
    debug_dirs: Vec<PathBuf>,
}

impl std::fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolizer")
            .field("processes", &self.modules.len())
            .field("stacks", &self.stacks.len())
            .field("files", &self.files.len())
            .finish()
    }
}

impl Symbolizer {
    pub fn new() -> Symbolizer {
        Symbolizer {
            debug_dirs: vec![PathBuf::from("/usr/lib/debug")],
            ..Symbolizer::default()
        }
    }

    /// Takes note of a module or a stack; other records are ignored.
    pub fn learn(&mut self, record: &Record) {
        match record {
            Record::NativeModule(m) => {
                let list = self.modules.entry(m.process).or_default();
                if !list
                    .iter()
                    .any(|x| x.start == m.start && x.path == m.path && x.bias == m.bias)
                {
                    // A module unloaded and another loaded at its place:
                    // the newer one wins.
                    list.retain(|x| x.end <= m.start || x.start >= m.end);
                    list.push(NativeModule::clone(m));
                    self.sites.retain(|(p, _), _| *p != m.process);
                }
            }
            Record::NativeStack(s) => {
                self.stacks.insert(
                    (s.process, s.id),
                    s.frames
                        .iter()
                        .take(NativeStack::MAX_FRAMES)
                        .copied()
                        .collect(),
                );
            }
            _ => {}
        }
    }

    /// The frames of stack `id` of `process`, innermost first (inlined
    /// functions expanded); None when the stack was never recorded.
    pub fn frames(&mut self, process: Option<ProcessId>, id: u64) -> Option<Vec<Frame>> {
        let addresses = self.stacks.get(&(process, id))?.clone();
        let mut out = Vec::new();
        for (i, &address) in addresses.iter().enumerate() {
            out.extend(self.frames_at(process, address, i == 0));
        }
        Some(out)
    }

    fn frames_at(&mut self, process: Option<ProcessId>, address: u64, _first: bool) -> Vec<Frame> {
        let module = self.modules.get(&process).and_then(|list| {
            list.iter()
                .find(|m| (m.start..m.end).contains(&address))
                .cloned()
        });
        let Some(module) = module else {
            return vec![Frame {
                function: None,
                file: None,
                line: None,
                module: "?".into(),
                address,
                runtime: false,
            }];
        };
        let name = Path::new(&module.path)
            .file_name()
            .map_or(module.path.clone(), |n| n.to_string_lossy().into_owned());
        let runtime = runtime_module(&name);
        // Return addresses point after the call: look up the call itself.
        let probe = address.wrapping_sub(module.bias).wrapping_sub(1);
        let plain = |function: Option<String>| Frame {
            function,
            file: None,
            line: None,
            module: name.clone(),
            address: probe + 1,
            runtime,
        };
        if runtime {
            // Not named in reports: no need to read its debug info.
            return vec![plain(None)];
        }
        let Some(loaded) = self.load(&module) else {
            return vec![plain(None)];
        };
        let mut out = Vec::new();
        let dwarf = loaded.debug.as_ref().unwrap_or(&loaded.loader);
        if let Ok(mut frames) = dwarf.find_frames(probe) {
            while let Ok(Some(frame)) = frames.next() {
                let function = frame
                    .function
                    .as_ref()
                    .and_then(|f| f.demangle().ok())
                    .map(|f| f.into_owned());
                let (file, line) = frame
                    .location
                    .as_ref()
                    .map_or((None, None), |l| (l.file.map(str::to_string), l.line));
                let runtime = function.as_deref().is_some_and(runtime_function);
                out.push(Frame {
                    function,
                    file,
                    line,
                    module: name.clone(),
                    address: probe + 1,
                    runtime,
                });
            }
        }
        if out.iter().all(|f| f.function.is_none()) {
            let symbol = loaded
                .symbols
                .find(probe)
                .map(|s| addr2line::demangle_auto(s.into(), None).into_owned());
            let mut frame = plain(symbol);
            frame.runtime = frame.function.as_deref().is_some_and(runtime_function);
            if let Some(first) = out.first() {
                frame.file = first.file.clone();
                frame.line = first.line;
            }
            out = vec![frame];
        }
        out
    }

    /// Opens the module's file if it is the very build the process ran.
    fn load(&mut self, module: &NativeModule) -> Option<Rc<Loaded>> {
        let key = (module.path.clone(), module.build_id.clone());
        if let Some(done) = self.files.get(&key) {
            return done.clone();
        }
        let loaded = open(Path::new(&module.path), &module.build_id, &self.debug_dirs);
        self.files.insert(key, loaded.clone());
        loaded
    }

    /// The name of a stack for people: the innermost frame of the program
    /// itself with its file:line, then up to three callers, `←` between
    /// them (`keep (leak.c:12) ← tick ← main`). Unknown stacks are
    /// `stack:ID`.
    pub fn site(&mut self, process: Option<ProcessId>, id: u64) -> String {
        if let Some(name) = self.sites.get(&(process, id)) {
            return name.clone();
        }
        let name = match self.frames(process, id) {
            None => format!("stack:{id:016x}"),
            Some(frames) => site_name(&frames),
        };
        self.sites.insert((process, id), name.clone());
        name
    }

    /// A census of source `native` with its `stack:ID` keys replaced by the
    /// stacks' names; stacks of one name (the same site reached through
    /// different runtime frames) add up. Other censuses are returned as
    /// they are.
    pub fn name_census(&mut self, mut census: Census) -> Census {
        if census.source != SOURCE {
            return census;
        }
        let mut by_name: HashMap<String, u64> = HashMap::new();
        for c in &census.counts {
            let name = match c
                .key
                .strip_prefix("stack:")
                .and_then(|h| u64::from_str_radix(h, 16).ok())
            {
                Some(id) => self.site(census.process, id),
                None => c.key.clone(),
            };
            let slot = by_name.entry(name).or_default();
            *slot = slot.saturating_add(c.count);
        }
        let mut counts: Vec<CensusCount> = by_name
            .into_iter()
            .map(|(key, count)| CensusCount { key, count })
            .collect();
        counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
        census.counts = counts;
        census
    }
}

/// Longest site name: a census key is at most 512 bytes.
const MAX_SITE: usize = 500;

fn site_name(frames: &[Frame]) -> String {
    // The innermost frame that is the program's own; when every frame is
    // a runtime's (an allocation inside libc itself), the innermost known.
    let start = frames.iter().position(|f| !f.runtime).unwrap_or_else(|| {
        frames
            .iter()
            .position(|f| f.function.is_some())
            .unwrap_or(0)
    });
    let mut parts: Vec<String> = Vec::new();
    for (i, f) in frames[start.min(frames.len())..]
        .iter()
        .filter(|f| !f.runtime)
        .take(4)
        .enumerate()
    {
        let part = f.describe(i == 0);
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    if parts.is_empty() {
        return frames
            .first()
            .map_or_else(|| "(empty stack)".to_string(), |f| f.describe(true));
    }
    let mut name = parts.join(" ← ");
    if name.len() > MAX_SITE {
        let mut end = MAX_SITE;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

fn open(path: &Path, build_id: &[u8], debug_dirs: &[PathBuf]) -> Option<Rc<Loaded>> {
    use object::Object;
    // Read once: for its build id and its symbols.
    let data = std::fs::read(path).ok()?;
    let file = object::File::parse(&*data).ok()?;
    if !build_id.is_empty() && file.build_id().ok().flatten() != Some(build_id) {
        // Rebuilt or upgraded since: its addresses would name wrong code.
        return None;
    }
    let loader = addr2line::Loader::new(path).ok()?;
    let debug_path = (build_id.len() > 1)
        .then(|| {
            let hex: String = build_id.iter().map(|b| format!("{b:02x}")).collect();
            debug_dirs
                .iter()
                .map(|d| d.join(format!(".build-id/{}/{}.debug", &hex[..2], &hex[2..])))
                .find(|p| p.is_file())
        })
        .flatten();
    let debug = debug_path
        .as_ref()
        .and_then(|p| addr2line::Loader::new(p).ok());
    let debug_data = debug_path.as_ref().and_then(|p| std::fs::read(p).ok());
    let debug_file = debug_data
        .as_deref()
        .and_then(|d| object::File::parse(d).ok());
    let mut files = vec![&file];
    files.extend(debug_file.as_ref());
    let symbols = Symbols::of(&files);
    Some(Rc::new(Loaded {
        loader,
        debug,
        symbols,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, file: Option<&str>, runtime: bool) -> Frame {
        Frame {
            function: Some(function.into()),
            file: file.map(str::to_string),
            line: file.map(|_| 12),
            module: "app".into(),
            address: 0x1234,
            runtime,
        }
    }

    #[test]
    fn a_site_is_the_innermost_program_frame_and_its_callers() {
        let frames = [
            frame("malloc", None, true),
            frame("operator new(unsigned long)", None, true),
            frame(
                "std::vector<int, std::allocator<int> >::_M_realloc_insert(int const&)",
                Some("/usr/include/c++/12/vector.tcc"),
                true,
            ),
            frame("Registry::add(int)", Some("/src/registry.cpp"), false),
            frame("tick()", Some("/src/main.cpp"), false),
            frame("main", Some("/src/main.cpp"), false),
            frame("__libc_start_main", None, true),
        ];
        assert_eq!(
            site_name(&frames),
            "Registry::add (registry.cpp:12) ← tick ← main"
        );
    }

    #[test]
    fn runtime_functions_are_the_allocator_the_runtimes_and_start_up() {
        for f in [
            "<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem",
            "alloc::raw_vec::finish_grow",
            "std::_Rb_tree<int, int>::_M_insert",
            "operator new(unsigned long)",
            "_start",
        ] {
            assert!(runtime_function(f), "{f}");
        }
        for f in [
            "leaky::remember",
            "Registry::remember",
            "<leaky::Cache as leaky::Store>::put",
        ] {
            assert!(!runtime_function(f), "{f}");
        }
    }

    #[test]
    fn parameter_lists_go_but_template_arguments_stay() {
        assert_eq!(
            short("Cache<std::pair<int, int> >::put(int)"),
            "Cache<std::pair<int, int> >::put"
        );
        assert_eq!(short("leak::grow"), "leak::grow");
    }

    /// A library stripped to its exported symbols, as distributions ship
    /// them: an address inside a local function is not named after the
    /// exported function before it.
    #[test]
    fn a_local_function_of_a_stripped_library_is_not_named_after_its_neighbour() {
        use object::{Object, ObjectSymbol};
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("lib.c");
        std::fs::write(
            &source,
            "int exported_before(int x) { return x * 3 + 1; }\n\
             __attribute__((noinline, used)) static int local_helper(int x) {\n\
               int s = 0; for (int i = 0; i < x; i++) s += i * x; return s; }\n\
             int exported_after(int x) { return local_helper(x) + 2; }\n",
        )
        .unwrap();
        let full = dir.path().join("libfull.so");
        let ok = std::process::Command::new("gcc")
            .args(["-O0", "-shared", "-fPIC", "-o"])
            .arg(&full)
            .arg(&source)
            .status()
            .expect("gcc runs");
        assert!(ok.success());
        let stripped = dir.path().join("libstripped.so");
        let ok = std::process::Command::new("strip")
            .arg("--strip-unneeded")
            .arg("-o")
            .arg(&stripped)
            .arg(&full)
            .status()
            .expect("strip runs");
        assert!(ok.success());

        let data = std::fs::read(&full).unwrap();
        let file = object::File::parse(&*data).unwrap();
        let at = |name: &str| {
            file.symbols()
                .find(|s| s.name() == Ok(name))
                .map(|s| s.address())
                .unwrap_or_else(|| panic!("{name} in the unstripped library"))
        };
        let (before, helper, after) = (
            at("exported_before"),
            at("local_helper"),
            at("exported_after"),
        );
        assert!(before < helper, "the helper follows an exported function");

        let stripped = std::fs::read(&stripped).unwrap();
        let symbols = Symbols::of(&[&object::File::parse(&*stripped).unwrap()]);
        assert_eq!(symbols.find(before + 1), Some("exported_before"));
        assert_eq!(symbols.find(after + 1), Some("exported_after"));
        assert_eq!(symbols.find(helper + 1), None, "{symbols:?}");
        // With its full symbol table the helper has its own name.
        let symbols = Symbols::of(&[&file]);
        assert_eq!(symbols.find(helper + 1), Some("local_helper"));
    }
}
