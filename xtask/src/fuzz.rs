//! `cargo xtask fuzz [--seconds S]`: runs the recording reader's cargo-fuzz
//! target (fuzz/fuzz_targets/decode.rs) for S seconds (default 60) and
//! reports the executions and the crashes found.
//!
//! cargo-fuzz needs nightly compiler features; with only the stable
//! toolchain they are enabled by `RUSTC_BOOTSTRAP=1` for this build alone.
//! cargo-fuzz itself is installed from crates.io if it is missing. The
//! corpus grows in fuzz/corpus/decode (not committed) from the committed
//! seeds in fuzz/seeds/decode; crashes land in fuzz/artifacts/decode.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use crate::workspace_root;

const TARGET: &str = "decode";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let seconds = parse_seconds(args)?;
    let root = workspace_root();
    let fuzz = root.join("fuzz");
    let corpus = fuzz.join("corpus").join(TARGET);
    let seeds = fuzz.join("seeds").join(TARGET);
    let artifacts = fuzz.join("artifacts").join(TARGET);
    std::fs::create_dir_all(&corpus)
        .with_context(|| format!("cannot create {}", corpus.display()))?;
    ensure_cargo_fuzz()?;
    let before = crashes_in(&artifacts);

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let max_total_time = format!("-max_total_time={seconds}");
    let args = [
        "fuzz",
        "run",
        TARGET,
        path_str(&corpus)?,
        path_str(&seeds)?,
        "--",
        &max_total_time,
        "-print_final_stats=1",
        // Room for several frames, a damaged stretch and a large payload.
        "-max_len=16384",
    ];
    eprintln!("$ RUSTC_BOOTSTRAP=1 cargo {}", args.join(" "));
    let mut child = Command::new(&cargo)
        .args(args)
        .current_dir(&root)
        .env("RUSTC_BOOTSTRAP", "1")
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run cargo fuzz")?;
    // libFuzzer reports on standard error: keep it for the figures, and
    // pass on what shows progress or trouble.
    let mut executions = None;
    let mut report = Vec::new();
    for line in BufReader::new(child.stderr.take().expect("piped")).lines() {
        let line = line.context("cannot read cargo fuzz's output")?;
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            executions = n.trim().parse::<u64>().ok();
        }
        // Skip the per-input progress lines and the dictionary listing.
        let noisy = (line.starts_with('#') && !line.contains("DONE") && !line.contains("pulse"))
            || line.starts_with('"')
            || line.starts_with("###### Recommended");
        if !noisy {
            eprintln!("{line}");
        }
        report.push(line);
    }
    let status = child.wait().context("cannot wait for cargo fuzz")?;
    let found: Vec<_> = crashes_in(&artifacts)
        .into_iter()
        .filter(|a| !before.contains(a))
        .collect();
    let executions = executions.map_or("an unknown number of".to_string(), |n| n.to_string());
    eprintln!(
        "xtask fuzz: {TARGET}: {executions} executions in {seconds} s, {} crashes found",
        found.len()
    );
    if !found.is_empty() {
        for a in &found {
            eprintln!("  {}", a.display());
        }
        bail!(
            "the fuzzer found crashes: reproduce one with \
             `RUSTC_BOOTSTRAP=1 cargo fuzz run {TARGET} ARTIFACT`, then add it to \
             fuzz/seeds/{TARGET} once fixed"
        );
    }
    if !status.success() {
        bail!("cargo fuzz failed ({status})");
    }
    Ok(())
}

fn parse_seconds(args: &[String]) -> anyhow::Result<u64> {
    match args {
        [] => Ok(60),
        [flag, value] if flag == "--seconds" => value
            .parse()
            .with_context(|| format!("--seconds takes a whole number, not `{value}`")),
        _ => bail!("usage: cargo xtask fuzz [--seconds S]"),
    }
}

/// Installs cargo-fuzz from crates.io unless `cargo fuzz` already runs.
fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    let present = Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        eprintln!("xtask fuzz: cargo-fuzz is missing; installing it from crates.io");
        crate::cargo(&["install", "cargo-fuzz", "--locked"])?;
    }
    Ok(())
}

/// The crash, out-of-memory, timeout and leak reports libFuzzer left.
fn crashes_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                ["crash-", "oom-", "timeout-", "leak-", "slow-unit-"]
                    .iter()
                    .any(|prefix| n.starts_with(prefix))
            })
        })
        .collect()
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}
