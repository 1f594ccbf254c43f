//! Helpers: a fake /proc in a temporary directory, real child processes
//! that are always cleaned up, and polling for a condition.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a condition may take before a test fails.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Calls `f` until it returns `Some`, failing the test after a timeout.
pub fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fake /proc: the captured `sleep` process at pid 5316 (start time
/// 69526) with a few descriptors, and the machine-wide files.
pub struct FakeProc {
    pub dir: tempfile::TempDir,
}

pub const FAKE_PID: u32 = 5316;
pub const FAKE_START: u64 = 69526;

impl FakeProc {
    pub fn new() -> FakeProc {
        let fake = FakeProc {
            dir: tempfile::tempdir().unwrap(),
        };
        fake.add_process(FAKE_PID);
        for file in ["meminfo", "stat"] {
            fake.copy(&fixture(file), file);
        }
        fake.copy(&fixture("hostname"), "sys/kernel/hostname");
        fake.copy(&fixture("osrelease"), "sys/kernel/osrelease");
        fake
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Copies the captured process's files to `<root>/<pid>`.
    pub fn add_process(&self, pid: u32) {
        for file in [
            "stat",
            "status",
            "smaps",
            "smaps_rollup",
            "cmdline",
            "cgroup",
        ] {
            self.copy(&fixture("sleep").join(file), &format!("{pid}/{file}"));
        }
        let fd = self.root().join(format!("{pid}/fd"));
        std::fs::create_dir_all(&fd).unwrap();
        for (n, target) in [
            (0, "/dev/null"),
            (1, "pipe:[8935]"),
            (2, "pipe:[8935]"),
            (3, "socket:[12345]"),
            (4, "anon_inode:[eventfd]"),
            (10, "/tmp/log (deleted)"),
            (7, "net:[4026531840]"),
        ] {
            std::os::unix::fs::symlink(target, fd.join(n.to_string())).unwrap();
        }
    }

    pub fn copy(&self, from: &Path, to: &str) {
        self.write(to, &std::fs::read(from).unwrap());
    }

    pub fn write(&self, to: &str, contents: &[u8]) {
        let path = self.root().join(to);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    pub fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.root().join(file)).unwrap()
    }

    /// Rewrites a line of `<pid>/status` that starts with `key`.
    pub fn set_status(&self, pid: u32, key: &str, value: &str) {
        let file = format!("{pid}/status");
        let text: String = self
            .read(&file)
            .lines()
            .map(|l| {
                if l.starts_with(key) {
                    format!("{key}\t{value}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        self.write(&file, text.as_bytes());
    }

    /// Gives the process at `pid` a new start time: pid reuse.
    pub fn set_start_time(&self, pid: u32, start_time: u64) {
        let file = format!("{pid}/stat");
        let stat = self.read(&file);
        let close = stat.rfind(')').unwrap();
        let mut fields: Vec<String> = stat[close + 2..].split(' ').map(str::to_owned).collect();
        // Field 22 overall is the 20th after `pid (comm)`.
        fields[19] = start_time.to_string();
        self.write(
            &file,
            format!("{}{}", &stat[..close + 2], fields.join(" ")).as_bytes(),
        );
    }
}

/// A child process killed and reaped when the test ends, however it ends.
pub struct Spawned {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<BufReader<ChildStdout>>,
}

impl Spawned {
    pub fn new(program: &str, args: &[&str]) -> Spawned {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(BufReader::new);
        Spawned {
            child,
            stdin,
            stdout,
        }
    }

    /// A `python3 -c SCRIPT` child.
    pub fn python(script: &str) -> Spawned {
        Spawned::new("python3", &["-c", script])
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the child has exec'd `comm` (a fork not yet exec'd
    /// shows the parent's).
    pub fn wait_for_comm(&self, comm: &str) {
        let path = format!("/proc/{}/comm", self.pid());
        poll(&format!("{path} to be {comm}"), || {
            (std::fs::read_to_string(&path).ok()?.trim() == comm).then_some(())
        });
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next line the child prints (blocks until it does).
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.as_mut().unwrap().read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the child closed its stdout");
        line.trim_end().to_owned()
    }

    /// Kills the child and reaps it, so its pid is gone from /proc.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}
