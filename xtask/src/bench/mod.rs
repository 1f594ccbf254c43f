//! `cargo xtask bench`: whole commands measured side by side against the
//! kernel floor (reading the same /proc files raw) and the tools users
//! reach for (`pmap -X`, `smem`, procpath, psrecord).
//!
//! The machine this runs on is shared and noisy, so contenders are run
//! alternately, round after round, in one run, and each figure is a median
//! over the rounds; the ratios compare medians taken under the same noise.
//!
//! Each section is one function in [`sections`] producing one [`Table`];
//! adding a section is adding a function and a line to [`SECTIONS`].

mod compression;
mod native;
mod procs;
mod python_dormant;
mod sections;
mod week;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::workspace_root;

/// One benchmark section: a name to select it by and the function that
/// measures it.
struct Section {
    name: &'static str,
    about: &'static str,
    run: fn(&Ctx) -> anyhow::Result<Table>,
}

const SECTIONS: &[Section] = &[
    Section {
        name: "snap",
        about: "one snapshot of N mappings: memtrail snap vs cat smaps, pmap -X, smem",
        run: sections::snap,
    },
    Section {
        name: "record-cpu",
        about: "CPU per sample of record vs the raw reads of its files, procpath, psrecord",
        run: sections::record_cpu,
    },
    Section {
        name: "bytes",
        about: "bytes per sample in steady state, vs procpath's SQLite",
        run: sections::bytes,
    },
    Section {
        name: "compression",
        about: "format version 2: bytes per sample of compressed recordings, compression CPU",
        run: compression::compression,
    },
    Section {
        name: "analyze",
        about: "memtrail analyze on 10^4..10^6 samples, memtrail diff of 50k mappings",
        run: sections::analyze,
    },
    Section {
        name: "week",
        about: "analyze and report over a week of 200 processes at 1 s (hourly segments)",
        run: week::week,
    },
    Section {
        name: "python-pause",
        about: "the longest pause the Python hook causes on heaps of 10^5..10^7 objects",
        run: sections::python_pause,
    },
    Section {
        name: "python-dormant",
        about: "the dormant attach hook: Python start-up with and without, its CPU per hour",
        run: python_dormant::python_dormant,
    },
    Section {
        name: "recorder-rss",
        about: "the recorder's peak RSS while recording a tree of 50 processes",
        run: sections::recorder_rss,
    },
    Section {
        name: "native",
        about: "run --native vs the program alone and heaptrack: CPU, wall, peak RSS",
        run: native::native,
    },
];

pub const USAGE: &str = "\
  bench  [--quick] [--write-docs] [SECTION...]
         compare whole commands with the kernel floor and other tools;
         sections: snap, record-cpu, bytes, compression, analyze, week,
         python-pause, python-dormant, recorder-rss, native (default: all).
         --quick: fewer rounds and sizes. --write-docs: also replace the
         generated tables in docs/performance.md. MEMTRAIL_BIN=path
         measures that memtrail binary instead of a fresh release build";

/// What every section needs: the binaries, where to put scratch files,
/// how hard to try.
pub(crate) struct Ctx {
    memtrail: PathBuf,
    helper: PathBuf,
    scratch: PathBuf,
    venv: Option<PathBuf>,
    quick: bool,
}

impl Ctx {
    /// Rounds of each whole-command comparison.
    fn rounds(&self) -> usize {
        if self.quick {
            5
        } else {
            15
        }
    }

    /// The mapping counts to measure.
    fn sizes(&self) -> &'static [usize] {
        if self.quick {
            &[1_000, 10_000]
        } else {
            &[1_000, 10_000, 50_000]
        }
    }

    fn scratch_file(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }
}

/// A markdown table with a title and notes.
pub(crate) struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    fn new(title: &str, header: &[&str]) -> Table {
        Table {
            title: title.to_owned(),
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        eprintln!("xtask bench: note: {note}");
        self.notes.push(note);
    }

    fn markdown(&self) -> String {
        let mut out = format!("### {}\n\n", self.title);
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        out += &line(&self.header);
        out += &line(&vec!["---".to_owned(); self.header.len()]);
        for row in &self.rows {
            out += &line(row);
        }
        for note in &self.notes {
            let _ = write!(out, "\n{note}\n");
        }
        out
    }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut quick = false;
    let mut write_docs = false;
    let mut chosen: Vec<&Section> = Vec::new();
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            "--write-docs" => write_docs = true,
            name => match SECTIONS.iter().find(|s| s.name == name) {
                Some(s) => chosen.push(s),
                None => {
                    let names: Vec<String> = SECTIONS
                        .iter()
                        .map(|s| format!("  {:<13}{}", s.name, s.about))
                        .collect();
                    bail!(
                        "unknown bench section `{name}`; sections:\n{}",
                        names.join("\n")
                    );
                }
            },
        }
    }
    if chosen.is_empty() {
        chosen = SECTIONS.iter().collect();
    }

    let ctx = prepare(quick)?;
    let mut doc = String::new();
    let _ = writeln!(doc, "{}", machine()?);
    let _ = writeln!(
        doc,
        "Command: `cargo xtask bench{}{}`\n",
        if quick { " --quick" } else { "" },
        if chosen.len() == SECTIONS.len() {
            String::new()
        } else {
            chosen.iter().map(|s| format!(" {}", s.name)).collect()
        }
    );
    for section in chosen {
        eprintln!("xtask bench: == {}: {}", section.name, section.about);
        let table =
            (section.run)(&ctx).with_context(|| format!("bench section {}", section.name))?;
        let md = table.markdown();
        println!("{md}");
        let _ = writeln!(doc, "{md}");
    }
    let results = ctx.scratch_file("results.md");
    std::fs::write(&results, &doc)?;
    eprintln!("xtask bench: wrote {}", results.display());
    if write_docs {
        splice_docs(&workspace_root().join("docs/performance.md"), &doc)?;
    }
    Ok(())
}

const BEGIN: &str = "<!-- BEGIN generated by `cargo xtask bench --write-docs` -->";
const END: &str = "<!-- END generated by `cargo xtask bench --write-docs` -->";

/// Replaces the generated part of docs/performance.md, keeping the prose.
fn splice_docs(path: &Path, generated: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        bail!("{} has no `{BEGIN}` ... `{END}` region", path.display());
    };
    let new = format!("{}{BEGIN}\n\n{generated}\n{}", &text[..b], &text[e..]);
    std::fs::write(path, new)?;
    eprintln!("xtask bench: updated {}", path.display());
    Ok(())
}

/// Builds memtrail (release), compiles the helper, installs the tools
/// compared against when they are missing.
fn prepare(quick: bool) -> anyhow::Result<Ctx> {
    let root = workspace_root();
    crate::cargo(&["build", "--release", "--locked", "--bin", "memtrail"])?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let scratch = target.join("bench");
    std::fs::create_dir_all(&scratch)?;
    let helper = scratch.join("memtrail-bench-mappings");
    procs::check(
        std::process::Command::new("gcc")
            .args(["-O2", "-Wall", "-o"])
            .arg(&helper)
            .arg(root.join("xtask/bench/mappings.c")),
        "gcc (apt-get install gcc libc6-dev)",
    )?;
    for (tool, package) in [("pmap", "procps"), ("smem", "smem")] {
        if !procs::on_path(tool) {
            eprintln!("xtask bench: {tool} is missing; trying `apt-get install -y {package}`");
            let _ = procs::check(
                std::process::Command::new("apt-get").args(["install", "-y", "-qq", package]),
                "apt-get",
            );
        }
    }
    let venv = target.join("bench-venv");
    let venv = if venv.join("bin/procpath").exists() && venv.join("bin/psrecord").exists() {
        Some(venv)
    } else {
        eprintln!(
            "xtask bench: installing procpath and psrecord from PyPI into {}",
            venv.display()
        );
        let made = procs::check(
            std::process::Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv),
            "python3 -m venv",
        )
        .and_then(|()| {
            procs::check(
                std::process::Command::new(venv.join("bin/pip"))
                    .args(["install", "-q", "procpath", "psrecord"]),
                "pip install procpath psrecord",
            )
        });
        match made {
            Ok(()) => Some(venv),
            Err(e) => {
                eprintln!("xtask bench: procpath and psrecord are skipped: {e:#}");
                None
            }
        }
    };
    // MEMTRAIL_BIN measures another build (an older commit, for a
    // before/after table) with the same helper and tools.
    let memtrail = std::env::var_os("MEMTRAIL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("release/memtrail"));
    eprintln!("xtask bench: measuring {}", memtrail.display());
    Ok(Ctx {
        memtrail,
        helper,
        scratch,
        venv,
        quick,
    })
}

/// The machine, for the record: CPU, cores, kernel, memtrail's commit.
fn machine() -> anyhow::Result<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown CPU".to_owned(), |(_, m)| m.trim().to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let commit = procs::stdout_of(
        std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(workspace_root()),
    )
    .unwrap_or_else(|_| "unknown".into());
    Ok(format!(
        "Machine: {model}, {cores} cores, {} GiB RAM, Linux {}; memtrail at commit {}.",
        mem_kib / (1024 * 1024),
        kernel.trim(),
        commit.trim()
    ))
}

fn median(mut values: Vec<Duration>) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.sort();
    values[values.len() / 2]
}

fn median_f64(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() {
        format!("{:.2}x", a / b)
    } else {
        "-".to_owned()
    }
}

fn thousands(n: usize) -> String {
    if n % 1000 == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--write-docs` needs its region, and the page must say what each
    /// section measures.
    #[test]
    fn performance_doc_has_the_generated_region_and_every_section() {
        let path = workspace_root().join("docs/performance.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
            panic!("{} lacks the generated region", path.display());
        };
        assert!(b < e);
        for section in SECTIONS {
            assert!(
                doc.contains(&format!("`{}`", section.name)),
                "docs/performance.md does not describe section {}",
                section.name
            );
        }
    }
}
