//! `memtrail diff`: the by-hand "pmap twice and diff" workflow, and moments
//! of one recording.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::*;

/// A C program growing its heap ~10 MiB/s, killed on drop.
struct Leaker(std::process::Child);

impl Leaker {
    fn start() -> Leaker {
        Leaker(
            Command::new(leak_binary())
                .args(["malloc", "120"])
                .stdout(Stdio::null())
                .spawn()
                .expect("leak starts"),
        )
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Leaker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn snap(pid: u32, out: &std::path::Path) {
    let o = run(&[
        "snap",
        "--pid",
        &pid.to_string(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "snap failed: {}", stderr(&o));
}

#[test]
fn two_snapshots_rank_the_growing_anonymous_region_first() {
    let dir = tempdir();
    let (a, b) = (dir.path().join("a.mtr"), dir.path().join("b.mtr"));
    let leaker = Leaker::start();
    wait_for("the leaker to have memory", || vm_rss(leaker.pid()));
    snap(leaker.pid(), &a);
    // Measured after the snapshot, so the snapshot saw no more than this.
    let start = vm_rss(leaker.pid()).expect("the leaker is alive");
    wait_for("8 MiB of growth", || {
        vm_rss(leaker.pid()).filter(|&r| r >= start + 8 * 1024)
    });
    snap(leaker.pid(), &b);

    let o = run(&[
        "diff",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = &doc["processes"][0];
    assert_eq!(p["pid"], leaker.pid());
    assert_eq!(p["presence"], "both");
    assert!(p["rss"]["delta"].as_i64().unwrap() >= 8 * 1024, "{p:#}");
    let top = &p["regions"][0];
    assert_eq!(top["anonymous_region"], true, "{top:#}");
    assert_eq!(top["label"], "[heap]");
    assert_eq!(top["change"], "grown");
    assert!(top["rss_delta"].as_i64().unwrap() >= 8 * 1024, "{top:#}");

    // The text table puts it first too, and --anon --min keeps only big
    // anonymous changes.
    let o = run(&[
        "diff",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--anon",
        "--min",
        "1MiB",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let first_region = text
        .lines()
        .skip_while(|l| !l.contains("Region"))
        .nth(1)
        .unwrap_or_else(|| panic!("no region listed:\n{text}"));
    assert!(
        first_region.contains("[heap]") && first_region.contains("grown"),
        "{text}"
    );
    let o = run(&[
        "diff",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--anon",
        "--min",
        "1MiB",
        "--format",
        "json",
    ]);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    for r in doc["processes"][0]["regions"].as_array().unwrap() {
        assert_eq!(r["anonymous_region"], true, "{r:#}");
        let change = r["rss_delta"].as_i64().unwrap() + r["swap_delta"].as_i64().unwrap();
        assert!(change.abs() >= 1024, "{r:#}");
    }
}

#[test]
fn moments_of_one_recording() {
    let dir = tempdir();
    let out = dir.path().join("r.mtr");
    let leaker = Leaker::start();
    record_samples(leaker.pid(), &out, "100ms", 15, &[]);
    let file = out.to_str().unwrap();

    let json = |args: &[&str]| -> Value {
        let mut all = vec!["diff", file, "--format", "json"];
        all.extend_from_slice(args);
        let o = run(&all);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let whole = json(&[]);
    let grew = whole["processes"][0]["rss"]["delta"].as_i64().unwrap();
    assert!(grew > 0, "{whole:#}");
    assert!(whole["before"].as_str().unwrap().contains("tick 0"));
    assert!(whole["after"].as_str().unwrap().contains("tick 14"));
    // A tick and an offset name earlier moments: less growth than the whole.
    let part = json(&["--from", "#2", "--to", "#6"]);
    let some = part["processes"][0]["rss"]["delta"].as_i64().unwrap();
    assert!(some > 0 && some < grew, "{some} vs {grew}");
    let same = json(&["--from", "#3", "--to", "#3"]);
    assert_eq!(same["processes"][0]["rss"]["delta"], 0);
    let offset = json(&["--from", "0s", "--to", "1h"]);
    assert_eq!(offset["processes"][0]["rss"]["delta"], grew);
}

#[test]
fn diff_errors_name_the_problem() {
    let dir = tempdir();
    let out = dir.path().join("r.mtr");
    record_samples(
        std::process::id(),
        &out,
        "10ms",
        3,
        &["--detail", "summary"],
    );
    let file = out.to_str().unwrap();

    let o = run(&["diff", file, "--from", "#2", "--to", "#0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("later than"), "{}", stderr(&o));

    let o = run(&["diff", file, "--from", "#9"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("numbered 0 to 2"), "{}", stderr(&o));

    let o = run(&["diff", file, file, "--from", "#1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("two files"), "{}", stderr(&o));

    let o = run(&["diff", file, "--from", "yesterday"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("invalid moment"), "{}", stderr(&o));

    let missing = dir.path().join("missing.mtr");
    let o = run(&["diff", missing.to_str().unwrap(), file]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.mtr"), "{}", stderr(&o));

    let o = run(&["diff", file, "--pid", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("process 1 is in neither"),
        "{}",
        stderr(&o)
    );
}
