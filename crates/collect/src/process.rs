//! Reading one process: every file of its /proc directory that the detail
//! level asks for, keeping what could be read.
//!
//! All reads go through the directory descriptor procfs's `Process` holds
//! open, so once `stat` has confirmed the identity (pid + start time), every
//! later read is of that same process: if it exits and its pid is reused
//! meanwhile, reads fail (ESRCH) rather than describe the newcomer.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use memtrail_format::{
    Cpu, Detail, Fd, Fds, Mapping, NoticeKind, ProcessId, ProcessInfo, ProcessSample, Rollup,
    Status,
};
use procfs::process::Process;
use procfs::ProcError;
use rustix::fs::{Dir, OFlags};

use crate::parse::{self, FdKind};
use crate::unix_time_us;

/// Something that went wrong with one file of one process, not yet a
/// [`memtrail_format::Notice`]: the collector decides whether it is new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The file's name inside /proc/PID (`smaps`), the key for "report once".
    pub(crate) file: &'static str,
    pub(crate) kind: NoticeKind,
    /// The full path, for people.
    pub(crate) path: String,
    pub(crate) message: String,
}

/// The cheap figures whose change makes the adaptive policy re-read smaps:
/// status's memory counters and stat's fault counts. None of them walks
/// the page tables (smaps_rollup would: it costs a seventh of smaps).
/// The fault counts catch what the counters miss, such as a copy-on-write
/// fault that turns a shared page private.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChangeKey([Option<u64>; 8]);

impl ChangeKey {
    fn of(status: &Status, cpu: &Cpu) -> ChangeKey {
        ChangeKey([
            status.vm_size,
            status.vm_rss,
            status.rss_anon,
            status.rss_file,
            status.rss_shmem,
            status.vm_swap,
            Some(cpu.minflt),
            Some(cpu.majflt),
        ])
    }
}

/// What the adaptive policy remembers of a process between samples.
#[derive(Debug, Clone)]
pub(crate) struct Carry {
    /// The cheap figures as they were at the last full smaps read.
    pub(crate) key: ChangeKey,
    pub(crate) mappings: std::sync::Arc<Vec<Mapping>>,
    /// The rollup summed from `mappings`.
    pub(crate) rollup: Rollup,
    /// Samples taken since the last full read.
    pub(crate) since_full: u32,
}

/// What to read of one process.
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    pub(crate) proc_root: &'a Path,
    pub(crate) pid: u32,
    /// The identity the caller believes is at `pid`; another start time
    /// there means that process is gone.
    pub(crate) expect: Option<ProcessId>,
    pub(crate) detail: Detail,
    pub(crate) redact_cmdline: bool,
    /// At [`Detail::Maps`]: the state of the adaptive policy, if this
    /// process was read before; at [`Detail::Full`], its last regions.
    /// Owned: when smaps is read afresh the new regions are parsed into the
    /// old list's allocation, so a tick never holds two lists of a process
    /// (a recorder following many large processes would otherwise double
    /// its memory at the ticks that re-read them) and a recorder that
    /// re-reads them does not allocate them again; when they are carried
    /// over, it comes back in [`SmapsRead::Carried`].
    pub(crate) carry: Option<Carry>,
    pub(crate) maps_every: u32,
}

/// How smaps was handled for a sample.
#[derive(Debug)]
pub(crate) enum SmapsRead {
    /// Not asked for, or could not be read.
    None,
    /// Read now; the key to remember for the adaptive policy.
    Fresh(ChangeKey),
    /// Carried over from the last full read: the policy's state, as it was.
    Carried(Box<Carry>),
}

#[derive(Debug)]
pub(crate) enum Outcome {
    Sampled {
        sample: Box<ProcessSample>,
        problems: Vec<Problem>,
        smaps: SmapsRead,
    },
    /// The process is there (as far as anyone can tell) but its `stat`
    /// could not be read or parsed, so there is no sample.
    Unsampled { problems: Vec<Problem> },
    /// Not there, exited while being read, or its pid now belongs to
    /// another process.
    Gone,
}

/// The process exited (or is not the one expected).
#[derive(Debug)]
struct Gone;

enum Failure {
    Denied,
    /// ENOENT: the file does not exist, or the process is gone.
    Missing,
    /// ESRCH: the process has no address space (kernel thread, zombie), or
    /// is gone.
    NoSuchProcess,
    Io(String),
}

fn failure_of_io(e: &std::io::Error) -> Failure {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => Failure::Denied,
        std::io::ErrorKind::NotFound => Failure::Missing,
        _ if e.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error()) => {
            Failure::NoSuchProcess
        }
        _ => Failure::Io(e.to_string()),
    }
}

fn failure_of_proc(e: ProcError) -> Failure {
    match e {
        ProcError::PermissionDenied(_) => Failure::Denied,
        ProcError::NotFound(_) => Failure::Missing,
        ProcError::Io(e, _) => failure_of_io(&e),
        other => Failure::Io(other.to_string()),
    }
}

/// Reads one process according to `plan`. Never fails: what could not be
/// read is described in the outcome's problems.
pub(crate) fn read(plan: Plan<'_>) -> Outcome {
    let dir = plan.proc_root.join(plan.pid.to_string());
    let Ok(proc) = Process::new_with_root(dir.clone()) else {
        // Not listed any more: gone, or never there.
        return Outcome::Gone;
    };
    let mut reader = Reader {
        proc,
        dir,
        uid: None,
        start_time: None,
        problems: Vec::new(),
    };
    match reader.sample(plan) {
        Ok(Some((sample, smaps))) => Outcome::Sampled {
            sample: Box::new(sample),
            problems: reader.problems,
            smaps,
        },
        Ok(None) => Outcome::Unsampled {
            problems: reader.problems,
        },
        Err(Gone) => Outcome::Gone,
    }
}

struct Reader {
    proc: Process,
    dir: PathBuf,
    /// Known once status is read; names the user to run as in messages.
    uid: Option<u32>,
    /// Known once stat is read; what "still alive" means.
    start_time: Option<u64>,
    problems: Vec<Problem>,
}

impl Reader {
    fn sample(&mut self, mut plan: Plan<'_>) -> Result<Option<(ProcessSample, SmapsRead)>, Gone> {
        let time_us = unix_time_us();
        let Some(bytes) = self.read("stat")? else {
            return Ok(None);
        };
        let Some(stat) = self.parse("stat", &bytes, parse::stat) else {
            return Ok(None);
        };
        if plan.expect.is_some_and(|e| e.start_time != stat.start_time) {
            // The pid was reused: the process asked for has exited.
            return Err(Gone);
        }
        self.start_time = Some(stat.start_time);
        let id = ProcessId {
            pid: plan.pid,
            start_time: stat.start_time,
        };

        // status first: its uid makes the permission messages useful.
        let mut status = Status::default();
        if let Some(bytes) = self.read("status")? {
            if let Some((s, uid)) = self.parse("status", &bytes, parse::status) {
                status = s;
                self.uid = Some(uid);
            }
        }
        if stat.exited {
            // An exiting process is tearing its memory down: its figures
            // fall to nothing as pages are freed, which says nothing about
            // the program (and would look like a last-moment drop). Keep
            // them out, as the kernel does for a zombie.
            status = Status {
                threads: status.threads,
                ..Status::default()
            };
        }
        let cmdline = self
            .read("cmdline")?
            .map(|b| parse::cmdline(&b, plan.redact_cmdline))
            .unwrap_or_default();
        let cgroup = self.read("cgroup")?.and_then(|b| parse::cgroup_v2(&b));
        let fds = self.fds(plan.detail == Detail::Full)?;

        // A kernel thread or an exited (zombie) process has no address
        // space: nothing to read, and nothing worth a notice.
        let has_memory = !stat.kernel_thread && !stat.exited;
        let mut rollup = None;
        let mut smaps = SmapsRead::None;
        let mut mappings = None;
        let mut mappings_fresh = false;
        if plan.detail >= Detail::Maps && has_memory {
            let key = ChangeKey::of(&status, &stat.cpu);
            // Not carried over: the fresh list is parsed into the old one's
            // allocation (or the old one is dropped here, before the read,
            // if anyone else still holds it).
            let (carried, reuse) = match plan.carry.take() {
                Some(c) => {
                    let due = c.since_full.saturating_add(1) >= plan.maps_every.max(1);
                    if plan.detail == Detail::Maps && !due && c.key == key {
                        (Some(c), Vec::new())
                    } else {
                        (
                            None,
                            std::sync::Arc::try_unwrap(c.mappings).unwrap_or_default(),
                        )
                    }
                }
                None => (None, Vec::new()),
            };
            if let Some(c) = carried {
                mappings = Some(std::sync::Arc::clone(&c.mappings));
                rollup = Some(c.rollup);
                smaps = SmapsRead::Carried(Box::new(c));
            } else if let Some(m) = self.smaps(reuse)? {
                // smaps_rollup would walk every page again to add up the
                // same figures.
                rollup = Some(parse::rollup_of(&m));
                mappings = Some(std::sync::Arc::new(m));
                mappings_fresh = true;
                smaps = SmapsRead::Fresh(key);
            }
        }
        // At `rollup`, or when smaps could not be read: smaps_rollup.
        if plan.detail >= Detail::Rollup && has_memory && rollup.is_none() {
            rollup = match self.read("smaps_rollup")? {
                Some(bytes) => self.parse("smaps_rollup", &bytes, parse::rollup),
                None => None,
            };
        }

        // The detail really collected: each level needs the one before.
        let mut detail = Detail::Summary;
        if plan.detail >= Detail::Rollup && rollup.is_some() {
            detail = Detail::Rollup;
            if plan.detail >= Detail::Maps && mappings.is_some() {
                detail = Detail::Maps;
                if plan.detail == Detail::Full && fds.as_ref().is_some_and(|f| f.targets.is_some())
                {
                    detail = Detail::Full;
                }
            }
        }

        let sample = ProcessSample {
            time_us,
            id,
            info: std::sync::Arc::new(ProcessInfo {
                ppid: stat.ppid,
                comm: stat.comm,
                cmdline,
                uid: self.uid,
                cgroup,
            }),
            detail,
            status,
            cpu: Some(stat.cpu),
            rollup,
            fds,
            mappings,
            mappings_fresh,
        };
        Ok(Some((sample, smaps)))
    }

    /// Counts descriptors by kind (and lists them when `with_targets`).
    fn fds(&mut self, with_targets: bool) -> Result<Option<Fds>, Gone> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir = match self.proc.open_relative_flags("fd", flags) {
            Ok(dir) => dir,
            Err(e) => {
                let failure = failure_of_proc(e);
                self.failed("fd", failure)?;
                return Ok(None);
            }
        };
        let mut dir = match Dir::new(dir) {
            Ok(dir) => dir,
            Err(e) => {
                self.failed("fd", failure_of_io(&e.into()))?;
                return Ok(None);
            }
        };
        let mut numbers: Vec<u32> = Vec::new();
        while let Some(entry) = dir.read() {
            match entry {
                Ok(entry) => {
                    if let Some(n) = entry.file_name().to_str().ok().and_then(|s| s.parse().ok()) {
                        numbers.push(n);
                    }
                }
                Err(e) => {
                    self.failed("fd", failure_of_io(&e.into()))?;
                    return Ok(None);
                }
            }
        }
        numbers.sort_unstable();
        let Ok(dirfd) = dir.fd() else {
            return Ok(None);
        };
        let mut fds = Fds::default();
        let mut targets = Vec::new();
        for n in numbers {
            let link = match rustix::fs::readlinkat(dirfd, n.to_string(), Vec::new()) {
                Ok(link) => link,
                // Listing a process's fd/ can be allowed while reading its
                // links is not (another user's process, a sandbox): a count
                // of what could be read would be a wrong count.
                Err(e) if e == rustix::io::Errno::ACCESS || e == rustix::io::Errno::PERM => {
                    self.failed("fd", Failure::Denied)?;
                    return Ok(None);
                }
                // A descriptor closed since the listing is simply not counted.
                Err(_) => continue,
            };
            let target = link.to_string_lossy();
            match parse::fd_kind(&target) {
                FdKind::File => fds.file += 1,
                FdKind::Socket => fds.socket += 1,
                FdKind::Pipe => fds.pipe += 1,
                FdKind::AnonInode => fds.anon_inode += 1,
                FdKind::Other => fds.other += 1,
            }
            if with_targets {
                targets.push(Fd {
                    fd: n,
                    target: target.into_owned(),
                });
            }
        }
        if with_targets {
            fds.targets = Some(targets);
        }
        Ok(Some(fds))
    }

    /// Reads and parses smaps as it comes (see [`parse::read_smaps`]).
    /// `reuse`: an old list whose allocation the new one takes over.
    fn smaps(&mut self, reuse: Vec<Mapping>) -> Result<Option<Vec<Mapping>>, Gone> {
        let parsed = match self.proc.open_relative("smaps") {
            Ok(mut f) => parse::read_smaps(&mut f, reuse).map_err(|e| failure_of_io(&e)),
            Err(e) => Err(failure_of_proc(e)),
        };
        match parsed {
            Ok(Ok(maps)) => Ok(Some(maps)),
            Ok(Err(e)) => {
                self.malformed("smaps", e);
                Ok(None)
            }
            Err(failure) => {
                self.failed("smaps", failure)?;
                Ok(None)
            }
        }
    }

    /// Reads a whole file of the process's directory. `Ok(None)`: it could
    /// not be read, and a problem was recorded if that is news to anyone.
    fn read(&mut self, file: &'static str) -> Result<Option<Vec<u8>>, Gone> {
        match read_all_proc(&self.proc, file) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(failure) => {
                self.failed(file, failure)?;
                Ok(None)
            }
        }
    }

    /// Records why `file` could not be read, or returns `Gone` if the reason
    /// is that the process exited.
    fn failed(&mut self, file: &'static str, failure: Failure) -> Result<(), Gone> {
        let path = self.dir.join(file).display().to_string();
        let (kind, message) = match failure {
            Failure::Denied if rustix::process::geteuid().is_root() => (
                NoticeKind::PermissionDenied,
                format!(
                    "cannot read {path}: permission denied, even to root; memtrail records \
                     what it can. Something restricts /proc here (a container or sandbox, \
                     an LSM, hidepid, a user namespace): run memtrail inside the same \
                     container or namespace as the process to see {}.",
                    purpose(file)
                ),
            ),
            Failure::Denied => (
                NoticeKind::PermissionDenied,
                format!(
                    "cannot read {path}: permission denied; memtrail records what it can. \
                     Run as the process's user{} or as root / with {} to see {}.",
                    match self.uid {
                        Some(uid) => format!(" (uid {uid})"),
                        None => String::new(),
                    },
                    capabilities(file),
                    purpose(file)
                ),
            ),
            Failure::Missing => {
                if self.still_alive()? {
                    // It exited while being read: its memory files went
                    // with its address space. Not a problem to report.
                    return Ok(());
                }
                (
                    NoticeKind::Other,
                    format!(
                        "cannot read {path}: no such file; memtrail records what it can. \
                         This kernel does not provide it{}.",
                        requirement(file)
                    ),
                )
            }
            Failure::NoSuchProcess => {
                // Alive but without an address space (a zombie): there is
                // nothing to read, which is not a problem.
                self.still_alive()?;
                return Ok(());
            }
            Failure::Io(e) => {
                self.still_alive()?;
                (
                    NoticeKind::Other,
                    format!("cannot read {path}: {e}; memtrail records what it can."),
                )
            }
        };
        self.problems.push(Problem {
            file,
            kind,
            path,
            message,
        });
        Ok(())
    }

    fn parse<T>(
        &mut self,
        file: &'static str,
        bytes: &[u8],
        parse: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> Option<T> {
        match parse(bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                self.malformed(file, e);
                None
            }
        }
    }

    fn malformed(&mut self, file: &'static str, e: String) {
        let path = self.dir.join(file).display().to_string();
        self.problems.push(Problem {
            file,
            kind: NoticeKind::Malformed,
            message: format!(
                "cannot parse {path}: {e}; memtrail records what it can. This kernel's \
                 format is not what memtrail expects: please report it with the file's \
                 contents."
            ),
            path,
        });
    }

    /// `Err(Gone)` unless the process is still there with the same identity.
    /// `Err(Gone)` if the process is gone; otherwise whether it has
    /// exited and awaits reaping (a zombie).
    fn still_alive(&self) -> Result<bool, Gone> {
        let stat = read_all_proc(&self.proc, "stat")
            .ok()
            .and_then(|b| parse::stat(&b).ok());
        match (stat, self.start_time) {
            (Some(stat), Some(start)) if stat.start_time == start => Ok(stat.exited),
            (Some(stat), None) => Ok(stat.exited),
            _ => Err(Gone),
        }
    }
}

fn read_all(f: &mut File) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(4096);
    f.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn read_all_proc(proc: &Process, file: &str) -> Result<Vec<u8>, Failure> {
    match proc.open_relative(file) {
        Ok(mut f) => read_all(&mut f).map_err(|e| failure_of_io(&e)),
        Err(e) => Err(failure_of_proc(e)),
    }
}

/// The capabilities that let another user read a file: the ptrace access
/// check guards smaps and the descriptors' targets; listing the
/// descriptors (directory mode 0500) also needs DAC_READ_SEARCH.
fn capabilities(file: &str) -> &'static str {
    match file {
        "fd" => "CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH",
        _ => "CAP_SYS_PTRACE",
    }
}

/// What a file would have shown, for permission messages.
fn purpose(file: &str) -> &'static str {
    match file {
        "smaps" | "smaps_rollup" => "its memory map",
        "fd" => "its open descriptors",
        "cmdline" => "its command line",
        "status" => "its memory figures",
        _ => "it",
    }
}

/// What a kernel needs to provide a file, for "no such file" messages.
fn requirement(file: &str) -> &'static str {
    match file {
        "smaps_rollup" => " (smaps_rollup needs Linux 4.14 or later with CONFIG_PROC_PAGE_MONITOR)",
        "smaps" => " (smaps needs CONFIG_PROC_PAGE_MONITOR)",
        _ => "",
    }
}
