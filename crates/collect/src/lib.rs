//! memtrail-collect: per-process memory snapshots from Linux /proc.
//!
//! A [`Config`] names what to sample (a [`Target`]: one pid, a process tree,
//! processes matching a name, or all of them) and how much of each (a
//! [`Detail`] level). A [`Collector`] built from it checks the target once,
//! fixes the identity of a pid target (pid + start time, so a reused pid is
//! never mistaken for it), and then produces one [`Tick`] per call to
//! [`Collector::sample`]: a [`ProcessSample`] per process, the machine-wide
//! [`SystemSample`], the processes that exited since the last tick and any
//! new [`Notice`]s about files that could not be read.
//!
//! Reading never fails as a whole once the collector exists: a process that
//! exits mid-read is left out (and reported exited), a file that cannot be
//! read lowers that sample's `detail` and is reported once as a notice.
//! [`snapshot`] is the one-tick convenience; [`read_process`] reads a single
//! process in full.
//!
//! Every reader takes the /proc root from [`Config::proc_root`], so tests
//! point it at a fake /proc built from captured files. `docs/collection.md`
//! lists each file read at each level, and the adaptive smaps policy.
//!
//! ```
//! use memtrail_collect::{snapshot, Config, Detail, Target};
//!
//! let me = std::process::id();
//! let tick = snapshot(Config::new(Target::Pid(me), Detail::Rollup))?;
//! let sample = &tick.processes[0];
//! assert_eq!(sample.id.pid, me);
//! assert!(sample.status.vm_rss.unwrap() > 0);
//! assert!(sample.fds.as_ref().unwrap().total() >= 1);
//! # Ok::<(), memtrail_collect::CollectError>(())
//! ```
#![forbid(unsafe_code)]

mod collector;
mod error;
mod parse;
mod process;
mod select;
mod system;

use std::path::{Path, PathBuf};

pub use collector::Collector;
pub use error::CollectError;
pub use memtrail_format::Detail;
use memtrail_format::{Mapping, Notice, ProcessExit, ProcessSample, SystemSample};

/// Which processes to sample.
#[derive(Debug, Clone)]
pub enum Target {
    /// One process.
    Pid(u32),
    /// A process and all its descendants, following children that appear
    /// and vanish; descendants stay followed if their parent exits.
    Tree(u32),
    /// Every process whose comm or full command line (arguments joined by
    /// spaces) matches; once matched, followed until it exits.
    Name(regex::Regex),
    /// Every process (but the collector's own).
    All,
}

/// What a [`Collector`] samples and how.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where procfs is mounted: `/proc`, or a fake one in tests.
    pub proc_root: PathBuf,
    pub target: Target,
    pub detail: Detail,
    /// At [`Detail::Maps`], re-read smaps for a process at least every
    /// `maps_every`th sample even if nothing changed (0 and 1: every sample).
    pub maps_every: u32,
    /// Keep only argv\[0\] of command lines.
    pub redact_cmdline: bool,
}

impl Config {
    /// `/proc`, smaps re-read at least every 10th sample, full command lines.
    pub fn new(target: Target, detail: Detail) -> Config {
        Config {
            proc_root: PathBuf::from("/proc"),
            target,
            detail,
            maps_every: 10,
            redact_cmdline: false,
        }
    }
}

/// Everything one [`Collector::sample`] observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    /// When the tick started, microseconds since the Unix epoch.
    pub time_us: u64,
    /// One sample per process read, sorted by pid.
    pub processes: Vec<ProcessSample>,
    /// /proc/meminfo and the cgroup v2 memory of the sampled processes.
    pub system: SystemSample,
    /// Processes sampled before (or the target itself) that are gone now,
    /// including those whose pid now belongs to another process.
    pub exited: Vec<ProcessExit>,
    /// Problems not reported before by this collector.
    pub notices: Vec<Notice>,
}

/// Samples `config.target` once. At [`Detail::Maps`] this reads smaps in
/// full: there is no earlier sample to carry mappings over from.
pub fn snapshot(config: Config) -> Result<Tick, CollectError> {
    Ok(Collector::new(config)?.sample())
}

/// Reads the process `pid` under `proc_root` in full at `detail` (no
/// adaptive skipping), whatever process holds that pid now.
///
/// Files that cannot be read lower the sample's `detail`, as in a tick; it
/// is an error only if the process is not there or its stat is unreadable.
pub fn read_process(
    proc_root: &Path,
    pid: u32,
    detail: Detail,
) -> Result<ProcessSample, CollectError> {
    let outcome = process::read(process::Plan {
        proc_root,
        pid,
        expect: None,
        detail,
        redact_cmdline: false,
        carry: None,
        maps_every: 1,
    });
    match outcome {
        process::Outcome::Sampled { sample, .. } => Ok(*sample),
        process::Outcome::Gone if proc_root.join(pid.to_string()).exists() => {
            Err(CollectError::Vanished { pid })
        }
        process::Outcome::Gone => Err(CollectError::NoSuchProcess { pid }),
        process::Outcome::Unsampled { problems } => {
            let p = problems.into_iter().next();
            Err(CollectError::Unreadable {
                path: p
                    .as_ref()
                    .map(|p| PathBuf::from(&p.path))
                    .unwrap_or_default(),
                message: p.map_or_else(|| format!("cannot read process {pid}"), |p| p.message),
            })
        }
    }
}

/// Parses the text of a /proc/PID/smaps file (read or captured by the
/// caller) into mappings sorted by start address, as the collector does.
pub fn parse_smaps(text: &[u8]) -> Result<Vec<Mapping>, CollectError> {
    parse::smaps(text).map_err(|message| CollectError::Malformed {
        path: PathBuf::from("smaps"),
        message,
    })
}

fn unix_time_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
