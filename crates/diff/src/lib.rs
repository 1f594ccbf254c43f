//! memtrail-diff: compare snapshots by region identity and judge recordings
//! over time.
//!
//! - [`regions`] matches the memory regions of two samples of one process
//!   and returns what grew, shrank, appeared and vanished, largest change
//!   first. A region is the same region when its start address and backing
//!   (device, inode, path) agree; regions left unmatched are then paired by
//!   label (`[heap]`, `[anon]`, a path) in address order, so a region that
//!   moved still matches.
//! - [`compare`] sets one process at two moments side by side: totals,
//!   regions, descriptors by kind and the targets opened in between.
//! - [`Analyzer`] folds a recording in record by record, in bounded memory
//!   per process, and [`Analyzer::analysis`] gives each process a
//!   [`Verdict`] with the [`Finding`]s behind it: per series (RSS, anon,
//!   file, shmem, PSS, swap, descriptors, threads) a pattern, a growth rate,
//!   a confidence and the regions or descriptors responsible. The method is
//!   in `docs/leak-detection.md`.
//!
//! This crate does no I/O and cannot fail on data: any samples can be
//! compared and any recording judged.
//!
//! ```
//! use memtrail_format::{Detail, Mapping, ProcessId, ProcessInfo, ProcessSample, Record, Status};
//! use memtrail_diff::{regions, Analyzer, Change, Verdict};
//!
//! let heap = |rss| Mapping { start: 0x1000, end: 0x9000, path: "[heap]".into(), rss, anonymous: rss, ..Default::default() };
//! let changes = regions(&[heap(100)], &[heap(900)]);
//! assert_eq!(changes[0].change, Change::Grown);
//! assert_eq!(changes[0].rss_delta, 800);
//!
//! // A process whose anonymous memory grows by 1 MiB a second for a minute.
//! let mut analyzer = Analyzer::new();
//! for i in 0..60u64 {
//!     let kib = 10_000 + 1024 * i;
//!     analyzer.add(Record::Process(Box::new(ProcessSample {
//!         time_us: i * 1_000_000,
//!         id: ProcessId { pid: 42, start_time: 1 },
//!         info: std::sync::Arc::new(ProcessInfo { comm: "daemon".into(), ..Default::default() }),
//!         detail: Detail::Summary,
//!         status: Status { vm_rss: Some(kib), rss_anon: Some(kib), ..Default::default() },
//!         cpu: None, rollup: None, fds: None, mappings: None, mappings_fresh: false,
//!     })));
//! }
//! let analysis = analyzer.analysis();
//! assert_eq!(analysis.processes[0].verdict, Verdict::Leak);
//! let anon = analysis.processes[0].finding("anon").unwrap();
//! assert_eq!(anon.growth_per_hour, 1024.0 * 3600.0);
//! // The fitted line, for drawing over the series: 59 s at 1 MiB/s.
//! let line = anon.trend_line.unwrap();
//! assert_eq!((line.from_s, line.to_s), (0.0, 59.0));
//! assert_eq!(line.to - line.from, 1024.0 * 59.0);
//! ```
#![forbid(unsafe_code)]

mod analyze;
mod census;
mod compare;
mod judge;
mod regions;
pub mod roots;
pub mod stats;
pub mod trail;

pub use analyze::starts_program;
pub use analyze::{
    series_values, Analysis, Analyzer, FdKindGrowth, Finding, Kind, ProcessVerdict, Projection,
    RegionGrowth, TrendLine, SERIES_NAMES,
};
pub use census::{attach_retention, compare_censuses, counts_bytes, CensusChange, CensusDiff};
pub use compare::{
    command_of, compare, compare_fds, target_group, FdChanges, Figure, KindChange, Presence,
    ProcessDiff, TargetCount,
};
pub use judge::{
    judge, Judgement, Materiality, Pattern, Verdict, FINAL_SHARE, MAX_SEGMENTS, MIN_POINTS,
    PERSISTENCE, STEP_SHARE, Z_FLOOR, Z_PERSIST, Z_SERIES,
};
pub use regions::{regions, Change, RegionChange};
pub use roots::{Holding, Role};
