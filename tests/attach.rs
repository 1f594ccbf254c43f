//! `memtrail attach PID` against real Python daemons started normally, with
//! the dormant hook installed into a virtual environment by `memtrail
//! python-hook install` (tests/programs/attach_daemon.py).

use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use memtrail_format::Record;
use serde_json::Value;

use crate::util::*;

/// A virtual environment (in `dir`) whose python carries the hook.
fn venv_with_hook(dir: &Path) -> PathBuf {
    let venv = dir.join("venv");
    let made = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .output()
        .expect("python3 -m venv runs");
    assert!(made.status.success(), "venv: {}", stderr(&made));
    let python = venv.join("bin/python");
    let o = memtrail()
        .args(["python-hook", "install", "--python"])
        .arg(&python)
        .output()
        .unwrap();
    assert!(o.status.success(), "install: {}", stderr(&o));
    let o = memtrail()
        .args(["python-hook", "status", "--python"])
        .arg(&python)
        .output()
        .unwrap();
    assert!(
        o.status.success() && stdout(&o).starts_with("installed:"),
        "status: {}",
        stdout(&o)
    );
    python
}

/// attach_daemon.py under `python`, with its requests in `dir`/attach.
struct Daemon {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    state: PathBuf,
    pid: u32,
    worker: Option<u32>,
}

impl Daemon {
    fn start(python: &Path, dir: &Path, extra: &[&str]) -> Daemon {
        let state = dir.join("state");
        let mut child = Command::new(python)
            .arg(program("attach_daemon.py"))
            .arg(&state)
            .args(extra)
            .env("MEMTRAIL_ATTACH_DIR", dir.join("attach"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("the daemon starts");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut daemon = Daemon {
            child,
            lines,
            state,
            pid: 0,
            worker: None,
        };
        if extra.contains(&"fork") {
            daemon.worker = Some(daemon.expect("worker"));
        }
        daemon.pid = daemon.expect("ready");
        daemon
    }

    /// The pid on the next line that starts with `word`.
    fn expect(&mut self, word: &str) -> u32 {
        let line = self.lines.next().expect("the daemon prints").unwrap();
        line.strip_prefix(word)
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("expected `{word} PID`, got {line:?}"))
    }

    /// The state process `pid` reported last.
    fn state_of(&self, pid: u32) -> Option<Value> {
        let text = std::fs::read_to_string(format!("{}.{pid}", self.state.display())).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Waits until `pid` reports a state `ok` accepts; returns it.
    fn wait_state(&self, pid: u32, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        wait_for(what, || self.state_of(pid).filter(|s| ok(s)))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(worker) = self.worker {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(worker as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Dormant: the program's thread and the listener's, no tracemalloc, no request.
/// (Having looked once: named and listening.)
fn dormant(s: &Value) -> bool {
    s["threads"] == 2
        && s["tracing"] == false
        && s["hook"]["attached"] == false
        && s["hook"]["looks"].as_u64() >= Some(1)
}

fn attach(pid: u32, out: &Path, extra: &[&str]) -> std::process::Output {
    memtrail()
        .args(["attach", &pid.to_string(), "-o"])
        .arg(out)
        .args(extra)
        .output()
        .expect("memtrail attach runs")
}

fn censuses(records: &[Record], pid: u32, source: &str) -> usize {
    records
        .iter()
        .filter(|r| matches!(r, Record::Census(c) if c.process.map(|p| p.pid) == Some(pid) && c.source == source))
        .count()
}

#[test]
fn attach_records_the_census_leak_and_its_root_then_detaches_and_attaches_again() {
    let dir = tempdir();
    let python = venv_with_hook(dir.path());
    let daemon = Daemon::start(&python, dir.path(), &[]);
    let pid = daemon.pid;
    daemon.wait_state(pid, "the daemon, dormant", dormant);

    let out = dir.path().join("x.mtr");
    let o = attach(
        pid,
        &out,
        &["--python-gc", "--duration", "8s", "--interval", "250ms"],
    );
    assert!(o.status.success(), "attach failed: {}", stderr(&o));
    assert!(stderr(&o).contains("memtrail: analysis"), "{}", stderr(&o));
    let records = records(&out);
    assert!(samples_of(&records, pid).len() >= 16, "too few samples");
    assert!(censuses(&records, pid, "gc") >= 16, "too few censuses");
    let analysis = analyze_json(&out);
    let verdict = verdict_of(&analysis, pid);
    let census: Vec<&Value> = verdict["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "census")
        .collect();
    let session = census
        .iter()
        .find(|f| f["series"] == "census:gc:__main__.Session")
        .unwrap_or_else(|| panic!("no Session finding: {verdict:#}"));
    assert_eq!(session["verdict"], "leak", "{session:#}");
    assert_eq!(session["role"], "root", "{session:#}");
    let chain = session["retained_by"][0]["steps"].to_string();
    assert!(chain.contains("sessions"), "Session kept by {chain}");

    // Detached: back to dormant, then a second attach works (tracemalloc
    // this time, stopped again at the end since the hook started it).
    daemon.wait_state(pid, "the daemon, dormant after detach", dormant);
    let again = dir.path().join("again.mtr");
    let mut second = memtrail()
        .args(["attach", &pid.to_string(), "--python-tracemalloc"])
        .args(["--duration", "4s", "--interval", "250ms", "-o"])
        .arg(&again)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let attached = daemon.wait_state(pid, "the daemon, attached", |s| {
        s["hook"]["attached"] == true
    });
    // The runner's thread; tracemalloc started by the hook.
    assert_eq!(attached["threads"], 3, "{attached}");
    wait_for("tracemalloc on", || {
        daemon.state_of(pid).filter(|s| s["tracing"] == true)
    });
    let status = second.wait().unwrap();
    assert!(status.success(), "second attach failed");
    assert!(censuses(&records_of(&again), pid, "tracemalloc") > 0);
    daemon.wait_state(pid, "the daemon, dormant after the second detach", dormant);
}

/// Rings the listener's bell, as `memtrail attach` does.
fn ring(pid: u32) {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(format!("memtrail-attach-{pid}"))
        .unwrap();
    let socket = std::os::unix::net::UnixDatagram::unbound().unwrap();
    let _ = socket.send_to_addr(b"look", &addr);
}

fn records_of(path: &Path) -> Vec<Record> {
    records(path)
}

#[test]
fn attach_to_a_process_without_the_hook_fails_clearly_within_a_second() {
    let mut plain = Command::new("python3")
        .args(["-c", "import time; time.sleep(120)"])
        .env("MEMTRAIL_HOOK", "off")
        .spawn()
        .unwrap();
    let dir = tempdir();
    let started = Instant::now();
    let o = attach(plain.id(), &dir.path().join("x.mtr"), &["--python-gc"]);
    let took = started.elapsed();
    let _ = plain.kill();
    let _ = plain.wait();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("memtrail python-hook install") && err.contains("restart the process once"),
        "{err}"
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[test]
fn another_user_cannot_attach_and_a_squatted_request_is_ignored() {
    let dir = tempdir();
    let python = venv_with_hook(dir.path());
    let daemon = Daemon::start(&python, dir.path(), &[]);
    let pid = daemon.pid;
    daemon.wait_state(pid, "the daemon, dormant", dormant);

    // memtrail run as nobody refuses a root process.
    let o = Command::new("setpriv")
        .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_memtrail"))
        .args(["attach", &pid.to_string(), "-o", "/dev/null"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("only its owner or root"),
        "{}",
        stderr(&o)
    );

    // A request nobody wrote by hand, in a directory nobody owns, is not
    // acted on by the hook (it checks owner and mode), nor used by memtrail.
    let attach_dir = dir.path().join("attach");
    std::fs::create_dir(&attach_dir).unwrap();
    std::os::unix::fs::chown(&attach_dir, Some(65534), Some(65534)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&attach_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let request = attach_dir.join(format!("{pid}.json"));
    let fifo = dir.path().join("fifo");
    let o = Command::new("setpriv")
        .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
        .args(["sh", "-c", "printf '%s' \"$1\" > \"$2\"", "sh"])
        .arg(format!(
            "{{\"id\":\"evil\",\"events\":\"{}\",\"options\":{{\"sources\":[\"tracemalloc\"]}}}}",
            fifo.display()
        ))
        .arg(&request)
        .output()
        .unwrap();
    assert!(o.status.success(), "nobody writes: {}", stderr(&o));
    let looks = daemon.state_of(pid).unwrap()["hook"]["looks"]
        .as_u64()
        .unwrap();
    // Two looks after the request was there: the listener has seen it.
    // Anyone can ring its bell (it only makes it look).
    daemon.wait_state(pid, "the listener, looking twice more", |s| {
        ring(pid);
        s["hook"]["looks"].as_u64().unwrap() >= looks + 2
    });
    let s = daemon.state_of(pid).unwrap();
    assert!(dormant(&s), "the hook acted on a squatted request: {s}");
    assert!(!attach_dir.join(format!("{pid}.ack")).exists());
    let o = attach(pid, &dir.path().join("x.mtr"), &["--python-gc"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("mode 0700"), "{}", stderr(&o));
}

#[test]
fn a_forked_worker_answers_for_its_own_pid() {
    let dir = tempdir();
    let python = venv_with_hook(dir.path());
    let daemon = Daemon::start(&python, dir.path(), &["fork"]);
    let (parent, worker) = (daemon.pid, daemon.worker.unwrap());
    daemon.wait_state(worker, "the worker, dormant", dormant);
    daemon.wait_state(parent, "the parent, dormant", dormant);

    let out = dir.path().join("worker.mtr");
    let o = attach(
        worker,
        &out,
        &["--python-gc", "--duration", "2s", "--interval", "250ms"],
    );
    assert!(o.status.success(), "attach failed: {}", stderr(&o));
    let records = records(&out);
    assert!(
        censuses(&records, worker, "gc") > 0,
        "no census from the worker"
    );
    assert_eq!(censuses(&records, parent, "gc"), 0, "the parent answered");
    daemon.wait_state(worker, "the worker, dormant after detach", dormant);
    let s = daemon.state_of(parent).unwrap();
    assert!(dormant(&s), "the parent was attached: {s}");
}
