//! The command line: clap definitions only. `main.rs` validates these raw
//! flags once and hands the result to the commands in `cmd/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::units::{Duration, Interval, Size};

const ABOUT: &str = "Find memory leaks in long-running Linux processes from the outside";

const LONG_ABOUT: &str = "\
Find memory leaks in long-running Linux processes from the outside.

memtrail reads /proc (status, smaps_rollup, smaps, file descriptors,
threads, CPU) for one process, a process tree or every process, and stores
what it sees in a stable, crash-safe binary format that streams through
pipes. Nothing needs to change in the target: no restart, no preload.";

const AFTER_HELP: &str = "\
Examples:
  # watch memtrail catch a real leak
  memtrail demo
  # the big anonymous regions, like pmap
  memtrail snap --pid 1234 --min-rss 1MiB --anon
  # record a process tree, or a job from start to end
  memtrail record --pid 1234 --children -o app.mtr
  memtrail run --interval 100ms -o job.mtr -- python3 job.py
  # a leak verdict per process, of a file or a live stream
  memtrail analyze app.mtr
  memtrail record --pid 1234 | memtrail analyze -
  # a week of a host in hourly segments, read as one recording
  memtrail record --all --rotate 1h --keep 7d -o week/
  memtrail analyze week/
  # what grew, between two snapshots or two moments
  memtrail diff before.mtr after.mtr --anon --min 1MiB
  memtrail diff app.mtr --from 5m --to 10m
  # sparklines here, charts in the page
  memtrail report app.mtr --html app.html
  # every sample, for a spreadsheet or jq
  memtrail export app.mtr --format csv > app.csv
  memtrail dump app.mtr | jq 'select(.type==\"process\") | .status.vm_rss'
  # metrics for Prometheus on 127.0.0.1:9464
  memtrail serve --name 'nginx|postgres'

Sizes take units: 4096, 512KiB, 1MiB, 2GiB (K, M, G are powers of 1024, as
in /proc). Durations: 250ms, 1s, 5m, 1h30m, 7d.

Exit status: 0 success, 2 error (a message says what and why), 3 a leak was
found (`analyze --fail-on-leak`, `run --fail-on-leak`), 4 with --fail-on-leak
nothing leaked but nothing could be judged either (too few samples); `run`
otherwise exits with the command's own status.";

#[derive(Debug, Parser)]
#[command(name = "memtrail", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
#[command(propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Take one snapshot: a pmap-like table of regions, JSON, or a binary file
    #[command(long_about = SNAP_ABOUT)]
    Snap(SnapArgs),
    /// Record samples over time to a binary file or a pipe
    #[command(long_about = RECORD_ABOUT)]
    Record(RecordArgs),
    /// Start a command and record it and all its descendants until it exits
    #[command(long_about = RUN_ABOUT)]
    Run(RunArgs),
    /// Judge a recording: a leak verdict per process, with the findings behind it
    #[command(long_about = ANALYZE_ABOUT)]
    Analyze(AnalyzeArgs),
    /// Compare two snapshots, or two moments of one recording, region by region
    #[command(long_about = DIFF_ABOUT)]
    Diff(DiffArgs),
    /// Show a recording: a terminal or Markdown summary, or an HTML page with charts
    #[command(long_about = REPORT_ABOUT)]
    Report(ReportArgs),
    /// Export every process sample as CSV, NDJSON or OpenMetrics (for Prometheus)
    #[command(long_about = EXPORT_ABOUT)]
    Export(ExportArgs),
    /// Print every frame of a recording as one JSON object per line
    #[command(long_about = DUMP_ABOUT)]
    Dump(DumpArgs),
    /// Serve live memory series and leak verdicts to Prometheus over HTTP
    #[command(long_about = SERVE_ABOUT)]
    Serve(ServeArgs),
    /// Put a labelled marker on the timeline of a running recording
    #[command(long_about = MARK_ABOUT)]
    Mark(MarkArgs),
    /// Record a running Python process and have its dormant hook report censuses
    #[command(long_about = ATTACH_ABOUT)]
    Attach(AttachArgs),
    /// Install, remove or check the dormant hook `memtrail attach` talks to
    #[command(long_about = PYTHON_HOOK_ABOUT, subcommand_required = true)]
    PythonHook(PythonHookArgs),
    /// Record a real leaking Python program for about 20 seconds and show what memtrail sees
    #[command(long_about = DEMO_ABOUT)]
    Demo(DemoArgs),
}

const SNAP_ABOUT: &str = "\
Take one snapshot of the target processes.

By default prints a table of memory regions (like `pmap -X`), largest
resident first; `--min-rss 1MiB --anon` keeps the big anonymous regions,
the by-hand `pmap PID | awk '$2 > 1000' | sort -n | grep anon` in one
command. `--format json` prints the same as JSON; `-o FILE` writes a binary
snapshot that `memtrail dump` reads.

Examples:
  # the big anonymous regions of a process, like pmap | grep anon
  memtrail snap --pid 1234 --min-rss 1MiB --anon
  # the totals as JSON
  memtrail snap --pid 1234 --format json | jq '.processes[0].totals'
  # a binary snapshot to diff with a later one
  memtrail snap --pid 1234 -o before.mtr";

const RECORD_ABOUT: &str = "\
Record samples of the target processes at a fixed interval (or, with
`--interval auto`, every 50ms at first and less often as the recording ages).

The recording is compressed (format version 2; --uncompressed writes
version 1) and flushed after every tick, so it can be read while it grows,
piped into another command, and survives the recorder being killed (at most
the tick being written is lost). Ctrl-C (SIGINT) or SIGTERM finishes the
file cleanly. Without -o the recording goes to standard output, which must
not be a terminal.

With --rotate SIZE|DUR, -o names a directory of segments, each a complete
recording, and a new one starts when the current one reaches SIZE or has
been written for DUR; --keep SIZE|DUR deletes the oldest beyond a total
size or an age. `analyze`, `report`, `diff`, `export` and `dump` read the
directory as one recording:
  memtrail record --all --rotate 1h --keep 7d -o /var/lib/memtrail

At the default detail (`maps`) the per-region smaps file, the most expensive
read, is re-read only when cheaper reads show that memory changed, and at
least every 10th sample.

With --events PATH it also reads markers and censuses (counts of objects by
type, of bytes by allocation site) that the program or `memtrail mark`
writes to PATH, a FIFO (created if PATH does not exist) or a file, one JSON
object per line (docs/events.md).

Examples:
  # a daemon and all its workers, every second, until Ctrl-C
  memtrail record --pid 1234 --children -o daemon.mtr
  # every nginx process every 250 ms for ten minutes
  memtrail record --name '^nginx' --interval 250ms --duration 10m -o nginx.mtr
  # judge it live as it records
  memtrail record --pid 1234 | memtrail analyze -";

const RUN_ABOUT: &str = "\
Start a command and record it and every process it starts until it exits.

The command inherits memtrail's standard input, output and error; the
recording goes to the file named by -o. memtrail exits with the command's
own exit status (128 + N if a signal N ended it), or 2 if recording failed.
When the command ends, the leak analysis of the recording is printed on
standard error (as `memtrail analyze` would); with --fail-on-leak a leak
makes the exit status 3 when the command itself succeeded, and a command
too short to judge (fewer than 16 usable samples) makes it 4.
Sampling is adaptive unless --interval says otherwise: every 50ms at first,
thinning out to every second at 20s and every 10s after hours, so short
jobs get enough samples and long ones not millions. The first sample is
taken once the command's exec has finished.
Ctrl-C reaches the command as usual; SIGTERM sent to memtrail is passed on
to the command.

The command finds an events channel in $MEMTRAIL_EVENTS: a FIFO where it
(or `memtrail mark`, or the memtrail-probe crate) writes markers and
censuses, one JSON object per line (docs/events.md). With --python-gc or
--python-tracemalloc, Python programs report by themselves, with nothing
installed and no code changed: memtrail puts a sitecustomize module first
on PYTHONPATH (it runs any sitecustomize that was already there) that
counts live objects by type (gc) or the bytes allocated per short
traceback (tracemalloc: the line and --python-frames - 1 callers) every
--interval. With --python-gc it also finds, every few seconds, what keeps
the growing types alive: the chain of references from a module global, a
class attribute or a running function's local to a few new instances, and
what one instance holds. `memtrail analyze` then names the root type
first, the chain that keeps it, and what hangs off it.

With --native, C, C++ and Rust programs (and every process they start)
report their allocation sites: memtrail preloads a small library of its own
(LD_PRELOAD) that samples allocations by bytes, on average one per
--native-rate bytes, records each sampled allocation's call stack, and
every --interval sends the estimated live bytes per stack. memtrail, not
the program, turns the stacks into function names and file:line (from the
modules and build ids kept in the recording), and `analyze` names the
function whose allocations keep growing, with its callers. Costs a few
percent of CPU at the default rate (docs/native.md). Programs linked
statically or with an allocator of their own cannot be sampled: memtrail
says so.

Examples:
  # record a job from start to end; the verdict is printed when it exits
  memtrail run --interval 100ms -o job.mtr -- python3 job.py
  # in CI: count Python objects by type, exit 3 when a leak is found
  memtrail run --python-gc --fail-on-leak -- python3 -m pytest tests/
  # a native program's allocation sites, sampled more often
  memtrail run --native -o daemon.mtr -- ./daemon test.toml
  memtrail run --native --native-rate 64KiB --interval 200ms -- ./unit-tests";

const ANALYZE_ABOUT: &str = "\
Judge a recording: for every process, whether it leaks, and why.

Each process gets a verdict (leak, no-leak, insufficient-data) made of
findings, one per series: rss, anon, file, shmem, pss, swap (memory), fds
and threads, and census:SOURCE:KEY for the counts a program reports from
inside (`run --python-gc`: objects by type; `--python-tracemalloc`: bytes
per source line), so the class or line that keeps growing is named.
With `run --python-gc`, the root types come first (held by something that
does not grow: a module global, a class attribute), each with the chain
of references that keeps it alive (`app.cache.SESSIONS → [<key>]`) and
what one instance holds; the types hanging off a root and the built-in
types that grow with it follow.
A leak is sustained growth that continues to the end of what was
observed: a warm-up that plateaus, a one-off step, a sawtooth whose
lows do not rise (GC, alloc/free cycles) and file-backed pages (page cache)
are not leaks, and a process seen fewer than 16 times is too short to
judge. Each finding has a growth rate per hour, a confidence, the regions
or descriptor kinds responsible, and the time until a known limit (cgroup
memory.max, MemAvailable) is reached. The method is in
docs/leak-detection.md.

With `-` it reads standard input as it arrives, printing updated verdicts
(at most every --update) and a final one when the stream ends:
`memtrail record --pid 1234 | memtrail analyze -`. Ctrl-C stops reading
and prints the verdict so far; a second Ctrl-C quits at once.

Examples:
  # a verdict per process
  memtrail analyze daemon.mtr
  # the leaks, as JSON
  memtrail analyze daemon.mtr --format json | jq '.processes[] | select(.verdict==\"leak\")'
  # judge a live recording, updating every 30 s
  memtrail record --pid 1234 | memtrail analyze - --update 30s";

const DIFF_ABOUT: &str = "\
Compare processes at two moments, region by region.

`memtrail diff A B` compares the last sample of each process in A with its
last sample in B (two snapshots from `memtrail snap -o`, or recordings).
`memtrail diff FILE --from T --to T` compares two moments of one recording.
T is `start`, `end`, an offset from the start (`90s`, `5m`), a tick number
(`#12`: the 13th sampling round, every process read once; each record of
`memtrail dump` carries its `tick`), a time
(`2026-11-25T13:05:00Z`) or a marker (`marker:before step`: the first
marker with that label, from `memtrail mark` or the program itself). The
markers inside the window are listed.

Censuses (object counts by type, bytes by allocation site, from
`run --python-gc` and the events channel) are compared too: per process
and source, the census at or after the first moment against the last at
or before the second, largest change first, like diffing two
`gc.get_objects()` counts by hand; a type whose retention the Python hook
measured is shown with the chain that keeps it alive, root types first.

Processes are matched by identity (pid and start time) and regions by
start address and backing, falling back to their label so a region that
moved still matches. Output is ranked by growth: per process the RSS,
anonymous, file-backed, PSS and swap totals, descriptors by kind and the
targets opened in between (with --detail full), threads, then the regions
that grew, appeared, shrank or vanished. `--anon --min 1MiB` keeps the big
anonymous changes, the by-hand diff of two `pmap` files in one command.

Examples:
  # two snapshots ten minutes apart, big anonymous changes only
  memtrail diff before.mtr after.mtr --anon --min 1MiB
  # minute 5 of a recording against its end
  memtrail diff daemon.mtr --from 5m --to end
  # between two markers, and between two ticks
  memtrail diff app.mtr --from 'marker:before import' --to 'marker:after import'
  memtrail diff daemon.mtr --from '#10' --to '#20'";

const REPORT_ABOUT: &str = "\
Show a recording for people: the verdict on every process (leaks first),
each series over time and the regions that grew.

Prints a terminal summary (a sparkline per series, fitting 80 columns,
coloured only on a terminal and never with NO_COLOR set) or, with
`--format markdown`, the same as Markdown tables. `--html FILE` also writes
one self-contained page with charts of RSS split into anon, file and shmem,
PSS, swap, descriptors and threads, markers as labelled lines and the
analyzer's fitted trend, the top growing regions and the process tree: no
script, nothing fetched, open it straight from disk. A recording of any
length is read in one pass in bounded memory; a torn or still-growing file
is reported up to where it ends.

Examples:
  # the summary here
  memtrail report app.mtr
  # and the page with charts
  memtrail report app.mtr --html app.html
  # for an issue or a pull request
  memtrail report app.mtr --format markdown >> issue.md";

const EXPORT_ABOUT: &str = "\
Export every process sample of a recording, one row each.

Columns (docs/user-guide.md): time_us, pid, start_time, ppid, comm,
command, rss_kib, anon_kib, file_kib, shmem_kib, pss_kib, swap_kib, fds,
threads; a value the sample does not have is empty (CSV) or null (NDJSON).
`--format openmetrics` writes one gauge per series in bytes or counts
(memtrail_process_rss_bytes, ...), labelled pid, start_time and comm, for
backfilling Prometheus.

Examples:
  # for a spreadsheet
  memtrail export app.mtr --format csv > app.csv
  # one process's RSS with jq
  memtrail export app.mtr --format ndjson | jq 'select(.pid == 1234) | .rss_kib'
  # backfill Prometheus
  memtrail export app.mtr --format openmetrics -o app.om
  promtool tsdb create-blocks-from openmetrics app.om /var/lib/prometheus/metrics2";

const DUMP_ABOUT: &str = "\
Print every frame of a recording as newline-delimited JSON, for jq.

The first line is the header (`\"type\": \"header\"`); each following line is
one record (`process`, `system`, `exit`, `marker`, `census`, `retention`,
`native-stack`, `native-module`, `notice`, `end`) with the byte `offset` of
its frame, its `encoding` (keyframe, delta, plain) and its `tick`: the
sampling round it belongs to, the number `memtrail diff --from '#N'` takes.
Delta frames are printed as the full sample they decode to. A torn tail (a
recorder killed mid-write) or a damaged frame is reported on standard
error and skipped; everything else is still printed. Reads a live stream
from standard input with `-`.

Examples:
  # VmRSS of every process sample
  memtrail dump job.mtr | jq -c 'select(.type==\"process\") | [.tick, .id.pid, .status.vm_rss]'
  # the markers
  memtrail dump app.mtr | jq -c 'select(.type==\"marker\") | [.tick, .label]'";

const MARK_ABOUT: &str = "\
Put a labelled marker on the timeline of a running recording.

Writes one line, {\"marker\": LABEL, ...}, to the events channel that
`memtrail record --events PATH` reads, or that `memtrail run` created for
the command it runs (its path is in $MEMTRAIL_EVENTS, the default here).
Mark the steps of a test by hand, from a script or from a program's own
shell-outs; then compare the steps with
`memtrail diff FILE --from 'marker:before' --to 'marker:after'`.

Never waits: with no recorder reading the channel it fails at once, saying
so. The events format is in docs/events.md.

Examples:
  # from a script running under `memtrail run`
  memtrail mark 'before import'
  # into a recording that reads a channel of your choosing
  memtrail mark --events /tmp/app.events 'step 3' --pid 1234";

const DEMO_ABOUT: &str = "\
Record a real leaking program and show what memtrail sees.

Starts `python3` running a small program that leaks a little memory every
tenth of a second and records it with `memtrail run` for about 20 seconds,
with a live status line on a terminal; the program puts two markers on the
timeline (`leak starts`, `halfway`) through the events channel. Then prints
the growth of its resident memory, the regions that grew and the leak
verdict, and writes an HTML report with charts beside the recording (the
recording with `.html`; its path is the last line). The recording is kept
for `memtrail analyze`, `report`, `diff`, `export` and `dump`.

Examples:
  # about 20 seconds of a real leak, then the verdict and an HTML report
  memtrail demo
  # shorter, into a file of your choosing
  memtrail demo --duration 10s -o demo.mtr";

const SERVE_ABOUT: &str = "\
Serve live memory series and leak verdicts to Prometheus over HTTP.

Samples the target processes every --interval on one thread, folds each
sample into the live leak analyzer (the one `memtrail analyze -` uses),
judges every series at most every --judge-every, and publishes the result
as one immutable page that `GET /metrics` returns: a scrape never reads
/proc, so scraping often costs nothing. The page is OpenMetrics 1.0 when the
scraper asks for it (Prometheus does) and the Prometheus text format 0.0.4
otherwise.

Per process (labels pid, start_time, comm): memtrail_process_rss_bytes,
_anon_bytes, _file_bytes, _shmem_bytes, _pss_bytes, _swap_bytes, _fds and
_threads; per process and series: memtrail_leak_suspected (0/1),
memtrail_growth_per_hour and memtrail_time_to_limit_seconds; and the
recorder's own health (memtrail_collections_total,
memtrail_processes_tracked, memtrail_processes_dropped, ...). The metrics
and the alerting rules are in docs/fleet.md and docs/alerts/.

At most --max-processes processes are tracked, largest RSS first; a tracked
process stays tracked until it exits and the ones left out are counted in
memtrail_processes_dropped. Command lines are not exported unless
--cmdline-label asks (they can hold secrets). Listens on loopback unless
--allow-remote is given with a non-loopback --listen address; the endpoint
has no authentication. Ctrl-C or SIGTERM stops it.

Examples:
  # every process, for the Prometheus on this host
  memtrail serve --all
  # some services, every 10 s
  memtrail serve --name 'nginx|postgres' --interval 10s
  # what Prometheus would scrape
  curl -s 127.0.0.1:9464/metrics | grep leak_suspected";

/// Which processes to look at.
#[derive(Debug, Args)]
#[group(id = "target", required = true, multiple = false)]
pub struct TargetArgs {
    /// The process with this pid
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Every process whose name (comm) or command line matches REGEX
    #[arg(long, value_name = "REGEX")]
    pub name: Option<String>,
    /// Every process this user can see
    #[arg(long)]
    pub all: bool,
}

/// Options shared by every command that reads /proc.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// With --pid: also every descendant, following children that start and exit
    #[arg(long)]
    pub children: bool,
    /// Keep only argv[0] of command lines (arguments can hold secrets)
    #[arg(long)]
    pub redact_cmdline: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DetailArg {
    /// status, stat, descriptor and thread counts (cheapest)
    Summary,
    /// + smaps_rollup: PSS and the private/shared split
    Rollup,
    /// + per-region smaps (re-read when memory changed, when recording)
    Maps,
    /// + per-region smaps every sample and every descriptor's target
    Full,
}

// Here rather than in cmd/ because the clap types live in the library
// (src/lib.rs) and the orphan rule wants the impl beside one of the types.
impl From<DetailArg> for memtrail_format::Detail {
    fn from(d: DetailArg) -> memtrail_format::Detail {
        use memtrail_format::Detail;
        match d {
            DetailArg::Summary => Detail::Summary,
            DetailArg::Rollup => Detail::Rollup,
            DetailArg::Maps => Detail::Maps,
            DetailArg::Full => Detail::Full,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SnapFormat {
    /// A pmap-like table per process
    Table,
    /// One JSON document
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    /// Resident memory (largest first)
    Rss,
    /// Proportional set size (largest first)
    Pss,
    /// Anonymous memory (largest first)
    Anon,
    /// Swapped-out memory (largest first)
    Swap,
    /// Virtual size (largest first)
    Size,
    /// Start address (lowest first), as pmap prints
    Addr,
}

#[derive(Debug, Args)]
pub struct SnapArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub collect: CollectArgs,
    /// How much to read [default: maps for one process, summary otherwise]
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub detail: Option<DetailArg>,
    /// Only list regions with at least this much resident memory, e.g. 1MiB
    #[arg(long, value_name = "SIZE")]
    pub min_rss: Option<Size>,
    /// Only list anonymous regions (heap, stacks, anonymous mmaps)
    #[arg(long)]
    pub anon: bool,
    /// Order regions (and processes) by this
    #[arg(long, value_enum, default_value = "rss", value_name = "KEY")]
    pub sort: SortKey,
    /// Output format on standard output
    #[arg(long, value_enum, default_value = "table")]
    pub format: SnapFormat,
    /// Write a binary snapshot to FILE instead (`-` for standard output)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SamplingArgs {
    /// Time between samples, e.g. 100ms, 1s, 1m, or `auto`: every 50ms at
    /// first, thinning out as the targets age [default: 1s; run: auto]
    #[arg(long, value_name = "DUR")]
    pub interval: Option<Interval>,
    /// How much to read per sample
    #[arg(long, value_enum, default_value = "maps", value_name = "LEVEL")]
    pub detail: DetailArg,
    /// At detail `maps`, re-read every region at least every N samples
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub maps_every: u32,
    /// Write format version 1 (uncompressed, a frame flushed per sample) instead of version 2
    /// (zstd-compressed blocks, one per tick, about 5x smaller), for readers older than version 2
    #[arg(long)]
    pub uncompressed: bool,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub collect: CollectArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Stop after this long, e.g. 10m [default: until the targets exit or Ctrl-C]
    #[arg(long, value_name = "DUR", conflicts_with = "count")]
    pub duration: Option<Duration>,
    /// Stop after N samples
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Write the recording to FILE (`-`, the default, is standard output); with --rotate, a
    /// directory of segments
    #[arg(short, long, value_name = "FILE", default_value = "-")]
    pub output: PathBuf,
    /// Also read markers and censuses from this FIFO or file (created as a
    /// FIFO if missing; docs/events.md)
    #[arg(long, value_name = "PATH")]
    pub events: Option<PathBuf>,
    /// Write a directory of segments (-o DIR), starting a new one when the current one reaches
    /// this size (e.g. 64MiB) or age (e.g. 1h); each segment is a complete recording
    #[arg(long, value_name = "SIZE|DUR")]
    pub rotate: Option<crate::units::Limit>,
    /// With --rotate: delete the oldest segments once all of them take more than SIZE (e.g.
    /// 1GiB), or once they are older than DUR (e.g. 7d)
    #[arg(long, value_name = "SIZE|DUR", requires = "rotate")]
    pub keep: Option<crate::units::Limit>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Keep only argv[0] of command lines (arguments can hold secrets)
    #[arg(long)]
    pub redact_cmdline: bool,
    /// Write the recording to FILE [default: memtrail-<command>-<pid>.mtr]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit with status 3 if any recorded process leaked, 4 if the command
    /// could not be judged (the command's own failure status takes precedence)
    #[arg(long)]
    pub fail_on_leak: bool,
    /// Python programs count their live objects by type (gc) every --interval
    #[arg(long)]
    pub python_gc: bool,
    /// Python programs report the source lines holding the most memory
    /// (tracemalloc) every --interval; slows Python down while it runs
    #[arg(long)]
    pub python_tracemalloc: bool,
    /// Frames of each --python-tracemalloc site: the allocating line and
    /// N-1 of its callers, so a shared helper is told apart by its callers
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub python_frames: u32,
    /// Native programs report sampled allocation stacks (C, C++, Rust; a
    /// preloaded library; docs/native.md)
    #[arg(long)]
    pub native: bool,
    /// With --native, the mean bytes allocated between two samples: smaller
    /// is more precise and costs more
    #[arg(
        long,
        value_name = "BYTES",
        default_value = "512KiB",
        requires = "native"
    )]
    pub native_rate: Size,
    /// The command to run and its arguments (after `--`)
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

const ATTACH_ABOUT: &str = "\
Record a Python process that is already running, with its censuses.

Records the process from /proc like `record --pid PID` and, through an
attach request (docs/events.md), has the dormant hook inside it count its
objects by type (--python-gc, with the roots and retention chains of the
types that grow) and/or the bytes held per source line
(--python-tracemalloc) into the same recording. When the recording ends
(--duration, Ctrl-C, the process exits) the request is withdrawn and the
hook stops what it started, tracemalloc included, and is dormant again.
Then the recording is analyzed, as `run` does.

The process must carry the hook: install it once with `memtrail
python-hook install --python PATH` and restart the process once. Only the
process's owner or root can attach.

Examples:
  # ten minutes of a running daemon, censuses and /proc on one timeline
  memtrail attach 4242 --python-gc --duration 10m -o daemon.mtr
  # where the bytes are allocated, for one minute
  memtrail attach 4242 --python-tracemalloc --duration 1m -o sites.mtr";

const PYTHON_HOOK_ABOUT: &str = "\
Install, remove or check the dormant hook that `memtrail attach` talks to.

`install` writes the memtrail_hook package and a one-line `memtrail-hook.pth`
into the site-packages of an interpreter (a virtual environment's, the
system's, or with --user the user's), so every Python process started from
then on carries a dormant listener: one thread that looks for an attach
request addressed to its pid once a second and otherwise does nothing
(docs/performance.md measures it). Processes already running must be
restarted once to carry it.

Examples:
  # into a virtual environment
  memtrail python-hook install --python venv/bin/python
  # is it there, and up to date?
  memtrail python-hook status --python venv/bin/python
  # take it out again
  memtrail python-hook uninstall --python venv/bin/python";

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The Python process to attach to
    #[arg(value_name = "PID")]
    pub pid: u32,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Stop after this long, e.g. 10m [default: until the process exits or Ctrl-C]
    #[arg(long, value_name = "DUR")]
    pub duration: Option<Duration>,
    /// Write the recording to FILE [default: memtrail-attach-<pid>.mtr]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Keep only argv[0] of command lines (arguments can hold secrets)
    #[arg(long)]
    pub redact_cmdline: bool,
    /// Count live objects by type (gc) every --interval, with the roots and
    /// retention chains of the growing types
    #[arg(long)]
    pub python_gc: bool,
    /// Report the source lines holding the most memory (tracemalloc) every
    /// --interval; traces only allocations made from now on, and slows
    /// Python down while attached
    #[arg(long)]
    pub python_tracemalloc: bool,
    /// Frames of each --python-tracemalloc site
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub python_frames: u32,
    /// Seconds to wait for the hook to answer the request
    #[arg(long, value_name = "DUR", default_value = "5s")]
    pub answer_within: Duration,
}

#[derive(Debug, Args)]
pub struct PythonHookArgs {
    #[command(subcommand)]
    pub action: PythonHookAction,
}

#[derive(Debug, Subcommand)]
pub enum PythonHookAction {
    /// Put the dormant hook into an interpreter's site-packages
    #[command(
        after_help = "Examples:\n  memtrail python-hook install --python venv/bin/python\n  memtrail python-hook install --user"
    )]
    Install(PythonHookTarget),
    /// Take the hook out of an interpreter's site-packages
    #[command(after_help = "Examples:\n  memtrail python-hook uninstall --python venv/bin/python")]
    Uninstall(PythonHookTarget),
    /// Say whether an interpreter carries the hook, and where
    #[command(after_help = "Examples:\n  memtrail python-hook status --python venv/bin/python")]
    Status(PythonHookTarget),
}

#[derive(Debug, Args)]
pub struct PythonHookTarget {
    /// The interpreter whose environment gets the hook
    #[arg(long, value_name = "PATH", default_value = "python3")]
    pub python: PathBuf,
    /// The user's site-packages (site.getusersitepackages()) instead
    #[arg(long)]
    pub user: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// For people, fitting 80 columns
    Text,
    /// For programs (documented in docs/leak-detection.md and docs/user-guide.md)
    Json,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The recording to read: a file, a directory of segments (`record --rotate`), or `-` for
    /// standard input (a live stream)
    #[arg(value_name = "FILE")]
    pub input: PathBuf,
    /// More recordings to read after FILE, as one recording (e.g. segments of `record --rotate`)
    #[arg(value_name = "MORE")]
    pub more: Vec<PathBuf>,
    /// Output format; live JSON prints one document per line per update
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
    /// Keep reading FILE as it grows (like `tail -f`) until its end frame or Ctrl-C
    #[arg(long)]
    pub follow: bool,
    /// While reading live, print updated verdicts at most this often
    #[arg(long, default_value = "5s", value_name = "DUR")]
    pub update: Duration,
    /// Detail every process, not only the leaking ones
    #[arg(long)]
    pub all: bool,
    /// Exit with status 3 if any process leaks, 4 if none could be judged (for CI)
    #[arg(long)]
    pub fail_on_leak: bool,
}

/// A moment in a recording, for `diff --from/--to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moment {
    Start,
    End,
    /// Microseconds after the recording started.
    Offset(u64),
    /// Microseconds since the Unix epoch.
    At(u64),
    /// The Nth sampling instant, from 0.
    Tick(u64),
    /// The first marker with this label.
    Marker(String),
}

impl std::str::FromStr for Moment {
    type Err = String;
    fn from_str(s: &str) -> Result<Moment, String> {
        let t = s.trim();
        match t {
            "start" => return Ok(Moment::Start),
            "end" => return Ok(Moment::End),
            _ => {}
        }
        if let Some(label) = s.strip_prefix("marker:") {
            if label.is_empty() {
                return Err("`marker:` needs a label, e.g. marker:before step".into());
            }
            return Ok(Moment::Marker(label.to_string()));
        }
        if let Some(n) = t.strip_prefix('#') {
            return n
                .parse()
                .map(Moment::Tick)
                .map_err(|_| format!("invalid tick number `{s}`: expected e.g. #12"));
        }
        if let Ok(d) = humantime::parse_duration(t) {
            return Ok(Moment::Offset(d.as_micros() as u64));
        }
        if let Ok(at) = humantime::parse_rfc3339_weak(t) {
            let us = at
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| format!("time `{s}` is before 1970"))?;
            return Ok(Moment::At(us.as_micros() as u64));
        }
        Err(format!(
            "invalid moment `{s}`: expected start, end, an offset (90s, 5m), a tick (#12), \
             a time (2026-11-25T13:05:00Z) or a marker (marker:LABEL)"
        ))
    }
}

impl std::fmt::Display for Moment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Moment::Start => write!(f, "start"),
            Moment::End => write!(f, "end"),
            Moment::Offset(us) => write!(
                f,
                "+{}",
                humantime::format_duration(std::time::Duration::from_micros(*us))
            ),
            Moment::At(us) => write!(
                f,
                "{}",
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_micros(*us)
                )
            ),
            Moment::Tick(n) => write!(f, "tick #{n}"),
            Moment::Marker(label) => write!(f, "marker {label:?}"),
        }
    }
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// A snapshot or recording (or a directory of segments): the earlier one (or the only one,
    /// with --from/--to)
    #[arg(value_name = "A")]
    pub before: PathBuf,
    /// A later snapshot or recording (or directory of segments) to compare A with
    #[arg(value_name = "B")]
    pub after: Option<PathBuf>,
    /// With one recording: the earlier moment [default: start]
    #[arg(long, value_name = "T")]
    pub from: Option<Moment>,
    /// With one recording: the later moment [default: end]
    #[arg(long, value_name = "T")]
    pub to: Option<Moment>,
    /// Only list regions whose size changed by at least this much, e.g. 1MiB
    #[arg(long, value_name = "SIZE")]
    pub min: Option<Size>,
    /// Only list anonymous regions (heap, stacks, anonymous mmaps)
    #[arg(long)]
    pub anon: bool,
    /// Only this process
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// At most N regions per process
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub top: usize,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    /// A terminal summary with sparklines, fitting 80 columns
    Text,
    /// The same content as Markdown tables
    Markdown,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The recording to read: a file, a directory of segments (`record --rotate`), or `-` for
    /// standard input
    #[arg(value_name = "FILE")]
    pub input: PathBuf,
    /// More recordings to read after FILE, as one recording (e.g. segments of `record --rotate`)
    #[arg(value_name = "MORE")]
    pub more: Vec<PathBuf>,
    /// Also write a self-contained HTML page with charts to OUT
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,
    /// The summary printed on standard output
    #[arg(long, value_enum, default_value = "text")]
    pub format: SummaryFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Comma-separated values with a header line
    Csv,
    /// One JSON object per line
    Ndjson,
    /// OpenMetrics text, for `promtool tsdb create-blocks-from openmetrics`
    Openmetrics,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The recording to read: a file, a directory of segments (`record --rotate`), or `-` for
    /// standard input
    #[arg(value_name = "FILE")]
    pub input: PathBuf,
    /// More recordings to read after FILE, as one recording (e.g. segments of `record --rotate`)
    #[arg(value_name = "MORE")]
    pub more: Vec<PathBuf>,
    /// Output format
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Write to FILE instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// The recording to read: a file, a directory of segments (`record --rotate`), or `-` for
    /// standard input
    #[arg(value_name = "FILE")]
    pub input: PathBuf,
    /// More recordings to read after FILE, as one recording (e.g. segments of `record --rotate`)
    #[arg(value_name = "MORE")]
    pub more: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub collect: CollectArgs,
    /// Address to listen on, IP:PORT (port 0: any free port, printed at start)
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR", value_parser = listen_addr)]
    pub listen: std::net::SocketAddr,
    /// Allow --listen on an address other hosts can reach (no authentication)
    #[arg(long)]
    pub allow_remote: bool,
    /// Time between reads of /proc, e.g. 5s
    #[arg(long, default_value = "5s", value_name = "DUR")]
    pub interval: Duration,
    /// Judge every series at most this often (judging costs CPU with many processes)
    #[arg(long, default_value = "30s", value_name = "DUR")]
    pub judge_every: Duration,
    /// How much to read per sample (rollup adds PSS; maps and full cost more and add nothing here)
    #[arg(long, value_enum, default_value = "rollup", value_name = "LEVEL")]
    pub detail: DetailArg,
    /// Track at most N processes, largest RSS first (bounds the series Prometheus stores)
    #[arg(long, default_value_t = 200, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_processes: u32,
    /// Add a `cmdline` label of at most N characters (command lines can hold secrets)
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "80")]
    pub cmdline_label: Option<usize>,
}

/// `IP:PORT`, or `localhost:PORT` for the IPv4 loopback.
fn listen_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    let t = s.trim();
    if let Some(port) = t.strip_prefix("localhost:") {
        if let Ok(port) = port.parse::<u16>() {
            return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
        }
    }
    t.parse().map_err(|_| {
        format!(
            "`{s}` is not IP:PORT: use e.g. 127.0.0.1:9464 (this host only), \
             127.0.0.1:0 (any free port), [::1]:9464 (IPv6), or 0.0.0.0:9464 with \
             --allow-remote (every interface)"
        )
    })
}

#[derive(Debug, Args)]
pub struct MarkArgs {
    /// What happens now, e.g. "before step 3" (at most 1024 bytes)
    #[arg(value_name = "LABEL")]
    pub label: String,
    /// The events channel [default: $MEMTRAIL_EVENTS]
    #[arg(long, value_name = "PATH")]
    pub events: Option<PathBuf>,
    /// The process the marker concerns
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long to record the leaking program
    #[arg(long, default_value = "20s", value_name = "DUR")]
    pub duration: Duration,
    /// Where to keep the recording [default: memtrail-demo.mtr in a temporary directory]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}
