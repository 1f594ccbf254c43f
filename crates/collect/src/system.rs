//! Machine-wide reads: the host's facts, /proc/meminfo and cgroup memory.

use std::path::{Path, PathBuf};

use memtrail_format::{CgroupMemory, Host, MemInfo};

use crate::parse;
use crate::CollectError;

/// Where the cgroup v2 hierarchy is mounted, as the collector sees it.
pub(crate) fn cgroup2_root(proc_root: &Path) -> PathBuf {
    std::fs::read(proc_root.join("self/mountinfo"))
        .ok()
        .and_then(|b| parse::cgroup2_mount(&b))
        .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"))
}

pub(crate) fn host(proc_root: &Path) -> Result<Host, CollectError> {
    let text = |name: &str| -> Result<String, CollectError> {
        let path = proc_root.join(name);
        match std::fs::read(&path) {
            Ok(b) => Ok(String::from_utf8_lossy(&b).trim().to_owned()),
            Err(e) => Err(CollectError::io(path, e)),
        }
    };
    let hostname = text("sys/kernel/hostname")?;
    let kernel = text("sys/kernel/osrelease")?;
    let stat = proc_root.join("stat");
    let bytes = std::fs::read(&stat).map_err(|e| CollectError::io(stat.clone(), e))?;
    let boot_secs = parse::boot_time_secs(&bytes).ok_or_else(|| CollectError::Malformed {
        path: stat,
        message: "no `btime` line".to_owned(),
    })?;
    Ok(Host {
        hostname,
        kernel,
        page_size: procfs::page_size(),
        clock_ticks: procfs::ticks_per_second(),
        boot_time_us: boot_secs * 1_000_000,
    })
}

pub(crate) fn meminfo(proc_root: &Path) -> Result<MemInfo, (PathBuf, String)> {
    let path = proc_root.join("meminfo");
    let bytes = std::fs::read(&path).map_err(|e| (path.clone(), e.to_string()))?;
    parse::meminfo(&bytes).map_err(|e| (path, e))
}

/// memory.current and memory.max of the cgroup at `path` (as in
/// /proc/PID/cgroup) below `root`. Missing files (the memory controller is
/// not enabled there, or it is the root cgroup) read as `None`.
pub(crate) fn cgroup(root: &Path, path: &str) -> CgroupMemory {
    let dir = root.join(path.trim_start_matches('/'));
    let read = |file: &str| {
        std::fs::read(dir.join(file))
            .ok()
            .and_then(|b| parse::cgroup_bytes(&b))
    };
    CgroupMemory {
        path: path.to_owned(),
        current_bytes: read("memory.current"),
        max_bytes: read("memory.max"),
    }
}
