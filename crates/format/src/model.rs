//! The data model: what a recording holds, independent of how it is encoded.
//!
//! Units: every memory size named without a suffix is in KiB (1024 bytes),
//! exactly as the kernel reports it in /proc; fields ending in `_bytes` are
//! bytes (cgroup files report bytes). Times are microseconds since the Unix
//! epoch (`time_us`) unless named otherwise. CPU times are in clock ticks
//! ([`Host::clock_ticks`] per second), as /proc/PID/stat reports them.
//!
//! Every value the kernel may not provide (older kernels, hidepid, a file
//! that vanished mid-read) is an `Option`: `None` means "not observed",
//! never zero.
//!
//! These types derive `Serialize` for the JSON produced by `memtrail dump`
//! and `snap --format json`; that JSON shape is part of the CLI contract.
//! The binary encoding does not serialize these types directly: it uses
//! private wire types (see `docs/format.md`), so the model can grow without
//! changing the bytes of format version 1.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// How much is collected per process, from cheapest to most expensive.
///
/// Each level includes everything of the levels before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Detail {
    /// /proc/PID/stat, status, fd count by kind, thread count.
    Summary,
    /// + /proc/PID/smaps_rollup (PSS and the private/shared split).
    Rollup,
    /// + /proc/PID/smaps per mapping (re-read adaptively when recording).
    Maps,
    /// + per-mapping smaps every sample and the target of every descriptor.
    Full,
}

impl Detail {
    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Detail::Summary => "summary",
            Detail::Rollup => "rollup",
            Detail::Maps => "maps",
            Detail::Full => "full",
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Detail::Summary => 0,
            Detail::Rollup => 1,
            Detail::Maps => 2,
            Detail::Full => 3,
        }
    }

    /// Unknown codes (from a later writer) read as the richest level known.
    pub(crate) fn from_code(code: u8) -> Detail {
        match code {
            0 => Detail::Summary,
            1 => Detail::Rollup,
            2 => Detail::Maps,
            _ => Detail::Full,
        }
    }
}

impl std::fmt::Display for Detail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Detail {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "summary" => Ok(Detail::Summary),
            "rollup" => Ok(Detail::Rollup),
            "maps" => Ok(Detail::Maps),
            "full" => Ok(Detail::Full),
            other => Err(format!(
                "unknown detail level `{other}`: expected summary, rollup, maps or full"
            )),
        }
    }
}

/// Facts about the machine a recording was taken on, needed to interpret it
/// elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub hostname: String,
    /// `uname -r`-style kernel release (from /proc/sys/kernel/osrelease).
    pub kernel: String,
    /// Bytes per page.
    pub page_size: u64,
    /// Clock ticks per second (`getconf CLK_TCK`), the unit of CPU times and
    /// of [`ProcessId::start_time`].
    pub clock_ticks: u64,
    /// When the machine booted, microseconds since the Unix epoch (from
    /// `btime` in /proc/stat, so second resolution).
    pub boot_time_us: u64,
}

/// The first frame of every recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Name and version of the program that wrote the file, e.g. `memtrail 0.1.0`.
    pub writer: String,
    pub host: Host,
    /// When recording started.
    pub started_us: u64,
    /// What was asked for, in words, e.g. `--pid 1234 --children`.
    pub target: String,
    /// The detail level requested.
    pub detail: Detail,
    /// The sampling interval requested, if this is a recording rather than
    /// a single snapshot.
    pub interval_us: Option<u64>,
}

/// A process's identity: pids are reused, so a pid alone is never enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: u32,
    /// Field 22 of /proc/PID/stat: clock ticks after boot when it started.
    pub start_time: u64,
}

impl std::fmt::Display for ProcessId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.pid, self.start_time)
    }
}

/// What names a process; rarely changes between samples.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub ppid: u32,
    /// /proc/PID/comm (at most 15 bytes, set by the process).
    pub comm: String,
    /// /proc/PID/cmdline split at NULs; empty for kernel threads and zombies,
    /// or when arguments were redacted.
    pub cmdline: Vec<String>,
    /// Real uid from /proc/PID/status.
    pub uid: Option<u32>,
    /// The cgroup v2 path from /proc/PID/cgroup (`0::/path`), if any.
    pub cgroup: Option<String>,
}

/// Memory figures from /proc/PID/status, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Status {
    pub vm_rss: Option<u64>,
    pub vm_hwm: Option<u64>,
    pub vm_size: Option<u64>,
    pub vm_peak: Option<u64>,
    pub rss_anon: Option<u64>,
    pub rss_file: Option<u64>,
    pub rss_shmem: Option<u64>,
    pub vm_swap: Option<u64>,
    pub vm_data: Option<u64>,
    pub vm_stk: Option<u64>,
    pub vm_pte: Option<u64>,
    /// `Threads:` line.
    pub threads: Option<u64>,
}

/// CPU and fault counters from /proc/PID/stat (cumulative since start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cpu {
    /// User time, clock ticks.
    pub utime: u64,
    /// System time, clock ticks.
    pub stime: u64,
    pub minflt: u64,
    pub majflt: u64,
}

/// /proc/PID/smaps_rollup, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rollup {
    pub rss: Option<u64>,
    pub pss: Option<u64>,
    pub pss_anon: Option<u64>,
    pub pss_file: Option<u64>,
    pub pss_shmem: Option<u64>,
    pub shared_clean: Option<u64>,
    pub shared_dirty: Option<u64>,
    pub private_clean: Option<u64>,
    pub private_dirty: Option<u64>,
    pub anonymous: Option<u64>,
    pub swap: Option<u64>,
    pub swap_pss: Option<u64>,
}

/// Open file descriptors, counted by what they point at.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Fds {
    /// Regular files, directories, devices: anything with a path.
    pub file: u64,
    pub socket: u64,
    pub pipe: u64,
    /// `anon_inode:[eventfd]`, `[eventpoll]`, `[timerfd]`, ...
    pub anon_inode: u64,
    pub other: u64,
    /// Every descriptor and its target (`readlink /proc/PID/fd/N`), sorted by
    /// fd; only at [`Detail::Full`].
    pub targets: Option<Vec<Fd>>,
}

impl Fds {
    /// All descriptors, whatever their kind.
    pub fn total(&self) -> u64 {
        self.file + self.socket + self.pipe + self.anon_inode + self.other
    }
}

/// One open descriptor.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fd {
    pub fd: u32,
    /// What `readlink` returned: a path, `socket:[123]`, `pipe:[456]`,
    /// `anon_inode:[eventfd]`.
    pub target: String,
}

/// One line of /proc/PID/maps with its smaps figures (KiB).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// `rwxp` / `r--s` as in /proc/PID/maps. Shared: a list of regions
    /// holds one copy of each distinct text (see [`Text`]).
    pub perms: Text,
    pub offset: u64,
    /// `major:minor` of the backing device, packed as `major << 32 | minor`.
    pub dev: u64,
    pub inode: u64,
    /// The backing path, or a label: `[heap]`, `[stack]`, `[vdso]`,
    /// `[anon:name]`; empty for anonymous mappings. Shared, like `perms`:
    /// the regions of one file hold one copy of its path.
    pub path: Text,
    pub size: u64,
    pub rss: u64,
    pub pss: u64,
    pub shared_clean: u64,
    pub shared_dirty: u64,
    pub private_clean: u64,
    pub private_dirty: u64,
    pub anonymous: u64,
    pub swap: u64,
    pub swap_pss: Option<u64>,
    pub locked: Option<u64>,
}

impl Mapping {
    /// True for memory with no file behind it: anonymous mappings, the heap,
    /// stacks and named anonymous regions.
    pub fn is_anonymous(&self) -> bool {
        self.inode == 0
            && (self.path.is_empty()
                || self.path == "[heap]"
                || self.path.starts_with("[stack")
                || self.path.starts_with("[anon:"))
    }

    /// The label used when a region's address changes between samples:
    /// the path, or `[anon]` for unnamed anonymous memory.
    pub fn label(&self) -> &str {
        if self.path.is_empty() {
            "[anon]"
        } else {
            &self.path
        }
    }
}

/// An immutable string that clones by reference: regions read together
/// share one copy of texts that repeat, such as their permissions (a
/// `String` each cost 24 bytes inline and a 32-byte allocation per region;
/// a recorder holds tens of thousands of regions). Compares, hashes, prints
/// and serializes as the string it holds.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(Arc<str>);

impl Text {
    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Text {
    /// The empty text; every empty `Text` shares one allocation.
    fn default() -> Self {
        static EMPTY: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
        Text(EMPTY.get_or_init(|| Arc::from("")).clone())
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        if s.is_empty() {
            return Text::default();
        }
        Text(Arc::from(s))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        if s.is_empty() {
            return Text::default();
        }
        Text(Arc::from(s))
    }
}

impl From<Text> for String {
    fn from(t: Text) -> Self {
        t.0.to_string()
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Text::from)
    }
}

/// One observation of one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSample {
    pub time_us: u64,
    pub id: ProcessId,
    /// Shared (`Arc`): it rarely changes, so a reader hands the same
    /// names to every sample of a process instead of a copy each.
    pub info: Arc<ProcessInfo>,
    /// What was collected for this sample (may be lower than requested when
    /// a file could not be read).
    pub detail: Detail,
    pub status: Status,
    pub cpu: Option<Cpu>,
    pub rollup: Option<Rollup>,
    pub fds: Option<Fds>,
    /// Per-mapping smaps, sorted by start address. Shared (`Arc`): when
    /// the adaptive policy carries regions over from an earlier sample,
    /// the collector, the sample and the writer's delta base hold one list
    /// between them instead of a copy each.
    pub mappings: Option<Arc<Vec<Mapping>>>,
    /// False when `mappings` was carried over from an earlier sample because
    /// cheaper reads showed nothing had changed (the adaptive policy).
    pub mappings_fresh: bool,
}

impl ProcessSample {
    /// A sample at detail `summary` made of status alone: no CPU times,
    /// rollup, descriptors or mappings. For samples built by hand (tests,
    /// examples), which otherwise spell out every empty field.
    pub fn summary(time_us: u64, id: ProcessId, info: ProcessInfo, status: Status) -> Self {
        ProcessSample {
            time_us,
            id,
            info: Arc::new(info),
            detail: Detail::Summary,
            status,
            cpu: None,
            rollup: None,
            fds: None,
            mappings: None,
            mappings_fresh: false,
        }
    }
}

/// /proc/meminfo, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemInfo {
    pub mem_total: Option<u64>,
    pub mem_free: Option<u64>,
    pub mem_available: Option<u64>,
    pub buffers: Option<u64>,
    pub cached: Option<u64>,
    pub swap_total: Option<u64>,
    pub swap_free: Option<u64>,
    pub shmem: Option<u64>,
    pub commit_limit: Option<u64>,
    pub committed_as: Option<u64>,
}

/// A cgroup v2 memory controller a recorded process belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupMemory {
    /// Path below the cgroup root, e.g. `/system.slice/foo.service`.
    pub path: String,
    /// memory.current, bytes.
    pub current_bytes: Option<u64>,
    /// memory.max, bytes; `None` when it is `max` (no limit) or unreadable.
    pub max_bytes: Option<u64>,
}

/// Machine-wide figures, once per tick.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SystemSample {
    pub time_us: u64,
    pub meminfo: MemInfo,
    pub cgroups: Vec<CgroupMemory>,
}

/// A process that was seen before and is gone now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessExit {
    /// When its absence was noticed.
    pub time_us: u64,
    pub id: ProcessId,
    /// Exit status, known only for the command `memtrail run` started:
    /// the exit code, or 128 + signal number.
    pub exit_code: Option<i32>,
}

/// A labelled point on the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub time_us: u64,
    pub label: String,
    /// The process it concerns, if any.
    pub pid: Option<u32>,
    /// Where it came from: `cli`, `events`, `probe`, `recorder`.
    pub source: String,
}

/// One count of a [`Census`]: a key (an object type, an allocation site)
/// and how many (objects, bytes) it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CensusCount {
    pub key: String,
    pub count: u64,
}

/// Counts taken inside a process at one moment: objects by type from
/// Python's `gc`, bytes by allocation site from `tracemalloc`, or anything
/// a program reports on the events channel (see docs/events.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Census {
    /// When the recorder read it, or the time the event carried.
    pub time_us: u64,
    /// The process it counts, when the event named a pid that was alive
    /// when it was read.
    pub process: Option<ProcessId>,
    /// What counted: `gc`, `tracemalloc`, or a program's own name.
    pub source: String,
    /// Largest first; at most [`Census::MAX_KEYS`] as the recorder writes
    /// them.
    pub counts: Vec<CensusCount>,
}

impl Census {
    /// Most keys a recorder keeps of one census (the largest counts).
    pub const MAX_KEYS: usize = 256;
}

/// One chain of references that keeps objects alive, from something that
/// lives as long as the program (a module global, a class attribute, a
/// running function's local) down to the objects: steps as a person writes
/// them (`app.cache.SESSIONS`, `[<key>]`, `Session.children`, `[i]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionChain {
    /// Anchor first; the last step reaches the object.
    pub steps: Vec<String>,
    /// Sampled objects kept alive along this chain.
    pub instances: u64,
}

/// What keeps the instances of one growing type alive in one process at
/// one moment, from the Python hook (docs/events.md): the chains from an
/// anchor to a few recently created instances, the growing types they hang
/// off, and what one instance holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub time_us: u64,
    pub process: Option<ProcessId>,
    /// The census source whose key this is (`gc`).
    pub source: String,
    /// The type (a key of that source's censuses).
    pub key: String,
    /// The type is built into the interpreter or an extension module
    /// (`dict`, `weakref.ReferenceType`), not a class the program or a
    /// library defines in Python.
    pub native: bool,
    /// Instances examined.
    pub sampled: u64,
    /// Of those, how many hang off an instance of another of the program's
    /// types (by type), rather than directly off the anchor.
    pub owners: Vec<CensusCount>,
    /// Objects one instance holds (the average over the sample), by type.
    pub holds: Vec<CensusCount>,
    /// The distinct chains, most instances first, at most
    /// [`Retention::MAX_CHAINS`].
    pub chains: Vec<RetentionChain>,
}

impl Retention {
    /// Most chains a recorder keeps of one retention event.
    pub const MAX_CHAINS: usize = 4;
    /// Most steps kept of one chain.
    pub const MAX_STEPS: usize = 24;
    /// Most entries kept of `owners` and of `holds`.
    pub const MAX_COUNTS: usize = 32;
}

/// What kind of trouble a [`Notice`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeKind {
    /// A /proc file could not be read for lack of permission.
    PermissionDenied,
    /// The process vanished while it was being read.
    Vanished,
    /// A file was read but did not parse.
    Malformed,
    /// Anything else (I/O errors, unknown codes from later writers).
    Other,
}

impl NoticeKind {
    pub(crate) fn code(self) -> u8 {
        match self {
            NoticeKind::PermissionDenied => 1,
            NoticeKind::Vanished => 2,
            NoticeKind::Malformed => 3,
            NoticeKind::Other => 0,
        }
    }
    pub(crate) fn from_code(code: u8) -> NoticeKind {
        match code {
            1 => NoticeKind::PermissionDenied,
            2 => NoticeKind::Vanished,
            3 => NoticeKind::Malformed,
            _ => NoticeKind::Other,
        }
    }
}

/// Something the collector could not do, recorded as what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub time_us: u64,
    pub process: Option<ProcessId>,
    pub kind: NoticeKind,
    /// The file concerned, e.g. `/proc/1234/smaps`.
    pub path: String,
    /// A sentence for people: what happened and what to do about it.
    pub message: String,
}

/// Why a recording ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "reason", content = "detail")]
pub enum EndReason {
    /// The requested duration or count was reached (or it was a snapshot).
    Completed,
    /// Every target process exited.
    TargetExited,
    /// A signal (SIGINT, SIGTERM) asked the recorder to stop.
    Interrupted(String),
    /// The recorder stopped on an error, described here.
    Error(String),
}

/// The last frame of a recording that ended cleanly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    pub time_us: u64,
    pub reason: EndReason,
    /// Process samples written.
    pub samples: u64,
}

/// Everything a recording holds after its header, in order.
///
/// The larger kinds are boxed, so a record moves as a few words: a reader
/// hands out millions of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Record {
    Process(Box<ProcessSample>),
    System(Box<SystemSample>),
    Exit(ProcessExit),
    Marker(Marker),
    Census(Box<Census>),
    Retention(Box<Retention>),
    NativeStack(Box<crate::native::NativeStack>),
    NativeModule(Box<crate::native::NativeModule>),
    Notice(Box<Notice>),
    End(End),
}

impl Record {
    /// When it happened.
    pub fn time_us(&self) -> u64 {
        match self {
            Record::Process(s) => s.time_us,
            Record::System(s) => s.time_us,
            Record::Exit(e) => e.time_us,
            Record::Marker(m) => m.time_us,
            Record::Census(c) => c.time_us,
            Record::Retention(r) => r.time_us,
            Record::NativeStack(s) => s.time_us,
            Record::NativeModule(m) => m.time_us,
            Record::Notice(n) => n.time_us,
            Record::End(e) => e.time_us,
        }
    }
}
