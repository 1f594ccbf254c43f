//! `cargo xtask <task>`: the project's automation, in Rust so it runs
//! wherever cargo does (rust-analyzer's pattern). One module per task.
//!
//! Tasks:
//!   ci     the prerequisites (installed if missing), formatting check,
//!          clippy with warnings denied, every test, report-check
//!   prereq the prerequisites alone (xtask/src/prereq.rs)
//!   docs   shell completions and man pages from the clap command
//!   dist   the stripped binary, its symbols, the wheel and the .deb
//!   dist-check  install and remove them as users would (run by `ci`)
//!   fuzz   the recording reader under cargo-fuzz
//!   soak   memtrail recording a sibling recorder for minutes
//!   report-check  the HTML report of a real recording in headless Chromium
//!   bench  whole-command benchmarks against the kernel floor and other
//!          tools (never run by `ci`: it takes minutes and needs quiet)

mod bench;
mod ci;
mod dist;
mod docs;
mod fuzz;
mod prereq;
mod report_check;
mod soak;

use std::process::{Command, ExitCode};

use anyhow::{bail, Context};

const USAGE_TASKS: &str = "\
usage: cargo xtask <task>

tasks:
  ci     check the prerequisites (installing what is missing when root
         with apt-get), then formatting, clippy (warnings denied), every
         test and report-check: what .ci/run runs and what a change must pass
  prereq check the prerequisites of `ci` (and install what is missing)
         without building anything; MEMTRAIL_XTASK_NO_INSTALL=1 only reports
  docs   write the shell completions (docs/completions) and man pages
         (docs/man) from the clap command; a test fails when they are stale
  dist [--manylinux2014]
         build into target/dist the stripped binary and its split-off
         symbols (memtrail.debug), the Python wheel (maturin) and the
         Debian package with the systemd service; prints sizes and time.
         --manylinux2014 adds a wheel for glibc 2.17+ (maturin --zig; a
         second full build, not run by ci)
  dist-check
         dist, then install and remove the wheel (pip, fresh virtualenv
         without Rust) and the .deb (dpkg -i, man, systemd-analyze verify,
         dpkg --purge) as users would; needs root; run by `ci`
  fuzz [--seconds S]
         fuzz the recording reader for S seconds (default 60) with
         cargo-fuzz (installed if missing); prints executions and crashes
  soak [--minutes M | --seconds S]
         record a sibling `memtrail record` at full detail every 10 ms for
         M minutes (default 5), keep the recording in target/soak, and
         require `memtrail analyze` to judge the recorder no-leak
  report-check [--screenshot PNG]
         record a real leak marked with `memtrail mark`, render
         `memtrail report --html` and load it in headless Chromium: no
         console message, no network request, a screenshot showing the
         charts (copied to PNG if asked; docs/report.png comes from here)";

fn usage() -> String {
    format!("{USAGE_TASKS}\n{}", bench::USAGE)
}

/// Failures are printed as messages, never with a backtrace (even with
/// RUST_BACKTRACE set): a missing package or a failing test is an outcome
/// to read, not a bug in xtask.
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci::run(),
        Some("prereq") => match &args[1..] {
            [] => prereq::ensure().map_err(anyhow::Error::msg),
            [extra, ..] => bail!("`cargo xtask prereq` takes no arguments (got `{extra}`)"),
        },
        Some("docs") => docs::run(&args[1..]),
        Some("dist") => dist::run(&args[1..]),
        Some("dist-check") => dist::check(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("soak") => soak::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("report-check") => report_check::run(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            println!("{}", usage());
            Ok(())
        }
        Some(other) => bail!("unknown task `{other}`\n\n{}", usage()),
    }
}

/// Runs `cargo ARGS` in the workspace root, failing if it fails.
pub fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("$ cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}
