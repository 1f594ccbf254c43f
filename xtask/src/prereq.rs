//! What `cargo xtask ci` needs besides Rust, checked before anything is
//! built: a fresh Debian machine with Rust, Python and gcc must either pass
//! the README's test command with no other step, or be told within seconds
//! the one command to run.
//!
//! [`PREREQUISITES`] is the one list. A test or task that needs another
//! system package or Python module adds a row there (the probe, the
//! package that provides it, why it is needed); nothing else has to change:
//! `.ci/run` runs `cargo xtask ci`, which installs the missing rows.
//!
//! This file has no dependencies: the `xtask-launch` package (what
//! `cargo xtask` runs, xtask/launch) includes it and checks before even
//! xtask is built, so a fresh clone learns what is missing in a second or
//! two; `cargo xtask ci` checks again (at no cost) in case xtask itself
//! was run directly.
//!
//! Missing rows are installed when that can work: apt packages as root with
//! `apt-get` present, rustup components with `rustup` present. Otherwise,
//! or when `MEMTRAIL_XTASK_NO_INSTALL` is set, the check stops naming the
//! command to run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How a prerequisite is found on this machine.
#[derive(Debug, Clone, Copy)]
pub enum Probe {
    /// Any of these commands on PATH.
    Command(&'static [&'static str]),
    /// A file a package installs (C headers).
    File(&'static str),
    /// A module `python3 -c "import NAME"` imports.
    PythonModule(&'static str),
    /// A cargo subcommand (`cargo NAME --version`) from a rustup component.
    Cargo(&'static str),
}

/// Where a missing prerequisite comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A Debian package (`apt-get install NAME`).
    Apt(&'static str),
    /// A rustup component (`rustup component add NAME`).
    Rustup(&'static str),
}

#[derive(Debug)]
pub struct Prerequisite {
    pub probe: Probe,
    pub source: Source,
    /// Which checks need it, for the message when it is missing.
    pub why: &'static str,
}

const fn row(probe: Probe, source: Source, why: &'static str) -> Prerequisite {
    Prerequisite { probe, source, why }
}

use Probe::{Cargo, Command as Cmd, File, PythonModule};
use Source::{Apt, Rustup};

/// Every prerequisite of `cargo xtask ci`. Add a row for a new one.
pub const PREREQUISITES: &[Prerequisite] = &[
    row(Cargo("fmt"), Rustup("rustfmt"), "the formatting check"),
    row(
        Cargo("clippy"),
        Rustup("clippy"),
        "clippy with warnings denied",
    ),
    row(
        Cmd(&["python3"]),
        Apt("python3"),
        "the test programs, the demo and the Python hook",
    ),
    // Standard-library modules the test programs import: Debian splits
    // some of the standard library into packages of its own.
    row(
        PythonModule("multiprocessing"),
        Apt("python3"),
        "tests/programs/tree.py forks workers",
    ),
    row(
        PythonModule("tracemalloc"),
        Apt("python3"),
        "the Python hook's line census",
    ),
    row(
        PythonModule("venv"),
        Apt("python3-venv"),
        "attach tests install the hook into a virtual environment",
    ),
    row(
        Cmd(&["gcc"]),
        Apt("gcc"),
        "C test programs (tests/programs/*.c) are compiled",
    ),
    row(
        Cmd(&["g++"]),
        Apt("g++"),
        "run --native tests build a C++ program",
    ),
    row(
        File("/usr/include/stdio.h"),
        Apt("libc6-dev"),
        "the C test programs include the C library's headers",
    ),
    row(
        Cmd(&["setpriv"]),
        Apt("util-linux"),
        "permission tests run as nobody",
    ),
    row(
        Cmd(&["unshare"]),
        Apt("util-linux"),
        "the pid-reuse test runs in a new pid namespace",
    ),
    row(
        Cmd(&["script"]),
        Apt("bsdutils"),
        "status-line and colour tests run under a pseudo-terminal",
    ),
    row(
        Cmd(&["curl"]),
        Apt("curl"),
        "the documentation's `curl .../metrics` example is run",
    ),
    row(
        Cmd(&["setsid"]),
        Apt("util-linux"),
        "documentation examples run in a session of their own, for Ctrl-C",
    ),
    row(
        Cmd(&["jq"]),
        Apt("jq"),
        "the documentation's examples pipe JSON through jq",
    ),
    row(
        Cmd(&["prometheus"]),
        Apt("prometheus"),
        "a real Prometheus scrapes `memtrail serve`",
    ),
    row(
        Cmd(&["promtool"]),
        Apt("prometheus"),
        "the alerting rules are unit-tested; the OpenMetrics export is backfilled",
    ),
    row(
        Cmd(&["node"]),
        Apt("nodejs"),
        "runtime scenarios: a Node.js program that leaks is judged a leak",
    ),
    row(
        Cmd(&["javac"]),
        Apt("default-jdk-headless"),
        "runtime scenarios: JVM programs run by `java File.java` (needs the JDK's compiler)",
    ),
    row(
        Cmd(&["chromium", "chromium-browser"]),
        Apt("chromium"),
        "`cargo xtask report-check` loads the HTML report in headless Chromium",
    ),
    // `cargo xtask dist-check`: builds the wheel and the .deb, installs
    // both and checks them (maturin itself is pip-installed by xtask into
    // target/maturin-venv).
    row(
        PythonModule("ensurepip"),
        Apt("python3-venv"),
        "dist-check: virtualenvs for maturin and for installing the wheel",
    ),
    row(
        Cmd(&["objcopy"]),
        Apt("binutils"),
        "dist: the release binary's symbols are split off",
    ),
    row(
        Cmd(&["man"]),
        Apt("man-db"),
        "dist-check: `man memtrail` from the installed .deb",
    ),
    row(
        Cmd(&["systemd-analyze"]),
        Apt("systemd"),
        "dist-check: `systemd-analyze verify` of the service unit",
    ),
];

/// Set (to anything) to forbid installing: the check only reports.
pub const NO_INSTALL_VAR: &str = "MEMTRAIL_XTASK_NO_INSTALL";

/// Finds what is missing, installs it when it can, and otherwise fails
/// with a message naming the command to run.
pub fn ensure() -> Result<(), String> {
    let missing = missing(PREREQUISITES);
    if missing.is_empty() {
        eprintln!("xtask: all {} prerequisites present", PREREQUISITES.len());
        return Ok(());
    }
    let forbidden = std::env::var_os(NO_INSTALL_VAR).is_some();
    let apt = packages(&missing, |s| matches!(s, Apt(_)));
    let rustup = packages(&missing, |s| matches!(s, Rustup(_)));

    let mut blocked = Vec::new();
    if !rustup.is_empty() {
        match which("rustup") {
            Some(_) if !forbidden => install_rustup(&rustup)?,
            _ => blocked.push(format!("rustup component add {}", rustup.join(" "))),
        }
    }
    if !apt.is_empty() {
        let root = is_root();
        match which("apt-get") {
            Some(_) if root && !forbidden => install_apt(&apt)?,
            Some(_) if root => blocked.push(format!("apt-get install -y {}", apt.join(" "))),
            Some(_) => blocked.push(format!("sudo apt-get install -y {}", apt.join(" "))),
            None => blocked.push(format!(
                "install with your system's package manager (Debian names): {}",
                apt.join(" ")
            )),
        }
    }
    if !blocked.is_empty() {
        let why = if forbidden {
            format!(" ({NO_INSTALL_VAR} is set, so nothing is installed)")
        } else {
            String::new()
        };
        return Err(format!(
            "missing prerequisites of `cargo xtask ci`{why}:\n{}\nrun:\n  {}",
            describe(&missing),
            blocked.join("\n  ")
        ));
    }
    // What an install should have provided and did not (a package that
    // does not ship the command on this distribution) must still stop here.
    let still = missing_from(&missing);
    if !still.is_empty() {
        return Err(format!(
            "still missing after installing:\n{}\ninstall them by hand",
            describe(&still)
        ));
    }
    Ok(())
}

fn missing(rows: &'static [Prerequisite]) -> Vec<&'static Prerequisite> {
    rows.iter().filter(|p| !present(p.probe)).collect()
}

fn missing_from(rows: &[&'static Prerequisite]) -> Vec<&'static Prerequisite> {
    rows.iter().copied().filter(|p| !present(p.probe)).collect()
}

fn present(probe: Probe) -> bool {
    match probe {
        Probe::Command(names) => names.iter().any(|n| which(n).is_some()),
        Probe::File(path) => Path::new(path).is_file(),
        Probe::PythonModule(module) => {
            quiet(Command::new("python3").args(["-c", &format!("import {module}")]))
        }
        Probe::Cargo(sub) => {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            quiet(Command::new(cargo).args([sub, "--version"]))
        }
    }
}

/// Whether the command runs and succeeds, its output discarded.
fn quiet(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn packages(missing: &[&Prerequisite], pick: impl Fn(&Source) -> bool) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = missing
        .iter()
        .filter(|p| pick(&p.source))
        .map(|p| match p.source {
            Apt(n) | Rustup(n) => n,
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn describe(missing: &[&Prerequisite]) -> String {
    missing
        .iter()
        .map(|p| {
            let what = match p.probe {
                Probe::Command(names) => names.join(" or "),
                Probe::File(path) => path.to_string(),
                Probe::PythonModule(m) => format!("python3 module {m}"),
                Probe::Cargo(sub) => format!("cargo {sub}"),
            };
            format!("  {what}: {}", p.why)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn install_rustup(components: &[&str]) -> Result<(), String> {
    let what = format!("rustup component add {}", components.join(" "));
    eprintln!("xtask: {what}");
    let status = Command::new("rustup")
        .args(["component", "add"])
        .args(components)
        .status()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    if !status.success() {
        return Err(format!("`{what}` failed ({status})"));
    }
    Ok(())
}

/// `apt-get install` with services kept from starting: the prometheus
/// package starts its daemon on install, and the tests run their own
/// server on their own port and data directory (a container without
/// systemd would fail, or keep a daemon on port 9090). policy-rc.d
/// answering 101 is Debian's documented way to forbid service starts.
fn install_apt(packages: &[&str]) -> Result<(), String> {
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let _policy = if policy.exists() {
        None
    } else {
        let cannot = |e: std::io::Error| format!("cannot write {}: {e}", policy.display());
        std::fs::write(policy, "#!/bin/sh\nexit 101\n").map_err(cannot)?;
        std::fs::set_permissions(policy, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(cannot)?;
        Some(RemoveOnDrop(policy.to_path_buf()))
    };
    eprintln!("xtask: apt-get install -y {}", packages.join(" "));
    let run = |args: &[&str]| -> Result<(), String> {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        if !status.success() {
            return Err(format!("`apt-get {}` failed ({status})", args.join(" ")));
        }
        Ok(())
    };
    run(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend_from_slice(packages);
    run(&install)
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The effective user owns /proc/self.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
