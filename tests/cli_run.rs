//! `memtrail run`: spawn, record the whole tree, exit with its status.

use memtrail_format::{EndReason, Record};

use crate::util::*;

/// `memtrail run --interval 100ms -o OUT -- python3 leaky.py SECONDS CODE`.
fn run_leaky(out: &std::path::Path, seconds: &str, code: &str) -> std::process::Output {
    let script = program("leaky.py");
    run(&[
        "run",
        "--interval",
        "100ms",
        "-o",
        out.to_str().unwrap(),
        "--",
        "python3",
        script.to_str().unwrap(),
        seconds,
        code,
    ])
}

#[test]
fn run_records_a_leaking_script_and_its_child() {
    let dir = tempdir();
    let out = dir.path().join("x.mtr");
    let o = run_leaky(&out, "2", "3");
    // memtrail exits with the command's own status.
    assert_eq!(o.status.code(), Some(3), "stderr: {}", stderr(&o));
    let (header, records) = read_all(&out);
    assert!(header.target.contains("leaky.py"));

    let exits: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::Exit(e) if e.exit_code.is_some() => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(exits.len(), 1, "one exit with a status: the command's");
    assert_eq!(exits[0].exit_code, Some(3));
    let script_pid = exits[0].id.pid;

    let script_samples = samples_of(&records, script_pid);
    assert!(
        script_samples.len() >= 5,
        "{} samples",
        script_samples.len()
    );
    // The last sample may be of the exited process (a zombie has no memory).
    let rss: Vec<u64> = script_samples
        .iter()
        .filter_map(|s| s.status.vm_rss)
        .collect();
    let (first, last) = (rss[0], *rss.last().unwrap());
    // 2 s at 1 MiB per 50 ms is ~40 MiB; demand a good part of it.
    assert!(last > first + 10 * 1024, "RSS {first} -> {last} KiB");

    // The child is recorded under its own identity, with the script as parent.
    let child_samples: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::Process(s) if s.info.ppid == script_pid => Some(s),
            _ => None,
        })
        .collect();
    assert!(!child_samples.is_empty(), "the child was recorded");
    assert!(child_samples.iter().all(|s| s.id.pid != script_pid));

    match records.last() {
        Some(Record::End(end)) => assert_eq!(end.reason, EndReason::TargetExited),
        other => panic!("recording should end with an End frame, got {other:?}"),
    }
}

#[test]
fn run_dump_shows_growing_rss() {
    let dir = tempdir();
    let out = dir.path().join("x.mtr");
    let o = run_leaky(&out, "1.5", "0");
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let d = run(&["dump", out.to_str().unwrap()]);
    assert!(d.status.success(), "stderr: {}", stderr(&d));
    let lines: Vec<serde_json::Value> = stdout(&d)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines[0]["type"], "header");
    assert_eq!(
        lines[0]["format_version"], 2,
        "run writes compressed recordings"
    );
    // The command's own process: the one whose parent is memtrail.
    let memtrail_children: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| {
            l["type"] == "process"
                && l["info"]["cmdline"][1]
                    .as_str()
                    .is_some_and(|a| a.ends_with("leaky.py"))
        })
        .collect();
    // A sample taken while the script exits has no memory figures.
    let rss: Vec<u64> = memtrail_children
        .iter()
        .filter_map(|l| l["status"]["vm_rss"].as_u64())
        .collect();
    assert!(rss.len() >= 4, "{rss:?}");
    assert!(
        rss.last().unwrap() > &(rss[0] + 5 * 1024),
        "RSS should grow: {rss:?}"
    );
    assert!(
        lines.iter().any(|l| l["encoding"] == "delta"),
        "steady samples are deltas"
    );
    assert_eq!(lines.last().unwrap()["type"], "end");
}

#[test]
fn run_exits_with_the_commands_status_or_128_plus_signal() {
    let dir = tempdir();
    let out = dir.path().join("x.mtr");
    let o = run(&[
        "run",
        "-o",
        out.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(o.status.code(), Some(7), "stderr: {}", stderr(&o));
    let o = run(&[
        "run",
        "-o",
        out.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "kill -KILL $$",
    ]);
    assert_eq!(o.status.code(), Some(128 + 9), "stderr: {}", stderr(&o));
    let (_, records) = read_all(&out);
    assert!(matches!(records.last(), Some(Record::End(_))));
}

#[test]
fn run_reports_a_missing_command() {
    let o = run(&["run", "--", "definitely-not-a-command-memtrail"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("definitely-not-a-command-memtrail"), "{e}");
    assert!(e.contains("PATH"), "{e}");
}
