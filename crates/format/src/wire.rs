//! The on-disk payload types of format version 1 and their conversion from
//! and to the model.
//!
//! Only these types are serialized; the model never is, so it can grow
//! without changing the bytes. Every struct here is written as its fields in
//! order (bincode, see [`options`]): reordering, retyping or adding a field
//! changes format version 1 and breaks every existing recording. Counters
//! travel in slot vectors instead (see docs/format.md, "Slot vectors"), so
//! new counters can be appended without a new version.

use bincode::Options;
use serde::{Deserialize, Serialize};

use crate::model::{
    Census, CensusCount, CgroupMemory, Cpu, Detail, End, EndReason, Fd, Fds, Header, Host, Mapping,
    Marker, MemInfo, Notice, NoticeKind, ProcessExit, ProcessId, ProcessInfo, ProcessSample,
    Retention, RetentionChain, Rollup, Status, SystemSample, Text,
};
use crate::MAX_FRAME_LEN;

/// The exact bincode 1.3.3 configuration of every payload.
pub(crate) fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_little_endian()
        .with_varint_encoding()
        .reject_trailing_bytes()
        .with_limit(u64::from(MAX_FRAME_LEN))
}

/// Encodes a payload. `what` names the record in errors.
pub(crate) fn encode<T: Serialize>(
    value: &T,
    what: &'static str,
) -> Result<Vec<u8>, crate::WriteError> {
    options().serialize(value).map_err(|error| match *error {
        bincode::ErrorKind::SizeLimit => crate::WriteError::TooLarge { what },
        other => crate::WriteError::Encode {
            what,
            message: other.to_string(),
        },
    })
}

/// Decodes a payload; the error is a phrase for a warning.
pub(crate) fn decode<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, String> {
    options()
        .deserialize(payload)
        .map_err(|error| error.to_string())
}

// ---------------------------------------------------------------------------
// Slot vectors: 0 is "not observed", n > 0 is the value n - 1. Trailing
// zeros are omitted; missing slots read as 0.

/// A counter whose value is 2^64-1 cannot be stored (the +1 would overflow).
pub(crate) type Unrepresentable = &'static str;

/// A slot vector of at most `N` slots, held on the stack (a sample has a
/// few dozen of them: allocating each cost more than computing it). It
/// reads as the slice of its slots, trailing zeros trimmed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slots<const N: usize> {
    slots: [u64; N],
    len: usize,
}

impl<const N: usize> std::ops::Deref for Slots<N> {
    type Target = [u64];

    fn deref(&self) -> &[u64] {
        &self.slots[..self.len]
    }
}

/// Encodes named optional values as a slot vector, trailing zeros trimmed.
fn slots<const N: usize>(
    fields: [(&'static str, Option<u64>); N],
) -> Result<Slots<N>, Unrepresentable> {
    let mut out = Slots {
        slots: [0; N],
        len: 0,
    };
    for (i, (name, value)) in fields.into_iter().enumerate() {
        if let Some(v) = value {
            out.slots[i] = v.checked_add(1).ok_or(name)?;
            out.len = i + 1;
        }
    }
    Ok(out)
}

fn trim<T: Default + PartialEq>(v: &mut Vec<T>) {
    while v.last().is_some_and(|x| *x == T::default()) {
        v.pop();
    }
}

/// Slot `i` as an optional value.
fn opt(slots: &[u64], i: usize) -> Option<u64> {
    slots.get(i).copied().unwrap_or(0).checked_sub(1)
}

/// Slot `i` of a field that is always observed: "not observed" reads as 0.
fn val(slots: &[u64], i: usize) -> u64 {
    opt(slots, i).unwrap_or(0)
}

/// The wrapping difference `new - base`, slot by slot, trailing zeros trimmed.
pub(crate) fn diff_slots(base: &[u64], new: &[u64]) -> Vec<i64> {
    let len = base.len().max(new.len());
    let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    let mut out: Vec<i64> = (0..len)
        .map(|i| at(new, i).wrapping_sub(at(base, i)) as i64)
        .collect();
    trim(&mut out);
    out
}

/// `base + delta`, slot by slot, wrapping: the first `N` slots (a reader
/// knows `N` slots of each vector; later ones, from a newer writer, are
/// not read).
pub(crate) fn apply_slots<const N: usize>(base: &[u64], delta: &[i64]) -> [u64; N] {
    let mut out = [0; N];
    for (i, slot) in out.iter_mut().enumerate() {
        let b = base.get(i).copied().unwrap_or(0);
        let d = delta.get(i).copied().unwrap_or(0);
        *slot = b.wrapping_add(d as u64);
    }
    out
}

/// Adds `d` to the slot of an optional field, where the field lies (the
/// same as encoding it, adding, and decoding; see [`apply_slots`]).
pub(crate) fn step_opt(
    (name, field): (&'static str, &mut Option<u64>),
    d: i64,
) -> Result<(), &'static str> {
    let slot = match *field {
        None => 0,
        Some(v) => v.checked_add(1).ok_or(name)?,
    };
    *field = slot.wrapping_add(d as u64).checked_sub(1);
    Ok(())
}

/// Adds `d` to the slot of an always-observed field (whose vector is
/// absent, all slots 0, unless `present`), where the field lies.
pub(crate) fn step_val(
    (name, field): (&'static str, &mut u64),
    present: bool,
    d: i64,
) -> Result<(), &'static str> {
    let slot = if present {
        field.checked_add(1).ok_or(name)?
    } else {
        0
    };
    *field = slot.wrapping_add(d as u64).saturating_sub(1);
    Ok(())
}

/// Slot `i` of [`status_slots`], as its field.
pub(crate) fn status_field(s: &mut Status, i: usize) -> Option<(&'static str, &mut Option<u64>)> {
    Some(match i {
        0 => ("status.vm_rss", &mut s.vm_rss),
        1 => ("status.vm_hwm", &mut s.vm_hwm),
        2 => ("status.vm_size", &mut s.vm_size),
        3 => ("status.vm_peak", &mut s.vm_peak),
        4 => ("status.rss_anon", &mut s.rss_anon),
        5 => ("status.rss_file", &mut s.rss_file),
        6 => ("status.rss_shmem", &mut s.rss_shmem),
        7 => ("status.vm_swap", &mut s.vm_swap),
        8 => ("status.vm_data", &mut s.vm_data),
        9 => ("status.vm_stk", &mut s.vm_stk),
        10 => ("status.vm_pte", &mut s.vm_pte),
        11 => ("status.threads", &mut s.threads),
        _ => return None,
    })
}

/// Slot `i` of [`cpu_slots`], as its field.
pub(crate) fn cpu_field(c: &mut Cpu, i: usize) -> Option<(&'static str, &mut u64)> {
    Some(match i {
        0 => ("cpu.utime", &mut c.utime),
        1 => ("cpu.stime", &mut c.stime),
        2 => ("cpu.minflt", &mut c.minflt),
        3 => ("cpu.majflt", &mut c.majflt),
        _ => return None,
    })
}

/// Slot `i` of [`rollup_slots`], as its field.
pub(crate) fn rollup_field(r: &mut Rollup, i: usize) -> Option<(&'static str, &mut Option<u64>)> {
    Some(match i {
        0 => ("rollup.rss", &mut r.rss),
        1 => ("rollup.pss", &mut r.pss),
        2 => ("rollup.pss_anon", &mut r.pss_anon),
        3 => ("rollup.pss_file", &mut r.pss_file),
        4 => ("rollup.pss_shmem", &mut r.pss_shmem),
        5 => ("rollup.shared_clean", &mut r.shared_clean),
        6 => ("rollup.shared_dirty", &mut r.shared_dirty),
        7 => ("rollup.private_clean", &mut r.private_clean),
        8 => ("rollup.private_dirty", &mut r.private_dirty),
        9 => ("rollup.anonymous", &mut r.anonymous),
        10 => ("rollup.swap", &mut r.swap),
        11 => ("rollup.swap_pss", &mut r.swap_pss),
        _ => return None,
    })
}

/// Slot `i` of [`fd_count_slots`], as its field.
pub(crate) fn fd_count_field(f: &mut Fds, i: usize) -> Option<(&'static str, &mut u64)> {
    Some(match i {
        0 => ("fds.file", &mut f.file),
        1 => ("fds.socket", &mut f.socket),
        2 => ("fds.pipe", &mut f.pipe),
        3 => ("fds.anon_inode", &mut f.anon_inode),
        4 => ("fds.other", &mut f.other),
        _ => return None,
    })
}

pub(crate) fn status_slots(s: &Status) -> Result<Slots<12>, Unrepresentable> {
    slots([
        ("status.vm_rss", s.vm_rss),
        ("status.vm_hwm", s.vm_hwm),
        ("status.vm_size", s.vm_size),
        ("status.vm_peak", s.vm_peak),
        ("status.rss_anon", s.rss_anon),
        ("status.rss_file", s.rss_file),
        ("status.rss_shmem", s.rss_shmem),
        ("status.vm_swap", s.vm_swap),
        ("status.vm_data", s.vm_data),
        ("status.vm_stk", s.vm_stk),
        ("status.vm_pte", s.vm_pte),
        ("status.threads", s.threads),
    ])
}

pub(crate) fn status_from(s: &[u64]) -> Status {
    Status {
        vm_rss: opt(s, 0),
        vm_hwm: opt(s, 1),
        vm_size: opt(s, 2),
        vm_peak: opt(s, 3),
        rss_anon: opt(s, 4),
        rss_file: opt(s, 5),
        rss_shmem: opt(s, 6),
        vm_swap: opt(s, 7),
        vm_data: opt(s, 8),
        vm_stk: opt(s, 9),
        vm_pte: opt(s, 10),
        threads: opt(s, 11),
    }
}

pub(crate) fn cpu_slots(c: &Cpu) -> Result<Slots<4>, Unrepresentable> {
    slots([
        ("cpu.utime", Some(c.utime)),
        ("cpu.stime", Some(c.stime)),
        ("cpu.minflt", Some(c.minflt)),
        ("cpu.majflt", Some(c.majflt)),
    ])
}

pub(crate) fn cpu_from(s: &[u64]) -> Cpu {
    Cpu {
        utime: val(s, 0),
        stime: val(s, 1),
        minflt: val(s, 2),
        majflt: val(s, 3),
    }
}

pub(crate) fn rollup_slots(r: &Rollup) -> Result<Slots<12>, Unrepresentable> {
    slots([
        ("rollup.rss", r.rss),
        ("rollup.pss", r.pss),
        ("rollup.pss_anon", r.pss_anon),
        ("rollup.pss_file", r.pss_file),
        ("rollup.pss_shmem", r.pss_shmem),
        ("rollup.shared_clean", r.shared_clean),
        ("rollup.shared_dirty", r.shared_dirty),
        ("rollup.private_clean", r.private_clean),
        ("rollup.private_dirty", r.private_dirty),
        ("rollup.anonymous", r.anonymous),
        ("rollup.swap", r.swap),
        ("rollup.swap_pss", r.swap_pss),
    ])
}

pub(crate) fn rollup_from(s: &[u64]) -> Rollup {
    Rollup {
        rss: opt(s, 0),
        pss: opt(s, 1),
        pss_anon: opt(s, 2),
        pss_file: opt(s, 3),
        pss_shmem: opt(s, 4),
        shared_clean: opt(s, 5),
        shared_dirty: opt(s, 6),
        private_clean: opt(s, 7),
        private_dirty: opt(s, 8),
        anonymous: opt(s, 9),
        swap: opt(s, 10),
        swap_pss: opt(s, 11),
    }
}

pub(crate) fn fd_count_slots(f: &Fds) -> Result<Slots<5>, Unrepresentable> {
    slots([
        ("fds.file", Some(f.file)),
        ("fds.socket", Some(f.socket)),
        ("fds.pipe", Some(f.pipe)),
        ("fds.anon_inode", Some(f.anon_inode)),
        ("fds.other", Some(f.other)),
    ])
}

/// The counts of an [`Fds`], without targets.
pub(crate) fn fds_from(s: &[u64], targets: Option<Vec<Fd>>) -> Fds {
    Fds {
        file: val(s, 0),
        socket: val(s, 1),
        pipe: val(s, 2),
        anon_inode: val(s, 3),
        other: val(s, 4),
        targets,
    }
}

pub(crate) fn mapping_slots(m: &Mapping) -> Result<Slots<11>, Unrepresentable> {
    slots([
        ("mapping.size", Some(m.size)),
        ("mapping.rss", Some(m.rss)),
        ("mapping.pss", Some(m.pss)),
        ("mapping.shared_clean", Some(m.shared_clean)),
        ("mapping.shared_dirty", Some(m.shared_dirty)),
        ("mapping.private_clean", Some(m.private_clean)),
        ("mapping.private_dirty", Some(m.private_dirty)),
        ("mapping.anonymous", Some(m.anonymous)),
        ("mapping.swap", Some(m.swap)),
        ("mapping.swap_pss", m.swap_pss),
        ("mapping.locked", m.locked),
    ])
}

/// Sets the counters of `m` from its slot vector.
pub(crate) fn set_mapping_counters(m: &mut Mapping, s: &[u64]) {
    m.size = val(s, 0);
    m.rss = val(s, 1);
    m.pss = val(s, 2);
    m.shared_clean = val(s, 3);
    m.shared_dirty = val(s, 4);
    m.private_clean = val(s, 5);
    m.private_dirty = val(s, 6);
    m.anonymous = val(s, 7);
    m.swap = val(s, 8);
    m.swap_pss = opt(s, 9);
    m.locked = opt(s, 10);
}

fn meminfo_slots(m: &MemInfo) -> Result<Vec<u64>, Unrepresentable> {
    slots([
        ("meminfo.mem_total", m.mem_total),
        ("meminfo.mem_free", m.mem_free),
        ("meminfo.mem_available", m.mem_available),
        ("meminfo.buffers", m.buffers),
        ("meminfo.cached", m.cached),
        ("meminfo.swap_total", m.swap_total),
        ("meminfo.swap_free", m.swap_free),
        ("meminfo.shmem", m.shmem),
        ("meminfo.commit_limit", m.commit_limit),
        ("meminfo.committed_as", m.committed_as),
    ])
    .map(|s| s.to_vec())
}

fn meminfo_from(s: &[u64]) -> MemInfo {
    MemInfo {
        mem_total: opt(s, 0),
        mem_free: opt(s, 1),
        mem_available: opt(s, 2),
        buffers: opt(s, 3),
        cached: opt(s, 4),
        swap_total: opt(s, 5),
        swap_free: opt(s, 6),
        shmem: opt(s, 7),
        commit_limit: opt(s, 8),
        committed_as: opt(s, 9),
    }
}

// ---------------------------------------------------------------------------
// Payloads.

/// Kind 0x01.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HeaderWire {
    writer: String,
    hostname: String,
    kernel: String,
    page_size: u64,
    clock_ticks: u64,
    boot_time_us: u64,
    started_us: u64,
    target: String,
    detail: u8,
    interval_us: Option<u64>,
}

impl HeaderWire {
    pub(crate) fn from_model(h: &Header) -> HeaderWire {
        HeaderWire {
            writer: h.writer.clone(),
            hostname: h.host.hostname.clone(),
            kernel: h.host.kernel.clone(),
            page_size: h.host.page_size,
            clock_ticks: h.host.clock_ticks,
            boot_time_us: h.host.boot_time_us,
            started_us: h.started_us,
            target: h.target.clone(),
            detail: h.detail.code(),
            interval_us: h.interval_us,
        }
    }

    pub(crate) fn into_model(self) -> Header {
        Header {
            writer: self.writer,
            host: Host {
                hostname: self.hostname,
                kernel: self.kernel,
                page_size: self.page_size,
                clock_ticks: self.clock_ticks,
                boot_time_us: self.boot_time_us,
            },
            started_us: self.started_us,
            target: self.target,
            detail: Detail::from_code(self.detail),
            interval_us: self.interval_us,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct ProcessIdWire {
    pid: u32,
    start_time: u64,
}

impl ProcessIdWire {
    pub(crate) fn new(pid: u32, start_time: u64) -> ProcessIdWire {
        ProcessIdWire { pid, start_time }
    }
}

impl From<ProcessId> for ProcessIdWire {
    fn from(id: ProcessId) -> Self {
        ProcessIdWire {
            pid: id.pid,
            start_time: id.start_time,
        }
    }
}

impl From<ProcessIdWire> for ProcessId {
    fn from(id: ProcessIdWire) -> Self {
        ProcessId {
            pid: id.pid,
            start_time: id.start_time,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InfoWire {
    ppid: u32,
    comm: String,
    cmdline: Vec<String>,
    uid: Option<u32>,
    cgroup: Option<String>,
}

impl InfoWire {
    pub(crate) fn from_model(i: &ProcessInfo) -> InfoWire {
        InfoWire {
            ppid: i.ppid,
            comm: i.comm.clone(),
            cmdline: i.cmdline.clone(),
            uid: i.uid,
            cgroup: i.cgroup.clone(),
        }
    }

    pub(crate) fn to_model(&self) -> ProcessInfo {
        ProcessInfo {
            ppid: self.ppid,
            comm: self.comm.clone(),
            cmdline: self.cmdline.clone(),
            uid: self.uid,
            cgroup: self.cgroup.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FdWire {
    pub(crate) fd: u32,
    pub(crate) target: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FdsWire {
    counts: Vec<u64>,
    targets: Option<Vec<FdWire>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MappingWire {
    start: u64,
    end: u64,
    perms: Text,
    offset: u64,
    dev: u64,
    inode: u64,
    path: Text,
    counters: Vec<u64>,
}

impl MappingWire {
    pub(crate) fn from_model(m: &Mapping) -> Result<MappingWire, Unrepresentable> {
        Ok(MappingWire {
            start: m.start,
            end: m.end,
            perms: m.perms.clone(),
            offset: m.offset,
            dev: m.dev,
            inode: m.inode,
            path: m.path.clone(),
            counters: mapping_slots(m)?.to_vec(),
        })
    }

    pub(crate) fn to_model(&self) -> Mapping {
        let mut m = Mapping {
            start: self.start,
            end: self.end,
            perms: self.perms.clone(),
            offset: self.offset,
            dev: self.dev,
            inode: self.inode,
            path: self.path.clone(),
            ..Mapping::default()
        };
        set_mapping_counters(&mut m, &self.counters);
        m
    }
}

/// Kind 0x10: a complete process sample.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KeyframeWire {
    id: ProcessIdWire,
    seq: u64,
    time_us: u64,
    info: InfoWire,
    detail: u8,
    status: Vec<u64>,
    cpu: Option<Vec<u64>>,
    rollup: Option<Vec<u64>>,
    fds: Option<FdsWire>,
    mappings: Option<Vec<MappingWire>>,
    mappings_fresh: bool,
}

impl KeyframeWire {
    pub(crate) fn from_model(s: &ProcessSample, seq: u64) -> Result<Self, Unrepresentable> {
        Ok(KeyframeWire {
            id: s.id.into(),
            seq,
            time_us: s.time_us,
            info: InfoWire::from_model(&s.info),
            detail: s.detail.code(),
            status: status_slots(&s.status)?.to_vec(),
            cpu: s
                .cpu
                .as_ref()
                .map(cpu_slots)
                .transpose()?
                .map(|c| c.to_vec()),
            rollup: s
                .rollup
                .as_ref()
                .map(rollup_slots)
                .transpose()?
                .map(|r| r.to_vec()),
            fds: match &s.fds {
                None => None,
                Some(f) => Some(FdsWire {
                    counts: fd_count_slots(f)?.to_vec(),
                    targets: f.targets.as_ref().map(|t| fd_wires(t)),
                }),
            },
            mappings: match &s.mappings {
                None => None,
                Some(list) => Some(
                    list.iter()
                        .map(MappingWire::from_model)
                        .collect::<Result<_, _>>()?,
                ),
            },
            mappings_fresh: s.mappings_fresh,
        })
    }

    /// The sample and its sequence number.
    pub(crate) fn into_model(self) -> (ProcessSample, u64) {
        let sample = ProcessSample {
            time_us: self.time_us,
            id: self.id.into(),
            info: std::sync::Arc::new(self.info.to_model()),
            detail: Detail::from_code(self.detail),
            status: status_from(&self.status),
            cpu: self.cpu.as_deref().map(cpu_from),
            rollup: self.rollup.as_deref().map(rollup_from),
            fds: self
                .fds
                .map(|f| fds_from(&f.counts, f.targets.map(fds_from_wires))),
            mappings: self
                .mappings
                .map(|l| std::sync::Arc::new(l.iter().map(MappingWire::to_model).collect())),
            mappings_fresh: self.mappings_fresh,
        };
        (sample, self.seq)
    }
}

pub(crate) fn fd_wires(targets: &[Fd]) -> Vec<FdWire> {
    targets
        .iter()
        .map(|f| FdWire {
            fd: f.fd,
            target: f.target.clone(),
        })
        .collect()
}

fn fds_from_wires(targets: Vec<FdWire>) -> Vec<Fd> {
    targets
        .into_iter()
        .map(|f| Fd {
            fd: f.fd,
            target: f.target,
        })
        .collect()
}

/// Kind 0x11: a process sample as its difference from the previous one.
/// See `delta.rs` for how it is made and applied.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DeltaWire {
    pub(crate) id: ProcessIdWire,
    /// The low 16 bits of this sample's sequence number, little-endian.
    pub(crate) seq: [u8; 2],
    pub(crate) time_delta: i64,
    pub(crate) info: Option<InfoWire>,
    pub(crate) status: Vec<i64>,
    pub(crate) cpu: Option<Vec<i64>>,
    pub(crate) rollup: Option<Vec<i64>>,
    pub(crate) fds: Option<FdsDeltaWire>,
    pub(crate) mappings: MappingsDeltaWire,
    pub(crate) mappings_fresh: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FdsDeltaWire {
    pub(crate) counts: Vec<i64>,
    pub(crate) targets: TargetsDeltaWire,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TargetsDeltaWire {
    /// As in the base (including absent).
    Same,
    /// Not collected.
    Absent,
    /// The base's list (empty if absent) with these descriptors closed and
    /// these opened or retargeted.
    Changed {
        closed: Vec<u32>,
        opened: Vec<FdWire>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum MappingsDeltaWire {
    Same,
    Absent,
    /// The base's list (empty if absent) without `removed`, with `changed`
    /// applied, plus `added`, sorted by start address.
    Changed {
        removed: Vec<u32>,
        changed: Vec<MappingChangeWire>,
        added: Vec<MappingWire>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MappingChangeWire {
    /// Index into the base's list.
    pub(crate) index: u32,
    pub(crate) end_delta: i64,
    pub(crate) counters: Vec<i64>,
}

/// Kind 0x20.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SystemWire {
    time_us: u64,
    meminfo: Vec<u64>,
    cgroups: Vec<CgroupWire>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CgroupWire {
    path: String,
    counters: Vec<u64>,
}

impl SystemWire {
    pub(crate) fn from_model(s: &SystemSample) -> Result<Self, Unrepresentable> {
        Ok(SystemWire {
            time_us: s.time_us,
            meminfo: meminfo_slots(&s.meminfo)?,
            cgroups: s
                .cgroups
                .iter()
                .map(|c| {
                    Ok(CgroupWire {
                        path: c.path.clone(),
                        counters: slots([
                            ("cgroup.current_bytes", c.current_bytes),
                            ("cgroup.max_bytes", c.max_bytes),
                        ])?
                        .to_vec(),
                    })
                })
                .collect::<Result<_, Unrepresentable>>()?,
        })
    }

    pub(crate) fn into_model(self) -> SystemSample {
        SystemSample {
            time_us: self.time_us,
            meminfo: meminfo_from(&self.meminfo),
            cgroups: self
                .cgroups
                .into_iter()
                .map(|c| CgroupMemory {
                    path: c.path,
                    current_bytes: opt(&c.counters, 0),
                    max_bytes: opt(&c.counters, 1),
                })
                .collect(),
        }
    }
}

/// Kind 0x30.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ExitWire {
    time_us: u64,
    id: ProcessIdWire,
    exit_code: Option<i32>,
}

impl ExitWire {
    pub(crate) fn from_model(e: &ProcessExit) -> Self {
        ExitWire {
            time_us: e.time_us,
            id: e.id.into(),
            exit_code: e.exit_code,
        }
    }

    pub(crate) fn into_model(self) -> ProcessExit {
        ProcessExit {
            time_us: self.time_us,
            id: self.id.into(),
            exit_code: self.exit_code,
        }
    }
}

/// Kind 0x40.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MarkerWire {
    time_us: u64,
    label: String,
    pid: Option<u32>,
    source: String,
}

impl MarkerWire {
    pub(crate) fn from_model(m: &Marker) -> Self {
        MarkerWire {
            time_us: m.time_us,
            label: m.label.clone(),
            pid: m.pid,
            source: m.source.clone(),
        }
    }

    pub(crate) fn into_model(self) -> Marker {
        Marker {
            time_us: self.time_us,
            label: self.label,
            pid: self.pid,
            source: self.source,
        }
    }
}

/// Kind 0x41.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CensusWire {
    time_us: u64,
    process: Option<ProcessIdWire>,
    source: String,
    counts: Vec<CensusCountWire>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CensusCountWire {
    key: String,
    count: u64,
}

impl CensusWire {
    pub(crate) fn from_model(c: &Census) -> Self {
        CensusWire {
            time_us: c.time_us,
            process: c.process.map(Into::into),
            source: c.source.clone(),
            counts: c
                .counts
                .iter()
                .map(|e| CensusCountWire {
                    key: e.key.clone(),
                    count: e.count,
                })
                .collect(),
        }
    }

    pub(crate) fn into_model(self) -> Census {
        Census {
            time_us: self.time_us,
            process: self.process.map(Into::into),
            source: self.source,
            counts: self
                .counts
                .into_iter()
                .map(|e| CensusCount {
                    key: e.key,
                    count: e.count,
                })
                .collect(),
        }
    }
}

/// Kind 0x42.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RetentionWire {
    time_us: u64,
    process: Option<ProcessIdWire>,
    source: String,
    key: String,
    native: bool,
    sampled: u64,
    owners: Vec<CensusCountWire>,
    holds: Vec<CensusCountWire>,
    chains: Vec<RetentionChainWire>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RetentionChainWire {
    steps: Vec<String>,
    instances: u64,
}

fn counts_to_wire(counts: &[CensusCount]) -> Vec<CensusCountWire> {
    counts
        .iter()
        .map(|e| CensusCountWire {
            key: e.key.clone(),
            count: e.count,
        })
        .collect()
}

fn counts_from_wire(counts: Vec<CensusCountWire>) -> Vec<CensusCount> {
    counts
        .into_iter()
        .map(|e| CensusCount {
            key: e.key,
            count: e.count,
        })
        .collect()
}

impl RetentionWire {
    pub(crate) fn from_model(r: &Retention) -> Self {
        RetentionWire {
            time_us: r.time_us,
            process: r.process.map(Into::into),
            source: r.source.clone(),
            key: r.key.clone(),
            native: r.native,
            sampled: r.sampled,
            owners: counts_to_wire(&r.owners),
            holds: counts_to_wire(&r.holds),
            chains: r
                .chains
                .iter()
                .map(|c| RetentionChainWire {
                    steps: c.steps.clone(),
                    instances: c.instances,
                })
                .collect(),
        }
    }

    pub(crate) fn into_model(self) -> Retention {
        Retention {
            time_us: self.time_us,
            process: self.process.map(Into::into),
            source: self.source,
            key: self.key,
            native: self.native,
            sampled: self.sampled,
            owners: counts_from_wire(self.owners),
            holds: counts_from_wire(self.holds),
            chains: self
                .chains
                .into_iter()
                .map(|c| RetentionChain {
                    steps: c.steps,
                    instances: c.instances,
                })
                .collect(),
        }
    }
}

/// Kind 0x50.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct NoticeWire {
    time_us: u64,
    process: Option<ProcessIdWire>,
    kind: u8,
    path: String,
    message: String,
}

impl NoticeWire {
    pub(crate) fn from_model(n: &Notice) -> Self {
        NoticeWire {
            time_us: n.time_us,
            process: n.process.map(Into::into),
            kind: n.kind.code(),
            path: n.path.clone(),
            message: n.message.clone(),
        }
    }

    pub(crate) fn into_model(self) -> Notice {
        Notice {
            time_us: self.time_us,
            process: self.process.map(Into::into),
            kind: NoticeKind::from_code(self.kind),
            path: self.path,
            message: self.message,
        }
    }
}

/// Kind 0x7F.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct EndWire {
    time_us: u64,
    reason: u8,
    detail: String,
    samples: u64,
}

impl EndWire {
    pub(crate) fn from_model(e: &End) -> Self {
        let (reason, detail) = match &e.reason {
            EndReason::Completed => (0, String::new()),
            EndReason::TargetExited => (1, String::new()),
            EndReason::Interrupted(d) => (2, d.clone()),
            EndReason::Error(d) => (3, d.clone()),
        };
        EndWire {
            time_us: e.time_us,
            reason,
            detail,
            samples: e.samples,
        }
    }

    pub(crate) fn into_model(self) -> End {
        let reason = match self.reason {
            0 => EndReason::Completed,
            1 => EndReason::TargetExited,
            2 => EndReason::Interrupted(self.detail),
            3 => EndReason::Error(self.detail),
            code if self.detail.is_empty() => EndReason::Error(format!(
                "the recording ended for a reason this version does not know (code {code})"
            )),
            _ => EndReason::Error(self.detail),
        };
        End {
            time_us: self.time_us,
            reason,
            samples: self.samples,
        }
    }
}
