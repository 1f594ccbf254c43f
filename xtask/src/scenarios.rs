//! `cargo xtask scenarios [--quick]`: real runtimes judged at 10 s, 30 s
//! and 2 min (`--quick`: 10 s), a warm-up whose growth ends at 60% of the
//! recording judged at 30 s, 60 s and 150 s, and short jobs under
//! `memtrail run --fail-on-leak`. Prints markdown tables for
//! docs/leak-detection.md ("Real runtimes"). Needs node and a JDK (`java
//! File.java`, the source launcher) besides python3.
//!
//! Each label holds by construction (tests/programs/runtimes/): a leaking
//! variant keeps every batch of ordinary objects it makes for the life of
//! the process; a steady one drops every reference; the warm-up fills a
//! cache for 60% of its run and then only replaces entries; the server
//! keeps nothing between requests.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::workspace_root;

struct Program {
    name: &'static str,
    label: &'static str,
    command: fn(&Path, &Path, u64) -> Vec<String>,
}

fn runtimes(root: &Path) -> PathBuf {
    root.join("tests/programs/runtimes")
}

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

const PROGRAMS: &[Program] = &[
    Program {
        name: "Python objects kept (leak.py leak)",
        label: "leak",
        command: |r, _, t| {
            vec![
                "python3".into(),
                s(runtimes(r).join("leak.py")),
                "leak".into(),
                t.to_string(),
            ]
        },
    },
    Program {
        name: "Python objects dropped (leak.py steady)",
        label: "no-leak",
        command: |r, _, t| {
            vec![
                "python3".into(),
                s(runtimes(r).join("leak.py")),
                "steady".into(),
                t.to_string(),
            ]
        },
    },
    Program {
        name: "Node.js objects kept (leak.js leak)",
        label: "leak",
        command: |r, _, t| {
            vec![
                "node".into(),
                s(runtimes(r).join("leak.js")),
                "leak".into(),
                t.to_string(),
            ]
        },
    },
    Program {
        name: "Node.js objects dropped (leak.js steady)",
        label: "no-leak",
        command: |r, _, t| {
            vec![
                "node".into(),
                s(runtimes(r).join("leak.js")),
                "steady".into(),
                t.to_string(),
            ]
        },
    },
    Program {
        name: "JVM strings kept (Leak.java leak)",
        label: "leak",
        command: |r, _, t| {
            vec![
                "java".into(),
                "-Xms16m".into(),
                "-XX:+UseSerialGC".into(),
                s(runtimes(r).join("Leak.java")),
                "leak".into(),
                t.to_string(),
            ]
        },
    },
    Program {
        name: "JVM strings dropped (Leak.java steady)",
        label: "no-leak",
        command: |r, _, t| {
            vec![
                "java".into(),
                "-Xms16m".into(),
                "-XX:+UseSerialGC".into(),
                s(runtimes(r).join("Leak.java")),
                "steady".into(),
                t.to_string(),
            ]
        },
    },
    Program {
        name: "HTTP server under a client's load (served.py)",
        label: "no-leak",
        command: |r, scratch, t| {
            vec![
                "python3".into(),
                s(runtimes(r).join("served.py")),
                t.to_string(),
                s(scratch),
            ]
        },
    },
];

/// The verdict and confidence (of its weakest memory finding that decides
/// it) of the command's own process in `memtrail analyze --format json`.
fn verdict(memtrail: &Path, recording: &Path) -> anyhow::Result<(String, f64, u64)> {
    let out = Command::new(memtrail)
        .args(["analyze", "--format", "json"])
        .arg(recording)
        .output()
        .context("cannot run memtrail analyze")?;
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("memtrail analyze printed no JSON")?;
    let processes = doc["processes"].as_array().context("no processes")?;
    let pids: Vec<u64> = processes.iter().filter_map(|p| p["pid"].as_u64()).collect();
    let main = processes
        .iter()
        .find(|p| !pids.contains(&p["ppid"].as_u64().unwrap_or(0)))
        .context("no command process")?;
    let verdict = main["verdict"].as_str().unwrap_or("?").to_string();
    let findings = main["findings"].as_array().cloned().unwrap_or_default();
    let confidence = findings
        .iter()
        .filter(|f| f["verdict"].as_str() == Some(verdict.as_str()))
        .filter_map(|f| f["confidence"].as_f64())
        .fold(if verdict == "leak" { 0.0 } else { 1.0 }, |a: f64, c| {
            if verdict == "leak" {
                a.max(c)
            } else {
                a.min(c)
            }
        });
    Ok((verdict, confidence, main["samples"].as_u64().unwrap_or(0)))
}

fn record(memtrail: &Path, out: &Path, extra: &[&str], command: &[String]) -> anyhow::Result<i32> {
    let status = Command::new(memtrail)
        .arg("run")
        .args(extra)
        .arg("-o")
        .arg(out)
        .arg("--")
        .args(command)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .with_context(|| format!("cannot run memtrail run -- {}", command.join(" ")))?;
    Ok(status.code().unwrap_or(-1))
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut quick = false;
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            other => bail!("unknown argument `{other}`: expected --quick"),
        }
    }
    let root = workspace_root();
    crate::cargo(&["build", "--release", "--locked", "--bin", "memtrail"])?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let memtrail = target.join("release/memtrail");
    let scratch = target.join("scenarios");
    std::fs::create_dir_all(&scratch)?;
    let durations: &[u64] = if quick { &[10] } else { &[10, 30, 120] };

    let mut header = "| program | label |".to_string();
    for d in durations {
        header += &format!(" {d} s |");
    }
    println!("{header}\n|---|---|{}", "---|".repeat(durations.len()));
    let mut right = 0;
    let mut total = 0;
    for p in PROGRAMS {
        let mut row = format!("| {} | {} |", p.name, p.label);
        for &d in durations {
            let out = scratch.join("scenario.mtr");
            let command = (p.command)(&root, &scratch, d);
            eprintln!("xtask scenarios: {} for {d} s", p.name);
            record(&memtrail, &out, &[], &command)?;
            let (v, c, n) = verdict(&memtrail, &out)?;
            total += 1;
            if v == p.label {
                right += 1;
                row += &format!(" {v} ({c:.2}; {n} samples) |");
            } else {
                row += &format!(" **{v}** ({c:.2}; {n} samples) |");
            }
        }
        println!("{row}");
    }
    println!("\n{right} of {total} verdicts right (confidence: of the findings that decided the verdict).\n");

    // A warm-up whose growth ends at 60% of the recording.
    let warmups: &[u64] = if quick { &[30] } else { &[30, 60, 150] };
    println!(
        "| Python cache filled for 60% of the run, then only replaced (leak.py warmup) | verdict |"
    );
    println!("|---|---|");
    for &d in warmups {
        let out = scratch.join("warmup.mtr");
        let command = vec![
            "python3".into(),
            s(runtimes(&root).join("leak.py")),
            "warmup".into(),
            d.to_string(),
        ];
        eprintln!("xtask scenarios: warm-up for {d} s");
        record(&memtrail, &out, &[], &command)?;
        let (v, c, n) = verdict(&memtrail, &out)?;
        println!("| {d} s | {v} ({c:.2}; {n} samples) |");
    }

    // Short jobs under --fail-on-leak, with run's adaptive sampling.
    println!("\n| short job under `run --fail-on-leak` | exit status (3 leak, 0 no leak, 4 not judged) |");
    println!("|---|---|");
    for (seconds, mode) in [
        ("0.2", "leak"),
        ("1", "leak"),
        ("2", "leak"),
        ("3", "leak"),
        ("1", "steady"),
        ("2", "steady"),
        ("3", "steady"),
    ] {
        let out = scratch.join("short.mtr");
        let command = vec![
            "python3".into(),
            s(root.join("tests/programs/short_job.py")),
            seconds.into(),
            mode.into(),
        ];
        let code = record(&memtrail, &out, &["--fail-on-leak"], &command)?;
        println!("| short_job.py {seconds} {mode} | {code} |");
    }
    Ok(())
}
