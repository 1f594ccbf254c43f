//! The OpenMetrics text format, for backfilling Prometheus:
//! `promtool tsdb create-blocks-from openmetrics export.om DIR`.
//!
//! One gauge family per series ([`FAMILIES`]), each sample timestamped in
//! seconds and labelled with the process's identity (`pid`,
//! `start_time`) and `comm`. OpenMetrics wants the points of a family
//! together and the points of one label set together, while a recording
//! interleaves them: the rows are held (compactly, about 80 bytes a
//! sample) until the end and then written family by family, process by
//! process. CSV and NDJSON stream instead.
//!
//! [`FAMILIES`], [`write_descriptor`], [`labels`] and [`escape_label_value`]
//! are public for any other endpoint serving the same metrics.

use std::collections::HashMap;
use std::io::{self, Write};

use memtrail_format::ProcessId;

use super::{Export, Row};

/// One metric family: a series of every process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// The metric name, with its unit suffix.
    pub name: &'static str,
    pub help: &'static str,
    /// `bytes`, or empty for a count.
    pub unit: &'static str,
    /// Index of the series in [`memtrail_diff::SERIES_NAMES`] (and in
    /// [`Row::values`]).
    pub series: usize,
    /// The series' unit to the metric's: 1024 for KiB to bytes.
    pub scale: u64,
}

/// The families, in the order they are written.
pub const FAMILIES: [Family; 8] = [
    Family {
        name: "memtrail_process_rss_bytes",
        help: "Resident memory (VmRSS): anonymous + file-backed + shared",
        unit: "bytes",
        series: 0,
        scale: 1024,
    },
    Family {
        name: "memtrail_process_anon_bytes",
        help: "Resident anonymous memory (RssAnon): heap, stacks, anonymous mappings",
        unit: "bytes",
        series: 1,
        scale: 1024,
    },
    Family {
        name: "memtrail_process_file_bytes",
        help: "Resident file-backed memory (RssFile): mapped files, reclaimable",
        unit: "bytes",
        series: 2,
        scale: 1024,
    },
    Family {
        name: "memtrail_process_shmem_bytes",
        help: "Resident shared memory (RssShmem): shm, tmpfs and shared anonymous mappings",
        unit: "bytes",
        series: 3,
        scale: 1024,
    },
    Family {
        name: "memtrail_process_pss_bytes",
        help: "Proportional set size (smaps_rollup Pss)",
        unit: "bytes",
        series: 4,
        scale: 1024,
    },
    Family {
        name: "memtrail_process_swap_bytes",
        help: "Swapped-out memory (VmSwap)",
        unit: "bytes",
        series: 5,
        scale: 1024,
    },
    Family {
        name: "memtrail_process_fds",
        help: "Open file descriptors",
        unit: "",
        series: 6,
        scale: 1,
    },
    Family {
        name: "memtrail_process_threads",
        help: "Threads",
        unit: "",
        series: 7,
        scale: 1,
    },
];

/// A label value escaped as OpenMetrics requires: `\`, `"` and line feeds.
pub fn escape_label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The label set of a process: `{pid="..",start_time="..",comm=".."}`.
pub fn labels(id: ProcessId, comm: &str) -> String {
    format!(
        "{{pid=\"{}\",start_time=\"{}\",comm=\"{}\"}}",
        id.pid,
        id.start_time,
        escape_label_value(comm)
    )
}

/// The `# TYPE`, `# UNIT` and `# HELP` lines of a family.
pub fn write_descriptor(out: &mut dyn Write, family: &Family) -> io::Result<()> {
    writeln!(out, "# TYPE {} gauge", family.name)?;
    if !family.unit.is_empty() {
        writeln!(out, "# UNIT {} {}", family.name, family.unit)?;
    }
    writeln!(out, "# HELP {} {}", family.name, family.help)
}

/// A value not recorded in a held sample.
const ABSENT: u64 = u64::MAX;

#[derive(Debug)]
struct Held {
    id: ProcessId,
    comm: String,
    /// Time (µs) and values, [`ABSENT`] where unknown.
    points: Vec<(u64, [u64; 8])>,
}

/// The OpenMetrics exporter (see the module documentation).
#[derive(Debug, Default)]
pub struct OpenMetrics {
    /// Processes in order of appearance; a process that exec'd another
    /// program keeps its first `comm`, so its series stay one.
    procs: Vec<Held>,
    index: HashMap<ProcessId, usize>,
}

impl Export for OpenMetrics {
    fn begin(&mut self, _out: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }

    fn row(&mut self, r: &Row, _out: &mut dyn Write) -> io::Result<()> {
        let id = ProcessId {
            pid: r.pid,
            start_time: r.start_time,
        };
        let i = *self.index.entry(id).or_insert_with(|| {
            self.procs.push(Held {
                id,
                comm: r.comm.clone(),
                points: Vec::new(),
            });
            self.procs.len() - 1
        });
        let held = &mut self.procs[i];
        // Prometheus keeps one value per series and millisecond, in order.
        if held
            .points
            .last()
            .is_some_and(|&(t, _)| t / 1000 >= r.time_us / 1000)
        {
            return Ok(());
        }
        held.points
            .push((r.time_us, r.values.map(|v| v.unwrap_or(ABSENT))));
        Ok(())
    }

    fn end(&mut self, out: &mut dyn Write) -> io::Result<()> {
        for family in &FAMILIES {
            write_descriptor(out, family)?;
            for p in &self.procs {
                let labels = labels(p.id, &p.comm);
                for &(t, values) in &p.points {
                    let v = values[family.series];
                    if v == ABSENT {
                        continue;
                    }
                    writeln!(
                        out,
                        "{}{labels} {} {}.{:03}",
                        family.name,
                        v.saturating_mul(family.scale),
                        t / 1_000_000,
                        t % 1_000_000 / 1000
                    )?;
                }
            }
        }
        writeln!(out, "# EOF")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label_value("x\ny"), "x\\ny");
        assert_eq!(
            labels(
                ProcessId {
                    pid: 1,
                    start_time: 2
                },
                "<\"q\">"
            ),
            r#"{pid="1",start_time="2",comm="<\"q\">"}"#
        );
    }

    #[test]
    fn families_are_contiguous_and_the_text_ends_with_eof() {
        let row = |pid, t, rss| Row {
            time_us: t,
            pid,
            start_time: 9,
            ppid: 1,
            comm: "w".into(),
            command: "w".into(),
            values: [Some(rss), None, None, None, None, None, Some(3), None],
        };
        let text = super::super::to_string(
            &mut OpenMetrics::default(),
            &[
                row(1, 1_000_000, 4),
                row(2, 1_000_000, 8),
                row(1, 2_500_000, 5),
            ],
        );
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                r#"memtrail_process_rss_bytes{pid="1",start_time="9",comm="w"} 4096 1.000"#,
                r#"memtrail_process_rss_bytes{pid="1",start_time="9",comm="w"} 5120 2.500"#,
                r#"memtrail_process_rss_bytes{pid="2",start_time="9",comm="w"} 8192 1.000"#,
                r#"memtrail_process_fds{pid="1",start_time="9",comm="w"} 3 1.000"#,
                r#"memtrail_process_fds{pid="1",start_time="9",comm="w"} 3 2.500"#,
                r#"memtrail_process_fds{pid="2",start_time="9",comm="w"} 3 1.000"#,
            ]
        );
        assert!(text.ends_with("# EOF\n"));
        assert!(text.starts_with("# TYPE memtrail_process_rss_bytes gauge\n"));
    }
}
