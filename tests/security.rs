//! What a recording may hold and what reaches a terminal: no environment
//! variables ever, no arguments under --redact-cmdline, no raw escape
//! sequences from the recorded system, no unsafe code in the crates that
//! read untrusted recordings.

use std::process::{Command, Stdio};

use memtrail_format::Record;

use crate::util::*;

/// A value no recording may ever contain.
fn secret() -> String {
    format!(
        "memtrail-test-secret-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// `hold.py 1` with `MEMTRAIL_TEST_SECRET` in its environment.
fn hold_with_secret(secret: &str) -> Helper {
    let mut child = Command::new("python3")
        .arg("-u")
        .arg(program("hold.py"))
        .arg("1")
        .env("MEMTRAIL_TEST_SECRET", secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let mut helper = Helper {
        stdin: child.stdin.take(),
        stdout: std::io::BufReader::new(child.stdout.take().unwrap()),
        child,
    };
    assert_eq!(helper.line(), "ready");
    helper
}

#[test]
fn environment_variables_are_never_recorded() {
    let secret = secret();
    let helper = hold_with_secret(&secret);
    let pid = helper.pid().to_string();
    // The secret really is there to be leaked.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(contains(&environ, &secret));

    let dir = tempdir();
    let mut checked = 0;
    for detail in ["summary", "rollup", "maps", "full"] {
        let snap = dir.path().join(format!("snap-{detail}.mtr"));
        let rec = dir.path().join(format!("record-{detail}.mtr"));
        let all = dir.path().join(format!("all-{detail}.mtr"));
        let runs: [&[&str]; 4] = [
            &[
                "snap",
                "--pid",
                &pid,
                "--detail",
                detail,
                "-o",
                snap.to_str().unwrap(),
            ],
            &[
                "record",
                "--pid",
                &pid,
                "--detail",
                detail,
                "--count",
                "3",
                "--interval",
                "10ms",
                "-o",
                rec.to_str().unwrap(),
            ],
            &[
                "snap",
                "--all",
                "--detail",
                detail,
                "-o",
                all.to_str().unwrap(),
            ],
            &[
                "snap", "--pid", &pid, "--detail", detail, "--format", "json",
            ],
        ];
        for args in runs {
            let o = run(args);
            assert!(o.status.success(), "{args:?}: {}", stderr(&o));
            assert!(!contains(&o.stdout, &secret), "{args:?} printed it");
            assert!(!contains(&o.stderr, &secret), "{args:?} printed it");
            checked += 1;
        }
        for path in [&snap, &rec, &all] {
            let bytes = std::fs::read(path).unwrap();
            assert!(!contains(&bytes, &secret), "{} holds it", path.display());
            let (_, records) = read_all(path);
            assert!(!samples_of(&records, helper.pid()).is_empty());
            let dump = run(&["dump", path.to_str().unwrap()]);
            assert!(!contains(&dump.stdout, &secret));
            checked += 1;
        }
    }
    // `run` hands its own environment to the command it records.
    let out = dir.path().join("run.mtr");
    let o = memtrail()
        .args(["run", "--detail", "full", "--interval", "10ms", "-o"])
        .arg(&out)
        .args(["--", "sh", "-c", "sleep 0.2"])
        .env("MEMTRAIL_TEST_SECRET", &secret)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!contains(&std::fs::read(&out).unwrap(), &secret));
    checked += 1;
    eprintln!("environment: {checked} recordings and outputs at every detail level hold no secret");
    helper.finish();
}

/// Every command line in a recording.
fn cmdlines(records: &[Record]) -> Vec<Vec<String>> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Process(s) => Some(s.info.cmdline.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn redact_cmdline_drops_arguments() {
    let helper = Helper::python("hold.py", &["1", "--password=hunter2"]);
    let mut helper = helper;
    assert_eq!(helper.line(), "ready");
    let pid = helper.pid().to_string();
    let dir = tempdir();
    let snap = dir.path().join("snap.mtr");
    let rec = dir.path().join("rec.mtr");
    for args in [
        vec![
            "snap",
            "--pid",
            &pid,
            "--detail",
            "full",
            "--redact-cmdline",
            "-o",
            snap.to_str().unwrap(),
        ],
        vec![
            "record",
            "--pid",
            &pid,
            "--detail",
            "full",
            "--redact-cmdline",
            "--count",
            "2",
            "--interval",
            "10ms",
            "-o",
            rec.to_str().unwrap(),
        ],
    ] {
        let o = run(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    for path in [&snap, &rec] {
        assert!(!contains(&std::fs::read(path).unwrap(), "hunter2"));
        let (_, records) = read_all(path);
        let lines = cmdlines(&records);
        assert!(!lines.is_empty());
        assert!(
            lines
                .iter()
                .all(|c| c.len() == 1 && c[0].contains("python")),
            "{lines:?}"
        );
    }
    // Without the flag the arguments are recorded: the test can tell.
    let o = run(&["snap", "--pid", &pid, "-o", snap.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(contains(&std::fs::read(&snap).unwrap(), "hunter2"));
    helper.finish();
}

/// Regression test: `run --redact-cmdline` redacted every sample's command
/// line but wrote the whole command, arguments and all, into the
/// recording's header.
#[test]
fn run_redact_cmdline_keeps_arguments_out_of_the_header() {
    let dir = tempdir();
    let out = dir.path().join("run.mtr");
    let o = run(&[
        "run",
        "--redact-cmdline",
        "--interval",
        "10ms",
        "-o",
        out.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "sleep 0.2",
        "sh",
        "--password=hunter2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!contains(&std::fs::read(&out).unwrap(), "hunter2"));
    let (header, records) = read_all(&out);
    assert_eq!(header.target, "run -- sh (arguments redacted)");
    assert!(cmdlines(&records).iter().all(|c| c.len() <= 1));
}

/// True for characters a terminal would act on rather than show.
fn is_raw_control(c: char) -> bool {
    (c.is_control() && c != '\n') || ('\u{202A}'..='\u{202E}').contains(&c)
}

#[test]
fn hostile_command_lines_and_paths_reach_the_terminal_escaped() {
    let dir = tempdir();
    let hostile = "\x1b]0;owned\x07\x1b[2J\u{9b}1m\u{202E}";
    let path = dir.path().join(format!("evil{hostile}.bin"));
    let mut child = Command::new("python3")
        .arg("-u")
        .arg(program("hostile.py"))
        .arg(&path)
        .arg(format!("--title={hostile}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut helper = Helper {
        stdin: child.stdin.take(),
        stdout: std::io::BufReader::new(child.stdout.take().unwrap()),
        child,
    };
    assert_eq!(helper.line(), "ready");
    let pid = helper.pid().to_string();
    let o = run(&["snap", "--pid", &pid, "--detail", "maps"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    let raw: Vec<char> = table.chars().filter(|&c| is_raw_control(c)).collect();
    assert!(raw.is_empty(), "raw {raw:?} in:\n{table}");
    // Both the command line and the mapped file are shown, escaped.
    assert!(table.contains("--title=\\u{1b}]0;owned\\u{7}"), "{table}");
    assert!(table.contains("evil\\u{1b}]0;owned"), "{table}");
    // JSON output is escaped by JSON itself.
    let o = run(&[
        "snap", "--pid", &pid, "--detail", "maps", "--format", "json",
    ]);
    assert!(!stdout(&o).contains('\x1b'));
    helper.finish();
}

#[test]
fn crates_that_read_untrusted_input_forbid_unsafe_code() {
    for krate in ["format", "diff", "report", "collect"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crates")
            .join(krate)
            .join("src/lib.rs");
        let lib = std::fs::read_to_string(&path).unwrap();
        assert!(
            lib.lines().any(|l| l.trim() == "#![forbid(unsafe_code)]"),
            "{} lacks #![forbid(unsafe_code)]",
            path.display()
        );
    }
}
