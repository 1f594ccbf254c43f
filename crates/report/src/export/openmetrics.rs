//! The OpenMetrics text format, for backfilling Prometheus:
//! `promtool tsdb create-blocks-from openmetrics export.om DIR`.
//!
//! One gauge family per series, each sample timestamped in seconds and
//! labelled with the process's identity (`pid`, `start_time`) and `comm`.
//! The families, the label set and the escaping are those of `memtrail
//! serve` ([`crate::exposition`]): a backfilled history and live scrapes
//! are the same series. OpenMetrics wants the points of a family together
//! and the points of one label set together, while a recording
//! interleaves them: the rows are held (compactly, about 80 bytes a
//! sample) until the end and then written family by family, process by
//! process. CSV and NDJSON stream instead.

use std::collections::HashMap;
use std::io::{self, Write};

use memtrail_format::ProcessId;

use super::{Export, Row};
use crate::exposition::{process_identity, ProcessFamily, PROCESS_FAMILIES};

/// The `# TYPE`, `# UNIT` and `# HELP` lines of a family.
fn write_descriptor(out: &mut dyn Write, family: &ProcessFamily) -> io::Result<()> {
    writeln!(out, "# TYPE {} gauge", family.name)?;
    if let Some(unit) = family.unit() {
        writeln!(out, "# UNIT {} {unit}", family.name)?;
    }
    writeln!(out, "# HELP {} {}", family.name, family.export_help)
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
        // Family `series` shows the series at that index of `Row::values`.
        for (series, family) in PROCESS_FAMILIES.iter().enumerate() {
            write_descriptor(out, family)?;
            for p in &self.procs {
                let labels = process_identity(p.id, &p.comm);
                for &(t, values) in &p.points {
                    let v = values[series];
                    if v == ABSENT {
                        continue;
                    }
                    writeln!(
                        out,
                        "{}{{{labels}}} {} {}.{:03}",
                        family.name,
                        v.saturating_mul(family.scale()),
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
    fn labels_are_escaped() {
        let row = Row {
            time_us: 1_000,
            pid: 1,
            start_time: 2,
            ppid: 0,
            comm: "a\"b\\c\nd".into(),
            command: String::new(),
            values: [Some(1), None, None, None, None, None, None, None],
        };
        let text = super::super::to_string(&mut OpenMetrics::default(), &[row]);
        assert!(
            text.contains(
                r#"memtrail_process_rss_bytes{pid="1",start_time="2",comm="a\"b\\c\nd"} 1024 0.001"#
            ),
            "{text}"
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
