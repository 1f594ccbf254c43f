//! `cargo xtask bench native`: what `memtrail run --native` costs the
//! program it samples, against the program alone, `memtrail run` without
//! --native, and heaptrack (which traces every allocation).
//!
//! The programs report their own CPU time and peak RSS (getrusage at
//! exit), so the sampler's cost to the program is told apart from the
//! recorder's (a separate process, whose CPU is in "command CPU").

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use nix::sys::resource::{getrusage, UsageWho};

use super::{median_f64, procs, ratio, Ctx, Table};
use crate::workspace_root;

/// One run of a contender.
struct Run {
    wall: f64,
    /// The program's own CPU seconds (it prints them).
    program_cpu: f64,
    /// The whole command's CPU seconds: the program, and the recorder or
    /// heaptrack's interpreter.
    command_cpu: f64,
    /// The program's peak RSS, KiB (it prints it).
    peak_kib: f64,
}

fn children_cpu() -> anyhow::Result<f64> {
    let u = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    let s = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Ok(s(u.user_time()) + s(u.system_time()))
}

fn measure(mut cmd: Command) -> anyhow::Result<Run> {
    cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    let before = children_cpu()?;
    let start = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let wall = start.elapsed().as_secs_f64();
    let command_cpu = children_cpu()? - before;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> anyhow::Result<f64> {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .with_context(|| format!("{cmd:?} printed no `{name}`: {stdout}"))
    };
    Ok(Run {
        wall,
        program_cpu: field("cpu_us")? / 1e6,
        command_cpu,
        peak_kib: field("maxrss_kib")?,
    })
}

struct Contender {
    label: String,
    /// The command line before the program's own.
    prefix: Vec<String>,
}

pub(crate) fn native(ctx: &Ctx) -> anyhow::Result<Table> {
    let root = workspace_root();
    let allocs = ctx.scratch_file("memtrail-bench-allocs");
    procs::check(
        Command::new("gcc")
            .args(["-O2", "-g", "-Wall", "-o"])
            .arg(&allocs)
            .arg(root.join("xtask/bench/allocs.c")),
        "gcc (apt-get install gcc libc6-dev)",
    )?;
    let noop = ctx.scratch_file("memtrail-bench-noop-preload.so");
    procs::check(
        Command::new("gcc")
            .args(["-O2", "-shared", "-fPIC", "-o"])
            .arg(&noop)
            .arg(root.join("xtask/bench/noop_preload.c"))
            .arg("-ldl"),
        "gcc (apt-get install gcc libc6-dev)",
    )?;
    let python_script = root.join("xtask/bench/alloc_heavy.py");
    let (c_n, py_rounds) = if ctx.quick {
        ("20000000", "800")
    } else {
        ("60000000", "2500")
    };
    let programs: Vec<(&str, Vec<String>)> = vec![
        (
            "C: malloc/free of 16..1040 bytes (allocs.c)",
            vec![allocs.display().to_string(), c_n.to_string()],
        ),
        (
            "Python: dicts, lists, strings, bytes (alloc_heavy.py)",
            vec![
                "python3".to_string(),
                python_script.display().to_string(),
                py_rounds.to_string(),
            ],
        ),
    ];
    let out = ctx.scratch_file("native.mtr");
    let run = |extra: &[&str]| -> Vec<String> {
        let mut v = vec![ctx.memtrail.display().to_string(), "run".to_string()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v.extend([
            "-o".to_string(),
            out.display().to_string(),
            "--".to_string(),
        ]);
        v
    };
    let mut contenders = vec![
        Contender {
            label: "alone".into(),
            prefix: vec![],
        },
        Contender {
            label: "no-op interposer (the floor of LD_PRELOAD)".into(),
            prefix: vec!["env".into(), format!("LD_PRELOAD={}", noop.display())],
        },
        Contender {
            label: "`memtrail run` (outside only)".into(),
            prefix: run(&[]),
        },
        Contender {
            label: "`run --native` (512 KiB, default)".into(),
            prefix: run(&["--native"]),
        },
        Contender {
            label: "`run --native --native-rate 4MiB`".into(),
            prefix: run(&["--native", "--native-rate", "4MiB"]),
        },
        Contender {
            label: "`run --native --native-rate 32MiB`".into(),
            prefix: run(&["--native", "--native-rate", "32MiB"]),
        },
        Contender {
            label: "`run --native --native-rate 64KiB`".into(),
            prefix: run(&["--native", "--native-rate", "64KiB"]),
        },
    ];
    let heaptrack_out = ctx.scratch_file("heaptrack");
    let heaptrack = procs::on_path("heaptrack");
    if heaptrack {
        contenders.push(Contender {
            label: "heaptrack".into(),
            prefix: vec![
                "heaptrack".into(),
                "-o".into(),
                heaptrack_out.display().to_string(),
            ],
        });
    }
    let rounds = if ctx.quick { 3 } else { 7 };

    let mut table = Table::new(
        "native: what `run --native` costs the program it samples (medians)",
        &[
            "program",
            "contender",
            "wall s",
            "wall ratio",
            "program CPU s",
            "program CPU ratio",
            "command CPU s",
            "program peak RSS",
        ],
    );
    for (name, program) in &programs {
        let mut runs: Vec<Vec<Run>> = contenders.iter().map(|_| Vec::new()).collect();
        for round in 0..=rounds {
            for (i, c) in contenders.iter().enumerate() {
                let mut args = c.prefix.clone();
                args.extend(program.iter().cloned());
                let mut cmd = Command::new(&args[0]);
                cmd.args(&args[1..]);
                let r = measure(cmd).with_context(|| format!("{name}: {}", c.label))?;
                remove_heaptrack_files(&heaptrack_out);
                // Round 0 warms caches and is not counted.
                if round > 0 {
                    runs[i].push(r);
                }
            }
        }
        let med = |i: usize, f: fn(&Run) -> f64| median_f64(runs[i].iter().map(f).collect());
        let (wall0, cpu0) = (med(0, |r| r.wall), med(0, |r| r.program_cpu));
        for (i, c) in contenders.iter().enumerate() {
            let (wall, cpu) = (med(i, |r| r.wall), med(i, |r| r.program_cpu));
            table.row(vec![
                name.to_string(),
                c.label.clone(),
                format!("{wall:.2}"),
                ratio(wall, wall0),
                format!("{cpu:.2}"),
                ratio(cpu, cpu0),
                format!("{:.2}", med(i, |r| r.command_cpu)),
                format!("{:.1} MiB", med(i, |r| r.peak_kib) / 1024.0),
            ]);
        }
    }
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&noop);
    table.note(format!(
        "{rounds} rounds, contenders interleaved within each round. Program CPU and peak RSS are \
         what the program itself reports (getrusage at exit): the sampler's cost to the \
         program; command CPU adds the recorder (or heaptrack's interpreter). The no-op \
         interposer (xtask/bench/noop_preload.c) passes malloc, calloc, realloc and free \
         straight to glibc: the part of the cost any LD_PRELOAD wrapper pays."
    ));
    if !heaptrack {
        table.note("heaptrack is not installed (apt-get install heaptrack): its rows are missing.");
    }
    Ok(table)
}

fn remove_heaptrack_files(prefix: &Path) {
    let (Some(dir), Some(stem)) = (prefix.parent(), prefix.file_name()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let stem = stem.to_string_lossy().into_owned();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&stem) {
            let _ = std::fs::remove_file(PathBuf::from(dir).join(name));
        }
    }
}
