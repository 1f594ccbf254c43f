//! Inside the process: the events channel (markers and censuses),
//! `memtrail mark`, the Python hooks and the Rust probe crate, against real
//! processes, real FIFOs and a real Python interpreter.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use memtrail_format::{Marker, NoticeKind, Record};
use serde_json::Value;

use crate::util::*;

fn markers(records: &[Record]) -> Vec<&Marker> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Marker(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn process_samples(records: &[Record]) -> usize {
    records
        .iter()
        .filter(|r| matches!(r, Record::Process(_)))
        .count()
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
}

/// `memtrail mark LABEL --events PATH`, which must succeed.
fn mark(events: &Path, label: &str) {
    let o = run(&["mark", label, "--events", events.to_str().unwrap()]);
    assert!(o.status.success(), "mark failed: {}", stderr(&o));
}

/// Waits until the recording at `out` holds a marker labelled `label`.
fn wait_for_marker(out: &Path, label: &str) {
    wait_for(&format!("marker {label:?} in the recording"), || {
        markers(&records(out))
            .iter()
            .any(|m| m.label == label)
            .then_some(())
    });
}

/// The line of `tests/programs/widgets.py` that allocates the payloads.
fn alloc_line() -> usize {
    let text = std::fs::read_to_string(program("widgets.py")).unwrap();
    1 + text
        .lines()
        .position(|l| l.contains("# ALLOC"))
        .expect("widgets.py marks its allocation line")
}

/// `memtrail run --interval 100ms EXTRA -o OUT -- python3 widgets.py SECONDS MODE`.
fn run_widgets(out: &Path, extra: &[&str], seconds: &str, mode: &str) -> String {
    let script = program("widgets.py");
    let mut args = vec!["run", "--interval", "100ms", "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "python3", script.to_str().unwrap(), seconds]);
    if !mode.is_empty() {
        args.push(mode);
    }
    let o = memtrail()
        .args(&args)
        .env("MEMTRAIL", env!("CARGO_BIN_EXE_memtrail"))
        .output()
        .expect("memtrail runs");
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    assert!(stdout(&o).contains("made "), "widgets.py did not finish");
    stdout(&o)
}

/// The census findings of an analysis: (pid, series, verdict).
fn census_findings(analysis: &Value) -> Vec<(u64, String, String)> {
    let mut out = Vec::new();
    for p in analysis["processes"].as_array().unwrap() {
        for f in p["findings"].as_array().unwrap() {
            if f["kind"] == "census" {
                out.push((
                    p["pid"].as_u64().unwrap(),
                    f["series"].as_str().unwrap().to_string(),
                    f["verdict"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

/// The census finding whose series `is` says it is (`what`, for
/// messages), which must be judged a leak.
fn leaking_census<'a>(
    findings: &'a [(u64, String, String)],
    what: &str,
    is: impl Fn(&str) -> bool,
) -> &'a (u64, String, String) {
    let found = findings
        .iter()
        .find(|(_, series, _)| is(series))
        .unwrap_or_else(|| panic!("no series for {what} in {findings:?}"));
    assert_eq!(found.2, "leak", "{findings:?}");
    found
}

/// `memtrail diff OUT --from marker:FROM --to marker:TO EXTRA...`, which
/// must succeed.
fn diff_between_markers(out: &Path, from: &str, to: &str, extra: &[&str]) -> Output {
    let (from, to) = (format!("marker:{from}"), format!("marker:{to}"));
    let mut args = vec!["diff", out.to_str().unwrap(), "--from", &from, "--to", &to];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "diff failed: {}", stderr(&o));
    o
}

/// The markers `memtrail dump OUT` prints, as JSON objects.
fn dumped_markers(out: &Path) -> Vec<Value> {
    stdout(&run(&["dump", out.to_str().unwrap()]))
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "marker")
        .collect()
}

#[test]
fn python_gc_names_the_class_whose_instances_accumulate_and_marks_cut_the_steps() {
    let dir = tempdir();
    let out = dir.path().join("gc.mtr");
    run_widgets(&out, &["--python-gc"], "4", "markers");

    // analyze: the Widget count is a leaking census series.
    let analysis = analyze_json(&out);
    let findings = census_findings(&analysis);
    let widget = leaking_census(&findings, "Widget", |series| {
        series == "census:gc:__main__.Widget"
    });
    let process = verdict_of(&analysis, widget.0 as u32);
    assert_eq!(process["verdict"], "leak");

    // The markers that widgets.py made with `memtrail mark` are there.
    let (_, records) = read_all(&out);
    let labels: Vec<(&str, &str)> = markers(&records)
        .iter()
        .map(|m| (m.label.as_str(), m.source.as_str()))
        .collect();
    assert_eq!(
        labels,
        [("before step", "cli"), ("after step", "cli")],
        "{labels:?}"
    );

    // The analysis names them too, and the class in its text.
    let text = stdout(&run(&["analyze", out.to_str().unwrap()]));
    assert!(text.contains("markers (2): +"), "{text}");
    assert!(text.contains("s before step; +"), "{text}");
    assert!(text.contains("gc:__main__.Widget"), "{text}");

    // diff between the markers ranks Widget first, as the gc snippet did.
    let o = diff_between_markers(&out, "before step", "after step", &["--format", "json"]);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let gc = doc["censuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"] == "gc" && c["process"]["pid"] == widget.0)
        .unwrap_or_else(|| panic!("no gc census diff: {doc:#}"));
    let top = &gc["changes"][0];
    assert_eq!(top["key"], "__main__.Widget", "{gc:#}");
    // 4 a tick for about 2 s.
    assert!(top["delta"].as_i64().unwrap() >= 80, "{top}");
    assert_eq!(
        top["after"].as_i64().unwrap() - top["before"].as_i64().unwrap(),
        top["delta"].as_i64().unwrap()
    );
    let window: Vec<&str> = doc["markers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["label"].as_str().unwrap())
        .collect();
    assert_eq!(window, ["before step", "after step"]);

    // The text says the same.
    let text = stdout(&diff_between_markers(
        &out,
        "before step",
        "after step",
        &[],
    ));
    assert!(text.contains("census gc of pid"), "{text}");
    assert!(text.contains("__main__.Widget"), "{text}");
    assert!(text.contains("markers between the two moments"), "{text}");

    // An unknown marker is a clear error naming the ones there are.
    let o = run(&["diff", out.to_str().unwrap(), "--from", "marker:nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("\"before step\""), "{}", stderr(&o));
}

#[test]
fn python_tracemalloc_names_the_line_that_allocates() {
    let dir = tempdir();
    let out = dir.path().join("tm.mtr");
    // Stopped once the recording holds enough censuses to judge: a
    // tracemalloc census takes a while on a loaded machine.
    let stop = dir.path().join("stop");
    let script = program("widgets.py");
    let child = memtrail()
        .args(["run", "--python-tracemalloc", "--interval", "100ms", "-o"])
        .arg(&out)
        .args(["--", "python3"])
        .arg(&script)
        .arg("90")
        .env("WIDGETS_STOP", &stop)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("memtrail runs");
    wait_for("40 tracemalloc censuses", || {
        let n = records(&out)
            .iter()
            .filter(|r| matches!(r, Record::Census(c) if c.source == "tracemalloc"))
            .count();
        (n >= 40).then_some(())
    });
    std::fs::write(&stop, "").unwrap();
    let o = child.wait_with_output().expect("memtrail ends");
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    let analysis = analyze_json(&out);
    let findings = census_findings(&analysis);
    let site = format!("widgets.py:{}", alloc_line());
    leaking_census(&findings, &site, |series| {
        series.starts_with("census:tracemalloc:") && series.ends_with(&site)
    });
    // The hook's own frames are not among the sites.
    assert!(
        !findings
            .iter()
            .any(|(_, s, _)| s.contains("sitecustomize") || s.contains("memtrail_hook")),
        "{findings:?}"
    );
}

#[test]
fn a_forked_python_child_reports_under_its_own_pid() {
    let dir = tempdir();
    let out = dir.path().join("fork.mtr");
    let printed = run_widgets(&out, &["--python-gc"], "4", "fork");
    let child: u64 = printed
        .lines()
        .find_map(|l| {
            l.strip_prefix("child ")?
                .strip_suffix(" done")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no child pid in {printed}"));
    let findings = census_findings(&analyze_json(&out));
    assert!(
        findings.iter().any(|(pid, series, verdict)| *pid == child
            && series == "census:gc:__main__.Widget"
            && verdict == "leak"),
        "child {child}: {findings:?}"
    );
    // The parent holds no Widgets: no finding names it.
    assert!(
        !findings
            .iter()
            .any(|(pid, series, _)| *pid != child && series == "census:gc:__main__.Widget"),
        "{findings:?}"
    );
}

#[test]
fn python_hook_chains_to_an_existing_sitecustomize() {
    let dir = tempdir();
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(
        theirs.join("sitecustomize.py"),
        "import os\nos.environ['THEIRS_RAN'] = 'yes'\n",
    )
    .unwrap();
    let out = dir.path().join("chain.mtr");
    let o = memtrail()
        .args(["run", "--python-gc", "--interval", "100ms", "-o"])
        .arg(&out)
        .args([
            "--",
            "python3",
            "-c",
            "import os, sitecustomize; print(os.environ.get('THEIRS_RAN'), sitecustomize.__file__)",
        ])
        .env("PYTHONPATH", &theirs)
        .output()
        .expect("memtrail runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = stdout(&o);
    assert!(printed.starts_with("yes "), "{printed}");
    assert!(printed.contains("theirs"), "{printed}");
}

#[test]
fn python_hook_survives_its_reader_going_away() {
    // The hook from the source tree, pointed at a FIFO this test reads a
    // little of and then closes: the program must run to its end.
    let dir = tempdir();
    let fifo = dir.path().join("events");
    mkfifo(&fifo);
    let hook = Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    // Read and write: the open does not wait for a writer, and the hook's
    // non-blocking open finds a reader.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let child = Command::new("python3")
        .arg(program("widgets.py"))
        .arg("2")
        .env("PYTHONPATH", &hook)
        .env("MEMTRAIL_EVENTS", &fifo)
        .env("MEMTRAIL_PYTHON", "gc")
        .env("MEMTRAIL_PYTHON_INTERVAL", "0.05")
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let mut lines = BufReader::new(reader);
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    assert!(first.contains("\"census\""), "{first}");
    // The reader goes away while the program still runs and counts.
    drop(lines);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 failed after its reader left");
    assert!(String::from_utf8_lossy(&out.stdout).contains("made "));
}

#[test]
fn marks_during_record_appear_in_dump_and_cut_a_diff_window() {
    let dir = tempdir();
    let events = dir.path().join("events");
    let out = dir.path().join("rec.mtr");
    let helper = hold(4);
    let recorder =
        record_in_background(helper.pid(), &out, &["--events", events.to_str().unwrap()]);
    wait_for("two ticks", || {
        (process_samples(&records(&out)) >= 2).then_some(())
    });
    mark(&events, "before step");
    wait_for_marker(&out, "before step");
    let seen = process_samples(&records(&out));
    wait_for("two more ticks", || {
        (process_samples(&records(&out)) >= seen + 2).then_some(())
    });
    mark(&events, "after step");
    wait_for_marker(&out, "after step");
    recorder.signal("INT");
    let o = recorder.wait();
    assert!(o.status.success(), "{}", stderr(&o));
    // The FIFO memtrail created is gone with the recording.
    assert!(!events.exists());

    let labels: Vec<String> = dumped_markers(&out)
        .iter()
        .map(|v| format!("{} {}", v["label"], v["source"]))
        .collect();
    assert_eq!(
        labels,
        ["\"before step\" \"cli\"", "\"after step\" \"cli\""]
    );

    let text = stdout(&diff_between_markers(
        &out,
        "before step",
        "after step",
        &[],
    ));
    assert!(text.contains("before step (cli)"), "{text}");
    assert!(text.contains("after step (cli)"), "{text}");
    drop(helper);
}

#[test]
fn a_writer_that_exits_does_not_end_the_channel_for_the_next() {
    let dir = tempdir();
    let events = dir.path().join("events");
    mkfifo(&events);
    let out = dir.path().join("rec.mtr");
    let helper = hold(1);
    let recorder =
        record_in_background(helper.pid(), &out, &["--events", events.to_str().unwrap()]);
    // A writer that opens, writes and exits, three times over.
    for label in ["one", "two", "three"] {
        wait_for("the recorder to read the FIFO", || {
            let o = run(&["mark", label, "--events", events.to_str().unwrap()]);
            o.status.success().then_some(())
        });
        wait_for_marker(&out, label);
    }
    // A long-lived writer that writes late.
    let mut writer = std::fs::OpenOptions::new()
        .write(true)
        .open(&events)
        .unwrap();
    writer.write_all(b"{\"marker\": \"late\"}\n").unwrap();
    wait_for_marker(&out, "late");
    drop(writer);
    recorder.signal("INT");
    let o = recorder.wait();
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, records) = read_all(&out);
    let labels: Vec<&str> = markers(&records).iter().map(|m| &*m.label).collect();
    assert_eq!(labels, ["one", "two", "three", "late"]);
    // A FIFO that was there before stays.
    assert!(events.exists());
}

#[test]
fn malformed_lines_become_notices_and_the_recording_stays_complete() {
    let dir = tempdir();
    let events = dir.path().join("events.jsonl");
    let huge = format!("{{\"marker\": \"{}\"}}", "x".repeat(2 << 20));
    let lines = [
        "not json at all",
        huge.as_str(),
        r#"{"census": {"source": "gc", "counts": {"dict": "many"}}}"#,
        r#"{"marker": 42}"#,
        "",
        r#"{"marker": "good", "time": 1.5e9}"#,
        r#"{"census": {"source": "gc", "counts": {"dict": 7}}, "pid": 1}"#,
    ];
    std::fs::write(&events, lines.join("\n") + "\n").unwrap();
    let helper = hold(1);
    let out = dir.path().join("rec.mtr");
    let pid = helper.pid().to_string();
    let o = run(&[
        "record",
        "--pid",
        &pid,
        "--interval",
        "50ms",
        "--count",
        "10",
        "--events",
        events.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // One warning, not one per line.
    let err = stderr(&o);
    assert_eq!(err.matches("warning").count(), 1, "{err}");
    assert!(err.contains("line 1"), "{err}");

    let (_, records) = read_all(&out);
    assert_eq!(process_samples(&records), 10);
    assert!(matches!(records.last(), Some(Record::End(_))));
    let notices: Vec<String> = records
        .iter()
        .filter_map(|r| match r {
            Record::Notice(n) if n.kind == NoticeKind::Malformed => {
                assert_eq!(n.path, events.to_str().unwrap());
                Some(n.message.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(notices.len(), 4, "{notices:?}");
    assert!(notices[0].starts_with("line 1 skipped: not JSON"));
    assert!(notices[1].starts_with("line 2 skipped: longer than"));
    assert!(notices[2].starts_with("line 3 skipped:") && notices[2].contains("whole number"));
    assert!(notices[3].starts_with("line 4 skipped:") && notices[3].contains("not a string"));
    let good = markers(&records);
    assert_eq!(good.len(), 1);
    assert_eq!(
        (good[0].label.as_str(), good[0].time_us),
        ("good", 1_500_000_000_000_000)
    );
    let census = records
        .iter()
        .find_map(|r| match r {
            Record::Census(c) => Some(c),
            _ => None,
        })
        .expect("the good census");
    // pid 1 is alive: its identity was looked up.
    assert_eq!(census.process.map(|p| p.pid), Some(1));
    assert_eq!(census.counts[0].count, 7);
}

#[test]
fn a_target_that_never_writes_costs_nothing() {
    let dir = tempdir();
    let helper = hold(1);
    let with = dir.path().join("with.mtr");
    let without = dir.path().join("without.mtr");
    let events = dir.path().join("events");
    record_samples(
        helper.pid(),
        &with,
        "50ms",
        12,
        &["--events", events.to_str().unwrap()],
    );
    record_samples(helper.pid(), &without, "50ms", 12, &[]);
    let (_, a) = read_all(&with);
    let (_, b) = read_all(&without);
    assert_eq!(process_samples(&a), 12);
    assert_eq!(process_samples(&a), process_samples(&b));
    assert_eq!(a.len(), b.len(), "the channel added records");
}

#[test]
fn mark_without_a_reader_fails_at_once_and_says_why() {
    let dir = tempdir();
    let fifo = dir.path().join("events");
    mkfifo(&fifo);
    let started = std::time::Instant::now();
    let o = Background::spawn(&["mark", "x", "--events", fifo.to_str().unwrap()]).wait();
    assert_eq!(o.status.code(), Some(2));
    assert!(started.elapsed() < PATIENCE);
    let err = stderr(&o);
    assert!(err.contains("nobody is reading"), "{err}");
    assert!(err.contains(fifo.to_str().unwrap()), "{err}");

    // No channel at all.
    let o = memtrail()
        .args(["mark", "x"])
        .env_remove("MEMTRAIL_EVENTS")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--events PATH"), "{}", stderr(&o));
}

/// `crates/probe/examples/checkpoints.rs`, built once per test run with cargo.
fn checkpoints_example() -> PathBuf {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY
        .get_or_init(|| {
            // A target directory of its own: the one running these tests is
            // locked by the cargo that runs them.
            let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("probe-target");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args([
                    "build",
                    "--quiet",
                    "--offline",
                    "--package",
                    "memtrail-probe",
                    "--example",
                    "checkpoints",
                    "--target-dir",
                ])
                .arg(&target)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("cargo runs");
            assert!(status.success(), "cargo failed to build the probe example");
            target.join("debug/examples/checkpoints")
        })
        .clone()
}

#[test]
fn probe_checkpoints_appear_as_markers_with_their_figures() {
    let example = checkpoints_example();
    let dir = tempdir();
    let out = dir.path().join("probe.mtr");
    let o = run(&[
        "run",
        "--interval",
        "50ms",
        "-o",
        out.to_str().unwrap(),
        "--",
        example.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("step 3:"), "{}", stdout(&o));
    assert!(stdout(&o).contains("marked true"), "{}", stdout(&o));

    let probes: Vec<Value> = dumped_markers(&out)
        .into_iter()
        .filter(|v| v["source"] == "probe")
        .collect();
    let labels: Vec<&str> = probes
        .iter()
        .map(|m| m["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 4, "{labels:?}");
    for (label, name) in labels.iter().zip(["start", "step 1", "step 2", "step 3"]) {
        assert!(label.starts_with(&format!("{name} (rss ")), "{labels:?}");
    }
    // Each step keeps 16 MiB: the figures say so.
    let step: Vec<&str> = labels[1].split(['(', ' ', ',']).collect();
    let delta: i64 = step[step.iter().position(|w| *w == "KiB").unwrap() + 1]
        .parse()
        .unwrap();
    assert!(delta > 8 * 1024, "{}", labels[1]);
    assert!(probes.iter().all(|m| m["pid"].as_u64().is_some()));

    // A checkpoint names a moment by its label alone.
    diff_between_markers(&out, "step 1", "step 3", &[]);
}

#[test]
fn probe_without_a_reader_neither_blocks_nor_fails() {
    let example = checkpoints_example();
    let dir = tempdir();
    let fifo = dir.path().join("events");
    mkfifo(&fifo);
    let o = Command::new(&example)
        .env("MEMTRAIL_EVENTS", &fifo)
        .output()
        .expect("example runs");
    assert!(o.status.success());
    let printed = stdout(&o);
    assert!(printed.contains("kept 48 MiB"), "{printed}");
    assert!(printed.contains("marked false"), "{printed}");
    assert!(!printed.contains("marked true"), "{printed}");
}

#[test]
fn run_without_a_usable_temporary_directory_records_without_a_channel() {
    let dir = tempdir();
    let out = dir.path().join("x.mtr");
    let missing = dir.path().join("missing");
    let o = memtrail()
        .args(["run", "--interval", "50ms", "-o"])
        .arg(&out)
        .args(["--", "sh", "-c", "test -z \"$MEMTRAIL_EVENTS\""])
        .env("TMPDIR", &missing)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no events channel"), "{}", stderr(&o));
    let (_, records) = read_all(&out);
    assert!(matches!(records.last(), Some(Record::End(_))));

    // Censuses need the channel: say so before starting anything.
    let o = memtrail()
        .args(["run", "--python-gc", "-o"])
        .arg(&out)
        .args(["--", "true"])
        .env("TMPDIR", &missing)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("set TMPDIR"), "{}", stderr(&o));
}
