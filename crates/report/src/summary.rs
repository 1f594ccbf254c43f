//! A recording summarised per process: resident memory at the start and
//! end, its peak, growth per hour and the regions that grew the most.
//!
//! This describes what was observed; it does not judge whether the
//! growth is a leak (a warm-up, a load step and garbage-collection cycles
//! grow too).

use std::collections::BTreeMap;
use std::fmt::Write;

use memtrail_diff::trail::Trail;
use memtrail_diff::{regions, Change, RegionChange};
use memtrail_format::{ProcessId, ProcessSample};

use crate::{human_kib, human_kib_signed, printable, shorten};

/// What was seen of one process.
#[derive(Debug, Clone)]
pub struct ProcessSummary {
    pub id: ProcessId,
    pub ppid: u32,
    pub command: String,
    pub samples: u64,
    pub first_us: u64,
    pub last_us: u64,
    pub rss_first: Option<u64>,
    pub rss_last: Option<u64>,
    pub rss_peak: Option<u64>,
    /// RSS samples in order, for sparklines.
    pub rss_series: Vec<u64>,
    /// Regions that grew or appeared between the first and last samples
    /// with regions, largest first.
    pub grown_regions: Vec<RegionChange>,
}

impl ProcessSummary {
    /// RSS growth per hour in KiB, if at least two samples span time.
    pub fn rss_growth_per_hour(&self) -> Option<f64> {
        let span = self.last_us.checked_sub(self.first_us)? as f64 / 3.6e9;
        if span <= 0.0 {
            return None;
        }
        Some((self.rss_last? as f64 - self.rss_first? as f64) / span)
    }
}

/// Folds samples (in recording order) into one summary per process.
#[derive(Debug, Default)]
pub struct Summarizer {
    procs: BTreeMap<ProcessId, Acc>,
}

#[derive(Debug)]
struct Acc {
    summary: ProcessSummary,
    /// The program's, as its first sample showed them.
    comm: String,
    argv0: Option<String>,
    first_maps: Option<std::sync::Arc<Vec<memtrail_format::Mapping>>>,
    last_maps: Option<std::sync::Arc<Vec<memtrail_format::Mapping>>>,
}

impl Summarizer {
    pub fn new() -> Summarizer {
        Summarizer::default()
    }

    pub fn add(&mut self, s: &ProcessSample) {
        let acc = self.procs.entry(s.id).or_insert_with(|| Acc {
            summary: ProcessSummary {
                id: s.id,
                ppid: s.info.ppid,
                command: if s.info.cmdline.is_empty() {
                    s.info.comm.clone()
                } else {
                    s.info.cmdline.join(" ")
                },
                samples: 0,
                first_us: s.time_us,
                last_us: s.time_us,
                rss_first: s.status.vm_rss,
                rss_last: None,
                rss_peak: None,
                rss_series: Vec::new(),
                grown_regions: Vec::new(),
            },
            comm: s.info.comm.clone(),
            argv0: s.info.cmdline.first().cloned(),
            first_maps: None,
            last_maps: None,
        });
        if memtrail_diff::starts_program(&acc.comm, acc.argv0.as_deref(), s) {
            // Growth is measured from the program's start, where the
            // analysis measures it (an exec, or the first sample naming
            // the program).
            acc.comm = s.info.comm.clone();
            acc.argv0 = s.info.cmdline.first().cloned();
            acc.summary.rss_first = None;
            acc.summary.rss_peak = None;
            acc.summary.rss_series.clear();
            acc.summary.first_us = s.time_us;
            acc.first_maps = None;
            acc.last_maps = None;
        }
        let sum = &mut acc.summary;
        if !s.info.cmdline.is_empty() {
            sum.command = s.info.cmdline.join(" ");
        }
        sum.samples += 1;
        sum.last_us = s.time_us;
        if let Some(rss) = s.status.vm_rss {
            sum.rss_first.get_or_insert(rss);
            sum.rss_last = Some(rss);
            sum.rss_peak = Some(sum.rss_peak.map_or(rss, |p| p.max(rss)));
            sum.rss_series.push(rss);
        }
        // An exiting process (a zombie) shows no regions at all: keep the
        // last real view of its memory.
        if let Some(maps) = s.mappings.as_ref().filter(|m| !m.is_empty()) {
            if s.mappings_fresh || acc.first_maps.is_none() {
                if acc.first_maps.is_none() {
                    acc.first_maps = Some(maps.clone());
                } else {
                    acc.last_maps = Some(maps.clone());
                }
            }
        }
    }

    /// Summaries ordered by RSS growth, largest first.
    pub fn finish(self) -> Vec<ProcessSummary> {
        let mut out: Vec<ProcessSummary> = self
            .procs
            .into_values()
            .map(|mut acc| {
                if let (Some(a), Some(b)) = (&acc.first_maps, &acc.last_maps) {
                    acc.summary.grown_regions = regions(a, b)
                        .into_iter()
                        .filter(|c| {
                            matches!(c.change, Change::Grown | Change::New) && c.rss_delta > 0
                        })
                        .collect();
                }
                acc.summary
            })
            .collect();
        out.sort_by(|a, b| {
            let g = |s: &ProcessSummary| {
                s.rss_last.unwrap_or(0) as i64 - s.rss_first.unwrap_or(0) as i64
            };
            g(b).cmp(&g(a)).then(a.id.cmp(&b.id))
        });
        out
    }
}

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A one-line chart of `values`, at most `width` characters: each
/// character shows the maximum of the values it covers.
pub fn sparkline(values: &[u64], width: usize) -> String {
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let buckets = values.len().min(width);
    let per = values.len() as f64 / buckets as f64;
    let maxes: Vec<u64> = (0..buckets)
        .map(|i| {
            let lo = (i as f64 * per) as usize;
            let hi = (((i + 1) as f64 * per) as usize).clamp(lo + 1, values.len());
            values[lo..hi].iter().copied().max().unwrap_or(0)
        })
        .collect();
    let min = *maxes.iter().min().unwrap_or(&0);
    let max = *maxes.iter().max().unwrap_or(&0);
    maxes
        .iter()
        .map(|&v| {
            if max == min {
                SPARKS[0]
            } else {
                SPARKS[((v - min) * 7 / (max - min)) as usize]
            }
        })
        .collect()
}

/// A [`sparkline`] of a downsampled series: each bucket's maximum, so a
/// peak shows however long the recording.
pub(crate) fn trail_sparkline(trail: &Trail, width: usize) -> String {
    let values: Vec<u64> = trail
        .buckets()
        .iter()
        .map(|b| b.max.max(0.0) as u64)
        .collect();
    sparkline(&values, width)
}

/// The summaries as text, fitting 80 columns.
pub fn text(summaries: &[ProcessSummary], top_regions: usize) -> String {
    let mut out = String::new();
    for s in summaries {
        let command = shorten(&s.command, 60);
        let _ = writeln!(out, "process {} (ppid {}): {}", s.id.pid, s.ppid, command);
        let secs = (s.last_us.saturating_sub(s.first_us)) as f64 / 1e6;
        match (s.rss_first, s.rss_last) {
            (Some(a), Some(b)) => {
                let _ = writeln!(
                    out,
                    "  RSS {} -> {} ({}) over {:.1}s, {} samples, peak {}",
                    human_kib(a),
                    human_kib(b),
                    human_kib_signed(b as i64 - a as i64),
                    secs,
                    s.samples,
                    human_kib(s.rss_peak.unwrap_or(b)),
                );
                if let Some(rate) = s.rss_growth_per_hour() {
                    let _ = writeln!(out, "  growth {}/hour", human_kib_signed(rate as i64));
                }
                let _ = writeln!(out, "  {}", sparkline(&s.rss_series, 70));
            }
            _ => {
                let _ = writeln!(out, "  no memory figures ({} samples)", s.samples);
            }
        }
        for r in s.grown_regions.iter().take(top_regions) {
            let _ = writeln!(
                out,
                "  {:>12} {:<5} {:>14x}  {}",
                human_kib_signed(r.rss_delta),
                match r.change {
                    Change::New => "new",
                    _ => "grown",
                },
                r.start,
                printable(&r.label)
            );
        }
    }
    out
}

/// What was observed of each judged process, told from the analyzer's
/// own verdicts (the same samples, figures, rate and regions that
/// `memtrail analyze` prints), so the two cannot disagree. `recorded` is
/// how many samples the recording holds of each process: the analyzer
/// judges fewer when some were taken before the process exec'd its
/// program or as it exited, and the text says so.
pub fn observed(
    report: &crate::recording::Report,
    recorded: &std::collections::HashMap<ProcessId, u64>,
    top_regions: usize,
) -> String {
    let mut out = String::new();
    let mut short = 0;
    for p in &report.analysis.processes {
        let rss = match p.finding("rss") {
            Some(rss) if p.verdict != memtrail_diff::Verdict::InsufficientData => rss,
            _ => {
                short += 1;
                continue;
            }
        };
        let _ = writeln!(
            out,
            "process {} (ppid {}): {}",
            p.pid,
            p.ppid,
            crate::process_label(&p.command, 60)
        );
        let secs = p.last_us.saturating_sub(p.first_us) as f64 / 1e6;
        let (first, last) = (rss.first.max(0.0) as u64, rss.last.max(0.0) as u64);
        let _ = writeln!(
            out,
            "  RSS {} -> {} ({}{}) over {secs:.1}s, {} judged",
            human_kib(first),
            human_kib(last),
            if last > first { "+" } else { "" },
            human_kib_signed(last as i64 - first as i64),
            crate::count(p.samples as usize, "sample", "samples"),
        );
        let all = recorded.get(&p.id()).copied().unwrap_or(p.samples);
        if all > p.samples {
            let _ = writeln!(
                out,
                "  ({all} recorded: {} taken before it exec'd its program or as it exited \
                 (tearing down, then a zombie) {} not judged)",
                all - p.samples,
                if all - p.samples == 1 { "is" } else { "are" }
            );
        }
        let _ = writeln!(
            out,
            "  growth {} (the slope fitted to the judged samples)",
            crate::analysis::rate(rss, rss.growth_per_hour)
        );
        if let Some(trail) = report.track(p.id()).and_then(|t| t.series("rss")) {
            let _ = writeln!(out, "  {}", trail_sparkline(trail, 70));
        }
        for r in crate::top_regions(p, top_regions) {
            let _ = writeln!(
                out,
                "  {:>12} {:<5} {:>14x}  {}",
                human_kib_signed(r.growth_kib),
                crate::change_name(r.change),
                r.start,
                printable(&r.label)
            );
        }
    }
    if short > 0 {
        let _ = writeln!(
            out,
            "({} too short to judge: see the verdict)",
            crate::count(short, "process", "other processes")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use memtrail_format::{Mapping, ProcessInfo, Status};
    use std::sync::Arc;

    fn region(start: u64, rss: u64) -> Mapping {
        Mapping {
            start,
            end: start + (1 << 20),
            rss,
            size: 1024,
            ..Mapping::default()
        }
    }

    fn sample(t: u64, cmdline: &[&str], maps: Vec<Mapping>) -> ProcessSample {
        let info = ProcessInfo {
            comm: "python3".into(),
            cmdline: cmdline.iter().map(|a| a.to_string()).collect(),
            ..ProcessInfo::default()
        };
        let status = Status {
            vm_rss: Some(maps.iter().map(|m| m.rss).sum()),
            ..Status::default()
        };
        let mut s = ProcessSample::summary(
            t,
            ProcessId {
                pid: 7,
                start_time: 1,
            },
            info,
            status,
        );
        s.mappings = Some(Arc::new(maps));
        s.mappings_fresh = true;
        s
    }

    /// Caught mid-exec (no command line yet), then the program: growth is
    /// measured from the first sample naming it, as the analysis measures
    /// it, so a region it had then is grown, not new, in both.
    #[test]
    fn the_summary_starts_where_the_analysis_starts() {
        let heap = 0x7000_0000;
        let samples = [
            sample(1, &[], vec![region(0x1000_0000, 100)]),
            sample(
                2,
                &["python3", "app.py"],
                vec![region(0x1000_0000, 100), region(heap, 200)],
            ),
            sample(
                3,
                &["python3", "app.py"],
                vec![region(0x1000_0000, 100), region(heap, 9000)],
            ),
        ];
        let mut summary = Summarizer::new();
        for s in &samples {
            summary.add(s);
        }
        let summaries = summary.finish();
        let grown = &summaries[0].grown_regions;
        assert_eq!(grown.len(), 1, "{grown:?}");
        assert_eq!(grown[0].change, Change::Grown);
        assert_eq!(summaries[0].rss_first, Some(300));
        assert!(memtrail_diff::starts_program("python3", None, &samples[1]));
        assert!(!memtrail_diff::starts_program(
            "python3",
            Some("python3"),
            &samples[2]
        ));
    }

    #[test]
    fn sparkline_scales_between_min_and_max() {
        assert_eq!(sparkline(&[0, 7, 14], 10), "▁▄█");
        assert_eq!(sparkline(&[5, 5], 10), "▁▁");
        assert_eq!(sparkline(&[], 10), "");
        // Downsampling keeps peaks.
        assert_eq!(sparkline(&[0, 100, 0, 0], 2), "█▁");
        assert_eq!(sparkline(&[0, 0, 0, 100], 2), "▁█");
    }
}
