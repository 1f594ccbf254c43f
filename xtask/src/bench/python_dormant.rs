//! `cargo xtask bench python-dormant`: what the dormant attach listener
//! (`memtrail python-hook install`) costs every Python process: start-up
//! time of `python -c pass` and of a script importing common modules, in a
//! virtual environment with the hook against one without, alternately, and
//! the listener thread's own CPU time (its schedstat, in nanoseconds) over a
//! minute of an idle process, extrapolated to an hour.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::{median_f64, ratio, Ctx, Table};

const SCRIPT: &str = "import argparse, json, logging, subprocess, threading, decimal\n\
                      logging.getLogger('x').debug(json.dumps({'a': 1}))\n";

fn venv(dir: &Path) -> anyhow::Result<PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    let ok = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(dir)
        .status()
        .context("python3 -m venv")?;
    if !ok.success() {
        bail!("python3 -m venv {} failed", dir.display());
    }
    Ok(dir.join("bin/python"))
}

fn time_once(python: &Path, args: &[&str]) -> anyhow::Result<f64> {
    let start = Instant::now();
    let ok = Command::new(python)
        .args(args)
        .stdout(Stdio::null())
        .status()?;
    if !ok.success() {
        bail!("{} {args:?} failed", python.display());
    }
    Ok(start.elapsed().as_secs_f64() * 1e3)
}

/// Nanoseconds the thread named `name` of `pid` has run.
fn thread_ns(pid: u32, name: &str) -> anyhow::Result<u64> {
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let task = task?.path();
        if std::fs::read_to_string(task.join("comm"))?.trim_end() == name {
            let stat = std::fs::read_to_string(task.join("schedstat"))?;
            return Ok(stat.split_whitespace().next().unwrap_or("0").parse()?);
        }
    }
    bail!("no thread {name} in {pid}")
}

pub fn python_dormant(ctx: &Ctx) -> anyhow::Result<Table> {
    let hooked = venv(&ctx.scratch_file("venv-hooked"))?;
    let plain = venv(&ctx.scratch_file("venv-plain"))?;
    let ok = Command::new(&ctx.memtrail)
        .args(["python-hook", "install", "--python"])
        .arg(&hooked)
        .stdout(Stdio::null())
        .status()?;
    if !ok.success() {
        bail!("memtrail python-hook install failed");
    }
    let script = ctx.scratch_file("script.py");
    std::fs::write(&script, SCRIPT)?;
    let script_arg = script.to_string_lossy().into_owned();
    let rounds = if ctx.quick { 15 } else { 41 };
    let mut table = Table::new(
        "Python: the dormant attach hook (start-up, medians; CPU per hour)",
        &["measure", "Python alone", "with the dormant hook", "ratio"],
    );
    for (label, args) in [
        ("start-up: `python -c pass`", vec!["-c", "pass"]),
        (
            "start-up: a script importing 6 modules",
            vec![script_arg.as_str()],
        ),
    ] {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            a.push(time_once(&plain, &args)?);
            b.push(time_once(&hooked, &args)?);
        }
        let (ma, mb) = (median_f64(a), median_f64(b));
        table.row(vec![
            format!("{label} ({rounds} runs each)"),
            format!("{ma:.1} ms"),
            format!("{mb:.1} ms"),
            ratio(mb, ma),
        ]);
    }

    let seconds = if ctx.quick { 15 } else { 120 };
    let mut child = Command::new(&hooked)
        .args(["-c", "import time; time.sleep(100000)"])
        .spawn()?;
    let pid = child.id();
    let started = Instant::now();
    let first = loop {
        match thread_ns(pid, "memtrail-hook") {
            Ok(ns) => break ns,
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => return Err(e),
        }
    };
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let used = thread_ns(pid, "memtrail-hook")? - first;
    let elapsed = t0.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    let per_hour_ms = used as f64 / 1e6 * 3600.0 / elapsed;
    table.row(vec![
        format!("listener thread CPU, idle process ({seconds} s measured, × hour)"),
        "0".into(),
        format!("{per_hour_ms:.1} ms/h ({:.3} ms/min)", per_hour_ms / 60.0),
        "-".into(),
    ]);
    table.note(
        "The listener's CPU is read from its own thread's schedstat (nanoseconds on CPU): \
         dormant, it sleeps in recv on its bell socket and looks at its request path once a \
         minute unrung. Start-up compares two virtual environments of the same interpreter \
         (made with --without-pip), run alternately; the hook is byte-compiled at install.",
    );
    Ok(table)
}
