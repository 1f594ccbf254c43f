//! `memtrail demo`: a real leaking program, recorded and summarised.

use anyhow::Context;
use std::collections::HashMap;

use memtrail_format::{ProcessId, Record};
use memtrail_report::analysis::Source;
use memtrail_report::html::Html;
use memtrail_report::summary;
use memtrail_report::{Format, ReportBuilder};

use crate::cli::{DemoArgs, DetailArg, RunArgs, SamplingArgs};
use crate::units::Duration;

/// Grows a list of 256 KiB byte strings ten times a second: about
/// 2.5 MiB/s of anonymous memory that is never freed. The interpreter
/// itself is the control: its code and libraries do not grow.
const LEAKY_PY: &str = r#"
import json, os, sys, time

def mark(label):
    # A marker on the recording's timeline through the events channel that
    # `memtrail run` opened (see `memtrail mark`); never fatal.
    path = os.environ.get("MEMTRAIL_EVENTS")
    if not path:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
        try:
            os.write(fd, (json.dumps({"marker": label}) + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        pass

seconds = float(sys.argv[1])
start = time.monotonic()
cache = []
mark("leak starts")
halfway = False
while time.monotonic() < start + seconds:
    cache.append(bytearray(256 * 1024))  # zero-filled, so resident; never released
    if not halfway and time.monotonic() >= start + seconds / 2:
        mark("halfway")
        halfway = True
    time.sleep(0.1)
"#;

pub fn run(args: DemoArgs) -> anyhow::Result<u8> {
    let dir = std::env::temp_dir().join(format!("memtrail-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the demo directory {}", dir.display()))?;
    let script = dir.join("leaky.py");
    std::fs::write(&script, LEAKY_PY)
        .with_context(|| format!("cannot write the demo program {}", script.display()))?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| dir.join("memtrail-demo.mtr"));
    let seconds = args.duration.0.as_secs_f64();

    println!(
        "memtrail demo: running a Python program that leaks ~2.5 MiB/s for {seconds:.0}s,\n\
         recording it every 200ms (the same as `memtrail run --interval 200ms -- python3 leaky.py`)...\n"
    );
    // Before the status line starts drawing below it.
    std::io::Write::flush(&mut std::io::stdout()).context("cannot write to standard output")?;
    let run_args = RunArgs {
        sampling: SamplingArgs {
            interval: Duration(std::time::Duration::from_millis(200)),
            detail: DetailArg::Maps,
            maps_every: 5,
            uncompressed: false,
        },
        redact_cmdline: false,
        output: Some(output.clone()),
        fail_on_leak: false,
        python_gc: false,
        python_tracemalloc: false,
        python_frames: 3,
        native: false,
        native_rate: crate::units::Size(512 * 1024),
        command: vec![
            "python3".into(),
            script.clone().into_os_string(),
            format!("{seconds}").into(),
        ],
    };
    let outcome =
        super::run::record_command(&run_args, true).context("the demo needs python3 on PATH")?;
    if !outcome.status.success() {
        anyhow::bail!(
            "the demo program failed ({}); is python3 working?",
            outcome.status
        );
    }

    // One pass over the recording feeds the verdict and the HTML report;
    // "what was observed" is told from the same verdicts, so the two
    // agree. Samples per process are counted to say which ones were not
    // judged.
    let mut report = ReportBuilder::new();
    let mut recorded: HashMap<ProcessId, u64> = HashMap::new();
    let mut reader = memtrail_format::open(&output)
        .with_context(|| format!("cannot read back {}", output.display()))?;
    for frame in reader.by_ref() {
        let record = frame
            .with_context(|| format!("cannot read back {}", output.display()))?
            .record;
        if let Record::Process(s) = &record {
            *recorded.entry(s.id).or_default() += 1;
        }
        report.add(record);
    }
    let report = report.finish(Source {
        name: output.display().to_string(),
        complete: true,
    });
    let html = output.with_extension("html");
    std::fs::write(&html, Html.render(&report)).with_context(|| {
        crate::output::Writing(format!("cannot write the HTML report {}", html.display()))
    })?;
    println!("What was observed:");
    print!("{}", summary::observed(&report, &recorded, 3));
    println!(
        "\nThe recording is in {} ({} in {}).\n\
         Judge it again:      memtrail analyze {o}\n\
         Sparklines here:     memtrail report {o}\n\
         Compare two marks:   memtrail diff {o} --from 'marker:leak starts' --to 'marker:halfway' --anon\n\
         Rows for a sheet:    memtrail export {o} --format csv\n\
         See every sample:    memtrail dump {o} | less",
        output.display(),
        memtrail_report::count(outcome.finished.samples as usize, "sample", "samples"),
        memtrail_report::count(outcome.finished.ticks as usize, "tick", "ticks"),
        o = output.display(),
    );
    // The demo ends with the verdict, then where the report is.
    println!("\nThe verdict (memtrail analyze):");
    print!(
        "{}",
        memtrail_report::analysis::text(&report.analysis, false)
    );
    // Last, so it is what stays on the screen.
    println!(
        "\nThe report, with charts (open it in a browser): {}",
        html.display()
    );
    Ok(0)
}
