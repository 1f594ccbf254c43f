//! Shared helpers: a command builder for the binary, temporary
//! directories, spawned helper processes that are killed on drop, and
//! waiting for conditions instead of guessing at timing with sleeps.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use memtrail_format::{Reader, Record};

/// How long any condition may take before a test fails. Generous: CI
/// machines are shared and slow, and waiting costs nothing when the
/// condition holds early.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub fn memtrail() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_memtrail"));
    cmd.env_remove("NO_COLOR");
    cmd
}

/// Runs memtrail with `args`, returning its output.
pub fn run(args: &[&str]) -> Output {
    memtrail().args(args).output().expect("memtrail runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("memtrail-test-")
        .tempdir()
        .expect("temporary directory")
}

/// The path of a helper program under tests/programs.
pub fn program(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/programs")
        .join(name)
}

/// Polls `cond` until it returns Some, failing the test after PATIENCE.
pub fn wait_for<T>(what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = cond() {
            return v;
        }
        if start.elapsed() > PATIENCE {
            panic!("timed out after {PATIENCE:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A helper process driven through its stdin/stdout, killed on drop.
pub struct Helper {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: BufReader<ChildStdout>,
}

impl Helper {
    /// Starts `python3 tests/programs/<script> args...`.
    pub fn python(script: &str, args: &[&str]) -> Helper {
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(program(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 starts (is it installed?)");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Helper {
            child,
            stdin,
            stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads one line the helper printed (blocks until it does).
    pub fn line(&mut self) -> String {
        let mut s = String::new();
        self.stdout.read_line(&mut s).expect("read helper output");
        assert!(!s.is_empty(), "helper exited before printing a line");
        s.trim_end().to_string()
    }

    /// Sends one line to the helper.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to helper");
        stdin.flush().expect("flush helper stdin");
    }

    /// Closes its stdin (most helpers exit on EOF) and waits for it.
    pub fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        self.child.wait().expect("wait for helper")
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hold.py MIB`, once it has its memory and says so.
pub fn hold(mib: u32) -> Helper {
    let mut helper = Helper::python("hold.py", &[&mib.to_string()]);
    assert_eq!(helper.line(), "ready");
    helper
}

/// `memtrail record --pid PID --interval 50ms -o OUT EXTRA...` in the background.
pub fn record_in_background(pid: u32, out: &Path, extra: &[&str]) -> Background {
    let pid = pid.to_string();
    let mut args = vec![
        "record",
        "--pid",
        &pid,
        "--interval",
        "50ms",
        "-o",
        out.to_str().expect("UTF-8 temporary path"),
    ];
    args.extend_from_slice(extra);
    Background::spawn(&args)
}

/// Every record of a (possibly still growing) recording file.
pub fn records(path: &Path) -> Vec<Record> {
    let Ok(reader) = memtrail_format::open(path) else {
        return Vec::new();
    };
    reader.filter_map(Result::ok).map(|f| f.record).collect()
}

/// Opens a recording and returns its header and records; panics on error.
pub fn read_all(path: &Path) -> (memtrail_format::Header, Vec<Record>) {
    let mut reader: Reader<_> = memtrail_format::open(path).expect("recording opens");
    let header = reader.header().clone();
    let records = reader
        .by_ref()
        .map(|f| f.expect("frame reads").record)
        .collect();
    let warnings = reader.take_warnings();
    assert!(warnings.is_empty(), "unexpected warnings: {warnings:?}");
    (header, records)
}

pub fn samples_of(records: &[Record], pid: u32) -> Vec<&memtrail_format::ProcessSample> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Process(s) if s.id.pid == pid => Some(&**s),
            _ => None,
        })
        .collect()
}

/// A memtrail process running in the background, killed on drop.
/// `memtrail record --all --detail full` every `interval` into `out`,
/// started and seen writing (the file past 64 KiB): the heaviest recorder
/// there is. Such a file grows by megabytes a second, so the wait looks at
/// its size instead of reading it.
pub fn record_everything(out: &Path, interval: &str) -> Background {
    let rec = Background::spawn(&[
        "record",
        "--all",
        "--detail",
        "full",
        "--interval",
        interval,
        "-o",
        out.to_str().expect("UTF-8 temporary path"),
    ]);
    wait_for("the first samples", || {
        (file_size(out) > 64 * 1024).then_some(())
    });
    rec
}

/// The size of the file at `path`; 0 while it does not exist.
pub fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

pub struct Background(pub Child);

impl Background {
    pub fn spawn(args: &[&str]) -> Background {
        Background(
            memtrail()
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("memtrail starts"),
        )
    }

    /// Waits for it to exit by itself. Its output is read meanwhile, so a
    /// chatty process cannot block on a full pipe.
    pub fn wait(mut self) -> Output {
        let pid = self.0.id();
        let child = std::mem::replace(
            &mut self.0,
            Command::new("true").spawn().expect("spawn true"),
        );
        let _ = self.0.wait();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(PATIENCE) {
            Ok(out) => out.expect("collect output"),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!("memtrail did not exit within {PATIENCE:?}");
            }
        }
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory on the target's disk (not a tmpfs /tmp, where file pages
/// would count as shared memory), removed on drop.
pub fn disk_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("memtrail-test-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temporary directory under the target dir")
}

/// `tests/programs/leak.c`, compiled once per test run with gcc.
pub fn leak_binary() -> PathBuf {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY
        .get_or_init(|| {
            let out =
                Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("leak-{}", std::process::id()));
            let status = Command::new("gcc")
                .args(["-O1", "-Wall", "-o"])
                .arg(&out)
                .arg(program("leak.c"))
                .status()
                .expect("gcc runs (is it installed?)");
            assert!(status.success(), "gcc failed to build leak.c");
            out
        })
        .clone()
}

/// `memtrail analyze FILE --format json`, parsed.
pub fn analyze_json(path: &Path) -> serde_json::Value {
    let o = run(&["analyze", path.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "analyze failed: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("analyze prints JSON")
}

/// The process with this pid in an analysis.
pub fn verdict_of(analysis: &serde_json::Value, pid: u32) -> &serde_json::Value {
    analysis["processes"]
        .as_array()
        .expect("processes array")
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("process {pid} not in the analysis: {analysis:#}"))
}

/// Reads VmRSS of a live process, KiB.
pub fn vm_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `memtrail record --pid PID --interval INTERVAL --count COUNT -o OUT
/// EXTRA...`, run to the end; panics if it fails.
pub fn record_samples(pid: u32, out: &Path, interval: &str, count: u32, extra: &[&str]) {
    let (pid, count) = (pid.to_string(), count.to_string());
    let mut args = vec![
        "record",
        "--pid",
        &pid,
        "--interval",
        interval,
        "--count",
        &count,
        "-o",
        out.to_str().expect("UTF-8 temporary path"),
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "record failed: {}", stderr(&o));
}

/// Copies the recording `src` to `dst` with a marker inserted at each
/// `(share, label, pid)`: `share` of the way (0..1) through its time span.
/// Markers at exact shares of a recording, for committed fixtures
/// (`memtrail mark` puts them where a running recording is).
pub fn add_markers(src: &Path, dst: &Path, markers: &[(f64, &str, Option<u32>)]) {
    let (header, records) = read_all(src);
    let first = records.first().map_or(0, Record::time_us);
    let last = records
        .iter()
        .filter(|r| !matches!(r, Record::End(_)))
        .map(Record::time_us)
        .max()
        .unwrap_or(first);
    let mut pending: Vec<memtrail_format::Marker> = markers
        .iter()
        .map(|&(share, label, pid)| memtrail_format::Marker {
            time_us: first + ((last - first) as f64 * share) as u64,
            label: label.to_string(),
            pid,
            source: "cli".into(),
        })
        .collect();
    pending.sort_by_key(|m| std::cmp::Reverse(m.time_us));
    let file = std::fs::File::create(dst).expect("create the marked recording");
    let mut writer = memtrail_format::Writer::new(std::io::BufWriter::new(file), &header)
        .expect("write the header");
    let mut end = None;
    for record in records {
        while pending
            .last()
            .is_some_and(|m| m.time_us <= record.time_us())
        {
            let m = pending.pop().expect("checked");
            writer.write(&Record::Marker(m)).expect("write a marker");
        }
        match record {
            Record::End(e) => end = Some(e),
            r => writer.write(&r).expect("write a record"),
        }
    }
    for m in pending.into_iter().rev() {
        writer.write(&Record::Marker(m)).expect("write a marker");
    }
    match end {
        Some(e) => {
            writer.finish(&e).expect("write the end frame");
        }
        None => writer.flush().expect("flush"),
    }
}
