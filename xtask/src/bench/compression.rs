//! Format version 2 on disk: steady-state bytes per process sample of
//! compressed recordings against version 1 (`--uncompressed`), and the CPU
//! that compressing costs per sample.

use std::path::Path;

use anyhow::Context;

use super::procs::{self, Helper};
use super::sections::memtrail;
use super::{Ctx, Table};

/// A recording's steady state: bytes after its first tick, per process
/// sample after its first tick (keyframes, deltas, system samples, block
/// and frame overhead: every byte of the file).
struct Steady {
    bytes_per_sample: f64,
    samples: usize,
    processes: usize,
}

fn steady(ctx: &Ctx, path: &Path) -> anyhow::Result<Steady> {
    let len = std::fs::metadata(path)?.len();
    let dump = procs::stdout_of(memtrail(ctx, &["dump"]).arg(path))?;
    let field = procs::dump_field;
    let mut ticks_seen = 0;
    let mut second_tick_at = None;
    let mut samples = 0;
    let mut processes = std::collections::HashSet::new();
    for line in dump.lines().skip(1) {
        match field(line, "type").as_deref() {
            Some("system") => {
                ticks_seen += 1;
                if ticks_seen == 2 {
                    second_tick_at = field(line, "offset").and_then(|o| o.parse::<u64>().ok());
                }
            }
            Some("process") if ticks_seen >= 2 => {
                samples += 1;
                // The pid and start time identify the process.
                let id = line
                    .find("\"id\":")
                    .map(|at| &line[at..(at + 60).min(line.len())]);
                processes.insert(
                    id.unwrap_or_default()
                        .split('}')
                        .next()
                        .unwrap_or("")
                        .to_owned(),
                );
            }
            _ => {}
        }
    }
    let start = second_tick_at.context("the recording has fewer than two ticks")?;
    Ok(Steady {
        bytes_per_sample: (len - start) as f64 / samples.max(1) as f64,
        samples,
        processes: processes.len(),
    })
}

/// Records `args` twice at once into two files, version 2 and version 1:
/// the same host, the same moments.
fn record_both(ctx: &Ctx, args: &[&str], v2: &Path, v1: &Path) -> anyhow::Result<()> {
    let mut a = memtrail(ctx, args).arg("-o").arg(v2).spawn()?;
    let mut b = memtrail(ctx, args)
        .arg("--uncompressed")
        .arg("-o")
        .arg(v1)
        .spawn()?;
    let (a, b) = (a.wait()?, b.wait()?);
    anyhow::ensure!(a.success() && b.success(), "memtrail record failed");
    Ok(())
}

pub(crate) fn compression(ctx: &Ctx) -> anyhow::Result<Table> {
    let mut table = Table::new(
        "compressed recordings (format version 2) against version 1: steady-state bytes per process sample",
        &[
            "recording",
            "process samples (after the first tick)",
            "v1 B/sample",
            "v2 B/sample",
            "v1/v2",
        ],
    );
    let (v2, v1) = (ctx.scratch_file("v2.mtr"), ctx.scratch_file("v1.mtr"));
    // `record --all` on this host: a minute at 250 ms (quick: 15 s).
    let count = if ctx.quick { "61" } else { "241" };
    let mut all_v1 = None;
    for detail in ["summary", "rollup"] {
        record_both(
            ctx,
            &[
                "record",
                "--all",
                "--interval",
                "250ms",
                "--count",
                count,
                "--detail",
                detail,
            ],
            &v2,
            &v1,
        )?;
        let (a, b) = (steady(ctx, &v1)?, steady(ctx, &v2)?);
        table.row(vec![
            format!(
                "`record --all --detail {detail} --interval 250ms` ({} processes)",
                b.processes
            ),
            b.samples.to_string(),
            format!("{:.1}", a.bytes_per_sample),
            format!("{:.1}", b.bytes_per_sample),
            format!("{:.1}x", a.bytes_per_sample / b.bytes_per_sample),
        ]);
        if detail == "summary" {
            let keep = ctx.scratch_file("all-v1.mtr");
            std::fs::copy(&v1, &keep)?;
            all_v1 = Some(keep);
        }
    }
    // One process with 1,000 regions, 1% of them changing every sample.
    let helper = Helper::start(ctx, 1000, 0, 20)?;
    let pid = helper.pid().to_string();
    let count = if ctx.quick { "121" } else { "301" };
    for detail in ["maps", "full"] {
        record_both(
            ctx,
            &[
                "record",
                "--pid",
                &pid,
                "--interval",
                "20ms",
                "--count",
                count,
                "--detail",
                detail,
            ],
            &v2,
            &v1,
        )?;
        let (a, b) = (steady(ctx, &v1)?, steady(ctx, &v2)?);
        table.row(vec![
            format!("`record --pid P --detail {detail}`, 1,000 regions, ~1% changing"),
            b.samples.to_string(),
            format!("{:.0}", a.bytes_per_sample),
            format!("{:.0}", b.bytes_per_sample),
            format!("{:.1}x", a.bytes_per_sample / b.bytes_per_sample),
        ]);
    }
    drop(helper);

    // CPU: the `record --all --detail summary` ticks written both ways in
    // memory, alternately, and read back, by a release build.
    let all_v1 = all_v1.context("the summary recording")?;
    let rounds = ctx.rounds().to_string();
    let out = procs::stdout_of(
        procs::format_example("compression")
            .arg(&all_v1)
            .arg(&rounds),
    )?;
    let cpu: serde_json::Value = serde_json::from_str(out.trim())
        .with_context(|| format!("the compression example printed {out:?}"))?;
    let f = |k: &str| cpu[k].as_f64().unwrap_or(f64::NAN);
    let (samples, wp, wc, rp, rc) = (
        f("samples"),
        f("write_v1_ns"),
        f("write_v2_ns"),
        f("read_v1_ns"),
        f("read_v2_ns"),
    );
    table.note(
        "B/sample: every byte of the file after the first tick (deltas, the keyframe every 60th \
         sample, system samples, frame and block overhead) divided by the process samples after \
         the first tick; both versions recorded at once by two recorders. The compressed \
         `record --all` rows are the goal of issue 15 (<= 8 B at summary and rollup; <= 100 B for \
         1,000 regions with 1% changing).",
    );
    table.note(format!(
        "Compression CPU, in memory, on the {samples} samples of the summary recording (one \
         block per tick, release build: `cargo run --release -p memtrail-format --example \
         compression -- FILE {rounds}`, median of {rounds} alternating rounds): writing \
         {wp:.0} ns/sample in version 1, {wc:.0} ns/sample in version 2: compressing costs \
         {:.0} ns per process sample. Reading back: {rp:.0} ns/sample (v1), {rc:.0} ns/sample \
         (v2, decompression included: one frame checksum per block rather than per record).",
        wc - wp,
    ));
    Ok(table)
}
