//! Bad input gives a clear message and exit status 2, never a panic.

use crate::util::*;

fn check_error(args: &[&str], expected: &[&str]) {
    let o = run(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    let e = stderr(&o);
    for want in expected {
        assert!(e.contains(want), "{args:?}: stderr lacks {want:?}: {e}");
    }
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn bad_input_is_explained() {
    check_error(&["snap", "--pid", "4000000000"], &["4000000000"]);
    check_error(&["snap", "--pid", "999999"], &["999999"]);
    check_error(
        &["snap", "--pid", "1", "--min-rss", "lots"],
        &["lots", "1MiB"],
    );
    check_error(
        &["record", "--pid", "1", "--interval", "0s"],
        &["greater than zero"],
    );
    check_error(&["record", "--pid", "1", "--interval", "soon"], &["soon"]);
    check_error(&["snap", "--name", "("], &["regular expression"]);
    check_error(&["snap"], &["--pid"]);
    check_error(&["snap", "--pid", "1", "--all"], &["cannot be used with"]);
    check_error(&["snap", "--all", "--children"], &["--pid"]);
    check_error(
        &["record", "--pid", "1", "--detail", "lots"],
        &["summary", "full"],
    );
    check_error(&["run"], &["CMD"]);
}

#[test]
fn run_with_an_unwritable_output_never_starts_the_command() {
    let dir = tempdir();
    let marker = dir.path().join("ran");
    let o = run(&[
        "run",
        "-o",
        dir.path().join("no/such/dir/x.mtr").to_str().unwrap(),
        "--",
        "touch",
        marker.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("no/such/dir/x.mtr"), "names the file: {e}");
    assert!(!marker.exists(), "the command must not have run");
}

#[test]
fn a_full_disk_is_an_error_naming_the_file() {
    let helper = hold(1);
    let o = run(&[
        "record",
        "--pid",
        &helper.pid().to_string(),
        "--count",
        "2",
        "--interval",
        "10ms",
        "-o",
        "/dev/full",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("/dev/full") && e.contains("No space left"),
        "{e}"
    );
    helper.finish();
}

#[test]
fn binary_output_to_a_terminal_is_refused() {
    // `script` (util-linux) gives the command a pseudo-terminal as stdout.
    let helper = hold(1);
    let dir = tempdir();
    let log = dir.path().join("typescript");
    let cmd = format!(
        "{} record --pid {} --count 1; echo \"status=$?\"",
        env!("CARGO_BIN_EXE_memtrail"),
        helper.pid()
    );
    let o = std::process::Command::new("script")
        .args(["-qec", &cmd, log.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("refusing to write a binary recording to a terminal"),
        "{text}"
    );
    assert!(text.contains("status=2"), "{text}");
    helper.finish();
}

/// A hint fits the operation that failed: writing a file the user named is
/// not reading /proc (regression: an unwritable -o was told about
/// CAP_SYS_PTRACE and other users' /proc files).
#[test]
fn hints_fit_the_operation_that_failed() {
    let dir = tempdir();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report/small.mtr");
    let fixture = fixture.to_str().unwrap();
    let missing_dir = dir.path().join("no-such-dir/out");
    let missing_dir = missing_dir.to_str().unwrap();
    let me = std::process::id().to_string();
    // /sys refuses new files, to root too.
    let writes: [(&[&str], &str); 5] = [
        (
            &[
                "record",
                "--pid",
                "1",
                "--count",
                "1",
                "-o",
                "/sys/memtrail-test.mtr",
            ],
            "written there",
        ),
        (
            &["snap", "--pid", &me, "-o", "/sys/memtrail-test.mtr"],
            "written there",
        ),
        (
            &["report", fixture, "--html", "/sys/memtrail-test.html"],
            "written there",
        ),
        (
            &[
                "export",
                fixture,
                "--format",
                "csv",
                "-o",
                "/sys/memtrail-test.csv",
            ],
            "written there",
        ),
        (
            &["record", "--pid", &me, "--count", "1", "-o", missing_dir],
            "directory to write in does not exist",
        ),
    ];
    for (args, hint) in writes {
        check_error(args, &["hint: ", hint]);
        let e = stderr(&run(args));
        assert!(
            !e.contains("/proc") && !e.contains("CAP_SYS_PTRACE"),
            "{args:?}: {e}"
        );
    }
    let missing = dir.path().join("missing.mtr");
    check_error(
        &["report", missing.to_str().unwrap()],
        &["cannot open recording", "hint: check the path"],
    );
}

/// "1 processes" and its kin: counts agree with their nouns in what record,
/// snap and analyze print.
#[test]
fn counts_of_one_are_singular() {
    let dir = tempdir();
    let out = dir.path().join("one.mtr");
    let me = std::process::id().to_string();
    let o = run(&[
        "record",
        "--pid",
        &me,
        "--count",
        "1",
        "--detail",
        "summary",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("recorded 1 sample of 1 process in 1 tick to"),
        "{}",
        stderr(&o)
    );
    let snap = dir.path().join("snap.mtr");
    let o = run(&["snap", "--pid", &me, "-o", snap.to_str().unwrap()]);
    assert!(
        stderr(&o).contains("a snapshot of 1 process to"),
        "{}",
        stderr(&o)
    );
    let o = run(&["analyze", out.to_str().unwrap()]);
    assert!(
        stdout(&o).contains("0 of 1 process leaks (0 judged; 1 sample)"),
        "{}",
        stdout(&o)
    );
    for text in [stdout(&o), stderr(&o)] {
        assert!(
            !text.contains(" 1 processes") && !text.contains(" 1 samples"),
            "{text}"
        );
    }
}
