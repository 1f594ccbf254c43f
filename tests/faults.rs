//! Faults from outside: signals at any moment, outputs that fail or go
//! away, other users' processes. Nothing is lost that was written, and
//! every failure is one clear message.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::Stdio;

use memtrail_format::{EndReason, Record, WarningKind};

use crate::util::*;

/// Every frame of a recording, and the warnings met reading it.
fn read_with_warnings(path: &std::path::Path) -> (Vec<Record>, Vec<memtrail_format::Warning>) {
    let mut reader = memtrail_format::open(path).expect("recording opens");
    let records = reader
        .by_ref()
        .map(|f| f.expect("a file reads without I/O errors").record)
        .collect();
    (records, reader.take_warnings())
}

#[test]
fn sigkill_mid_recording_loses_at_most_the_frame_being_written() {
    let helper = hold(4);
    let pid = helper.pid();
    let dir = tempdir();
    // Full detail makes frames of several KiB; kill at a different point
    // of the recording each round.
    for (round, samples) in [3usize, 10, 25].into_iter().enumerate() {
        let out = dir.path().join(format!("killed-{round}.mtr"));
        let rec = Background::spawn(&[
            "record",
            "--pid",
            &pid.to_string(),
            "--detail",
            "full",
            "--interval",
            "5ms",
            "-o",
            out.to_str().unwrap(),
        ]);
        wait_for("samples of the target", || {
            (samples_of(&records(&out), pid).len() >= samples).then_some(())
        });
        rec.signal("KILL");
        let o = rec.wait();
        assert_eq!(o.status.code(), None, "killed by a signal");

        let bytes = std::fs::read(&out).unwrap();
        let (records, warnings) = read_with_warnings(&out);
        assert!(samples_of(&records, pid).len() >= samples);
        assert!(
            !records.iter().any(|r| matches!(r, Record::End(_))),
            "a killed recorder writes no end frame"
        );
        // Every frame is flushed whole, so at most the last one is torn;
        // nothing is corrupt.
        match warnings.as_slice() {
            [] => {}
            [w] => {
                assert_eq!(w.kind, WarningKind::TornTail, "{w:?}");
                assert!(w.offset < bytes.len() as u64);
            }
            more => panic!("round {round}: {more:?}"),
        }
        // Cutting the file anywhere in its last frame loses only that frame
        // (in a compressed recording, a block: the records of one tick).
        let offsets: Vec<u64> = memtrail_format::open(&out)
            .unwrap()
            .map(|f| f.unwrap().offset)
            .collect();
        let last = *offsets.last().unwrap() as usize;
        let in_last = offsets.iter().filter(|&&o| o == last as u64).count();
        let torn = dir.path().join("torn.mtr");
        std::fs::write(&torn, &bytes[..last + (bytes.len() - last) / 2]).unwrap();
        let (cut, warnings) = read_with_warnings(&torn);
        assert_eq!(cut, records[..records.len() - in_last]);
        assert_eq!(warnings.len(), 1);
        assert_eq!(
            (warnings[0].kind, warnings[0].offset),
            (WarningKind::TornTail, last as u64)
        );
    }
    helper.finish();
}

/// `memtrail run --interval 20ms -o OUT -- sleep 1000` in its own process
/// group, as a shell would start it.
fn run_sleep(out: &std::path::Path) -> Background {
    Background(
        memtrail()
            .args(["run", "--interval", "20ms", "-o", out.to_str().unwrap()])
            .args(["--", "sleep", "1000"])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("memtrail starts"),
    )
}

/// Waits for samples of the `sleep` that `run` started; returns its pid.
fn wait_for_sleep(out: &std::path::Path) -> u32 {
    wait_for("samples of the command", || {
        let records = records(out);
        records.iter().find_map(|r| match r {
            Record::Process(s)
                if s.info.comm == "sleep" && samples_of(&records, s.id.pid).len() >= 2 =>
            {
                Some(s.id.pid)
            }
            _ => None,
        })
    })
}

fn end_of(path: &std::path::Path) -> EndReason {
    let (_, records) = read_all(path);
    match records.last() {
        Some(Record::End(end)) => end.reason.clone(),
        other => panic!("expected an end frame, got {other:?}"),
    }
}

#[test]
fn run_passes_sigterm_on_and_finishes_the_file() {
    let dir = tempdir();
    let out = dir.path().join("term.mtr");
    let rec = run_sleep(&out);
    wait_for_sleep(&out);
    rec.signal("TERM");
    let o = rec.wait();
    assert_eq!(o.status.code(), Some(128 + 15), "stderr: {}", stderr(&o));
    assert_eq!(end_of(&out), EndReason::TargetExited);
}

#[test]
fn ctrl_c_on_run_stops_the_command_and_finishes_the_file() {
    let dir = tempdir();
    let out = dir.path().join("int.mtr");
    let rec = run_sleep(&out);
    let sleep = wait_for_sleep(&out);

    // SIGINT to memtrail alone (not through the terminal) does not stop
    // the recording: the command is still running and still recorded.
    rec.signal("INT");
    let before = samples_of(&records(&out), sleep).len();
    wait_for("more samples after a lone SIGINT", || {
        (samples_of(&records(&out), sleep).len() > before + 2).then_some(())
    });
    assert!(rec.0.id() > 0 && std::path::Path::new(&format!("/proc/{}", rec.0.id())).exists());

    // Ctrl-C reaches the whole process group: the command stops and the
    // recording ends with its exit.
    let group = format!("-{}", rec.0.id());
    let status = std::process::Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .unwrap();
    assert!(status.success());
    let o = rec.wait();
    assert_eq!(o.status.code(), Some(128 + 2), "stderr: {}", stderr(&o));
    assert_eq!(end_of(&out), EndReason::TargetExited);
    let (_, records) = read_all(&out);
    assert!(records
        .iter()
        .any(|r| matches!(r, Record::Exit(e) if e.id.pid == sleep && e.exit_code == Some(130))));
}

#[test]
fn run_to_a_full_disk_is_an_error_and_the_command_still_finishes() {
    let dir = tempdir();
    let marker = dir.path().join("finished");
    let o = run(&[
        "run",
        "-o",
        "/dev/full",
        "--",
        "touch",
        marker.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("/dev/full") && e.contains("No space left"),
        "{e}"
    );
    assert!(e.contains("hint: the disk is full"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    assert!(marker.exists(), "the command ran to its end");
}

#[test]
fn record_to_standard_output_on_a_full_disk_is_an_error() {
    let helper = hold(1);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = memtrail()
        .args(["record", "--pid", &helper.pid().to_string()])
        .args(["--count", "3", "--interval", "10ms"])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("standard output") && e.contains("No space left"),
        "{e}"
    );
    assert_eq!(e.matches("error:").count(), 1, "one message: {e}");
    helper.finish();
}

#[test]
fn record_into_a_closed_pipe_ends_quietly() {
    // `memtrail record --pid P | head -c 100`
    let helper = hold(1);
    let mut rec = memtrail()
        .args(["record", "--pid", &helper.pid().to_string()])
        .args(["--interval", "10ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = rec.stdout.take().unwrap();
    let mut first = [0u8; 100];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first[..4], b"\x89MTR");
    drop(stdout);
    let mut err = String::new();
    rec.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = rec.wait().unwrap();
    assert!(status.success(), "{status}: {err}");
    assert_eq!(err, "", "no message for a closed pipe");
    helper.finish();
}

/// `memtrail run -o - -- CMD | head -c 100`: the command runs to its end,
/// memtrail says nothing and exits with the command's status.
#[test]
fn run_into_a_closed_pipe_ends_quietly_with_the_commands_status() {
    let mut rec = memtrail()
        .args(["run", "--interval", "10ms", "-o", "-", "--"])
        .args(["sh", "-c", "read _; exit 3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = rec.stdout.take().unwrap();
    let mut first = [0u8; 100];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    // The command ends when its standard input (memtrail's) closes.
    drop(rec.stdin.take());
    let mut err = String::new();
    rec.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = rec.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{err}");
    assert_eq!(err, "", "no message for a closed pipe");
}

/// Set when this test binary re-runs itself as nobody (see below).
const AS_NOBODY: &str = "MEMTRAIL_TEST_RECORD_AS_NOBODY";

#[test]
fn recording_another_users_process_says_so_once_and_goes_on() {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    let (memtrail_exe, dir, as_nobody) = if let Ok(exe) = std::env::var(AS_NOBODY) {
        (exe.into(), tempdir(), None)
    } else if is_root {
        // Run memtrail as nobody from a world-readable copy (the checkout
        // may sit below a directory nobody cannot enter), writing into a
        // directory nobody can write.
        use std::os::unix::fs::PermissionsExt;
        let dir = tempdir();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let exe = dir.path().join("memtrail");
        std::fs::copy(env!("CARGO_BIN_EXE_memtrail"), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        (
            exe,
            dir,
            Some([
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
            ]),
        )
    } else {
        (env!("CARGO_BIN_EXE_memtrail").into(), tempdir(), None)
    };
    // A process of another user: root's own sleep when running as root,
    // else init.
    let sleep = is_root.then(|| {
        std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .unwrap()
    });
    let target = sleep.as_ref().map_or(1, |c| c.id());
    let out = dir.path().join("other.mtr");
    let mut cmd = match as_nobody {
        Some(prefix) => {
            let mut c = std::process::Command::new(prefix[0]);
            c.args(&prefix[1..]).arg(&memtrail_exe);
            c
        }
        None => std::process::Command::new(&memtrail_exe),
    };
    let o = cmd
        .args(["record", "--pid", &target.to_string(), "--detail", "full"])
        .args(["--count", "5", "--interval", "10ms", "-o"])
        .arg(&out)
        .current_dir(dir.path())
        .output()
        .expect("setpriv (util-linux) runs memtrail as nobody");
    if let Some(mut sleep) = sleep {
        let _ = sleep.kill();
        let _ = sleep.wait();
    }
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    // One warning per unreadable file, not one per tick.
    let warnings: Vec<&str> = e.lines().filter(|l| l.contains("warning")).collect();
    let mut files: Vec<&str> = warnings
        .iter()
        .map(|w| {
            w.split_whitespace()
                .find(|word| word.starts_with("/proc/"))
                .unwrap_or_else(|| panic!("names the file: {w}"))
                .trim_end_matches(':')
                .rsplit('/')
                .next()
                .unwrap()
        })
        .collect();
    files.sort();
    assert_eq!(files, ["fd", "smaps", "smaps_rollup"], "{e}");
    for w in &warnings {
        assert!(w.contains(&format!("/proc/{target}/")), "{w}");
        assert!(w.contains("permission denied"), "{w}");
        assert!(
            w.contains("as root / with CAP_SYS_PTRACE"),
            "the remedy: {w}"
        );
    }
    // What was readable was recorded every tick.
    let (_, records) = read_all(&out);
    let samples = samples_of(&records, target);
    assert_eq!(samples.len(), 5);
    assert!(samples.iter().all(|s| s.status.vm_rss.is_some()));
    assert_eq!(
        records
            .iter()
            .filter(|r| matches!(r, Record::Notice(_)))
            .count(),
        3,
        "each problem is recorded once"
    );
}

/// Regression test: the recorder looked at signals only while waiting for
/// the next tick, so one whose ticks took longer than its interval (every
/// process at full detail, every millisecond) never saw Ctrl-C.
#[test]
fn sigint_stops_a_recorder_whose_ticks_overrun_the_interval() {
    let dir = tempdir();
    let out = dir.path().join("overrun.mtr");
    let rec = record_everything(&out, "1ms");
    rec.signal("INT");
    let o = rec.wait();
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert_eq!(
        end_of(&out),
        EndReason::Interrupted("SIGINT".into()),
        "the file is complete"
    );
}
