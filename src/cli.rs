//! The command line: clap definitions only. `main.rs` validates these raw
//! flags once and hands the result to the commands in `cmd/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::units::{Duration, Size};

const ABOUT: &str = "Find memory leaks in long-running Linux processes from the outside";

const LONG_ABOUT: &str = "\
Find memory leaks in long-running Linux processes from the outside.

memtrail reads /proc (status, smaps_rollup, smaps, file descriptors,
threads, CPU) for one process, a process tree or every process, and stores
what it sees in a stable, crash-safe binary format that streams through
pipes. Nothing needs to change in the target: no restart, no preload.";

const AFTER_HELP: &str = "\
Examples:
  memtrail demo                                  watch memtrail catch a real leak
  memtrail snap --pid 1234 --min-rss 1MiB --anon the big anonymous regions, like pmap
  memtrail record --pid 1234 --children -o app.mtr
  memtrail run --interval 100ms -o job.mtr -- python3 job.py
  memtrail dump app.mtr | jq 'select(.type==\"process\") | .status.vm_rss'

Sizes take units: 4096, 512KiB, 1MiB, 2GiB (K, M, G are powers of 1024, as
in /proc). Durations: 250ms, 1s, 5m, 1h30m.

Exit status: 0 success, 2 error (a message says what and why); `run` exits
with the command's own status.";

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
    /// Print every frame of a recording as one JSON object per line
    #[command(long_about = DUMP_ABOUT)]
    Dump(DumpArgs),
    /// Record a real leaking Python program for a few seconds and show what memtrail sees
    #[command(long_about = DEMO_ABOUT)]
    Demo(DemoArgs),
}

const SNAP_ABOUT: &str = "\
Take one snapshot of the target processes.

By default prints a table of memory regions (like `pmap -X`), largest
resident first; `--min-rss 1MiB --anon` keeps the big anonymous regions,
the by-hand `pmap PID | awk '$2 > 1000' | sort -n | grep anon` in one
command. `--format json` prints the same as JSON; `-o FILE` writes a binary
snapshot that `memtrail dump` reads.";

const RECORD_ABOUT: &str = "\
Record samples of the target processes at a fixed interval.

The recording is written frame by frame and flushed after every sample, so
it can be read while it grows, piped into another command, and survives the
recorder being killed (at most the frame being written is lost). Ctrl-C
(SIGINT) or SIGTERM finishes the file cleanly. Without -o the recording goes
to standard output, which must not be a terminal.

At the default detail (`maps`) the per-region smaps file, the most expensive
read, is re-read only when cheaper reads show that memory changed, and at
least every 10th sample.";

const RUN_ABOUT: &str = "\
Start a command and record it and every process it starts until it exits.

The command inherits memtrail's standard input, output and error; the
recording goes to the file named by -o. memtrail exits with the command's
own exit status (128 + N if a signal N ended it), or 2 if recording failed.
Ctrl-C reaches the command as usual; SIGTERM sent to memtrail is passed on
to the command.";

const DUMP_ABOUT: &str = "\
Print every frame of a recording as newline-delimited JSON, for jq.

The first line is the header (`\"type\": \"header\"`); each following line is
one record (`process`, `system`, `exit`, `marker`, `notice`, `end`) with
the byte `offset` of its frame and its `encoding` (keyframe, delta, plain).
Delta frames are printed as the full sample they decode to. A torn tail (a
recorder killed mid-write) or a damaged frame is reported on standard
error and skipped; everything else is still printed. Reads a live stream
from standard input with `-`.";

const DEMO_ABOUT: &str = "\
Record a real leaking program and show what memtrail sees.

Starts `python3` running a small program that leaks a little memory every
tenth of a second, records it with `memtrail run` for a few seconds, then
prints the growth of its resident memory and the regions that grew. The
recording is kept in the file printed at the end for `memtrail dump`.";

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
    /// Time between samples, e.g. 100ms, 1s, 1m
    #[arg(long, default_value = "1s", value_name = "DUR")]
    pub interval: Duration,
    /// How much to read per sample
    #[arg(long, value_enum, default_value = "maps", value_name = "LEVEL")]
    pub detail: DetailArg,
    /// At detail `maps`, re-read every region at least every N samples
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub maps_every: u32,
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
    /// Write the recording to FILE (`-`, the default, is standard output)
    #[arg(short, long, value_name = "FILE", default_value = "-")]
    pub output: PathBuf,
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
    /// The command to run and its arguments (after `--`)
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// The recording to read, or `-` for standard input
    #[arg(value_name = "FILE")]
    pub input: PathBuf,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long to record the leaking program
    #[arg(long, default_value = "6s", value_name = "DUR")]
    pub duration: Duration,
    /// Where to keep the recording [default: memtrail-demo.mtr in a temporary directory]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}
