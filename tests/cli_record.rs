//! `memtrail record`: sampling over time, trees, pipes, signals.

use std::process::Stdio;

use memtrail_format::{EndReason, Record};

use crate::util::*;

fn count_samples(path: &std::path::Path, pid: u32) -> usize {
    samples_of(&records(path), pid).len()
}

#[test]
fn record_ends_when_the_target_exits_mid_recording() {
    let helper = hold(1);
    let pid = helper.pid();
    let dir = tempdir();
    let out = dir.path().join("r.mtr");
    let rec = record_in_background(pid, &out, &[]);
    wait_for("two samples of the target", || {
        (count_samples(&out, pid) >= 2).then_some(())
    });
    assert!(helper.finish().success());
    let o = rec.wait();
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let (_, records) = read_all(&out);
    assert!(
        records
            .iter()
            .any(|r| matches!(r, Record::Exit(e) if e.id.pid == pid)),
        "the exit is recorded"
    );
    match records.last() {
        Some(Record::End(end)) => assert_eq!(end.reason, EndReason::TargetExited),
        other => panic!("expected End, got {other:?}"),
    }
}

#[test]
fn record_follows_a_child_that_appears_and_exits() {
    let mut parent = Helper::python("tree.py", &[]);
    let pid = parent.pid();
    let dir = tempdir();
    let out = dir.path().join("tree.mtr");
    let rec = record_in_background(pid, &out, &["--children"]);
    wait_for("a sample of the parent", || {
        (count_samples(&out, pid) >= 1).then_some(())
    });
    parent.send("spawn");
    let child: u32 = parent.line().parse().unwrap();
    wait_for("a sample of the new child", || {
        (count_samples(&out, child) >= 1).then_some(())
    });
    parent.send("end");
    assert_eq!(parent.line(), "ended");
    wait_for("the child's exit in the recording", || {
        records(&out)
            .iter()
            .any(|r| matches!(r, Record::Exit(e) if e.id.pid == child))
            .then_some(())
    });
    // The parent goes on being recorded after its child is gone.
    let before = count_samples(&out, pid);
    wait_for("more samples of the parent", || {
        (count_samples(&out, pid) > before + 1).then_some(())
    });
    assert!(parent.finish().success());
    let o = rec.wait();
    assert!(o.status.success(), "stderr: {}", stderr(&o));

    let (_, records) = read_all(&out);
    let child_samples = samples_of(&records, child);
    assert!(child_samples.iter().all(|s| s.info.ppid == pid));
    let child_exit = records
        .iter()
        .position(|r| matches!(r, Record::Exit(e) if e.id.pid == child))
        .unwrap();
    let last_child_sample = records
        .iter()
        .rposition(|r| matches!(r, Record::Process(s) if s.id.pid == child))
        .unwrap();
    assert!(last_child_sample < child_exit, "no samples after its exit");
    assert!(matches!(records.last(), Some(Record::End(e)) if e.reason == EndReason::TargetExited));
}

#[test]
fn record_streams_through_a_pipe_into_dump() {
    let helper = hold(1);
    let mut rec = memtrail()
        .args([
            "record",
            "--pid",
            &helper.pid().to_string(),
            "--interval",
            "20ms",
            "--count",
            "5",
            "--detail",
            "summary",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let dump = memtrail()
        .args(["dump", "-"])
        .stdin(rec.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(rec.wait().unwrap().success());
    assert!(dump.status.success(), "stderr: {}", stderr(&dump));
    let lines: Vec<serde_json::Value> = stdout(&dump)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "header");
    assert_eq!(lines[0]["detail"], "summary");
    let samples = lines.iter().filter(|l| l["type"] == "process").count();
    assert_eq!(samples, 5, "one sample per tick, five ticks");
    assert_eq!(lines.last().unwrap()["type"], "end");
    assert_eq!(lines.last().unwrap()["reason"]["reason"], "completed");
    helper.finish();
}

#[test]
fn sigint_and_sigterm_finish_the_file_cleanly() {
    for sig in ["INT", "TERM"] {
        let helper = hold(1);
        let pid = helper.pid();
        let dir = tempdir();
        let out = dir.path().join("sig.mtr");
        let rec = record_in_background(pid, &out, &[]);
        wait_for("two samples", || {
            (count_samples(&out, pid) >= 2).then_some(())
        });
        rec.signal(sig);
        let o = rec.wait();
        assert!(o.status.success(), "SIG{sig}: stderr: {}", stderr(&o));
        let (_, records) = read_all(&out);
        match records.last() {
            Some(Record::End(end)) => {
                assert_eq!(end.reason, EndReason::Interrupted(format!("SIG{sig}")))
            }
            other => panic!("SIG{sig}: expected End, got {other:?}"),
        }
        helper.finish();
    }
}

#[test]
fn record_count_and_duration_stop_it() {
    let helper = hold(1);
    let dir = tempdir();
    let out = dir.path().join("c.mtr");
    record_samples(helper.pid(), &out, "10ms", 3, &[]);
    let (_, records) = read_all(&out);
    assert_eq!(samples_of(&records, helper.pid()).len(), 3);
    let o = run(&[
        "record",
        "--pid",
        &helper.pid().to_string(),
        "--interval",
        "10ms",
        "--duration",
        "100ms",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let (_, records) = read_all(&out);
    assert!(!samples_of(&records, helper.pid()).is_empty());
    assert!(matches!(records.last(), Some(Record::End(e)) if e.reason == EndReason::Completed));
    helper.finish();
}

/// `--interval auto` samples every 50 ms at first and says so in the
/// header (interval 0: the adaptive schedule).
#[test]
fn record_interval_auto_starts_fast() {
    let holder = hold(1);
    let dir = tempdir();
    let out = dir.path().join("auto.mtr");
    let o = run(&[
        "record",
        "--pid",
        &holder.pid().to_string(),
        "--interval",
        "auto",
        "--count",
        "20",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (header, records) = read_all(&out);
    assert_eq!(header.interval_us, Some(0));
    let times: Vec<u64> = samples_of(&records, holder.pid())
        .iter()
        .map(|s| s.time_us)
        .collect();
    assert_eq!(times.len(), 20);
    // 20 samples in well under the 19 s a fixed 1 s would take: the first
    // second is sampled every 50 ms (slower only if ticks overran).
    let span = times[19] - times[0];
    assert!(span < 5_000_000, "20 samples took {span} µs");
}
