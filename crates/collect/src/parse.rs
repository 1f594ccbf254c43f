//! Turning the text of /proc files into model types.
//!
//! The structured files (`stat`, `status`, `smaps_rollup`, `meminfo`,
//! `mountinfo`) are parsed by procfs-core; this module converts its types
//! into the model and parses the few files procfs handles lossily (see
//! [`smaps`]). Every function here is pure: it takes bytes the caller read,
//! so the parsers are tested on captured files without any /proc at all.

use std::io::Cursor;

use memtrail_format::{Cpu, Mapping, MemInfo, Rollup, Status, Text};
use procfs::prelude::*;
use procfs::process::{SmapsRollup, Stat};

/// `PF_KTHREAD` in `/proc/PID/stat` flags: a kernel thread has no address
/// space, so its smaps_rollup read fails with ESRCH and its smaps is empty.
const PF_KTHREAD: u32 = 0x0020_0000;

/// `PF_EXITING` in `/proc/PID/stat` flags: the process is exiting. Its
/// address space may already be gone while its state is not yet `Z`, and
/// then its memory files fail with ENOENT as if the kernel lacked them.
const PF_EXITING: u32 = 0x0000_0004;

/// What memtrail takes from /proc/PID/stat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatLine {
    pub(crate) pid: u32,
    pub(crate) comm: String,
    pub(crate) ppid: u32,
    pub(crate) start_time: u64,
    pub(crate) kernel_thread: bool,
    /// State `Z` (zombie) or `X` (dead), or exiting (`PF_EXITING`):
    /// exited or on its way, not yet reaped; its address space is gone or
    /// going.
    pub(crate) exited: bool,
    pub(crate) cpu: Cpu,
}

pub(crate) fn stat(bytes: &[u8]) -> Result<StatLine, String> {
    let stat = Stat::from_read(Cursor::new(bytes)).map_err(|e| e.to_string())?;
    Ok(from_stat(&stat))
}

fn from_stat(stat: &Stat) -> StatLine {
    StatLine {
        pid: stat.pid.max(0) as u32,
        comm: stat.comm.clone(),
        ppid: stat.ppid.max(0) as u32,
        start_time: stat.starttime,
        kernel_thread: stat.flags & PF_KTHREAD != 0,
        exited: matches!(stat.state, 'Z' | 'X' | 'x') || stat.flags & PF_EXITING != 0,
        cpu: Cpu {
            utime: stat.utime,
            stime: stat.stime,
            minflt: stat.minflt,
            majflt: stat.majflt,
        },
    }
}

/// /proc/PID/status: the memory figures (KiB) and the real uid.
pub(crate) fn status(bytes: &[u8]) -> Result<(Status, u32), String> {
    // procfs reads lines as UTF-8 and fails on a non-UTF-8 `Name:` (comm is
    // whatever bytes the process set), so hand it a lossy copy.
    let text = String::from_utf8_lossy(bytes);
    let s = procfs::process::Status::from_read(Cursor::new(text.as_bytes()))
        .map_err(|e| e.to_string())?;
    let status = Status {
        vm_rss: s.vmrss,
        vm_hwm: s.vmhwm,
        vm_size: s.vmsize,
        vm_peak: s.vmpeak,
        rss_anon: s.rssanon,
        rss_file: s.rssfile,
        rss_shmem: s.rssshmem,
        vm_swap: s.vmswap,
        vm_data: s.vmdata,
        vm_stk: s.vmstk,
        vm_pte: s.vmpte,
        threads: Some(s.threads),
    };
    Ok((status, s.ruid))
}

/// /proc/PID/smaps_rollup (KiB). An empty file (no address space) gives a
/// rollup with every figure `None`.
pub(crate) fn rollup(bytes: &[u8]) -> Result<Rollup, String> {
    let text = String::from_utf8_lossy(bytes);
    let parsed = SmapsRollup::from_read(Cursor::new(text.as_bytes())).map_err(|e| e.to_string())?;
    let Some(map) = parsed.memory_map_rollup.iter().next() else {
        return Ok(Rollup::default());
    };
    // procfs multiplies `kB` values by 1024; the model keeps the kernel's KiB.
    let kib = |key: &str| map.extension.map.get(key).map(|bytes| bytes / 1024);
    Ok(Rollup {
        rss: kib("Rss"),
        pss: kib("Pss"),
        pss_anon: kib("Pss_Anon"),
        pss_file: kib("Pss_File"),
        pss_shmem: kib("Pss_Shmem"),
        shared_clean: kib("Shared_Clean"),
        shared_dirty: kib("Shared_Dirty"),
        private_clean: kib("Private_Clean"),
        private_dirty: kib("Private_Dirty"),
        anonymous: kib("Anonymous"),
        swap: kib("Swap"),
        swap_pss: kib("SwapPss"),
    })
}

/// The rollup of a process whose smaps was read: each figure is the sum of
/// that figure over its mappings, which is what the kernel's smaps_rollup
/// adds up too (it walks the same pages), without a second page walk.
///
/// Two differences, both documented in docs/collection.md: Pss is the sum
/// of per-region values the kernel has already rounded down to KiB, so it
/// can be lower than smaps_rollup's by under 1 KiB per region; and
/// Pss_Anon, Pss_File and Pss_Shmem are only printed in smaps_rollup, never
/// per region, so they are `None`. No mappings (no address space) gives
/// every figure `None`, as an empty smaps_rollup does.
pub(crate) fn rollup_of(maps: &[Mapping]) -> Rollup {
    if maps.is_empty() {
        return Rollup::default();
    }
    let sum = |f: fn(&Mapping) -> u64| Some(maps.iter().map(f).sum());
    Rollup {
        rss: sum(|m| m.rss),
        pss: sum(|m| m.pss),
        pss_anon: None,
        pss_file: None,
        pss_shmem: None,
        shared_clean: sum(|m| m.shared_clean),
        shared_dirty: sum(|m| m.shared_dirty),
        private_clean: sum(|m| m.private_clean),
        private_dirty: sum(|m| m.private_dirty),
        anonymous: sum(|m| m.anonymous),
        swap: sum(|m| m.swap),
        // An older kernel prints SwapPss nowhere.
        swap_pss: maps.iter().map(|m| m.swap_pss).sum(),
    }
}

/// /proc/meminfo (KiB).
pub(crate) fn meminfo(bytes: &[u8]) -> Result<MemInfo, String> {
    let m = procfs::Meminfo::from_read(Cursor::new(bytes)).map_err(|e| e.to_string())?;
    // procfs reports bytes; the model keeps the kernel's KiB.
    let kib = |bytes: u64| bytes / 1024;
    Ok(MemInfo {
        mem_total: Some(kib(m.mem_total)),
        mem_free: Some(kib(m.mem_free)),
        mem_available: m.mem_available.map(kib),
        buffers: Some(kib(m.buffers)),
        cached: Some(kib(m.cached)),
        swap_total: Some(kib(m.swap_total)),
        swap_free: Some(kib(m.swap_free)),
        shmem: m.shmem.map(kib),
        commit_limit: m.commit_limit.map(kib),
        committed_as: Some(kib(m.committed_as)),
    })
}

/// /proc/PID/cmdline: arguments separated (and terminated) by NUL. Empty
/// arguments in the middle are kept (they are real arguments); only the
/// empty string after the final NUL is dropped.
pub(crate) fn cmdline(bytes: &[u8], redact: bool) -> Vec<String> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    let args = bytes
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned());
    if redact {
        args.take(1).collect()
    } else {
        args.collect()
    }
}

/// The cgroup v2 path from /proc/PID/cgroup (the `0::/path` line).
pub(crate) fn cgroup_v2(bytes: &[u8]) -> Option<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

/// Where the cgroup v2 hierarchy is mounted, from a mountinfo file.
pub(crate) fn cgroup2_mount(bytes: &[u8]) -> Option<std::path::PathBuf> {
    let text = String::from_utf8_lossy(bytes);
    let infos = procfs::process::MountInfos::from_read(Cursor::new(text.as_bytes())).ok()?;
    infos
        .into_iter()
        .find(|m| m.fs_type == "cgroup2")
        .map(|m| m.mount_point)
}

/// A cgroup memory file: a byte count, or `max` (no limit) which reads as
/// `None`.
pub(crate) fn cgroup_bytes(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// `btime` from /proc/stat, seconds since the epoch.
pub(crate) fn boot_time_secs(bytes: &[u8]) -> Option<u64> {
    String::from_utf8_lossy(bytes)
        .lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|secs| secs.trim().parse().ok())
}

/// What a descriptor points at: the buckets of [`memtrail_format::Fds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdKind {
    File,
    Socket,
    Pipe,
    AnonInode,
    Other,
}

/// What a descriptor points at, from its `readlink` target.
pub(crate) fn fd_kind(target: &str) -> FdKind {
    if target.starts_with("socket:[") {
        FdKind::Socket
    } else if target.starts_with("pipe:[") {
        FdKind::Pipe
    } else if target.starts_with("anon_inode:") {
        FdKind::AnonInode
    } else if target.starts_with('/') {
        FdKind::File
    } else {
        FdKind::Other
    }
}

/// /proc/PID/smaps, one [`Mapping`] per region, sorted by start address.
///
/// This is parsed here rather than by procfs's `MemoryMaps` because that
/// parser is lossy where it matters to memtrail, which identifies regions by
/// their path: it fails the whole file on a non-UTF-8 path, trims the path,
/// rewrites labels (`[anon:x]` becomes `Other("anon:x")`), keeps only the key
/// of a `/SYSV` path (and slices it unchecked, so a short path starting with
/// `/SYSV` panics), and builds a `HashMap<String, u64>` per region.
pub(crate) fn smaps(bytes: &[u8]) -> Result<Vec<Mapping>, String> {
    let mut parser = SmapsParser::default();
    let mut rest = bytes;
    while let Some(nl) = memchr::memchr(b'\n', rest) {
        parser.line(&rest[..nl])?;
        rest = &rest[nl + 1..];
    }
    parser.line(rest)?;
    Ok(parser.finish())
}

/// Reads smaps from `file` and parses it as it comes, a chunk at a time:
/// the text of a big process (about 720 bytes per region, 36 MB for 50k
/// regions) is never held whole, and each chunk is parsed while it is
/// still in cache. The outer error is the read's, the inner the parse's.
///
/// When the text is longer than one chunk, another thread reads (the
/// kernel producing the text is most of the cost) while this one parses,
/// so on a machine with a spare core the wall time approaches that of
/// reading alone. A small process is read and parsed on this thread.
pub(crate) fn read_smaps<R: std::io::Read + Send>(
    file: &mut R,
    reuse: Vec<Mapping>,
) -> std::io::Result<Result<Vec<Mapping>, String>> {
    thread_local! {
        /// The chunk buffers, kept for this thread's next read: a recorder
        /// reads smaps again and again, and a buffer of this size allocated
        /// afresh is an `mmap` and then a page fault for each of its pages
        /// (the recorder keeps glibc's mmap threshold fixed,
        /// src/recorder.rs).
        static BUFFERS: std::cell::Cell<Vec<Vec<u8>>> = const { std::cell::Cell::new(Vec::new()) };
    }
    let mut buffers = BUFFERS.take();
    let read = read_smaps_with(file, reuse, &mut buffers);
    BUFFERS.set(buffers);
    read
}

/// [`read_smaps`] with the chunk buffers `buffers` (made if missing, and
/// given back unless reading or parsing failed).
fn read_smaps_with<R: std::io::Read + Send>(
    file: &mut R,
    reuse: Vec<Mapping>,
    buffers: &mut Vec<Vec<u8>>,
) -> std::io::Result<Result<Vec<Mapping>, String>> {
    use std::sync::mpsc;

    let mut parser = SmapsParser::reusing(reuse);
    let mut partial = Vec::new();
    let mut first = buffers.pop().unwrap_or_default();
    first.resize(SMAPS_CHUNK, 0);
    let n = read_chunk(file, &mut first)?;
    let fed = parser.feed(&mut partial, &first[..n]);
    buffers.push(first);
    if let Err(e) = fed {
        return Ok(Err(e));
    }
    if n == SMAPS_CHUNK {
        let mut pipeline = std::mem::take(buffers);
        pipeline.resize_with(2, || vec![0u8; SMAPS_CHUNK]);
        let outcome = std::thread::scope(|scope| {
            let (full_tx, full) = mpsc::sync_channel::<std::io::Result<(Vec<u8>, usize)>>(1);
            let (empty, empty_rx) = mpsc::channel::<Vec<u8>>();
            for buf in pipeline {
                let _ = empty.send(buf);
            }
            let reader = scope.spawn(move || {
                // Ends at the end of the file, on an error, or when the
                // parser hangs up (it found an error).
                let mut kept = Vec::new();
                while let Ok(mut buf) = empty_rx.recv() {
                    match read_chunk(file, &mut buf) {
                        Ok(0) => {
                            kept.push(buf);
                            break;
                        }
                        Ok(n) => {
                            if let Err(mpsc::SendError(Ok((buf, _)))) = full_tx.send(Ok((buf, n))) {
                                kept.push(buf);
                                break;
                            }
                        }
                        Err(e) => {
                            kept.push(buf);
                            let _ = full_tx.send(Err(e));
                            break;
                        }
                    }
                }
                // The parser's loop ends; then it hands back the buffers it
                // holds and hangs up.
                drop(full_tx);
                kept.extend(empty_rx.iter());
                kept
            });
            for chunk in full {
                let (buf, n) = chunk?;
                if let Err(e) = parser.feed(&mut partial, &buf[..n]) {
                    return Ok(Err(e));
                }
                let _ = empty.send(buf);
            }
            drop(empty);
            // The reader never panics; if it did, its buffers are lost.
            buffers.extend(reader.join().unwrap_or_default());
            Ok(Ok(()))
        });
        match outcome {
            Ok(Ok(())) => {}
            other => return other.map(|r| r.map(|()| Vec::new())),
        }
    }
    if let Err(e) = parser.line(&partial) {
        return Ok(Err(e));
    }
    Ok(Ok(parser.finish()))
}

/// As `cat` reads; the kernel fills it in one read(2).
const SMAPS_CHUNK: usize = 128 * 1024;

/// Fills `buf` unless the file ends first; how much was read.
fn read_chunk(file: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The state of an smaps parse: the regions so far, and where it is.
#[derive(Debug, Default)]
struct SmapsParser {
    maps: Vec<Mapping>,
    /// Lines seen, for error messages.
    lines: usize,
    /// The distinct permission texts seen (a handful): the regions share
    /// them instead of holding a copy each.
    perms: Vec<Text>,
}

impl SmapsParser {
    /// One line, without its `\n`.
    fn line(&mut self, line: &[u8]) -> Result<(), String> {
        self.lines += 1;
        let Some(&first) = line.first() else {
            return Ok(());
        };
        let malformed = |what: &str| {
            format!(
                "line {}: {what}: `{}`",
                self.lines,
                String::from_utf8_lossy(&line[..line.len().min(120)])
            )
        };
        if first.is_ascii_digit() || first.is_ascii_lowercase() {
            let map = smaps_header(line, &mut self.perms, self.maps.last())
                .ok_or_else(|| malformed("not a mapping line"))?;
            self.maps.push(map);
            return Ok(());
        }
        // Keys are short: a plain loop beats a vectorised search here.
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(malformed("no `:`"));
        };
        let Some(map) = self.maps.last_mut() else {
            return Err(malformed("figures before the first mapping"));
        };
        let field: &mut u64 = match &line[..colon] {
            b"Size" => &mut map.size,
            b"Rss" => &mut map.rss,
            b"Pss" => &mut map.pss,
            b"Shared_Clean" => &mut map.shared_clean,
            b"Shared_Dirty" => &mut map.shared_dirty,
            b"Private_Clean" => &mut map.private_clean,
            b"Private_Dirty" => &mut map.private_dirty,
            b"Anonymous" => &mut map.anonymous,
            b"Swap" => &mut map.swap,
            b"SwapPss" => map.swap_pss.insert(0),
            b"Locked" => map.locked.insert(0),
            // VmFlags, THPeligible, KernelPageSize, ... are not recorded.
            _ => return Ok(()),
        };
        *field = kib_value(&line[colon + 1..]).ok_or_else(|| malformed("bad number"))?;
        Ok(())
    }

    /// The complete lines of `data`; `partial` holds the unfinished line
    /// carried from one chunk to the next.
    fn feed(&mut self, partial: &mut Vec<u8>, data: &[u8]) -> Result<(), String> {
        let mut rest = data;
        if !partial.is_empty() {
            let Some(nl) = memchr::memchr(b'\n', rest) else {
                partial.extend_from_slice(rest);
                return Ok(());
            };
            partial.extend_from_slice(&rest[..nl]);
            self.line(partial)?;
            partial.clear();
            rest = &rest[nl + 1..];
        }
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            self.line(&rest[..nl])?;
            rest = &rest[nl + 1..];
        }
        partial.extend_from_slice(rest);
        Ok(())
    }

    /// A parser that fills `maps` (emptied), keeping its allocation: a
    /// recorder parses each process's fresh list into its last one.
    fn reusing(mut maps: Vec<Mapping>) -> SmapsParser {
        maps.clear();
        SmapsParser {
            maps,
            ..SmapsParser::default()
        }
    }

    fn finish(mut self) -> Vec<Mapping> {
        // The kernel lists regions in address order; sorting sorted input
        // is one pass.
        self.maps.sort_by_key(|m| m.start);
        // The list is kept until the next full read (and a recorder keeps
        // one per process): not the up to twice as many slots that growing
        // it left. A little room stays, so a process that maps a few more
        // regions next time is parsed in place.
        let len = self.maps.len();
        if self.maps.capacity() > len + len / 8 {
            self.maps.shrink_to(len + len / 16);
        }
        self.maps
    }
}

/// `   1234 kB` -> 1234: a decimal number, then nothing or `kB`.
fn kib_value(rest: &[u8]) -> Option<u64> {
    let mut i = 0;
    while rest.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    let digits = i;
    let mut number: u64 = 0;
    while let Some(&d) = rest.get(i).filter(|d| d.is_ascii_digit()) {
        number = number.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        i += 1;
    }
    if i == digits {
        return None;
    }
    let unit = &rest[i..];
    // What the kernel writes, first.
    if unit == b" kB" || unit.is_empty() {
        return Some(number);
    }
    if !unit[0].is_ascii_whitespace() {
        return None;
    }
    match unit.trim_ascii() {
        b"" | b"kB" => Some(number),
        _ => None,
    }
}

/// `w` cut at the first `at`.
fn split(w: &[u8], at: u8) -> Option<(&[u8], &[u8])> {
    let i = w.iter().position(|&b| b == at)?;
    Some((&w[..i], &w[i + 1..]))
}

/// Hexadecimal digits (at most 16) as a number.
fn hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        Some(n << 4 | u64::from(v))
    })
}

/// Decimal digits as a number.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// `start-end perms offset major:minor inode    path`
///
/// `perms_seen`: the permission texts of the regions before, shared; and
/// the path of the region before (`last`) is shared when it is the same:
/// the regions of a file are listed one after the other.
fn smaps_header(
    line: &[u8],
    perms_seen: &mut Vec<Text>,
    last: Option<&Mapping>,
) -> Option<Mapping> {
    let mut rest = line;
    let mut word = || {
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let w = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or(&[]);
        w
    };
    let (start, end) = split(word(), b'-')?;
    let perms = std::str::from_utf8(word()).ok()?;
    let perms = match perms_seen.iter().find(|p| **p == perms) {
        Some(p) => p.clone(),
        None => {
            let p = Text::from(perms);
            perms_seen.push(p.clone());
            p
        }
    };
    let offset = hex(word())?;
    let (major, minor) = split(word(), b':')?;
    let inode = decimal(word())?;
    // The kernel pads with spaces up to a column, then writes the path
    // verbatim (` (deleted)` included); it escapes `\n` in it as `\012`.
    let path = rest.trim_ascii_start();
    let path = match last.filter(|m| m.path.as_bytes() == path) {
        Some(m) => m.path.clone(),
        None if path.is_empty() => Text::default(),
        None => Text::from(String::from_utf8_lossy(path).into_owned()),
    };
    let start = hex(start)?;
    let end = hex(end)?;
    let dev = (hex(major)? << 32) | hex(minor)?;
    Some(Mapping {
        start,
        end,
        perms,
        offset,
        dev,
        inode,
        path,
        size: end.saturating_sub(start) / 1024,
        ..Mapping::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from a `sleep 30` on Linux 6.18 by tests/fixtures/capture.sh.
    const STAT: &[u8] = include_bytes!("../tests/fixtures/sleep/stat");
    const STATUS: &[u8] = include_bytes!("../tests/fixtures/sleep/status");
    const SMAPS: &[u8] = include_bytes!("../tests/fixtures/sleep/smaps");
    const MAPS: &[u8] = include_bytes!("../tests/fixtures/sleep/maps");
    const ROLLUP: &[u8] = include_bytes!("../tests/fixtures/sleep/smaps_rollup");
    const ROLLUP_OLD: &[u8] = include_bytes!("../tests/fixtures/smaps_rollup.old");
    const MEMINFO: &[u8] = include_bytes!("../tests/fixtures/meminfo");

    #[test]
    fn stat_fixture() {
        let s = stat(STAT).unwrap();
        assert_eq!(s.pid, 5316);
        assert_eq!(s.comm, "sleep");
        assert_eq!(s.ppid, 5315);
        assert_eq!(s.start_time, 69526);
        assert!(!s.kernel_thread);
        assert_eq!(
            s.cpu,
            Cpu {
                utime: 0,
                stime: 0,
                minflt: 98,
                majflt: 1
            }
        );
    }

    #[test]
    fn stat_of_a_kernel_thread() {
        let kthreadd = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 24 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        assert!(stat(kthreadd).unwrap().kernel_thread);
    }

    /// Regression test: a process caught between starting to exit and
    /// becoming a zombie (state still `R`) had its memory files reported as
    /// missing from the kernel ("needs Linux 4.14") under process churn.
    #[test]
    fn a_process_that_is_exiting_counts_as_exited() {
        let exiting = b"77 (sh) R 1 77 77 0 -1 4194628 0 0 0 0 0 0 0 0 20 0 1 0 5000 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        assert_eq!(4194628 & PF_EXITING, PF_EXITING);
        assert!(stat(exiting).unwrap().exited);
        assert!(!stat(STAT).unwrap().exited);
    }

    #[test]
    fn stat_with_awkward_comm() {
        let s = stat(b"77 (a) b (c)) R 1 77 77 0 -1 0 5 0 2 0 3 4 0 0 20 0 1 0 999 0 0 0\n");
        // procfs needs the full line; what matters is that it fails cleanly
        // or parses the comm up to the last `)`.
        if let Ok(s) = s {
            assert_eq!(s.comm, "a) b (c)");
        }
        assert!(stat(b"garbage").is_err());
    }

    #[test]
    fn status_fixture() {
        let (s, uid) = status(STATUS).unwrap();
        assert_eq!(uid, 0);
        assert_eq!(
            s,
            Status {
                vm_rss: Some(1808),
                vm_hwm: Some(1808),
                vm_size: Some(2920),
                vm_peak: Some(2920),
                rss_anon: Some(112),
                rss_file: Some(1696),
                rss_shmem: Some(0),
                vm_swap: Some(0),
                vm_data: Some(224),
                vm_stk: Some(132),
                vm_pte: Some(44),
                threads: Some(1),
            }
        );
    }

    #[test]
    fn status_of_a_zombie_has_no_memory_figures() {
        let text = String::from_utf8_lossy(STATUS);
        let zombie: String = text
            .lines()
            .filter(|l| !(l.starts_with("Vm") || l.starts_with("Rss")))
            .map(|l| format!("{l}\n"))
            .collect();
        let (s, _) = status(zombie.as_bytes()).unwrap();
        assert_eq!(s.vm_rss, None);
        assert_eq!(s.rss_anon, None);
        assert_eq!(s.threads, Some(1));
    }

    #[test]
    fn status_with_non_utf8_name() {
        let mut bytes = b"Name:\tab\xff\n".to_vec();
        bytes.extend(
            STATUS
                .split(|&b| b == b'\n')
                .skip(1)
                .flat_map(|l| l.iter().chain(b"\n")),
        );
        assert_eq!(status(&bytes).unwrap().0.vm_rss, Some(1808));
        assert!(status(b"Name: x\n").is_err());
    }

    #[test]
    fn rollup_fixture() {
        let r = rollup(ROLLUP).unwrap();
        assert_eq!(
            r,
            Rollup {
                rss: Some(1808),
                pss: Some(418),
                pss_anon: Some(112),
                pss_file: Some(306),
                pss_shmem: Some(0),
                shared_clean: Some(1660),
                shared_dirty: Some(0),
                private_clean: Some(36),
                private_dirty: Some(112),
                anonymous: Some(112),
                swap: Some(0),
                swap_pss: Some(0),
            }
        );
    }

    #[test]
    fn rollup_of_an_older_kernel_lacks_what_it_lacks() {
        let r = rollup(ROLLUP_OLD).unwrap();
        assert_eq!(r.rss, Some(1808));
        assert_eq!(r.pss, Some(418));
        assert_eq!(r.pss_anon, None);
        assert_eq!(r.pss_file, None);
        assert_eq!(r.pss_shmem, None);
        assert_eq!(r.swap_pss, None);
        assert_eq!(r.swap, Some(0));
    }

    #[test]
    fn rollup_of_smaps_is_smaps_rollup_but_the_pss_split() {
        let r = rollup(ROLLUP).unwrap();
        let derived = rollup_of(&smaps(SMAPS).unwrap());
        assert_eq!(
            derived,
            Rollup {
                pss_anon: None,
                pss_file: None,
                pss_shmem: None,
                // Sums of values each rounded down to KiB.
                pss: derived.pss,
                ..r
            }
        );
        let pss = derived.pss.unwrap();
        assert!(pss <= r.pss.unwrap() && pss + 37 >= r.pss.unwrap(), "{pss}");
        assert_eq!(rollup_of(&[]), Rollup::default());
        let old = smaps(b"1000-2000 rw-p 0 00:00 0\nRss: 4 kB\n").unwrap();
        assert_eq!(rollup_of(&old).swap_pss, None, "no SwapPss line, no sum");
        assert_eq!(rollup_of(&old).rss, Some(4));
    }

    #[test]
    fn rollup_empty_file() {
        assert_eq!(rollup(b"").unwrap(), Rollup::default());
    }

    #[test]
    fn smaps_fixture_agrees_with_rollup_and_maps() {
        let maps = smaps(SMAPS).unwrap();
        assert_eq!(
            maps.len(),
            MAPS.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
        );
        let sum = |f: fn(&Mapping) -> u64| maps.iter().map(f).sum::<u64>();
        let r = rollup(ROLLUP).unwrap();
        assert_eq!(Some(sum(|m| m.rss)), r.rss);
        assert_eq!(Some(sum(|m| m.anonymous)), r.anonymous);
        assert_eq!(Some(sum(|m| m.private_dirty)), r.private_dirty);
        assert_eq!(Some(sum(|m| m.shared_clean)), r.shared_clean);
        assert!(maps.windows(2).all(|w| w[0].start < w[1].start));
        assert!(maps
            .iter()
            .all(|m| m.swap_pss.is_some() && m.locked.is_some()));
        assert!(maps.iter().all(|m| m.size * 1024 == m.end - m.start));
        // maps has the same header lines: same regions, same identities.
        let headers = smaps(MAPS).unwrap();
        let key = |m: &Mapping| {
            (
                m.start,
                m.end,
                m.perms.clone(),
                m.offset,
                m.dev,
                m.inode,
                m.path.clone(),
            )
        };
        assert_eq!(
            maps.iter().map(key).collect::<Vec<_>>(),
            headers.iter().map(key).collect::<Vec<_>>()
        );
        let labels: Vec<&str> = maps.iter().map(|m| m.label()).collect();
        for label in ["[heap]", "[stack]", "[vdso]", "/usr/bin/sleep", "[anon]"] {
            assert!(labels.contains(&label), "{label} in {labels:?}");
        }
        let heap = maps.iter().find(|m| m.path == "[heap]").unwrap();
        assert!(heap.is_anonymous());
        assert_eq!(heap.inode, 0);
        let exe = maps.iter().find(|m| m.path == "/usr/bin/sleep").unwrap();
        assert_ne!(exe.dev, 0);
        assert!(!exe.is_anonymous());
    }

    #[test]
    fn meminfo_fixture() {
        let m = meminfo(MEMINFO).unwrap();
        let text = String::from_utf8_lossy(MEMINFO);
        let kib = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .map(|v| v.trim().trim_end_matches(" kB").parse::<u64>().unwrap())
        };
        assert_eq!(m.mem_total, kib("MemTotal"));
        assert_eq!(m.mem_available, kib("MemAvailable"));
        assert_eq!(m.committed_as, kib("Committed_AS"));
        assert_eq!(m.shmem, kib("Shmem"));
        assert!(m.mem_total.unwrap() > 0);
    }

    #[test]
    fn boot_time_line() {
        assert_eq!(
            boot_time_secs(b"cpu 1 2\nbtime 1795609693\nprocesses 5\n"),
            Some(1795609693)
        );
        assert_eq!(boot_time_secs(b"cpu 1 2\n"), None);
    }

    #[test]
    fn cmdline_keeps_inner_empty_arguments() {
        let check = |input: &[u8], redact: bool, expected: &[&str]| {
            assert_eq!(cmdline(input, redact), expected, "input {input:?}");
        };
        check(b"", false, &[]);
        check(b"sleep\x0030\x00", false, &["sleep", "30"]);
        check(b"sh\x00-c\x00\x00x\x00", false, &["sh", "-c", "", "x"]);
        // A process that rewrote its argv may drop the final NUL.
        check(b"nginx: worker process", false, &["nginx: worker process"]);
        check(b"sleep\x0030\x00", true, &["sleep"]);
        check(b"\xffname\x00", false, &["\u{fffd}name"]);
    }

    #[test]
    fn fd_kinds() {
        let check =
            |target: &str, expected: FdKind| assert_eq!(fd_kind(target), expected, "{target}");
        check("socket:[1234]", FdKind::Socket);
        check("pipe:[99]", FdKind::Pipe);
        check("anon_inode:[eventfd]", FdKind::AnonInode);
        check("anon_inode:inotify", FdKind::AnonInode);
        check("/dev/null", FdKind::File);
        check("/tmp/x (deleted)", FdKind::File);
        check("net:[4026531840]", FdKind::Other);
        check("/memfd:buf (deleted)", FdKind::File);
    }

    #[test]
    fn cgroup_line() {
        assert_eq!(
            cgroup_v2(b"4:memory:/x\n0::/system.slice/a.service\n").as_deref(),
            Some("/system.slice/a.service")
        );
        assert_eq!(cgroup_v2(b"4:memory:/x\n"), None);
        assert_eq!(cgroup_bytes(b"max\n"), None);
        assert_eq!(cgroup_bytes(b"1048576\n"), Some(1048576));
    }

    #[test]
    fn cgroup2_mount_from_mountinfo() {
        let hybrid = b"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount(hybrid), Some("/sys/fs/cgroup/unified".into()));
        assert_eq!(
            cgroup2_mount(b"31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"),
            None
        );
    }

    #[test]
    fn smaps_header_paths_are_verbatim() {
        let check = |line: &str, path: &str| {
            let maps = smaps(line.as_bytes()).unwrap();
            assert_eq!(maps.len(), 1, "{line}");
            assert_eq!(maps[0].path, path, "{line}");
        };
        check("7f00-7f01 rw-p 00000000 00:00 0 \n", "");
        check(
            "7f00-7f01 rw-p 00000000 00:00 0                  [heap]\n",
            "[heap]",
        );
        check(
            "7f00-7f01 rw-p 00000000 00:00 0   [anon:libc_malloc]\n",
            "[anon:libc_malloc]",
        );
        check("7f00-7f01 rw-s 00000000 00:01 5   /SYSV\n", "/SYSV");
        check(
            "7f00-7f01 rw-s 00000000 00:01 5   /SYSV0000abcd (deleted)\n",
            "/SYSV0000abcd (deleted)",
        );
        check(
            "7f00-7f01 r--p 00000000 fe:00 12  /opt/my lib.so (deleted)\n",
            "/opt/my lib.so (deleted)",
        );
        let bytes = b"7f00-7f01 r--p 00000000 fe:00 12  /tmp/\xff.so\n";
        assert_eq!(smaps(bytes).unwrap()[0].path, "/tmp/\u{fffd}.so");
    }

    #[test]
    fn smaps_header_fields() {
        let maps = smaps(
            b"5568dbfa4000-5568dbfaa000 r-xp 00002000 fe:01 247282   /usr/bin/head\nRss: 24 kB\n",
        )
        .unwrap();
        let m = &maps[0];
        assert_eq!((m.start, m.end), (0x5568dbfa4000, 0x5568dbfaa000));
        assert_eq!(m.perms, "r-xp");
        assert_eq!(m.offset, 0x2000);
        assert_eq!(m.dev, (0xfe << 32) | 1);
        assert_eq!(m.inode, 247282);
        assert_eq!(m.size, 24, "Size: defaults to the address range");
        assert_eq!(m.rss, 24);
        assert_eq!(m.swap_pss, None);
        assert_eq!(m.locked, None);
    }

    #[test]
    fn kib_values() {
        let check = |text: &str, expected: Option<u64>| {
            assert_eq!(kib_value(text.as_bytes()), expected, "{text:?}");
        };
        check("   1234 kB", Some(1234));
        check(" 0 kB", Some(0));
        check("\t7", Some(7));
        check(" 18446744073709551615 kB", Some(u64::MAX));
        check(" 18446744073709551616 kB", None);
        check(" 12kB", None);
        check(" 12 MB", None);
        check(" -1 kB", None);
        check(" kB", None);
        check("", None);
        check(" 5 kB ", Some(5));
        check(" 5  kB", Some(5));
        assert_eq!(hex(b"7fff0a"), Some(0x7fff0a));
        assert_eq!(hex(b"FFFFFFFFFFFFFFFF"), Some(u64::MAX));
        assert_eq!(hex(b"10000000000000000"), None);
        assert_eq!((hex(b""), hex(b"g")), (None, None));
        assert_eq!(decimal(b"247282"), Some(247282));
        assert_eq!(
            (
                decimal(b""),
                decimal(b"1x"),
                decimal(b"99999999999999999999")
            ),
            (None, None, None)
        );
    }

    /// Hands out at most `n` bytes per read, like a slow pipe.
    struct Trickle<'a>(&'a [u8], usize);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn read_smaps_fresh(
        file: &mut (impl std::io::Read + Send),
    ) -> std::io::Result<Result<Vec<Mapping>, String>> {
        read_smaps(file, Vec::new())
    }

    #[test]
    fn a_list_parsed_into_an_old_one_is_the_fresh_list_in_the_old_allocation() {
        // Long enough for the two-thread pipeline, whose buffers are then
        // kept for the next read on this thread.
        let big = SMAPS.repeat(2 * SMAPS_CHUNK / SMAPS.len() + 1);
        let fresh = read_smaps_fresh(&mut Trickle(&big, 10_000))
            .unwrap()
            .unwrap();
        let mut old = read_smaps_fresh(&mut &SMAPS[..]).unwrap().unwrap();
        old.reserve(fresh.len());
        let at = old.as_ptr();
        let reused = read_smaps(&mut Trickle(&big, 10_000), old)
            .unwrap()
            .unwrap();
        assert_eq!(reused, fresh);
        assert_eq!(reused.as_ptr(), at, "parsed in place");
        // And again with the buffers the last read left on this thread.
        assert_eq!(read_smaps_fresh(&mut &big[..]).unwrap().unwrap(), fresh);
    }

    #[test]
    fn read_smaps_in_chunks_of_any_size() {
        let whole = smaps(SMAPS).unwrap();
        for n in [1, 7, 4096, usize::MAX] {
            let read = read_smaps_fresh(&mut Trickle(SMAPS, n)).unwrap().unwrap();
            assert_eq!(read, whole, "chunks of {n}");
        }
        // A path longer than the 128 KiB buffer.
        let long = format!(
            "7f00-7f01 r--p 00000000 fe:00 12  /{}\nRss: 4 kB\n",
            "x".repeat(300_000)
        );
        let maps = read_smaps_fresh(&mut Trickle(long.as_bytes(), 65536))
            .unwrap()
            .unwrap();
        assert_eq!((maps[0].path.len(), maps[0].rss), (300_001, 4));
        // Many chunks (read on another thread), with an error near the end.
        let mut big = SMAPS.repeat(20);
        let whole = smaps(&big).unwrap();
        assert_eq!(
            read_smaps_fresh(&mut Trickle(&big, 10_000))
                .unwrap()
                .unwrap(),
            whole
        );
        big.extend_from_slice(b"Rss: x kB\n");
        big.extend_from_slice(SMAPS);
        let err = read_smaps_fresh(&mut &big[..]).unwrap().unwrap_err();
        assert!(err.contains("bad number"), "{err}");
        let err = read_smaps_fresh(&mut Trickle(b"1000-2000 rw-p 0 00:00 0\nRss: x kB\n", 3))
            .unwrap()
            .unwrap_err();
        assert!(err.starts_with("line 2: bad number"), "{err}");
    }

    #[test]
    fn smaps_rejects_garbage() {
        assert!(smaps(b"Rss: 4 kB\n").is_err());
        assert!(smaps(b"zzzz-1 rw-p 0 00:00 0\n").is_err());
        assert!(smaps(b"1000-2000 rw-p 0 00:00 0\nRss: many kB\n").is_err());
        assert_eq!(smaps(b"").unwrap(), vec![]);
    }
}
