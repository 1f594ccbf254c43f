//! Process churn: processes that come and go faster than memtrail samples,
//! exit while they are being read, and reuse each other's pids.

use std::collections::{BTreeSet, HashSet};
use std::process::{Command, Stdio};

use memtrail_format::{EndReason, ProcessId, Record};

use crate::util::*;

/// Processes started by one churn run.
const CHURN: u32 = 2000;

/// A shell that starts CHURN short-lived processes, 20 at a time, then
/// prints "done" and waits for its stdin to close.
fn churn_script() -> String {
    format!(
        "i=0; while [ $i -lt {CHURN} ]; do \
           sh -c ':' & i=$((i+1)); \
           if [ $((i % 20)) -eq 0 ]; then wait; fi; \
         done; wait; echo done; read _"
    )
}

/// Reads a finished recording: its records, and the processes sampled.
fn processes(path: &std::path::Path) -> (Vec<Record>, BTreeSet<ProcessId>) {
    let (_, records) = read_all(path);
    let seen = records
        .iter()
        .filter_map(|r| match r {
            Record::Process(s) => Some(s.id),
            _ => None,
        })
        .collect();
    (records, seen)
}

/// Starts the churn script; it prints "done" when every process is gone.
fn churn() -> Helper {
    let mut child = Command::new("sh")
        .args(["-c", &churn_script()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    Helper {
        stdin: child.stdin.take(),
        stdout: std::io::BufReader::new(child.stdout.take().unwrap()),
        child,
    }
}

/// Fails on any message before the closing summary but those about
/// processes that /proc keeps from root here (a container's init): under
/// churn, processes exiting mid-read are normal and must not be reported.
fn assert_quiet(stderr: &str) {
    for line in stderr.lines() {
        if line.starts_with("memtrail: recorded ") {
            break; // the closing summary, and `run`'s analysis after it
        }
        assert!(
            line.contains("permission denied, even to root"),
            "unexpected message under churn: {line}\n{stderr}"
        );
    }
}

fn exits(records: &[Record]) -> HashSet<ProcessId> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Exit(e) => Some(e.id),
            _ => None,
        })
        .collect()
}

#[test]
fn recording_all_processes_under_churn_is_quiet_and_complete() {
    let dir = tempdir();
    let out = dir.path().join("all.mtr");
    let rec = record_everything(&out, "10ms");
    let mut churn = churn();
    assert_eq!(churn.line(), "done");
    let after = file_size(&out);
    wait_for("a few more ticks", || {
        (file_size(&out) > after + 64 * 1024).then_some(())
    });
    rec.signal("INT");
    let o = rec.wait();
    churn.finish();
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert_quiet(&e);

    let (records, seen) = processes(&out);
    assert!(matches!(
        records.last(),
        Some(Record::End(end)) if end.reason == EndReason::Interrupted("SIGINT".into())
    ));
    // Every process sampled and then gone has exactly one exit record,
    // after its last sample.
    let exited = exits(&records);
    let ticks = records
        .iter()
        .filter(|r| matches!(r, Record::System(_)))
        .count();
    let churned: Vec<&ProcessId> = seen.iter().filter(|id| exited.contains(id)).collect();
    for r in records.iter().rev() {
        if let Record::Exit(e) = r {
            assert_eq!(
                records
                    .iter()
                    .filter(|x| matches!(x, Record::Exit(x) if x.id == e.id))
                    .count(),
                1,
                "{e:?}"
            );
        }
    }
    eprintln!(
        "churn --all: {CHURN} processes started, {ticks} ticks, {} processes sampled, \
         {} of them recorded exiting",
        seen.len(),
        churned.len()
    );
    assert!(
        !churned.is_empty(),
        "some short-lived processes were caught"
    );
}

#[test]
fn recording_a_churning_tree_is_quiet_and_complete() {
    let dir = tempdir();
    let out = dir.path().join("tree.mtr");
    let script = churn_script().replace("; read _", "");
    let o = run(&[
        "run",
        "--detail",
        "full",
        "--interval",
        "5ms",
        "-o",
        out.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert_quiet(&e);
    let (records, seen) = processes(&out);
    assert!(matches!(
        records.last(),
        Some(Record::End(end)) if end.reason == EndReason::TargetExited
    ));
    let exited = exits(&records);
    eprintln!(
        "churn tree: {CHURN} processes started, {} processes sampled, {} exits recorded",
        seen.len(),
        exited.len()
    );
    assert!(seen.len() > 1, "children of the shell were caught");
    // Every process sampled was recorded exiting (the shell itself too),
    // except children caught in the last tick: `run` stops as soon as the
    // command has exited, without a further tick to see them gone.
    let last_tick = records
        .iter()
        .rposition(|r| matches!(r, Record::System(_)))
        .unwrap();
    let in_last_tick: HashSet<ProcessId> = records[last_tick..]
        .iter()
        .filter_map(|r| match r {
            Record::Process(s) => Some(s.id),
            _ => None,
        })
        .collect();
    for id in &seen {
        assert!(
            exited.contains(id) || in_last_tick.contains(id),
            "{id} has no exit record"
        );
    }
}

/// `unshare` flags for a new pid namespace with its own /proc: as root
/// directly, otherwise inside a new user namespace where we are root.
fn unshare() -> Command {
    let mut cmd = Command::new("unshare");
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !root {
        cmd.args(["--user", "--map-root-user"]);
    }
    // --kill-child: if the test fails and unshare is killed, the whole
    // namespace goes with it.
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"]);
    cmd
}

#[test]
fn a_reused_pid_is_two_processes() {
    let dir = tempdir();
    let out = dir.path().join("reuse.mtr");
    let mut child = unshare()
        .arg("python3")
        .arg("-u")
        .arg(program("pidreuse.py"))
        .env("MEMTRAIL", env!("CARGO_BIN_EXE_memtrail"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare (util-linux) runs");
    let mut ns = Helper {
        stdin: None,
        stdout: std::io::BufReader::new(child.stdout.take().unwrap()),
        child,
    };
    ns.stdin = ns.child.stdin.take();
    ns.send(&format!("record {}", out.display()));
    let mut line = String::new();
    use std::io::{BufRead, Read};
    ns.stdout.read_line(&mut line).unwrap();
    if line.trim() != "recording" {
        let mut err = String::new();
        ns.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        panic!(
            "cannot make a pid namespace to test pid reuse in: `unshare --pid --fork \
             --mount-proc` (with --user --map-root-user when not root) failed: {err}\
             Run the tests as root, or enable unprivileged user namespaces \
             (sysctl kernel.unprivileged_userns_clone=1)."
        );
    }
    ns.send("first");
    let pid: u32 = ns.line().parse().unwrap();
    let is = |records: &[Record], name: &str| {
        samples_of(records, pid)
            .iter()
            .filter(|s| s.info.cmdline.last().map(String::as_str) == Some(name))
            .count()
    };
    // Three samples 10 ms apart: the second process starts at least two
    // clock ticks later, so the two start times differ.
    wait_for("samples of the first process", || {
        (is(&records(&out), "first") >= 3).then_some(())
    });
    ns.send("second");
    let again: u32 = ns.line().parse().unwrap();
    assert_eq!(again, pid, "ns_last_pid hands out the same pid");
    wait_for("samples of the second process", || {
        (is(&records(&out), "second") >= 2).then_some(())
    });
    ns.send("end");
    assert_eq!(
        ns.line(),
        "0",
        "the recorder inside the namespace exits cleanly"
    );

    let (_, records) = read_all(&out);
    let samples = samples_of(&records, pid);
    let ids = |name: &str| -> BTreeSet<ProcessId> {
        samples
            .iter()
            .filter(|s| s.info.cmdline.last().map(String::as_str) == Some(name))
            .map(|s| s.id)
            .collect()
    };
    let (first, second) = (ids("first"), ids("second"));
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(first, second, "two processes, two identities");
    // Each sample is wholly one process's: no sample of one identity shows
    // the other's command line.
    let first_id = *first.iter().next().unwrap();
    let second_id = *second.iter().next().unwrap();
    assert!(samples
        .iter()
        .all(|s| (s.id == first_id) != (s.id == second_id)));
    // The first exits before the second's first sample.
    let exit = records
        .iter()
        .position(|r| matches!(r, Record::Exit(e) if e.id == first_id))
        .expect("the first process's exit is recorded");
    let second_starts = records
        .iter()
        .position(|r| matches!(r, Record::Process(s) if s.id == second_id))
        .unwrap();
    assert!(exit < second_starts);
    eprintln!("pid reuse: pid {pid} held by {first_id} then by {second_id}, recorded apart");
}
