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
    // The highest, not the last: a sample may catch the script tearing
    // down as it exits (its heap freed, RSS back near the start).
    assert!(
        rss.iter().max().unwrap() > &(rss[0] + 5 * 1024),
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

/// `memtrail run --fail-on-leak` (adaptive sampling: no --interval) on
/// `short_job.py SECONDS MODE`.
fn short_job(dir: &std::path::Path, seconds: &str, mode: &str) -> std::process::Output {
    let out = dir.join(format!("short-{seconds}-{mode}.mtr"));
    run(&[
        "run",
        "--fail-on-leak",
        "-o",
        out.to_str().unwrap(),
        "--",
        "python3",
        program("short_job.py").to_str().unwrap(),
        seconds,
        mode,
    ])
}

#[test]
fn fail_on_leak_judges_a_three_second_job() {
    let dir = tempdir();
    let o = short_job(dir.path(), "3", "leak");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("LEAK"), "{}", stderr(&o));
    let o = short_job(dir.path(), "3", "steady");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn fail_on_leak_says_when_a_job_is_too_short_to_judge() {
    let dir = tempdir();
    let o = short_job(dir.path(), "0.2", "leak");
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("could not be judged"), "{}", stderr(&o));
}

/// No sample of the command shows it before or half-way through its
/// exec: every one names the program asked for, with its arguments.
#[test]
fn no_sample_precedes_the_commands_exec() {
    let dir = tempdir();
    let binary = leak_binary();
    let python = program("short_job.py");
    // The interpreter itself: `python3` may be a launcher (pyenv's shim, a
    // chain of scripts that exec one another), whose later execs a sample
    // may catch half-way; the analyzer starts a program's series at the
    // first sample naming it (analyze.rs's unit tests).
    let interpreter = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs");
    let interpreter = String::from_utf8(interpreter.stdout).unwrap();
    let commands: [&[&str]; 2] = [
        &[binary.to_str().unwrap(), "malloc", "1"],
        &[
            interpreter.trim(),
            python.to_str().unwrap(),
            "0.5",
            "steady",
        ],
    ];
    for command in commands {
        for round in 0..5 {
            let out = dir.path().join(format!("exec-{round}.mtr"));
            let mut args = vec![
                "run",
                "--interval",
                "10ms",
                "-o",
                out.to_str().unwrap(),
                "--",
            ];
            args.extend_from_slice(command);
            let o = run(&args);
            assert!(o.status.success(), "{}", stderr(&o));
            let records = records(&out);
            // The command: the process whose parent was not recorded.
            let pids: std::collections::HashSet<u32> = records
                .iter()
                .filter_map(|r| match r {
                    Record::Process(s) => Some(s.id.pid),
                    _ => None,
                })
                .collect();
            let root = records
                .iter()
                .find_map(|r| match r {
                    Record::Process(s) if !pids.contains(&s.info.ppid) => Some(s.id.pid),
                    _ => None,
                })
                .expect("the command was sampled");
            let samples = samples_of(&records, root);
            let first = samples[0];
            assert!(
                !first.info.cmdline.is_empty() && first.info.comm != "memtrail",
                "a sample from before the exec: {first:#?}"
            );
            // The last two may catch the process exiting: its memory gone
            // between the reads of status and cmdline.
            for s in &samples[..samples.len().saturating_sub(2)] {
                if s.status.vm_rss.is_some() {
                    assert!(!s.info.cmdline.is_empty(), "{s:#?}");
                }
            }
        }
    }
}
