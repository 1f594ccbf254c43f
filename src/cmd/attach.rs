//! `memtrail attach PID`: record a running Python process and have the
//! dormant hook in it (python/memtrail_hook/listener.py) report censuses
//! into the recording, through an attach request (docs/events.md).

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use memtrail_collect::{Collector, Target};

use crate::cli::AttachArgs;
use crate::events::{self, Events, PrivateDir};
use crate::output::open_binary;
use crate::recorder::{self, Limits};
use crate::signals::StopSignals;
use crate::units::Interval;

/// The name the listener gives its thread (/proc/PID/task/*/comm).
const THREAD_NAME: &str = "memtrail-hook";
/// How long a detached hook has to say it stopped.
const DETACH_WAIT: Duration = Duration::from_secs(4);

pub fn run(args: AttachArgs) -> anyhow::Result<u8> {
    let pid = args.pid;
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let uid = std::fs::metadata(&proc_dir)
        .with_context(|| format!("no process {pid} (nothing at {})", proc_dir.display()))?
        .uid();
    let me = std::fs::metadata("/proc/self")
        .context("cannot read /proc/self")?
        .uid();
    if me != 0 && me != uid {
        anyhow::bail!(
            "process {pid} belongs to uid {uid}: only its owner or root can attach to it"
        );
    }
    if !carries_hook(pid) {
        anyhow::bail!(
            "process {pid} does not carry memtrail's Python hook (no `{THREAD_NAME}` thread): \
             install it into the interpreter's environment with `memtrail python-hook install \
             --python PATH` and restart the process once; from then on it can be attached to"
        );
    }
    let base = attach_dir(pid, uid);
    prepare_dir(&base, uid, me)?;

    let private = PrivateDir::new()?;
    let fifo = private.path().join("events");
    events::make_fifo(&fifo)?;
    if me != uid {
        // The target writes into our FIFO: hand it (and the way to it) over.
        for path in [private.path(), fifo.as_path()] {
            std::os::unix::fs::chown(path, Some(uid), None)
                .with_context(|| format!("cannot hand {} to uid {uid}", path.display()))?;
        }
    }
    let mut events = Events::open(&fifo)?;

    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("memtrail-attach-{pid}.mtr")));
    let out = open_binary(&output)?;
    let signals = StopSignals::install()?;

    let id = format!("{}-{}", std::process::id(), recorder::now_us());
    let mut sources = Vec::new();
    if args.python_gc || !args.python_tracemalloc {
        sources.push("gc");
    }
    if args.python_tracemalloc {
        sources.push("tracemalloc");
    }
    // Like `record`, attach samples every second unless told otherwise; the
    // hook's census follows a fixed interval, and every second under `auto`.
    let interval = args
        .sampling
        .interval
        .unwrap_or(Interval::Fixed(Duration::from_secs(1)));
    let census_every = match interval {
        Interval::Fixed(d) => d,
        Interval::Auto => Duration::from_secs(1),
    };
    let request = serde_json::json!({
        "id": id,
        "events": fifo.to_string_lossy(),
        "options": {
            "sources": sources,
            "interval": census_every.as_secs_f64(),
            "frames": args.python_frames,
        },
    });
    let mut pending = Request::write(&base, pid, uid, me, &request.to_string())?;
    ring(pid);
    pending
        .wait_ack(&id, args.answer_within.0)
        .map_err(|waited| {
            anyhow::anyhow!(
            "process {pid} has memtrail's hook but did not answer the attach request within {} \
             (is its interpreter stuck, or the request directory {} not its own?)",
            humantime::format_duration(waited),
            base.display()
        )
        })?;
    eprintln!(
        "memtrail: attached to {pid} ({}); recording to {}",
        sources.join(", "),
        output.display()
    );

    let detail = args.sampling.detail.into();
    let recorded = (|| -> anyhow::Result<recorder::Finished> {
        let mut collector = Collector::new(super::config(
            Target::Pid(pid),
            detail,
            args.redact_cmdline,
            args.sampling.maps_every,
        ))?;
        let header = super::header(&collector, format!("attach {pid}"), detail, Some(interval))?;
        let mut writer = recorder::writer(out.sink, &header, args.sampling.uncompressed)
            .with_context(|| {
                crate::output::Writing(format!("cannot write the recording to {}", out.name))
            })?;
        let limits = Limits {
            duration: args.duration.map(|d| d.0),
            count: None,
        };
        let finished = recorder::sample_loop(
            &mut collector,
            &mut writer,
            interval,
            limits,
            &signals,
            &mut super::record::WatchTargets,
            Some(&mut events),
            &out.name,
            None,
        )?;
        // Withdraw before the End frame: what the hook sends while it stops
        // still lands in the recording.
        pending.withdraw();
        pending.wait_gone(DETACH_WAIT);
        for record in events.drain(true) {
            writer.write(&record)?;
        }
        recorder::finish(writer, &finished, &out.name)?;
        Ok(finished)
    })();
    pending.withdraw();
    let finished = recorded?;
    eprintln!(
        "memtrail: detached from {pid}; recorded {} in {} to {} ({})",
        memtrail_report::count(finished.samples as usize, "sample", "samples"),
        memtrail_report::count(finished.ticks as usize, "tick", "ticks"),
        output.display(),
        super::record::describe_end(&finished.reason),
    );
    if output.as_os_str() == "-" {
        return Ok(0);
    }
    match super::run::analyze_file(&output) {
        Ok(analysis) => eprint!(
            "\nmemtrail: analysis (details: memtrail analyze {} --all)\n{}",
            output.display(),
            memtrail_report::analysis::text(&analysis, false)
        ),
        Err(err) => eprintln!("memtrail: no analysis: {err:#}"),
    }
    Ok(0)
}

/// Wakes the listener of `pid` (it sleeps on an abstract datagram socket,
/// `memtrail-attach-PID`) to look at its request path now. Best effort: a
/// listener that cannot be rung looks every second anyway.
fn ring(pid: u32) {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("memtrail-attach-{pid}");
    let Ok(addr) = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()) else {
        return;
    };
    if let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() {
        let _ = socket.send_to_addr(b"look", &addr);
    }
}

/// Whether one of the process's threads is the listener.
fn carries_hook(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("comm"))
            .is_ok_and(|comm| comm.trim_end() == THREAD_NAME)
    })
}

/// Where the target looks for requests: its MEMTRAIL_ATTACH_DIR, or
/// /tmp/memtrail-attach-<uid> (what the listener computes itself).
fn attach_dir(pid: u32, uid: u32) -> PathBuf {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    environ
        .split(|&b| b == 0)
        .find_map(|var| var.strip_prefix(b"MEMTRAIL_ATTACH_DIR="))
        .filter(|v| !v.is_empty())
        .map(|v| PathBuf::from(String::from_utf8_lossy(v).into_owned()))
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/memtrail-attach-{uid}")))
}

/// Creates the request directory (mode 0700, owned by the target's uid)
/// or checks that the one there is such: the listener ignores any other.
fn prepare_dir(base: &Path, uid: u32, me: u32) -> anyhow::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(base) {
        Ok(()) => {
            if me != uid {
                std::os::unix::fs::chown(base, Some(uid), None)
                    .with_context(|| format!("cannot hand {} to uid {uid}", base.display()))?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(e).with_context(|| format!("cannot create {}", base.display()));
        }
    }
    let meta = std::fs::symlink_metadata(base)
        .with_context(|| format!("cannot read {}", base.display()))?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        anyhow::bail!(
            "{} is not a directory of uid {uid} with mode 0700 (it is uid {}, mode {:o}): the \
             hook would not trust a request there; remove it and attach again",
            base.display(),
            meta.uid(),
            meta.permissions().mode() & 0o7777
        );
    }
    Ok(())
}

/// The request file, removed when dropped.
struct Request {
    path: PathBuf,
    ack: PathBuf,
    pid: u32,
    live: bool,
}

impl Request {
    fn write(base: &Path, pid: u32, uid: u32, me: u32, text: &str) -> anyhow::Result<Request> {
        let path = base.join(format!("{pid}.json"));
        let tmp = base.join(format!("{pid}.json.{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            std::fs::write(&tmp, text)?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
            if me != uid {
                std::os::unix::fs::chown(&tmp, Some(uid), None)?;
            }
            std::fs::rename(&tmp, &path)
        };
        write().with_context(|| format!("cannot write the attach request {}", path.display()))?;
        Ok(Request {
            ack: base.join(format!("{pid}.ack")),
            path,
            pid,
            live: true,
        })
    }

    /// Waits until the hook says it took request `id`; Err(waited) if not.
    fn wait_ack(&mut self, id: &str, within: Duration) -> Result<(), Duration> {
        let started = Instant::now();
        loop {
            if std::fs::read_to_string(&self.ack).is_ok_and(|a| a.trim() == id) {
                return Ok(());
            }
            if started.elapsed() >= within || !Path::new(&format!("/proc/{}", self.pid)).exists() {
                self.withdraw();
                return Err(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn withdraw(&mut self) {
        if self.live {
            self.live = false;
            let _ = std::fs::remove_file(&self.path);
            ring(self.pid);
        }
    }

    /// Waits until the hook has stopped (its ack is gone) or the process has.
    fn wait_gone(&self, within: Duration) {
        let started = Instant::now();
        while self.ack.exists() && Path::new(&format!("/proc/{}", self.pid)).exists() {
            if started.elapsed() >= within {
                eprintln!(
                    "memtrail: warning: the hook in {} has not confirmed it stopped ({} is still \
                     there); it stops when it next looks",
                    self.pid,
                    self.ack.display()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        self.withdraw();
    }
}
