//! The benchmark sections: each measures one question and returns a table.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use super::procs::{self, Helper, Reads};
use super::{median, median_f64, ms, ratio, thousands, Ctx, Table};

/// A command to compare, built afresh for every run.
struct Contender<'a> {
    label: String,
    build: Box<dyn Fn() -> Command + 'a>,
}

fn contender<'a>(label: impl Into<String>, build: impl Fn() -> Command + 'a) -> Contender<'a> {
    Contender {
        label: label.into(),
        build: Box::new(build),
    }
}

pub(crate) fn memtrail(ctx: &Ctx, args: &[&str]) -> Command {
    let mut cmd = Command::new(&ctx.memtrail);
    cmd.args(args);
    cmd
}

fn venv_tool(ctx: &Ctx, tool: &str) -> Option<std::path::PathBuf> {
    ctx.venv.as_ref().map(|v| v.join("bin").join(tool))
}

/// `memtrail snap` at full detail and as a table against `cat smaps` (the
/// kernel floor: producing the text is all the kernel does), `pmap -X`
/// and `smem`.
pub(crate) fn snap(ctx: &Ctx) -> anyhow::Result<Table> {
    let mut table = Table::new(
        "snap: one snapshot of a process with N anonymous mappings (wall time)",
        &["N", "command", "median ms", "vs cat smaps"],
    );
    let pmap = procs::on_path("pmap");
    let smem = procs::on_path("smem");
    if !pmap {
        table.note("pmap is not installed (apt package procps): skipped.");
    }
    if !smem {
        table.note("smem is not installed (apt package smem): skipped.");
    }
    for &n in ctx.sizes() {
        let helper = Helper::start(ctx, n, 0, 0)?;
        let pid = helper.pid().to_string();
        let pid = pid.as_str();
        let mut contenders = vec![
            contender("`cat /proc/P/smaps`", || {
                let mut c = Command::new("cat");
                c.arg(format!("/proc/{pid}/smaps"));
                c
            }),
            contender("`memtrail snap --pid P --detail full -o /dev/null`", || {
                memtrail(
                    ctx,
                    &["snap", "--pid", pid, "--detail", "full", "-o", "/dev/null"],
                )
            }),
            contender("`memtrail snap --pid P` (table)", || {
                memtrail(ctx, &["snap", "--pid", pid])
            }),
            contender("`memtrail snap --pid P --format json`", || {
                memtrail(ctx, &["snap", "--pid", pid, "--format", "json"])
            }),
        ];
        if pmap {
            contenders.push(contender("`pmap -X P`", || {
                let mut c = Command::new("pmap");
                c.args(["-X", pid]);
                c
            }));
        }
        if smem {
            // The brackets keep the pattern from matching smem's own
            // command line.
            contenders.push(contender("`smem -P memtrail-bench-[m]appings`", || {
                let mut c = Command::new("smem");
                c.args(["-P", "memtrail-bench-[m]appings"]);
                c
            }));
        }
        let rounds = if n >= 50_000 {
            ctx.rounds().min(9)
        } else {
            ctx.rounds()
        };
        let walls = interleave(&contenders, rounds)?;
        let floor = median(walls[0].clone()).as_secs_f64();
        for (c, w) in contenders.iter().zip(walls) {
            let m = median(w);
            table.row(vec![
                thousands(n),
                c.label.clone(),
                ms(m),
                ratio(m.as_secs_f64(), floor),
            ]);
        }
    }
    table.note(format!(
        "Each command ran {} times per N ({} at 50k), the contenders taking turns round after \
         round after one warm-up round; output to /dev/null. The helper \
         (xtask/bench/mappings.c) holds N anonymous mappings of two pages, one resident.",
        ctx.rounds(),
        ctx.rounds().min(9)
    ));
    Ok(table)
}

/// Runs each contender once per round, in turn, after one untimed round;
/// returns the wall times per contender.
fn interleave(contenders: &[Contender<'_>], rounds: usize) -> anyhow::Result<Vec<Vec<Duration>>> {
    let mut walls = vec![Vec::new(); contenders.len()];
    for round in 0..=rounds {
        for (i, c) in contenders.iter().enumerate() {
            let cost =
                procs::measure(&mut (c.build)()).with_context(|| format!("running {}", c.label))?;
            if round > 0 {
                walls[i].push(cost.wall);
            }
        }
    }
    Ok(walls)
}

/// A recorder to compare: how to run it for `count` samples, and how many
/// samples it really took.
struct Recorder<'a> {
    label: String,
    records: &'static str,
    run: Box<dyn Fn(u32) -> Command + 'a>,
    samples: Box<dyn Fn(u32) -> u32 + 'a>,
    /// Which raw-read row is the floor of the files it reads.
    floor: Option<usize>,
}

/// CPU per sample of `memtrail record` at each detail, against reading the
/// same files raw the same number of times, procpath and psrecord, all at
/// a 10 ms interval. Start-up is taken out: the cost of a 1-sample run is
/// subtracted from that of a `count`-sample run.
pub(crate) fn record_cpu(ctx: &Ctx) -> anyhow::Result<Table> {
    let count: u32 = if ctx.quick { 200 } else { 500 };
    let rounds = if ctx.quick { 1 } else { 3 };
    let mut table = Table::new(
        "record: CPU per sample at a 10 ms interval (user + system)",
        &[
            "N",
            "recorder",
            "records",
            "µs/sample",
            "vs raw reads of its files",
            "vs one raw smaps read",
        ],
    );
    let raw: [(&str, Reads); 5] = [
        (
            "raw reads: stat, status, cmdline, cgroup, fd/ + readlinks, meminfo",
            Reads {
                summary: true,
                smaps_rollup: false,
                smaps_every: 0,
            },
        ),
        (
            "raw reads: the above + smaps_rollup",
            Reads {
                summary: true,
                smaps_rollup: true,
                smaps_every: 0,
            },
        ),
        (
            "raw reads: the above without smaps_rollup + smaps 1 sample in 10",
            Reads {
                summary: true,
                smaps_rollup: false,
                smaps_every: 10,
            },
        ),
        (
            "raw reads: summary files + smaps every sample",
            Reads {
                summary: true,
                smaps_rollup: false,
                smaps_every: 1,
            },
        ),
        (
            "raw reads: smaps alone (one full read)",
            Reads {
                summary: false,
                smaps_rollup: false,
                smaps_every: 1,
            },
        ),
    ];
    const ONE_SMAPS: usize = 4;
    for &n in ctx.sizes().iter().filter(|&&n| n <= 10_000) {
        let helper = Helper::start(ctx, n, 0, 0)?;
        let pid = helper.pid().to_string();
        let pid = pid.as_str();
        let out = ctx.scratch_file("record-cpu.out");
        let out_s = out.display().to_string();
        let mut recorders: Vec<Recorder<'_>> = Vec::new();
        for (detail, records, floor) in [
            ("summary", "status, stat, fds", 0),
            ("rollup", "+ smaps_rollup", 1),
            ("maps", "+ every region (adaptive; the default)", 2),
            ("full", "+ every region every sample, fd targets", 3),
        ] {
            let out_s = out_s.clone();
            recorders.push(Recorder {
                label: format!("`memtrail record --detail {detail}`"),
                records,
                run: Box::new(move |count| {
                    memtrail(
                        ctx,
                        &[
                            "record",
                            "--pid",
                            pid,
                            "--interval",
                            "10ms",
                            "--detail",
                            detail,
                            "--count",
                            &count.to_string(),
                            "-o",
                            &out_s,
                        ],
                    )
                }),
                samples: Box::new(|count| count),
                floor: Some(floor),
            });
        }
        if let (Some(procpath), Some(psrecord)) =
            (venv_tool(ctx, "procpath"), venv_tool(ctx, "psrecord"))
        {
            let db = ctx.scratch_file("procpath.sqlite");
            recorders.push(Recorder {
                label: "`procpath record -f stat,cmdline,status,smaps_rollup`".into(),
                records: "stat, cmdline, status, smaps_rollup",
                run: Box::new(move |count| {
                    let _ = std::fs::remove_file(&db);
                    let mut c = Command::new(&procpath);
                    c.args(["record", "-i", "0.01", "-r", &count.to_string(), "-p", pid])
                        .args(["-f", "stat,cmdline,status,smaps_rollup", "-d"])
                        .arg(&db);
                    c
                }),
                samples: Box::new(|count| count),
                floor: Some(1),
            });
            let log = ctx.scratch_file("psrecord.log");
            let log2 = log.clone();
            recorders.push(Recorder {
                label: "`psrecord P --interval 0.01`".into(),
                records: "CPU %, RSS, VMS",
                run: Box::new(move |count| {
                    let mut c = Command::new(&psrecord);
                    c.args([pid, "--interval", "0.01", "--duration"])
                        .arg(format!("{:.2}", f64::from(count) * 0.01))
                        .arg("--log")
                        .arg(&log);
                    c
                }),
                samples: Box::new(move |_| {
                    let text = std::fs::read_to_string(&log2).unwrap_or_default();
                    text.lines().filter(|l| !l.starts_with('#')).count() as u32
                }),
                floor: None,
            });
        } else {
            table.note("procpath and psrecord could not be installed from PyPI: skipped.");
        }

        let mut per_sample: Vec<Vec<f64>> = vec![Vec::new(); recorders.len()];
        let mut raw_cost: Vec<Vec<f64>> = vec![Vec::new(); raw.len()];
        for _ in 0..rounds {
            for (i, r) in recorders.iter().enumerate() {
                let one = procs::measure(&mut (r.run)(1)).with_context(|| r.label.clone())?;
                let one_n = (r.samples)(1);
                let many = procs::measure(&mut (r.run)(count)).with_context(|| r.label.clone())?;
                let many_n = (r.samples)(count);
                let extra = many_n.saturating_sub(one_n).max(1);
                per_sample[i]
                    .push(many.cpu.saturating_sub(one.cpu).as_secs_f64() / f64::from(extra));
            }
            for (i, (_, reads)) in raw.iter().enumerate() {
                raw_cost[i].push(
                    procs::raw_reads(helper.pid(), *reads, count, Duration::from_millis(10))?
                        .as_secs_f64(),
                );
            }
        }
        let raw_median: Vec<f64> = raw_cost.into_iter().map(median_f64).collect();
        let us = |s: f64| format!("{:.0}", s * 1e6);
        for (r, costs) in recorders.iter().zip(per_sample) {
            let m = median_f64(costs);
            table.row(vec![
                thousands(n),
                r.label.clone(),
                r.records.to_owned(),
                us(m),
                r.floor.map_or("-".into(), |f| ratio(m, raw_median[f])),
                ratio(m, raw_median[ONE_SMAPS]),
            ]);
        }
        for ((label, _), m) in raw.iter().zip(&raw_median) {
            table.row(vec![
                thousands(n),
                (*label).to_owned(),
                "(kernel floor)".into(),
                us(*m),
                "1.00x".into(),
                ratio(*m, raw_median[ONE_SMAPS]),
            ]);
        }
    }
    table.note(format!(
        "CPU is getrusage(RUSAGE_CHILDREN) around each run; per sample = (CPU of a {count}-sample \
         run - CPU of a 1-sample run) / the extra samples, so interpreter and process start-up \
         are left out. Median of {rounds} round(s), recorders taking turns. Raw reads: the same \
         files opened and read to the end (no parsing) by the benchmark itself, one sample \
         every 10 ms, getrusage(RUSAGE_SELF). \
         The helper process is static, so the adaptive policy re-reads smaps 1 sample in 10."
    ));
    Ok(table)
}

/// Frame sizes of a recording by record type, from `memtrail dump`.
struct FrameSizes {
    /// Process frames after each process's first (its first keyframe).
    process: Vec<u64>,
    /// The same, split: delta frames and the periodic keyframes.
    deltas: Vec<u64>,
    keyframes: Vec<u64>,
    system: Vec<u64>,
}

fn frame_sizes(ctx: &Ctx, file: &Path) -> anyhow::Result<FrameSizes> {
    let dump = procs::stdout_of(memtrail(ctx, &["dump"]).arg(file))?;
    let len = std::fs::metadata(file)?.len();
    let field = procs::dump_field;
    let frames: Vec<(u64, String, String)> = dump
        .lines()
        .filter_map(|l| {
            Some((
                field(l, "offset")?.parse().ok()?,
                field(l, "type")?,
                field(l, "encoding")?,
            ))
        })
        .collect();
    let mut sizes = FrameSizes {
        process: Vec::new(),
        deltas: Vec::new(),
        keyframes: Vec::new(),
        system: Vec::new(),
    };
    let mut first_process = true;
    for (i, (offset, kind, encoding)) in frames.iter().enumerate() {
        let next = frames.get(i + 1).map_or(len, |f| f.0);
        let size = next - offset;
        match kind.as_str() {
            "process" if first_process => first_process = false,
            "process" => {
                sizes.process.push(size);
                match encoding.as_str() {
                    "delta" => sizes.deltas.push(size),
                    _ => sizes.keyframes.push(size),
                }
            }
            "system" => sizes.system.push(size),
            _ => {}
        }
    }
    Ok(sizes)
}

fn mean(v: &[u64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<u64>() as f64 / v.len() as f64
}

/// Bytes per sample in steady state at each level, for a static process
/// and for one whose regions change 1% per sample; procpath's SQLite for
/// comparison.
pub(crate) fn bytes(ctx: &Ctx) -> anyhow::Result<Table> {
    // Whole keyframe periods (a keyframe every 60th sample) after the
    // first sample, so the mean is the steady state.
    let count: u32 = if ctx.quick { 121 } else { 301 };
    let mut table = Table::new(
        "bytes per sample in steady state (one process with 1k mappings)",
        &[
            "recording",
            "regions changing",
            "B/sample (process frames, mean)",
            "delta frame (median)",
            "keyframe",
            "B/tick (system frame)",
        ],
    );
    let out = ctx.scratch_file("bytes.mtr");
    for (detail, churn_ms) in [("summary", 0), ("maps", 0), ("maps", 20), ("full", 20)] {
        let helper = Helper::start(ctx, 1000, 0, churn_ms)?;
        let pid = helper.pid().to_string();
        let interval = if churn_ms > 0 { "20ms" } else { "10ms" };
        procs::measure(
            memtrail(
                ctx,
                &[
                    "record",
                    "--pid",
                    &pid,
                    "--interval",
                    interval,
                    "--detail",
                    detail,
                    "--count",
                    &count.to_string(),
                    "--uncompressed",
                    "-o",
                ],
            )
            .arg(&out),
        )?;
        let sizes = frame_sizes(ctx, &out)?;
        let median_u64 = |mut v: Vec<u64>| {
            v.sort_unstable();
            v.get(v.len() / 2).map_or("-".to_owned(), u64::to_string)
        };
        table.row(vec![
            format!("`memtrail record --detail {detail} --uncompressed`"),
            if churn_ms > 0 {
                "~1% per sample".into()
            } else {
                "none".into()
            },
            format!("{:.0}", mean(&sizes.process)),
            median_u64(sizes.deltas),
            median_u64(sizes.keyframes),
            format!("{:.0}", mean(&sizes.system)),
        ]);
    }
    if let Some(procpath) = venv_tool(ctx, "procpath") {
        let helper = Helper::start(ctx, 1000, 0, 0)?;
        let pid = helper.pid().to_string();
        let db = ctx.scratch_file("bytes.sqlite");
        let size = |n: u32| -> anyhow::Result<u64> {
            let _ = std::fs::remove_file(&db);
            procs::measure(
                Command::new(&procpath)
                    .args(["record", "-i", "0.01", "-r", &n.to_string(), "-p", &pid])
                    .args(["-f", "stat,cmdline,status,smaps_rollup", "-d"])
                    .arg(&db),
            )?;
            Ok(std::fs::metadata(&db)?.len())
        };
        let one = size(1)?;
        let many = size(count)?;
        table.row(vec![
            "procpath SQLite, `-f stat,cmdline,status,smaps_rollup`".into(),
            "none".into(),
            format!("{:.0}", (many - one) as f64 / f64::from(count - 1)),
            "-".into(),
            "-".into(),
            "-".into(),
        ]);
    }
    table.note(format!(
        "{count} samples per recording. B/sample: the mean size of a process's frames after its \
         first (deltas, and the keyframe every 60th sample: whole periods), from the frame offsets `memtrail \
         dump` prints. Every tick also writes one system frame (meminfo, cgroup memory). \
         procpath: (database size after {count} samples - after 1) / {}.",
        count - 1
    ));
    Ok(table)
}

/// The recorder's peak RSS while recording a tree of 50 children.
pub(crate) fn recorder_rss(ctx: &Ctx) -> anyhow::Result<Table> {
    let mut table = Table::new(
        "recorder memory: peak RSS (VmHWM) recording a parent and 50 children",
        &["mappings per process", "detail", "peak RSS MiB"],
    );
    let sizes: &[usize] = if ctx.quick { &[1_000] } else { &[100, 1_000] };
    let out = ctx.scratch_file("rss.mtr");
    for &n in sizes {
        let helper = Helper::start(ctx, n, 50, 0)?;
        let pid = helper.pid().to_string();
        for detail in ["maps", "full"] {
            let kib = procs::peak_rss_kib(
                memtrail(
                    ctx,
                    &[
                        "record",
                        "--pid",
                        &pid,
                        "--children",
                        "--interval",
                        "100ms",
                        "--count",
                        "30",
                        "--detail",
                        detail,
                        "-o",
                    ],
                )
                .arg(&out),
            )?;
            table.row(vec![
                thousands(n),
                detail.to_owned(),
                format!("{:.1}", kib as f64 / 1024.0),
            ]);
        }
    }
    table.note(
        "`memtrail record --pid P --children --interval 100ms --count 30`, its VmHWM polled \
         every 20 ms. Each process holds the helper's N mappings (the children are forks).",
    );
    Ok(table)
}

/// `memtrail analyze` on synthetic recordings of 10^4..10^6 samples (wall
/// time and peak RSS: streaming keeps memory bounded), and `memtrail diff`
/// of two snapshots of a process with 50k mappings.
pub(crate) fn analyze(ctx: &Ctx) -> anyhow::Result<Table> {
    let mut table = Table::new(
        "analyze and diff: whole commands (wall time, peak RSS)",
        &[
            "input",
            "command",
            "median ms",
            "per sample",
            "peak RSS MiB",
        ],
    );
    let sizes: &[u64] = if ctx.quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    for &n in sizes {
        let file = ctx.scratch_file(&format!("synthetic-{n}.mtr"));
        crate::cargo(&[
            "run",
            "--release",
            "--locked",
            "-q",
            "-p",
            "memtrail-diff",
            "--example",
            "synthetic",
            "--",
            &n.to_string(),
            file.to_str().context("UTF-8 scratch path")?,
        ])?;
        let path = file.to_str().context("UTF-8 scratch path")?;
        let c = contender("`memtrail analyze FILE --format json`", || {
            memtrail(ctx, &["analyze", path, "--format", "json"])
        });
        let walls = interleave(std::slice::from_ref(&c), ctx.rounds().min(7))?;
        let m = median(walls[0].clone());
        let kib = procs::peak_rss_kib(&mut memtrail(ctx, &["analyze", path, "--format", "json"]))?;
        // A run shorter than the 20 ms poll shows no peak at all.
        let peak = if kib < 1024 {
            "(ran < 20 ms)".to_owned()
        } else {
            format!("{:.1}", kib as f64 / 1024.0)
        };
        table.row(vec![
            format!("{} samples", thousands(n as usize)),
            c.label.clone(),
            ms(m),
            format!("{:.2} µs", m.as_secs_f64() * 1e6 / n as f64),
            peak,
        ]);
    }

    let n = if ctx.quick { 10_000 } else { 50_000 };
    let helper = Helper::start(ctx, n, 0, 0)?;
    let pid = helper.pid().to_string();
    let (a, b) = (
        ctx.scratch_file("diff-a.mtr"),
        ctx.scratch_file("diff-b.mtr"),
    );
    for out in [&a, &b] {
        procs::check(
            memtrail(ctx, &["snap", "--pid", &pid, "--detail", "full", "-o"]).arg(out),
            "memtrail snap",
        )?;
    }
    let (a, b) = (
        a.to_str().context("UTF-8 scratch path")?,
        b.to_str().context("UTF-8 scratch path")?,
    );
    for (label, args) in [
        (
            "`memtrail diff A B --format json`",
            vec!["diff", a, b, "--format", "json"],
        ),
        ("`memtrail diff A B` (table)", vec!["diff", a, b]),
    ] {
        let c = contender(label, || memtrail(ctx, &args));
        let walls = interleave(std::slice::from_ref(&c), ctx.rounds())?;
        let kib = procs::peak_rss_kib(&mut memtrail(ctx, &args))?;
        table.row(vec![
            format!("2 snapshots of {} mappings", thousands(n)),
            label.to_owned(),
            ms(median(walls[0].clone())),
            String::new(),
            format!("{:.1}", kib as f64 / 1024.0),
        ]);
    }
    table.note(
        "The recordings are written by `cargo run --release -p memtrail-diff --example \
         synthetic -- N FILE`: one process leaking 4 KiB per sample under noise, at detail \
         rollup, a keyframe every 60 samples. Peak RSS is VmHWM polled every 20 ms. The \
         library alone (criterion, `cargo bench -p memtrail-diff`): see the table above.",
    );
    Ok(table)
}

/// The longest pause the Python hook causes on heaps of 10^5..10^7 live
/// objects: xtask/bench/python_pause.py runs a program that spins and
/// notes the longest gap between its iterations, without the hook, with
/// censuses only, and with censuses and retention chains.
pub(crate) fn python_pause(ctx: &Ctx) -> anyhow::Result<Table> {
    let mut table = Table::new(
        "Python hook: longest pause of the program's main thread",
        &[
            "live objects",
            "hook",
            "longest pause ms",
            "p99 gap ms",
            "longest gc call ms",
            "censuses",
            "retention lines",
        ],
    );
    let (sizes, seconds): (&[&str], &str) = if ctx.quick {
        (&["100000", "1000000"], "15")
    } else {
        (&["100000", "1000000", "10000000"], "40")
    };
    let script = crate::workspace_root().join("xtask/bench/python_pause.py");
    let mut command = Command::new("python3");
    command
        .arg(&script)
        .args(["--seconds", seconds])
        .args(sizes);
    let out = command
        .output()
        .with_context(|| format!("python3 {}", script.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "python3 {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).context("python_pause.py output")?;
        let mode = match v["mode"].as_str() {
            Some("off") => "none",
            Some("census") => "censuses",
            _ => "censuses + chains",
        };
        table.row(vec![
            thousands(v["objects"].as_u64().unwrap_or(0) as usize),
            mode.to_owned(),
            format!("{:.1}", v["worst_ms"].as_f64().unwrap_or(0.0)),
            format!("{:.1}", v["p99_ms"].as_f64().unwrap_or(0.0)),
            format!("{:.1}", v["longest_call_ms"].as_f64().unwrap_or(0.0)),
            v["censuses"].to_string(),
            v["retention_lines"].to_string(),
        ]);
    }
    table.note(format!(
        "Each run lasts {seconds} s after its heap is built, with a census every second \
         (at most ~10% of the time) and a round of chains at most every 2 s (at most ~5% \
         of the time, each walk given 1 s). A pause is the longest time the program's \
         main thread did not run: without the hook it is the program's own garbage \
         collections and the machine's load."
    ));
    Ok(table)
}
