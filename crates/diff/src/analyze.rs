//! Recordings over time into verdicts: [`Analyzer`] folds records in as
//! they arrive (a live stream included) in bounded memory per process, and
//! [`Analyzer::analysis`] judges every series of every process.

use std::collections::BTreeMap;
use std::sync::Arc;

use memtrail_format::{
    Fds, Mapping, Marker, ProcessId, ProcessSample, Record, RetentionChain, SystemSample,
};
use rayon::prelude::*;
use serde::Serialize;

use crate::compare::{command_of, TargetCount};
use crate::judge::{judge, Judgement, Materiality, Pattern, Verdict};
use crate::regions::{regions, Change};
use crate::roots::{arrange, Holding, Retentions, Role};
use crate::trail::Trail;

/// What a series measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Memory,
    Fds,
    Threads,
    /// A key of a census taken inside the process (`census:SOURCE:KEY`).
    Census,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Memory => "memory",
            Kind::Fds => "fds",
            Kind::Threads => "threads",
            Kind::Census => "census",
        }
    }
}

/// Most census series kept per process and source (see [`CensusSeries`]).
pub const CENSUS_SERIES_PER_SOURCE: usize = 64;
/// Most census sources kept per process; censuses of further sources are
/// ignored.
pub const CENSUS_SOURCES: usize = 8;
/// Most census findings reported per process and source: the leaking and
/// growing ones, leaks first, then by growth.
pub const CENSUS_FINDINGS_PER_SOURCE: usize = 16;

/// How much a census count's growth matters (see docs/leak-detection.md).
fn census_materiality(source: &str) -> Materiality {
    if crate::census::counts_bytes(source) {
        // Bytes: the memory thresholds (256 KiB, 1% of the level).
        Materiality {
            absolute: 256.0 * 1024.0,
            relative: 0.01,
        }
    } else {
        // Objects: 50 more, and 10% more than the typical level; fewer is
        // the churn of any live program.
        Materiality {
            absolute: 50.0,
            relative: 0.10,
        }
    }
}

/// The series of one key of one census source of one process.
#[derive(Debug, Clone)]
struct CensusSeries {
    key: String,
    trail: Trail,
}

/// Folds a census into the process's census series, keeping at most
/// [`CENSUS_SERIES_PER_SOURCE`] per source: a new key takes the place of
/// the series with the smallest last value when it counts more.
fn add_census(
    sources: &mut BTreeMap<String, Vec<CensusSeries>>,
    c: &memtrail_format::Census,
    t: f64,
    retentions: &Retentions,
) {
    if !sources.contains_key(&c.source) && sources.len() >= CENSUS_SOURCES {
        return;
    }
    let series = sources.entry(c.source.clone()).or_default();
    for entry in &c.counts {
        let v = entry.count as f64;
        if let Some(s) = series.iter_mut().find(|s| s.key == entry.key) {
            s.trail.push(t, v);
            continue;
        }
        let mut trail = Trail::new();
        trail.push(t, v);
        let fresh = CensusSeries {
            key: entry.key.clone(),
            trail,
        };
        if series.len() < CENSUS_SERIES_PER_SOURCE {
            series.push(fresh);
            continue;
        }
        // A type the hook examined for retention is kept however small:
        // roots often count few instances.
        let last = |s: &CensusSeries| {
            if retentions.has(&c.source, &s.key) {
                f64::INFINITY
            } else {
                s.trail.last().map_or(0.0, |p| p.1)
            }
        };
        let pinned = retentions.has(&c.source, &entry.key);
        if let Some(smallest) = series
            .iter_mut()
            .min_by(|a, b| last(a).total_cmp(&last(b)))
            .filter(|s| (pinned && last(s).is_finite()) || last(s) < v)
        {
            *smallest = fresh;
        }
    }
}

struct SeriesDef {
    name: &'static str,
    kind: Kind,
    get: fn(&ProcessSample) -> Option<u64>,
}

/// The names of the series judged for every process, in report order
/// (the order of [`series_values`]).
pub const SERIES_NAMES: [&str; 8] = [
    "rss", "anon", "file", "shmem", "pss", "swap", "fds", "threads",
];

/// The series judged for every process, in report order.
const SERIES: [SeriesDef; 8] = [
    SeriesDef {
        name: "rss",
        kind: Kind::Memory,
        get: |s| s.status.vm_rss.or(s.rollup.and_then(|r| r.rss)),
    },
    SeriesDef {
        name: "anon",
        kind: Kind::Memory,
        get: |s| s.status.rss_anon.or(s.rollup.and_then(|r| r.anonymous)),
    },
    SeriesDef {
        name: "file",
        kind: Kind::Memory,
        get: |s| s.status.rss_file,
    },
    SeriesDef {
        name: "shmem",
        kind: Kind::Memory,
        get: |s| s.status.rss_shmem,
    },
    SeriesDef {
        name: "pss",
        kind: Kind::Memory,
        get: |s| s.rollup.and_then(|r| r.pss),
    },
    SeriesDef {
        name: "swap",
        kind: Kind::Memory,
        get: |s| s.status.vm_swap.or(s.rollup.and_then(|r| r.swap)),
    },
    SeriesDef {
        name: "fds",
        kind: Kind::Fds,
        get: |s| s.fds.as_ref().map(Fds::total),
    },
    SeriesDef {
        name: "threads",
        kind: Kind::Threads,
        get: |s| s.status.threads,
    },
];

/// The value of every judged series in one sample, in report order:
/// `(series, kind, value)`, memory in KiB. The same definitions the
/// verdicts use, for renderers that show current values beside them.
pub fn series_values(
    s: &ProcessSample,
) -> impl Iterator<Item = (&'static str, Kind, Option<u64>)> + '_ {
    SERIES
        .iter()
        .map(move |def| (def.name, def.kind, (def.get)(s)))
}

/// How much growth matters, per kind (see docs/leak-detection.md).
fn materiality(kind: Kind) -> Materiality {
    match kind {
        // 256 KiB and 1% of the level over the recording: less is
        // allocator and page-fault noise (docs/leak-detection.md).
        Kind::Memory => Materiality {
            absolute: 256.0,
            relative: 0.01,
        },
        Kind::Fds | Kind::Threads => Materiality {
            absolute: 3.0,
            relative: 0.0,
        },
        // Judged by `census_materiality`, which knows the source.
        Kind::Census => census_materiality(""),
    }
}

/// A region (or a group of new regions with one label) behind growth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionGrowth {
    pub label: String,
    /// Start address (of the first, for a group).
    pub start: u64,
    /// `grown` or `new`.
    pub change: Change,
    /// Regions in the group: 1 for a grown region.
    pub count: u64,
    pub anonymous: bool,
    /// Resident plus swapped growth, KiB.
    pub growth_kib: i64,
}

/// A descriptor kind whose count grew.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FdKindGrowth {
    pub kind: &'static str,
    pub before: u64,
    pub after: u64,
}

/// When a limit will be reached at the retained growth rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Projection {
    /// `cgroup memory.max` or `MemAvailable`.
    pub limit: String,
    /// How far off the limit was at the last system sample, KiB.
    pub headroom_kib: u64,
    pub seconds: f64,
}

/// The straight line fitted to a series (the Theil–Sen slope through the
/// median intercept), from the first point judged to the last: what a
/// chart draws over the series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrendLine {
    /// Seconds after the process's `first_us`.
    pub from_s: f64,
    pub to_s: f64,
    /// The line's value at `from_s` and `to_s`, in the series' unit.
    pub from: f64,
    pub to: f64,
}

/// The judgement on one series of one process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub series: String,
    pub kind: Kind,
    pub verdict: Verdict,
    pub pattern: Pattern,
    /// `KiB`, `count`, or `bytes` (census series of `tracemalloc`).
    pub unit: &'static str,
    /// Theil–Sen slope of the series, units per hour.
    pub growth_per_hour: f64,
    /// Slope of the lower envelope: what is kept, units per hour.
    pub retained_per_hour: f64,
    pub confidence: f64,
    pub points: u64,
    pub first: f64,
    pub last: f64,
    /// Why a growing series is not a leak, or other context.
    pub note: Option<String>,
    /// Memory findings: the regions that grew or appeared, largest first.
    pub regions: Vec<RegionGrowth>,
    /// Descriptor findings: kinds that grew, and targets opened and not
    /// closed (with `--detail full`).
    pub fd_kinds: Vec<FdKindGrowth>,
    pub fd_targets: Vec<TargetCount>,
    pub time_to_limit: Option<Projection>,
    /// The fitted line, when there were enough points to judge.
    pub trend_line: Option<TrendLine>,
    /// Census findings of types the Python hook examined: `root` (held by
    /// something that does not grow) or `held` (hangs off `held_by`).
    pub role: Option<Role>,
    /// The growing type this one's instances hang off (role `held`).
    pub held_by: Option<String>,
    /// The chains of references that keep sampled instances alive, anchor
    /// first, most instances first.
    pub retained_by: Vec<RetentionChain>,
    /// What one instance holds, by type, most first.
    pub holds: Vec<Holding>,
}

/// Every finding on one process and the verdict they add up to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessVerdict {
    pub pid: u32,
    pub ppid: u32,
    pub start_time: u64,
    pub comm: String,
    pub command: String,
    /// Samples judged (since the process last exec'd).
    pub samples: u64,
    pub first_us: u64,
    pub last_us: u64,
    pub exited: bool,
    pub exit_code: Option<i32>,
    /// `leak` if any finding is a leak; `insufficient-data` if every
    /// finding is; `no-leak` otherwise.
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
}

impl ProcessVerdict {
    pub fn id(&self) -> ProcessId {
        ProcessId {
            pid: self.pid,
            start_time: self.start_time,
        }
    }

    pub fn finding(&self, series: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.series == series)
    }
}

/// The verdicts on a recording (so far, for a live stream).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// Leaks first, then by RSS growth.
    pub processes: Vec<ProcessVerdict>,
    /// Process samples read.
    pub samples: u64,
    pub markers: Vec<Marker>,
    /// Time of the first process sample read, µs since the Unix epoch (0
    /// before any): where marker offsets count from, as in `report` and
    /// `diff`. A process's own `first_us` restarts when it execs.
    pub start_us: u64,
}

impl Analysis {
    pub fn leaks(&self) -> usize {
        self.processes
            .iter()
            .filter(|p| p.verdict == Verdict::Leak)
            .count()
    }
}

#[derive(Debug)]
struct ProcState {
    id: ProcessId,
    ppid: u32,
    comm: String,
    /// argv[0] of the program being judged, when known.
    argv0: Option<String>,
    command: String,
    /// The command line `command` was made of (empty before one is seen).
    cmdline: Vec<String>,
    cgroup: Option<String>,
    samples: u64,
    first_us: u64,
    last_us: u64,
    trails: Vec<Trail>,
    first_maps: Option<Arc<Vec<Mapping>>>,
    last_maps: Option<Arc<Vec<Mapping>>>,
    first_fds: Option<Fds>,
    last_fds: Option<Fds>,
    exited: bool,
    exit_code: Option<i32>,
    had_memory: bool,
    /// Census series by source.
    census: BTreeMap<String, Vec<CensusSeries>>,
    /// The latest retention of each type the Python hook examined.
    retentions: Retentions,
    /// The newest sample's values, held back from the trails until the
    /// next one shows the process still alive (see [`ProcState::ended`]).
    held: Option<Held>,
    /// The names of the last sample folded in whole: a reader shares them
    /// between samples until they change, so the same ones need no
    /// comparing (an exec or a new command line shows as new names).
    names: Option<Arc<memtrail_format::ProcessInfo>>,
}

/// One live sample's contribution, held back one sample.
#[derive(Debug)]
struct Held {
    t: f64,
    values: [Option<u64>; SERIES.len()],
    fds: Option<Fds>,
    /// Freshly read regions only.
    maps: Option<Arc<Vec<Mapping>>>,
}

impl Held {
    /// Adds this sample's values to the series they belong to.
    fn push_to(&self, trails: &mut [Trail]) {
        for (trail, v) in trails.iter_mut().zip(&self.values) {
            if let Some(v) = v {
                trail.push(self.t, *v as f64);
            }
        }
    }
}

/// Whether the sample `s` of a process starts its program anew, after
/// samples of the program with this `comm` and `argv0` (as the first of
/// them showed it): every view of a recording that measures growth "from
/// the start" starts there, so that they all agree on what is new.
///
/// Either the process exec'd another program (a shell or launcher that
/// execs the real one): its `comm` or its argv[0] changed (pyenv's
/// `python3` shim is a bash script whose comm is already `python3`; only
/// argv[0] tells); or the samples so far were caught in the middle of an
/// exec (the kernel sets the new command line last: no argv[0] yet) and
/// `s` is the first to name the program.
pub fn starts_program(comm: &str, argv0: Option<&str>, s: &ProcessSample) -> bool {
    if !s.info.comm.is_empty() && s.info.comm != comm {
        return true;
    }
    match (s.info.cmdline.first(), argv0) {
        (Some(now), Some(before)) => now != before,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

impl ProcState {
    fn new(s: &ProcessSample) -> ProcState {
        ProcState {
            id: s.id,
            ppid: s.info.ppid,
            comm: s.info.comm.clone(),
            argv0: s.info.cmdline.first().cloned(),
            command: command_of(s),
            cmdline: Vec::new(),
            cgroup: s.info.cgroup.clone(),
            samples: 0,
            first_us: s.time_us,
            last_us: s.time_us,
            trails: SERIES.iter().map(|_| Trail::new()).collect(),
            first_maps: None,
            last_maps: None,
            first_fds: None,
            last_fds: None,
            exited: false,
            exit_code: None,
            had_memory: false,
            census: BTreeMap::new(),
            retentions: Retentions::default(),
            held: None,
            names: None,
        }
    }

    /// The process exited: its last live sample may show it tearing down.
    fn ended(&mut self) {
        self.exited = true;
        if self.held.take().is_some() {
            self.samples = self.samples.saturating_sub(1);
        }
    }

    /// Folds a held-back sample in for good.
    fn commit(&mut self, held: Held) {
        held.push_to(&mut self.trails);
        if let Some(fds) = held.fds {
            if self.first_fds.is_none() {
                self.first_fds = Some(fds);
            } else {
                self.last_fds = Some(fds);
            }
        }
        if let Some(maps) = held.maps {
            if self.first_maps.is_none() {
                self.first_maps = Some(maps);
            } else {
                self.last_maps = Some(maps);
            }
        }
    }

    /// The trails, last descriptors and last regions to judge: with the
    /// held-back sample while the process may still be running.
    fn view(
        &self,
    ) -> (
        std::borrow::Cow<'_, [Trail]>,
        Option<&Fds>,
        Option<&[Mapping]>,
    ) {
        let held = self.held.as_ref().filter(|_| !self.exited);
        let Some(held) = held else {
            return (
                std::borrow::Cow::Borrowed(&self.trails),
                self.last_fds.as_ref(),
                self.last_maps.as_deref().map(Vec::as_slice),
            );
        };
        let mut trails = self.trails.clone();
        held.push_to(&mut trails);
        (
            std::borrow::Cow::Owned(trails),
            held.fds.as_ref().or(self.last_fds.as_ref()),
            held.maps
                .as_deref()
                .or(self.last_maps.as_deref())
                .map(Vec::as_slice),
        )
    }

    /// Folds in a sample; its descriptors and regions are taken from it.
    fn add(&mut self, s: &mut ProcessSample) {
        let same_names = self.names.as_ref().is_some_and(|n| Arc::ptr_eq(n, &s.info));
        if !same_names && starts_program(&self.comm, self.argv0.as_deref(), s) {
            // Judged from the program's start (see `starts_program`).
            *self = ProcState::new(s);
        }
        // A process that is exiting (a zombie) has no memory left and
        // reports no descriptors and one thread: that is its end, not a
        // value of its series. The sample before it may have caught the
        // process tearing down (freeing its heap, closing descriptors),
        // so it is dropped too.
        if s.status.vm_rss.is_none() && self.had_memory {
            self.last_us = s.time_us;
            self.ended();
            return;
        }
        self.had_memory |= s.status.vm_rss.is_some();
        // The command line rarely changes: joined only when it does.
        if !same_names && !s.info.cmdline.is_empty() && s.info.cmdline != self.cmdline {
            self.command = command_of(s);
            if self.argv0.is_none() {
                self.argv0 = s.info.cmdline.first().cloned();
            }
            self.cmdline = s.info.cmdline.clone();
        }
        if !same_names {
            self.names = Some(Arc::clone(&s.info));
        }
        self.ppid = s.info.ppid;
        self.samples += 1;
        self.last_us = s.time_us;
        let t = s.time_us.saturating_sub(self.first_us) as f64 / 1e6;
        let values = SERIES.map(|def| (def.get)(s));
        // The first regions seen are the baseline even if carried; later
        // ones count only when freshly read. An exiting process shows no
        // regions: keep the last real view of its memory.
        let fresh = s.mappings_fresh || self.first_maps.is_none();
        let maps = s.mappings.take().filter(|m| !m.is_empty() && fresh);
        let held = Held {
            t,
            values,
            fds: s.fds.take(),
            maps,
        };
        if self.first_maps.is_none() && self.first_fds.is_none() && self.held.is_none() {
            // The very first sample is the baseline: never held back.
            self.commit(held);
        } else if let Some(older) = self.held.replace(held) {
            self.commit(older);
        }
    }
}

/// Folds a recording in, record by record, and judges it on demand.
///
/// Memory per process is bounded (each series keeps at most
/// [`crate::trail::CAPACITY`] buckets, plus the first and last region
/// lists), so a recording of any length can be analysed as it streams.
///
/// Processes are independent, so their state is split into shards by
/// [`ProcessId`]: [`Analyzer::add_all`] routes a batch of records to the
/// shard owning each process and folds the shards in parallel. The
/// verdicts are the same whatever the number of shards, and whether
/// records come one by one or in batches.
#[derive(Debug)]
pub struct Analyzer {
    shards: Vec<Shard>,
    system: Option<SystemSample>,
    markers: Vec<Marker>,
    samples: u64,
    start_us: Option<u64>,
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer::new()
    }
}

/// The processes of one shard.
#[derive(Debug, Default)]
struct Shard {
    procs: rustc_hash::FxHashMap<ProcessId, ProcState>,
    /// The records of a batch routed here, not yet folded (always empty
    /// between calls).
    routed: Vec<Record>,
}

impl Shard {
    /// Folds in a record about one process (see [`process_of`]).
    fn add(&mut self, record: Record) {
        match record {
            Record::Process(mut s) => {
                // Folded where it lies (a sample is several hundred bytes:
                // moving it out of its box cost more than folding it).
                match self.procs.get_mut(&s.id) {
                    Some(p) => p.add(&mut s),
                    None => {
                        let mut p = ProcState::new(&s);
                        p.add(&mut s);
                        self.procs.insert(s.id, p);
                    }
                }
            }
            Record::Exit(e) => {
                if let Some(p) = self.procs.get_mut(&e.id) {
                    if !p.exited {
                        p.ended();
                    }
                    p.exit_code = e.exit_code.or(p.exit_code);
                }
            }
            Record::Census(c) => {
                // A census of a process never sampled has no series to join.
                if let Some(p) = c.process.and_then(|id| self.procs.get_mut(&id)) {
                    if !p.exited {
                        let t = c.time_us.saturating_sub(p.first_us) as f64 / 1e6;
                        add_census(&mut p.census, &c, t, &p.retentions);
                    }
                }
            }
            Record::Retention(r) => {
                if let Some(p) = r.process.and_then(|id| self.procs.get_mut(&id)) {
                    if !p.exited {
                        p.retentions.add(*r);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The process a record is about, if it is about one.
fn process_of(record: &Record) -> Option<ProcessId> {
    match record {
        Record::Process(s) => Some(s.id),
        Record::Exit(e) => Some(e.id),
        Record::Census(c) => c.process,
        Record::Retention(r) => r.process,
        _ => None,
    }
}

impl Analyzer {
    /// An analyzer with one shard per thread of rayon's pool.
    pub fn new() -> Analyzer {
        Analyzer::with_shards(rayon::current_num_threads())
    }

    /// An analyzer whose processes are split into `shards` shards (at
    /// least one); the verdicts do not depend on it.
    pub fn with_shards(shards: usize) -> Analyzer {
        Analyzer {
            shards: (0..shards.max(1)).map(|_| Shard::default()).collect(),
            system: None,
            markers: Vec::new(),
            samples: 0,
            start_us: None,
        }
    }

    fn shard_of(&self, id: &ProcessId) -> usize {
        let mixed =
            (u64::from(id.pid) ^ id.start_time.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((mixed >> 32) as usize) % self.shards.len()
    }

    /// Folds in what is not about one process, and counts process
    /// samples; returns the records about one process, with their shard.
    fn route(&mut self, record: Record) -> Option<(usize, Record)> {
        if let Record::Process(s) = &record {
            self.samples += 1;
            self.start_us.get_or_insert(s.time_us);
        }
        match process_of(&record) {
            Some(id) => Some((self.shard_of(&id), record)),
            None => {
                match record {
                    Record::System(s) => self.system = Some(*s),
                    Record::Marker(m) => self.markers.push(m),
                    // A census of no process has no series to join; stacks
                    // and modules name native census keys before they get
                    // here (memtrail-symbolize); the analysis does not need
                    // them, nor notices and ends.
                    _ => {}
                }
                None
            }
        }
    }

    /// Joins analyzers that each read the same recording but a different
    /// share of its processes (see `memtrail_format::Reader::select`): the
    /// processes of all, the system samples and markers of the first
    /// (each saw every record about no process), the samples of all.
    /// The verdicts are those of one analyzer fed the whole recording.
    pub fn merge(parts: impl IntoIterator<Item = Analyzer>) -> Analyzer {
        let mut merged = Analyzer::new();
        for (i, part) in parts.into_iter().enumerate() {
            if i == 0 {
                merged.system = part.system;
                merged.markers = part.markers;
            }
            merged.samples += part.samples;
            merged.start_us = match (merged.start_us, part.start_us) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            for shard in part.shards {
                for (id, p) in shard.procs {
                    let home = merged.shard_of(&id);
                    merged.shards[home].procs.insert(id, p);
                }
            }
        }
        merged
    }

    /// Adds one record (in recording order).
    pub fn add(&mut self, record: Record) {
        if let Some((shard, record)) = self.route(record) {
            self.shards[shard].add(record);
        }
    }

    /// Adds records (in recording order), folding the shards in parallel:
    /// the same as [`Analyzer::add`] on each, in less time on several cores.
    pub fn add_all(&mut self, records: impl IntoIterator<Item = Record>) {
        for record in records {
            if let Some((shard, record)) = self.route(record) {
                self.shards[shard].routed.push(record);
            }
        }
        self.shards.par_iter_mut().for_each(|shard| {
            let mut routed = std::mem::take(&mut shard.routed);
            for record in routed.drain(..) {
                shard.add(record);
            }
            // Kept for the next batch: no allocation per batch.
            shard.routed = routed;
        });
    }

    /// Drops everything held about a process (one that exited, or that a
    /// long-running caller such as `memtrail serve` stopped tracking), so
    /// an analyzer fed for months holds only the processes still watched.
    pub fn forget(&mut self, id: &ProcessId) {
        let shard = self.shard_of(id);
        self.shards[shard].procs.remove(id);
    }

    /// Processes held.
    pub fn processes(&self) -> usize {
        self.shards.iter().map(|s| s.procs.len()).sum()
    }

    /// Process samples added so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Judges every process seen so far (in parallel).
    pub fn analysis(&self) -> Analysis {
        let mut processes: Vec<ProcessVerdict> = self
            .shards
            .par_iter()
            .flat_map_iter(|shard| shard.procs.values())
            .map(|p| judge_process(p, self.system.as_ref()))
            .collect();
        processes.sort_by(|a, b| {
            let growth = |p: &ProcessVerdict| p.finding("rss").map_or(0.0, |f| f.last - f.first);
            a.verdict
                .cmp(&b.verdict)
                .then_with(|| growth(b).total_cmp(&growth(a)))
                .then_with(|| a.id().cmp(&b.id()))
        });
        Analysis {
            processes,
            samples: self.samples,
            markers: self.markers.clone(),
            start_us: self.start_us.unwrap_or(0),
        }
    }
}

fn judge_process(p: &ProcState, system: Option<&SystemSample>) -> ProcessVerdict {
    let (trails, last_fds, last_maps) = p.view();
    let mut findings: Vec<Finding> = SERIES
        .iter()
        .zip(trails.iter())
        .filter(|(_, trail)| trail.count() > 0)
        .map(|(def, trail)| {
            let j = judge(&trail.buckets(), materiality(def.kind));
            finding(def, trail, j)
        })
        .collect();

    // Resident memory includes file-backed pages, which are reclaimable
    // page cache: its growth is a leak only if anonymous, shared or
    // swapped memory grows with it.
    let leaks = |name: &str, f: &[Finding]| {
        f.iter()
            .any(|x| x.series == name && x.verdict == Verdict::Leak)
    };
    let has_anon = findings.iter().any(|f| f.series == "anon");
    let private_leak =
        leaks("anon", &findings) || leaks("swap", &findings) || leaks("shmem", &findings);
    for f in &mut findings {
        match f.series.as_str() {
            "file" if f.verdict == Verdict::Leak => {
                f.verdict = Verdict::NoLeak;
                f.note = Some(
                    "file-backed pages grew: page cache mapped in, reclaimable; not a leak".into(),
                );
            }
            "rss" | "pss" if f.verdict == Verdict::Leak && has_anon && !private_leak => {
                f.verdict = Verdict::NoLeak;
                f.note = Some("the growth is file-backed pages (see `file`); not a leak".into());
            }
            _ => {}
        }
    }

    // Attribution.
    let region_changes = match (&p.first_maps, last_maps) {
        (Some(a), Some(b)) => regions(a, b),
        _ => Vec::new(),
    };
    for f in &mut findings {
        let interesting = f.verdict == Verdict::Leak
            || matches!(
                f.pattern,
                Pattern::Growing | Pattern::Step | Pattern::Plateau
            );
        if !interesting {
            continue;
        }
        match f.kind {
            Kind::Memory => {
                let keep: fn(bool) -> bool = match f.series.as_str() {
                    "anon" | "swap" | "shmem" => |anon| anon,
                    "file" => |anon| !anon,
                    _ => |_| true,
                };
                f.regions = grown_regions(&region_changes, keep);
                if f.verdict == Verdict::Leak {
                    f.time_to_limit = project(p, system, f.retained_per_hour / 3600.0);
                }
            }
            Kind::Fds => {
                if let (Some(a), Some(b)) = (&p.first_fds, last_fds) {
                    let d = crate::compare::compare_fds(a, b);
                    f.fd_kinds = d
                        .by_kind
                        .iter()
                        .filter(|k| k.delta > 0)
                        .map(|k| FdKindGrowth {
                            kind: k.kind,
                            before: k.before,
                            after: k.after,
                        })
                        .collect();
                    f.fd_targets = d.opened.into_iter().take(5).collect();
                }
            }
            Kind::Threads | Kind::Census => {}
        }
    }
    findings.extend(census_findings(p));

    let verdict = if findings.iter().any(|f| f.verdict == Verdict::Leak) {
        Verdict::Leak
    } else if findings
        .iter()
        .all(|f| f.verdict == Verdict::InsufficientData)
    {
        Verdict::InsufficientData
    } else {
        Verdict::NoLeak
    };
    ProcessVerdict {
        pid: p.id.pid,
        ppid: p.ppid,
        start_time: p.id.start_time,
        comm: p.comm.clone(),
        command: p.command.clone(),
        samples: p.samples,
        first_us: p.first_us,
        last_us: p.last_us,
        exited: p.exited,
        exit_code: p.exit_code,
        verdict,
        findings,
    }
}

/// The leaking and growing census series of a process, per source roots
/// first (see [`crate::roots`]), then leaks, then by growth; at most
/// [`CENSUS_FINDINGS_PER_SOURCE`] per source besides the roots.
fn census_findings(p: &ProcState) -> Vec<Finding> {
    let mut out = Vec::new();
    for (source, series) in &p.census {
        let found: Vec<Finding> = series
            .iter()
            .map(|s| {
                let j = judge(&s.trail.buckets(), census_materiality(source));
                let unit = if crate::census::counts_bytes(source) {
                    "bytes"
                } else {
                    "count"
                };
                let name = format!("census:{source}:{}", s.key);
                make_finding(name, Kind::Census, unit, &s.trail, j)
            })
            .filter(|f| f.verdict == Verdict::Leak || f.pattern == Pattern::Growing)
            .collect();
        out.extend(arrange(source, found, &p.retentions));
    }
    out
}

fn finding(def: &SeriesDef, trail: &Trail, j: Judgement) -> Finding {
    let unit = if def.kind == Kind::Memory {
        "KiB"
    } else {
        "count"
    };
    make_finding(def.name.to_string(), def.kind, unit, trail, j)
}

fn make_finding(
    series: String,
    kind: Kind,
    unit: &'static str,
    trail: &Trail,
    j: Judgement,
) -> Finding {
    let round = |x: f64| (x * 100.0).round() / 100.0;
    let trend_line = trend_line(trail, &j);
    Finding {
        series,
        kind,
        verdict: j.verdict,
        pattern: j.pattern,
        unit,
        growth_per_hour: round(j.slope * 3600.0),
        retained_per_hour: round(j.floor_slope * 3600.0),
        confidence: j.confidence,
        points: trail.count(),
        first: trail.first().map_or(0.0, |p| p.1),
        last: trail.last().map_or(0.0, |p| p.1),
        note: (j.pattern == Pattern::Plateau).then(|| {
            "grew, then stopped before the final quarter of the recording: a warm-up or a \
             cache that filled up; a leak that paused looks the same: watch longer"
                .to_string()
        }),
        regions: Vec::new(),
        fd_kinds: Vec::new(),
        fd_targets: Vec::new(),
        time_to_limit: None,
        trend_line,
        role: None,
        held_by: None,
        retained_by: Vec::new(),
        holds: Vec::new(),
    }
}

/// The line through the series with the judged slope and the median
/// intercept (Theil–Sen's), over the span of the points judged.
fn trend_line(trail: &Trail, j: &Judgement) -> Option<TrendLine> {
    if j.pattern == Pattern::TooShort {
        return None;
    }
    let buckets = trail.buckets();
    let mut offsets: Vec<f64> = buckets.iter().map(|b| b.mean - j.slope * b.t).collect();
    let intercept = crate::stats::median(&mut offsets)?;
    let (from_s, to_s) = (trail.first()?.0, trail.last()?.0);
    let round = |x: f64| (x * 100.0).round() / 100.0;
    Some(TrendLine {
        from_s: round(from_s),
        to_s: round(to_s),
        from: round(intercept + j.slope * from_s),
        to: round(intercept + j.slope * to_s),
    })
}

/// Grown and new regions; new regions with one label are grouped (a leak
/// of many mmaps shows as one line with a count).
fn grown_regions(changes: &[crate::RegionChange], keep: fn(bool) -> bool) -> Vec<RegionGrowth> {
    let mut out: Vec<RegionGrowth> = Vec::new();
    let mut new_groups: BTreeMap<&str, RegionGrowth> = BTreeMap::new();
    for c in changes {
        let growth = c.rss_delta + c.swap_delta;
        if growth <= 0 || !keep(c.anonymous_region) {
            continue;
        }
        match c.change {
            Change::Grown => out.push(RegionGrowth {
                label: c.label.clone(),
                start: c.start,
                change: Change::Grown,
                count: 1,
                anonymous: c.anonymous_region,
                growth_kib: growth,
            }),
            Change::New => {
                let g = new_groups.entry(&c.label).or_insert_with(|| RegionGrowth {
                    label: c.label.clone(),
                    start: c.start,
                    change: Change::New,
                    count: 0,
                    anonymous: c.anonymous_region,
                    growth_kib: 0,
                });
                g.count += 1;
                g.start = g.start.min(c.start);
                g.growth_kib += growth;
            }
            _ => {}
        }
    }
    out.extend(new_groups.into_values());
    out.sort_by(|a, b| b.growth_kib.cmp(&a.growth_kib).then(a.start.cmp(&b.start)));
    out.truncate(5);
    out
}

/// Time until the process's cgroup limit or the machine's available memory
/// is used up at `rate` KiB/s, whichever comes first.
fn project(p: &ProcState, system: Option<&SystemSample>, rate: f64) -> Option<Projection> {
    let system = system?;
    if rate <= 0.0 {
        return None;
    }
    let mut options = Vec::new();
    if let Some(cg) = p
        .cgroup
        .as_deref()
        .and_then(|path| system.cgroups.iter().find(|c| c.path == path))
    {
        if let (Some(max), Some(cur)) = (cg.max_bytes, cg.current_bytes) {
            options.push((
                format!("cgroup memory.max ({})", cg.path),
                max.saturating_sub(cur) / 1024,
            ));
        }
    }
    if let Some(avail) = system.meminfo.mem_available {
        options.push(("MemAvailable".to_string(), avail));
    }
    options
        .into_iter()
        .map(|(limit, headroom_kib)| Projection {
            limit,
            headroom_kib,
            seconds: (headroom_kib as f64 / rate).round(),
        })
        .min_by(|a, b| a.seconds.total_cmp(&b.seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use memtrail_format::{Census, CensusCount, ProcessInfo, Status};

    const ID: ProcessId = ProcessId {
        pid: 42,
        start_time: 7,
    };

    fn sample(i: u64) -> Record {
        Record::Process(Box::new(ProcessSample::summary(
            i * 1_000_000,
            ID,
            ProcessInfo {
                comm: "python3".into(),
                ..Default::default()
            },
            Status {
                vm_rss: Some(10_000),
                rss_anon: Some(5_000),
                ..Default::default()
            },
        )))
    }

    fn census(i: u64, source: &str, counts: Vec<(String, u64)>) -> Record {
        Record::Census(Box::new(Census {
            time_us: i * 1_000_000 + 500_000,
            process: Some(ID),
            source: source.into(),
            counts: counts
                .into_iter()
                .map(|(key, count)| CensusCount { key, count })
                .collect(),
        }))
    }

    /// 40 seconds of a flat process whose censuses hold `counts(i)`.
    fn analyse(source: &str, counts: impl Fn(u64) -> Vec<(String, u64)>) -> ProcessVerdict {
        let mut a = Analyzer::new();
        for i in 0..40 {
            a.add(sample(i));
            a.add(census(i, source, counts(i)));
        }
        a.analysis().processes.remove(0)
    }

    /// A sample taken while the kernel was still loading the program (no
    /// command line yet, a few KiB resident) is not part of its series.
    #[test]
    fn a_sample_caught_mid_exec_is_not_judged() {
        let mut a = Analyzer::new();
        let first = ProcessSample::summary(
            0,
            ID,
            ProcessInfo {
                comm: "python3".into(),
                cmdline: Vec::new(),
                ..Default::default()
            },
            Status {
                vm_rss: Some(4),
                rss_anon: Some(4),
                ..Default::default()
            },
        );
        a.add(Record::Process(Box::new(first)));
        for i in 1..40 {
            let Record::Process(mut s) = sample(i) else {
                unreachable!()
            };
            std::sync::Arc::make_mut(&mut s.info).cmdline = vec!["python3".into(), "job.py".into()];
            a.add(Record::Process(s));
        }
        let p = a.analysis().processes.remove(0);
        assert_eq!(p.samples, 39, "{p:#?}");
        let rss = p.finding("rss").expect("judged");
        assert_eq!((rss.first, rss.verdict), (10_000.0, Verdict::NoLeak));
    }

    #[test]
    fn a_growing_census_key_is_a_leak_and_named() {
        let p = analyse("gc", |i| {
            vec![
                ("__main__.Widget".into(), 100 + 50 * i),
                ("dict".into(), 5000 + (i % 3) * 40),
            ]
        });
        assert_eq!(p.verdict, Verdict::Leak);
        let f = p.finding("census:gc:__main__.Widget").expect("named");
        assert_eq!(
            (f.kind, f.verdict, f.unit),
            (Kind::Census, Verdict::Leak, "count")
        );
        assert_eq!(f.growth_per_hour, 50.0 * 3600.0);
        // A steady type is judged and left out.
        assert!(p.finding("census:gc:dict").is_none());
    }

    fn retention(key: &str, owners: &[(&str, u64)], holds: &[(&str, u64)]) -> Record {
        let counts = |list: &[(&str, u64)]| {
            list.iter()
                .map(|(k, n)| CensusCount {
                    key: k.to_string(),
                    count: *n,
                })
                .collect()
        };
        Record::Retention(Box::new(memtrail_format::Retention {
            time_us: 20_000_000,
            process: Some(ID),
            source: "gc".into(),
            key: key.into(),
            native: !key.contains('.'),
            sampled: 4,
            owners: counts(owners),
            holds: counts(holds),
            chains: vec![RetentionChain {
                steps: vec!["app.SESSIONS".into(), "[<key>]".into()],
                instances: 4,
            }],
        }))
    }

    #[test]
    fn the_root_comes_first_and_no_cap_drops_it() {
        // A Session a second, each owning 20 dicts and 3 Childs; 20 built-in
        // types churning upwards much faster.
        let mut a = Analyzer::new();
        for i in 0..40u64 {
            a.add(sample(i));
            let mut counts: Vec<(String, u64)> = vec![
                ("app.Session".into(), 100 + 60 * i),
                ("app.Child".into(), 300 + 180 * i),
            ];
            for k in 0..20u64 {
                counts.push((format!("builtin{k}"), 10_000 + (1000 + k) * i));
            }
            a.add(census(i, "gc", counts));
            if i == 20 {
                a.add(retention(
                    "app.Session",
                    &[],
                    &[("dict", 20), ("app.Child", 3)],
                ));
                a.add(retention("app.Child", &[("app.Session", 4)], &[]));
            }
        }
        let p = a.analysis().processes.remove(0);
        let census: Vec<&Finding> = p
            .findings
            .iter()
            .filter(|f| f.kind == Kind::Census)
            .collect();
        assert_eq!(census[0].series, "census:gc:app.Session");
        assert_eq!(census[0].role, Some(Role::Root));
        assert_eq!(census[0].retained_by[0].steps, ["app.SESSIONS", "[<key>]"]);
        assert_eq!(census[0].holds[0].key, "dict");
        let child = p
            .finding("census:gc:app.Child")
            .expect("kept: held by the root");
        assert_eq!(
            (child.role, child.held_by.as_deref()),
            (Some(Role::Held), Some("app.Session"))
        );
        // 16 besides the root.
        assert_eq!(census.len(), 1 + CENSUS_FINDINGS_PER_SOURCE);
    }

    #[test]
    fn census_growth_below_the_threshold_is_no_leak() {
        // +39 objects over the recording: under the 50 that matter.
        let p = analyse("gc", |i| vec![("Session".into(), 1000 + i)]);
        assert_eq!(p.verdict, Verdict::NoLeak);
        let leaks = |name: &str| p.finding(name).filter(|f| f.verdict == Verdict::Leak);
        assert!(leaks("census:gc:Session").is_none());
    }

    #[test]
    fn tracemalloc_sites_are_bytes_judged_like_memory() {
        // 100 KiB a second at one site; 1 KiB a second at another.
        let p = analyse("tracemalloc", |i| {
            vec![
                ("app.py:12".into(), (1 << 20) + 100 * 1024 * i),
                ("lib.py:7".into(), 10_000 + 1024 * i),
            ]
        });
        let f = p.finding("census:tracemalloc:app.py:12").expect("named");
        assert_eq!((f.verdict, f.unit), (Verdict::Leak, "bytes"));
        let lib = p.finding("census:tracemalloc:lib.py:7");
        assert!(lib.filter(|f| f.verdict == Verdict::Leak).is_none());
    }

    #[test]
    fn census_series_are_bounded_per_source() {
        // Every census brings 100 new keys, larger than the last ones.
        let mut sources = BTreeMap::new();
        for i in 0..50u64 {
            let c = Census {
                time_us: i,
                process: Some(ID),
                source: "gc".into(),
                counts: (0..100)
                    .map(|k| CensusCount {
                        key: format!("k{i}-{k}"),
                        count: i * 1000 + k,
                    })
                    .collect(),
            };
            add_census(&mut sources, &c, i as f64, &Retentions::default());
        }
        let series = &sources["gc"];
        assert_eq!(series.len(), CENSUS_SERIES_PER_SOURCE);
        // The largest counts stayed.
        assert!(series.iter().all(|s| s.key.starts_with("k49-")));
    }
}
