//! `cargo xtask dist [--manylinux2014]`: everything a server needs, built
//! once into target/dist:
//!
//! - `memtrail`: the release binary, stripped (what every package ships);
//! - `memtrail.debug`: its symbols and line tables, split off with
//!   `objcopy --only-keep-debug` and linked back by `--add-gnu-debuglink`
//!   and the build id, so gdb, perf and addr2line find them (Debian's
//!   dh_strip does the same);
//! - `memtrail-VERSION-py3-none-manylinux_*.whl`: the binary as a Python
//!   wheel (maturin, `bindings = "bin"`, as py-spy does; python/pyproject.toml),
//!   carrying the Python hook package `python/memtrail_hook` when it exists;
//!   with `--manylinux2014`, also a wheel for older glibc ([`portable_wheel`]);
//! - `memtrail_VERSION_ARCH.deb`: binary, man pages, completions, alert
//!   rules, docs and the systemd service (deb.rs).
//!
//! One `cargo build --release` serves the stripped binary and the .deb;
//! maturin's build reuses every compiled crate and only relinks the
//! binary (with `-s`), in its own cached artifact.
//!
//! `cargo xtask dist-check` (check.rs, run by `ci`) installs and removes
//! what this builds.

mod check;
mod deb;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context};

use crate::{cargo, workspace_root};

pub use check::run as check;

/// The maturin used when none is on PATH: installed with pip into
/// target/maturin-venv (needs network once, and python3-venv on Debian).
const MATURIN_REQUIREMENT: &str = "maturin>=1.5,<2";
/// The same with zig, for `--manylinux2014`: target/maturin-zig-venv.
const MATURIN_ZIG_REQUIREMENT: &str = "maturin[zig]>=1.5,<2";

/// Libraries shipped beside the binary: (package, file under
/// target/release, directory in the .deb). Empty: the LD_PRELOAD library
/// of `run --native` (crates/preload, a cdylib, issue 14) is compiled by
/// the memtrail binary's build script and embedded in the binary, which
/// writes it out when it needs it, so every package carries it with the
/// binary. A library that must live beside the binary instead is listed
/// here, e.g. `("memtrail-preload", "libmemtrail_preload.so",
/// "/usr/lib/memtrail")`: dist builds it, strips its debug info, puts it
/// in target/dist and the .deb installs it. The wheel would need more
/// (maturin's `bin` bindings ship executables only; see docs/packaging.md).
pub const SHIPPED_LIBRARIES: &[(&str, &str, &str)] = &[];

/// What `dist` built, all under target/dist.
#[derive(Debug)]
pub struct Artifacts {
    pub binary: PathBuf,
    pub debug: PathBuf,
    pub wheel: PathBuf,
    pub deb: PathBuf,
    /// SHIPPED_LIBRARIES as built: (file in target/dist, directory in the .deb).
    pub libraries: Vec<(PathBuf, &'static str)>,
    /// `--manylinux2014` only: the wheel for glibc 2.17 and later.
    pub portable_wheel: Option<PathBuf>,
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let portable = match args {
        [] => false,
        [flag] if flag == "--manylinux2014" => true,
        _ => bail!("usage: cargo xtask dist [--manylinux2014]"),
    };
    let started = Instant::now();
    let built = build(portable)?;
    eprintln!(
        "xtask dist: built in {:.0?} into target/dist:",
        started.elapsed()
    );
    print_sizes(&built)?;
    Ok(())
}

pub fn print_sizes(built: &Artifacts) -> anyhow::Result<()> {
    let mut files = vec![&built.binary, &built.debug, &built.wheel, &built.deb];
    files.extend(built.libraries.iter().map(|(path, _)| path));
    files.extend(&built.portable_wheel);
    for path in files {
        let size = std::fs::metadata(path)
            .with_context(|| format!("cannot stat {}", path.display()))?
            .len();
        eprintln!(
            "  {:>10} bytes  {:>6.1} MiB  {}",
            size,
            size as f64 / (1024.0 * 1024.0),
            path.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    Ok(())
}

/// Builds everything into target/dist; with `portable`, also the
/// manylinux2014 wheel (a second, full build: see [`portable_wheel`]).
pub fn build(portable: bool) -> anyhow::Result<Artifacts> {
    let root = workspace_root();
    let dist = root.join("target/dist");
    if dist.exists() {
        std::fs::remove_dir_all(&dist)
            .with_context(|| format!("cannot clear {}", dist.display()))?;
    }
    std::fs::create_dir_all(&dist).with_context(|| format!("cannot create {}", dist.display()))?;

    cargo(&["build", "--release", "--locked", "-p", "memtrail"])?;
    let (binary, debug) = split_debug(&root.join("target/release/memtrail"), &dist)?;
    let libraries = shipped_libraries(&root, &dist)?;
    let wheel = wheel(&root, &dist, &maturin(&root)?, &[], None)?;
    let deb = deb::build(&root, &dist, &binary, &libraries)?;
    let portable_wheel = if portable {
        Some(portable_wheel(&root, &dist)?)
    } else {
        None
    };
    Ok(Artifacts {
        binary,
        debug,
        wheel,
        deb,
        libraries,
        portable_wheel,
    })
}

/// Builds each of SHIPPED_LIBRARIES in release and copies it, without
/// its debug info, into target/dist.
fn shipped_libraries(root: &Path, dist: &Path) -> anyhow::Result<Vec<(PathBuf, &'static str)>> {
    let mut shipped = Vec::new();
    for &(package, file, install_dir) in SHIPPED_LIBRARIES {
        cargo(&["build", "--release", "--locked", "-p", package])?;
        let built = root.join("target/release").join(file);
        ensure!(
            built.exists(),
            "package {package} built, but {} is missing: fix SHIPPED_LIBRARIES in \
             xtask/src/dist/mod.rs",
            built.display()
        );
        let copy = dist.join(file);
        run_tool(
            Command::new("objcopy")
                .arg("--strip-debug")
                .arg(&built)
                .arg(&copy),
        )?;
        shipped.push((copy, install_dir));
    }
    Ok(shipped)
}

/// Splits `built` into target/dist/memtrail (no debug info, no symbol
/// table) and target/dist/memtrail.debug (everything that was taken off),
/// linked by a .gnu_debuglink section (the file name and its CRC).
fn split_debug(built: &Path, dist: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let binary = dist.join("memtrail");
    let debug = dist.join("memtrail.debug");
    run_tool(
        Command::new("objcopy")
            .arg("--only-keep-debug")
            .arg(built)
            .arg(&debug),
    )?;
    // --add-gnu-debuglink reads the debug file by the path given and
    // stores its base name: run where both live.
    run_tool(
        Command::new("objcopy")
            .args(["--strip-all", "--add-gnu-debuglink=memtrail.debug"])
            .arg(built)
            .arg("memtrail")
            .current_dir(dist),
    )?;
    Ok((binary, debug))
}

/// Builds a wheel with `maturin build --release ARGS` into target/dist,
/// with `venv/bin` first on PATH when given.
fn wheel(
    root: &Path,
    dist: &Path,
    maturin: &Path,
    args: &[&str],
    venv: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    let out = dist.join("wheel");
    let mut command = Command::new(maturin);
    command
        .args(["build", "--release", "--locked"])
        .args(args)
        .arg("--out")
        .arg(&out)
        .current_dir(root.join("python"));
    if let Some(venv) = venv {
        let path = std::env::var("PATH").unwrap_or_default();
        command.env("PATH", format!("{}:{path}", venv.join("bin").display()));
    }
    run_tool(&mut command)?;
    let mut wheels = std::fs::read_dir(&out)
        .with_context(|| format!("cannot list {}", out.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect::<Vec<_>>();
    ensure!(
        wheels.len() == 1,
        "maturin wrote {} wheels into {}, expected one",
        wheels.len(),
        out.display()
    );
    let wheel = wheels.remove(0);
    let shipped = dist.join(wheel.file_name().context("wheel has no name")?);
    std::fs::rename(&wheel, &shipped)?;
    std::fs::remove_dir(&out)?;
    Ok(shipped)
}

/// The wheel for glibc 2.17 and later (manylinux2014: RHEL 7 and 8,
/// Debian 10 and 11, Ubuntu 18.04 and 20.04), which the default wheel,
/// tagged with the build machine's glibc, does not reach. maturin links
/// with zig (from PyPI, `maturin[zig]`) against glibc 2.17's symbols. It is
/// a second build of every crate for an explicit target, so it takes as
/// long as the release build again; CI does not run it.
fn portable_wheel(root: &Path, dist: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join("target/maturin-zig-venv");
    let maturin = python_tool(&venv, MATURIN_ZIG_REQUIREMENT)?;
    wheel(
        root,
        dist,
        &maturin,
        &["--zig", "--compatibility", "manylinux2014"],
        Some(&venv),
    )
}

/// maturin on PATH, or the one in target/maturin-venv (installed there
/// with pip on first use).
fn maturin(root: &Path) -> anyhow::Result<PathBuf> {
    if let Some(found) = which("maturin") {
        return Ok(found);
    }
    python_tool(&root.join("target/maturin-venv"), MATURIN_REQUIREMENT)
}

/// `venv/bin/maturin`, after creating `venv` and installing
/// `requirement` into it with pip if it is not there yet.
fn python_tool(venv: &Path, requirement: &str) -> anyhow::Result<PathBuf> {
    let maturin = venv.join("bin/maturin");
    if maturin.exists() {
        return Ok(maturin);
    }
    eprintln!(
        "xtask dist: installing {requirement} into {}",
        venv.display()
    );
    run_tool(Command::new("python3").args(["-m", "venv"]).arg(venv)).context(
        "cannot create a virtualenv for maturin: install python3-venv (Debian), as .ci/run does, \
         or put maturin on PATH (`pipx install maturin`)",
    )?;
    run_tool(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        requirement,
    ]))?;
    Ok(maturin)
}

/// The version of the memtrail package: `[workspace.package]`'s in the
/// root Cargo.toml (xtask does not depend on memtrail, so it reads it).
pub fn version(root: &Path) -> anyhow::Result<String> {
    let manifest = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let section = text
        .split("\n[")
        .find(|s| s.starts_with("workspace.package]"))
        .with_context(|| format!("{} has no [workspace.package]", manifest.display()))?;
    section
        .lines()
        .filter_map(|l| l.trim().strip_prefix("version"))
        .filter_map(|l| l.trim().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_string())
        .next()
        .with_context(|| {
            format!(
                "no version in [workspace.package] of {}",
                manifest.display()
            )
        })
}

/// Runs a command, echoing it, failing with its status.
pub fn run_tool(command: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{command:?}");
    eprintln!("$ {shown}");
    let status = command
        .status()
        .with_context(|| format!("cannot run {shown} (is it installed?)"))?;
    ensure!(status.success(), "{shown} failed ({status})");
    Ok(())
}

/// Runs a command and returns its standard output, failing with its
/// standard error.
pub fn output_of(command: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{command:?}");
    let out = command
        .output()
        .with_context(|| format!("cannot run {shown} (is it installed?)"))?;
    ensure!(
        out.status.success(),
        "{shown} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first executable called `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}
