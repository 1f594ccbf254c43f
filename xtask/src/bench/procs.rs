//! Processes for the benchmarks: the mapping helper, timed commands, CPU
//! time from getrusage, and the raw reads that are the kernel's floor.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::Ctx;

/// The C helper holding N anonymous mappings (and maybe children, and
/// churn), in its own process group so that the whole tree is killed.
pub(crate) struct Helper {
    child: Child,
}

impl Helper {
    pub(crate) fn start(
        ctx: &Ctx,
        mappings: usize,
        children: usize,
        churn_ms: u64,
    ) -> anyhow::Result<Helper> {
        let mut child = Command::new(&ctx.helper)
            .args([
                mappings.to_string(),
                children.to_string(),
                churn_ms.to_string(),
            ])
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}", ctx.helper.display()))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .context("reading the helper's `ready`")?;
        let helper = Helper { child };
        if line.trim() != "ready" {
            bail!("the mapping helper did not start (it said {line:?})");
        }
        Ok(helper)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// What one run of a command cost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cost {
    pub(crate) wall: Duration,
    /// User + system time of the command (and anything it waited for).
    pub(crate) cpu: Duration,
}

fn cpu_of(who: UsageWho) -> anyhow::Result<Duration> {
    let u = getrusage(who)?;
    let d = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    Ok(d(u.user_time()) + d(u.system_time()))
}

/// CPU time this process has used so far.
pub(crate) fn self_cpu() -> anyhow::Result<Duration> {
    cpu_of(UsageWho::RUSAGE_SELF)
}

/// Runs `cmd` to completion with its output thrown away, and measures it.
/// Children are run one at a time, so the growth of RUSAGE_CHILDREN across
/// the wait is this command's CPU time.
pub(crate) fn measure(cmd: &mut Command) -> anyhow::Result<Cost> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let before = cpu_of(UsageWho::RUSAGE_CHILDREN)?;
    let start = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let wall = start.elapsed();
    let cpu = cpu_of(UsageWho::RUSAGE_CHILDREN)?.saturating_sub(before);
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(Cost { wall, cpu })
}

/// Runs `cmd`, polling its VmHWM until it exits; returns the highest seen
/// (KiB).
pub(crate) fn peak_rss_kib(cmd: &mut Command) -> anyhow::Result<u64> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            if let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            {
                peak = peak.max(kib);
            }
        }
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("{cmd:?} failed ({status})");
            }
            return Ok(peak);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` and fails with its stderr if it fails.
pub(crate) fn check(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

pub(crate) fn stdout_of(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.stdin(Stdio::null()).stderr(Stdio::inherit()).output()?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}

/// The /proc files a recorder reads for one process per sample, to be
/// read raw (no parsing) as the kernel's floor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reads {
    /// stat, status, cmdline, cgroup, the fd/ listing and a readlink per
    /// descriptor, /proc/meminfo.
    pub(crate) summary: bool,
    pub(crate) smaps_rollup: bool,
    /// Read smaps on one sample in this many (0: never).
    pub(crate) smaps_every: u32,
}

/// CPU per sample of reading `reads` of `pid` `samples` times, raw, one
/// sample every `interval` as a recorder would (caches go cold between
/// samples for the recorder too; back to back reads would flatter the
/// floor).
pub(crate) fn raw_reads(
    pid: u32,
    reads: Reads,
    samples: u32,
    interval: Duration,
) -> anyhow::Result<Duration> {
    let dir = Path::new("/proc").join(pid.to_string());
    let mut buf = Vec::with_capacity(1 << 20);
    let mut read = |path: &Path| -> anyhow::Result<()> {
        use std::io::Read;
        buf.clear();
        std::fs::File::open(path)?.read_to_end(&mut buf)?;
        std::hint::black_box(&buf);
        Ok(())
    };
    let cgroup = std::fs::read_to_string(dir.join("cgroup")).unwrap_or_default();
    let cgroup_dir = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| Path::new("/sys/fs/cgroup").join(p.trim_start_matches('/')));
    let before = self_cpu()?;
    for i in 0..samples {
        std::thread::sleep(interval);
        if reads.summary {
            for file in ["stat", "status", "cmdline", "cgroup"] {
                read(&dir.join(file))?;
            }
            for entry in std::fs::read_dir(dir.join("fd"))? {
                let _ = std::fs::read_link(entry?.path());
            }
            read(Path::new("/proc/meminfo"))?;
            if let Some(cg) = &cgroup_dir {
                let _ = read(&cg.join("memory.current"));
                let _ = read(&cg.join("memory.max"));
            }
        }
        if reads.smaps_rollup {
            read(&dir.join("smaps_rollup"))?;
        }
        if reads.smaps_every > 0 && i % reads.smaps_every == 0 {
            read(&dir.join("smaps"))?;
        }
    }
    Ok((self_cpu()? - before) / samples.max(1))
}

/// `cargo run --release -p memtrail-format --example NAME --`: the format
/// crate's generators and timers, built in release like the binary.
pub(crate) fn format_example(name: &str) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(crate::workspace_root()).args([
        "run",
        "--release",
        "--locked",
        "-q",
        "-p",
        "memtrail-format",
        "--example",
        name,
        "--",
    ]);
    cmd
}

/// The value of top-level `key` in one line of `memtrail dump`'s JSON,
/// unquoted. Top-level keys are sorted, so a record's `offset` and `type`
/// come after any nested key of the same name (a mapping's `offset`):
/// the last occurrence is the record's.
pub(crate) fn dump_field(line: &str, key: &str) -> Option<String> {
    let at = line.rfind(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &line[at..];
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let end = rest.find(['"', ',', '}'])?;
    Some(rest[..end].to_owned())
}
