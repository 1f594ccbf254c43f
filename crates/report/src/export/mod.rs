//! `memtrail export`: one row per process sample, for spreadsheets, jq and
//! Prometheus. One module per format behind [`Export`]:
//!
//! - [`csv`]: RFC 4180 CSV with a header line;
//! - [`ndjson`]: one JSON object per line;
//! - [`openmetrics`]: the OpenMetrics text format, for
//!   `promtool tsdb create-blocks-from openmetrics` (backfilling Prometheus).
//!
//! Every format has the same columns ([`COLUMNS`]); memory is in KiB as in
//! /proc, except in OpenMetrics, whose convention is bytes.

use std::io::{self, Write};

use memtrail_diff::{command_of, series_values};
use memtrail_format::ProcessSample;

pub mod csv;
pub mod ndjson;
pub mod openmetrics;

/// The columns of a row, in order: when (µs since the Unix epoch), the
/// process's identity and names, then every series (`None` where the
/// sample does not have it).
pub const COLUMNS: [&str; 14] = [
    "time_us",
    "pid",
    "start_time",
    "ppid",
    "comm",
    "command",
    "rss_kib",
    "anon_kib",
    "file_kib",
    "shmem_kib",
    "pss_kib",
    "swap_kib",
    "fds",
    "threads",
];

/// One process sample as a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub time_us: u64,
    pub pid: u32,
    /// Clock ticks after boot: with the pid, the process's identity.
    pub start_time: u64,
    pub ppid: u32,
    pub comm: String,
    /// The command line joined by spaces (`comm` when it has none).
    pub command: String,
    /// rss, anon, file, shmem, pss, swap (KiB), fds, threads.
    pub values: [Option<u64>; 8],
}

impl Row {
    pub fn of(s: &ProcessSample) -> Row {
        Row {
            time_us: s.time_us,
            pid: s.id.pid,
            start_time: s.id.start_time,
            ppid: s.info.ppid,
            comm: s.info.comm.clone(),
            command: command_of(s),
            values: {
                let mut values = [None; 8];
                for (v, (_, _, x)) in values.iter_mut().zip(series_values(s)) {
                    *v = x;
                }
                values
            },
        }
    }
}

/// An export format: a header, the rows in recording order, an ending.
pub trait Export {
    /// The header; none by default.
    fn begin(&mut self, _out: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
    fn row(&mut self, row: &Row, out: &mut dyn Write) -> io::Result<()>;
    /// The ending; none by default.
    fn end(&mut self, _out: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}

/// Every row through `format` into a string (for tests and small data).
pub fn to_string(format: &mut dyn Export, rows: &[Row]) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = format.begin(&mut out);
    for r in rows {
        let _ = format.row(r, &mut out);
    }
    let _ = format.end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}
