//! `memtrail analyze`: files, live streams, follow mode, the JSON contract
//! and the exit status for CI.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::*;

/// Records `leak malloc` (or `sleep`) for 40 samples at 50 ms.
fn recording(dir: &std::path::Path, leaking: bool) -> std::path::PathBuf {
    let out = dir.join(if leaking { "leak.mtr" } else { "flat.mtr" });
    let mut child = if leaking {
        Command::new(leak_binary()).args(["malloc", "60"]).spawn()
    } else {
        Command::new("sleep").arg("60").spawn()
    }
    .expect("target starts");
    // Killed even if recording fails: the target must not outlive the test.
    let recorded = std::panic::catch_unwind(|| record_samples(child.id(), &out, "50ms", 40, &[]));
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = recorded {
        std::panic::resume_unwind(panic);
    }
    out
}

#[test]
fn json_contract_and_fail_on_leak() {
    let dir = tempdir();
    let leak = recording(dir.path(), true);
    let flat = recording(dir.path(), false);

    let doc = analyze_json(&leak);
    assert_eq!(doc["complete"], true);
    assert_eq!(doc["leaks"], 1);
    let p = &doc["processes"][0];
    for key in [
        "pid",
        "ppid",
        "start_time",
        "command",
        "samples",
        "verdict",
        "findings",
    ] {
        assert!(!p[key].is_null(), "`{key}` missing: {p:#}");
    }
    assert_eq!(p["verdict"], "leak");
    for f in p["findings"].as_array().unwrap() {
        for key in ["series", "kind", "verdict", "growth_per_hour", "confidence"] {
            assert!(!f[key].is_null(), "`{key}` missing: {f:#}");
        }
        let c = f["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&c));
    }
    // A process with a leaking finding is a leaking process, and the
    // memory leak projects when MemAvailable runs out.
    let anon = p["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["series"] == "anon")
        .unwrap();
    assert_eq!(anon["verdict"], "leak");
    assert_eq!(anon["time_to_limit"]["limit"], "MemAvailable", "{anon:#}");
    assert!(anon["time_to_limit"]["seconds"].as_f64().unwrap() > 0.0);

    let o = run(&["analyze", leak.to_str().unwrap(), "--fail-on-leak"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("LEAK"), "{}", stdout(&o));
    let o = run(&["analyze", flat.to_str().unwrap(), "--fail-on-leak"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).starts_with("ok"), "{}", stdout(&o));
    assert_eq!(analyze_json(&flat)["processes"][0]["verdict"], "no-leak");
}

#[test]
fn a_live_stream_gets_updates_and_a_final_verdict() {
    let leaker = Command::new(leak_binary())
        .args(["malloc", "60"])
        .spawn()
        .expect("leak starts");
    let mut record = memtrail()
        .args([
            "record",
            "--pid",
            &leaker.id().to_string(),
            "--interval",
            "50ms",
            "--count",
            "40",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("record starts");
    let analyze = memtrail()
        .args(["analyze", "-", "--format", "json", "--update", "100ms"])
        .stdin(record.stdout.take().expect("piped"))
        .output()
        .expect("analyze runs");
    assert!(record.wait().expect("record exits").success());
    let mut leaker = leaker;
    let _ = leaker.kill();
    let _ = leaker.wait();
    assert!(analyze.status.success(), "{}", stderr(&analyze));
    let docs: Vec<Value> = stdout(&analyze)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON document per line"))
        .collect();
    assert!(
        docs.len() >= 2,
        "expected updates before the final verdict: {docs:?}"
    );
    assert!(docs[..docs.len() - 1]
        .iter()
        .all(|d| d["complete"] == false));
    let last = docs.last().unwrap();
    assert_eq!(last["complete"], true);
    assert_eq!(verdict_of(last, leaker.id())["verdict"], "leak", "{last:#}");
    // Updates grow as the stream does.
    assert!(docs[0]["samples"].as_u64() < last["samples"].as_u64());
}

#[test]
fn follow_reads_a_file_as_it_is_written() {
    let dir = tempdir();
    let out = dir.path().join("growing.mtr");
    let target = Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("sleep starts");
    let recorder = Background::spawn(&[
        "record",
        "--pid",
        &target.id().to_string(),
        "--interval",
        "50ms",
        "--count",
        "30",
        "-o",
        out.to_str().unwrap(),
    ]);
    // Start following once the header exists (analyze needs it to start).
    wait_for("the recording to start", || {
        std::fs::metadata(&out).ok().filter(|m| m.len() > 64)
    });
    let mut follow = memtrail()
        .args([
            "analyze",
            out.to_str().unwrap(),
            "--follow",
            "--format",
            "json",
            "--update",
            "1h",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("analyze starts");
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let line = lines.next().expect("a final verdict").expect("readable");
    let doc: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        doc["complete"], true,
        "follow stops at the end frame: {doc:#}"
    );
    assert_eq!(doc["samples"], 30);
    assert!(follow.wait().unwrap().success());
    let _ = recorder.wait();
    let mut target = target;
    let _ = target.kill();
    let _ = target.wait();
}

#[test]
fn a_torn_recording_is_judged_with_a_note() {
    let dir = tempdir();
    let whole = recording(dir.path(), true);
    let bytes = std::fs::read(&whole).unwrap();
    let torn = dir.path().join("torn.mtr");
    std::fs::write(&torn, &bytes[..bytes.len() - 40]).unwrap();
    let o = run(&["analyze", torn.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no end frame"), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("LEAK"), "{}", stdout(&o));

    let o = run(&["analyze", dir.path().join("nope.mtr").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope.mtr"));
}

#[test]
fn run_prints_the_analysis_and_fails_on_leak() {
    let dir = tempdir();
    let out = dir.path().join("run.mtr");
    let binary = leak_binary();
    let run_failing_on_leak = |command: &[&str]| {
        let mut args = vec![
            "run",
            "--interval",
            "100ms",
            "--fail-on-leak",
            "-o",
            out.to_str().unwrap(),
            "--",
        ];
        args.extend_from_slice(command);
        run(&args)
    };
    let o = run_failing_on_leak(&[binary.to_str().unwrap(), "malloc", "3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("LEAK"), "{}", stderr(&o));

    let o = run_failing_on_leak(&["sleep", "3"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("0 of 1 process leaks"),
        "{}",
        stderr(&o)
    );
}

/// Two Python programs under one interpreter path: analyze tells them
/// apart by their scripts, keeps their pids, and uses a wider terminal
/// (regression: both showed as `…/bin/python3 le…`, even with COLUMNS=200).
#[test]
fn processes_of_one_interpreter_are_told_apart_by_their_scripts() {
    let dir = tempdir();
    let services = dir
        .path()
        .join("a-rather-long-directory/of-the-ingest-services");
    std::fs::create_dir_all(&services).unwrap();
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs");
    let python = String::from_utf8(python.stdout).unwrap().trim().to_string();
    let mut workers = Vec::new();
    for name in ["worker_a.py", "worker_b.py"] {
        let script = services.join(name);
        std::fs::copy(program("hold.py"), &script).unwrap();
        let mut child = Command::new(&python)
            .arg("-u")
            .arg(&script)
            .arg("1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        workers.push((Killed(child), name));
    }
    let file = dir.path().join("workers.mtr");
    let o = run(&[
        "record",
        "--name",
        r"worker_[ab]\.py",
        "--interval",
        "50ms",
        "--count",
        "3",
        "--detail",
        "summary",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for columns in [None, Some("200")] {
        let mut analyze = memtrail();
        analyze.args(["analyze", file.to_str().unwrap(), "--all"]);
        match columns {
            Some(c) => analyze.env("COLUMNS", c),
            None => analyze.env_remove("COLUMNS"),
        };
        let o = analyze.output().unwrap();
        let text = stdout(&o);
        for (worker, name) in &workers {
            let line = text
                .lines()
                .find(|l| l.contains(&format!("pid {} ", worker.0.id())))
                .unwrap_or_else(|| panic!("pid {} not shown:\n{text}", worker.0.id()));
            assert!(line.contains(name), "{columns:?}: {line}");
            match columns {
                None => assert!(line.chars().count() <= 80, "{line}"),
                Some(_) => assert!(
                    line.contains(&services.join(name).display().to_string()),
                    "the whole command fits in 200 columns: {line}"
                ),
            }
        }
    }
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
