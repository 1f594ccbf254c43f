//! A moment means one thing in every command: the tick, one sampling round
//! in which every recorded process is read once (their samples a few
//! milliseconds apart). `record` counts ticks, `dump` numbers every record
//! with its tick, `report` counts them and `diff` picks them by `#N`,
//! offset, date or marker. Checked on real multi-process recordings
//! (`--name`, `--children`, `--all`): processes alive throughout are found
//! at both moments; only those that really started or ended in between are
//! reported as such (regression: diff took each distinct timestamp for a
//! tick, and saw one of two sleeps "exit" and the other "start").

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command};

use serde_json::Value;

use crate::util::*;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two `sleep` processes with an argument no other process has.
fn two_sleeps() -> (Killed, Killed, String) {
    let arg = format!("3600.{}", std::process::id());
    let spawn = || {
        Killed(
            Command::new("sleep")
                .arg(&arg)
                .spawn()
                .expect("sleep starts"),
        )
    };
    let (a, b) = (spawn(), spawn());
    for p in [&a, &b] {
        wait_for("sleep to have exec'd", || {
            let cmdline = std::fs::read(format!("/proc/{}/cmdline", p.0.id())).ok()?;
            cmdline.starts_with(b"sleep\0").then_some(())
        });
    }
    (a, b, format!("^sleep {}$", arg.replace('.', "\\.")))
}

/// `memtrail diff FILE ARGS... --format json`, parsed.
fn diff(file: &Path, args: &[&str]) -> Value {
    let mut all = vec!["diff", file.to_str().unwrap(), "--format", "json"];
    all.extend_from_slice(args);
    let o = run(&all);
    assert!(o.status.success(), "diff {args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// pid -> presence (`both`, `new`, `gone`) in a diff.
fn presence(doc: &Value) -> BTreeMap<u64, String> {
    doc["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["pid"].as_u64().unwrap(),
                p["presence"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The tick count that `record` printed: "... in N ticks to ...".
fn ticks_recorded(stderr: &str) -> u64 {
    let words: Vec<&str> = stderr.split_whitespace().collect();
    let i = words
        .iter()
        .position(|w| *w == "ticks" || *w == "tick")
        .unwrap_or_else(|| panic!("no tick count in: {stderr}"));
    words[i - 1].parse().unwrap()
}

/// Every dumped record's JSON.
fn dump(file: &Path) -> Vec<Value> {
    let o = run(&["dump", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn diff_of_two_processes_recorded_by_name_matches_both_at_every_moment() {
    let (a, b, pattern) = two_sleeps();
    let dir = tempdir();
    let file = dir.path().join("two.mtr");
    let o = run(&[
        "record",
        "--name",
        &pattern,
        "--interval",
        "100ms",
        "--count",
        "8",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ticks = ticks_recorded(&stderr(&o));
    assert_eq!(ticks, 8, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("16 samples of 2 processes"),
        "{}",
        stderr(&o)
    );

    // dump numbers every record after the first round with its tick, the
    // same numbers: 8 ticks, each holding both processes once.
    let records = dump(&file);
    let mut per_tick: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for r in records.iter().filter(|r| r["type"] == "process") {
        let tick = r["tick"].as_u64().unwrap_or_else(|| panic!("no tick: {r}"));
        per_tick
            .entry(tick)
            .or_default()
            .push(r["id"]["pid"].as_u64().unwrap());
    }
    assert_eq!(per_tick.len() as u64, ticks, "{per_tick:?}");
    let both: BTreeSet<u64> = [a.0.id() as u64, b.0.id() as u64].into();
    for (tick, pids) in &per_tick {
        assert_eq!(
            pids.iter().copied().collect::<BTreeSet<_>>(),
            both,
            "tick {tick}"
        );
        assert_eq!(pids.len(), 2, "tick {tick}");
    }
    // The samples of one tick carry different times: why a timestamp is
    // not a moment.
    let times: BTreeSet<u64> = records
        .iter()
        .filter(|r| r["type"] == "process")
        .map(|r| r["time_us"].as_u64().unwrap())
        .collect();
    assert!(times.len() as u64 > ticks, "{} distinct times", times.len());

    let expect_both = |doc: &Value, what: &str| {
        let seen = presence(doc);
        assert_eq!(seen.len(), 2, "{what}: {doc:#}");
        assert!(seen.values().all(|p| p == "both"), "{what}: {seen:?}");
    };
    let whole = diff(&file, &["--from", "start", "--to", "end"]);
    expect_both(&whole, "start to end");
    assert!(
        whole["before"].as_str().unwrap().contains("tick 0 "),
        "{whole:#}"
    );
    assert!(
        whole["after"].as_str().unwrap().contains("tick 7 "),
        "{whole:#}"
    );
    let numbered = diff(&file, &["--from", "#1", "--to", "#6"]);
    expect_both(&numbered, "#1 to #6");
    assert!(
        numbered["after"].as_str().unwrap().contains("tick 6 "),
        "{numbered:#}"
    );
    expect_both(
        &diff(&file, &["--from", "0.25s", "--to", "0.55s"]),
        "offsets",
    );

    // A date: the time tick 3 opened (its system record), in RFC 3339.
    let opened = records
        .iter()
        .find(|r| r["type"] == "system" && r["tick"] == 3)
        .expect("tick 3 opens with a system record")["time_us"]
        .as_u64()
        .unwrap();
    let date = humantime::format_rfc3339_micros(
        std::time::UNIX_EPOCH + std::time::Duration::from_micros(opened),
    )
    .to_string();
    let dated = diff(&file, &["--from", &date, "--to", "end"]);
    expect_both(&dated, "a date");
    assert!(
        dated["before"].as_str().unwrap().contains("tick 3 "),
        "{dated:#}"
    );

    // Markers: between ticks, as `memtrail mark` puts them.
    let marked = dir.path().join("marked.mtr");
    add_markers(
        &file,
        &marked,
        &[(0.3, "before", None), (0.8, "after", None)],
    );
    let between = diff(
        &marked,
        &["--from", "marker:before", "--to", "marker:after"],
    );
    expect_both(&between, "markers");
    assert_eq!(
        between["markers"].as_array().unwrap().len(),
        2,
        "{between:#}"
    );

    // One past the last tick is refused with the range record counted.
    let o = run(&["diff", file.to_str().unwrap(), "--from", "#8"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("8 ticks recorded, numbered 0 to 7"),
        "{}",
        stderr(&o)
    );

    // report counts the same ticks.
    let o = run(&["report", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("16 samples in 8 ticks"),
        "{}",
        stdout(&o)
    );
}

/// `tree.py` as the recorded parent: children started and ended on command.
struct Tree(Helper);

impl Tree {
    fn spawn(&mut self) -> u32 {
        self.0.send("spawn");
        self.0.line().parse().unwrap()
    }
    fn end(&mut self) {
        self.0.send("end");
        assert_eq!(self.0.line(), "ended");
    }
}

/// Waits until the recording at `file` holds `n` more ticks than now.
fn wait_ticks(file: &Path, n: usize) {
    let count = |file: &Path| {
        records(file)
            .iter()
            .filter(|r| matches!(r, memtrail_format::Record::System(_)))
            .count()
    };
    let now = count(file);
    wait_for("more ticks", || (count(file) >= now + n).then_some(()));
}

#[test]
fn diff_of_a_process_tree_reports_only_children_that_really_came_and_went() {
    let mut tree = Tree(Helper::python("tree.py", &[]));
    let (stays, ends) = (tree.spawn(), tree.spawn());
    let dir = tempdir();
    let file = dir.path().join("tree.mtr");
    let parent = tree.0.pid().to_string();
    let recorder = Background::spawn(&[
        "record",
        "--pid",
        &parent,
        "--children",
        "--interval",
        "50ms",
        "-o",
        file.to_str().unwrap(),
    ]);
    wait_for("the recording to start", || {
        (file_size(&file) > 0).then_some(())
    });
    wait_ticks(&file, 3);
    tree.end(); // the newest child: `ends`
    wait_ticks(&file, 3);
    let starts = tree.spawn();
    wait_ticks(&file, 3);
    recorder.signal("INT");
    let o = recorder.wait();
    assert!(o.status.success(), "{}", stderr(&o));
    let ticks = ticks_recorded(&stderr(&o));

    let seen = presence(&diff(&file, &[]));
    let expected: BTreeMap<u64, String> = [
        (tree.0.pid(), "both"),
        (stays, "both"),
        (ends, "gone"),
        (starts, "new"),
    ]
    .into_iter()
    .map(|(p, s)| (p as u64, s.to_string()))
    .collect();
    assert_eq!(seen, expected);
    // By tick number, the last tick is the end.
    let last = format!("#{}", ticks - 1);
    assert_eq!(
        presence(&diff(&file, &["--from", "#0", "--to", &last])),
        expected
    );
}

#[test]
fn diff_of_a_recording_of_every_process_finds_long_lived_ones_at_both_moments() {
    let held = hold(1);
    let dir = disk_tempdir();
    let file = dir.path().join("all.mtr");
    let o = run(&[
        "record",
        "--all",
        "--detail",
        "summary",
        "--interval",
        "200ms",
        "--count",
        "3",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ticks_recorded(&stderr(&o)), 3, "{}", stderr(&o));
    let seen = presence(&diff(&file, &[]));
    for pid in [held.pid(), std::process::id()] {
        assert_eq!(
            seen.get(&(pid as u64)).map(String::as_str),
            Some("both"),
            "{pid}: {seen:?}"
        );
    }
    // Other programs on the machine may come and go in 400 ms, but most
    // processes are alive throughout.
    let both = seen.values().filter(|p| *p == "both").count();
    assert!(both * 2 > seen.len(), "{both} of {}: {seen:?}", seen.len());
}
