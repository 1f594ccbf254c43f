//! A recording folded, in one streaming pass, into what `memtrail report`
//! shows: per process every series downsampled for display, its lifetime
//! and parent, the markers, and the analyzer's verdicts on the same records.
//!
//! Memory is bounded however long the recording is: each series keeps at
//! most [`memtrail_diff::trail::CAPACITY`] buckets of mean, minimum and
//! maximum (neighbours merge pairwise when full, so peaks and troughs
//! survive), the analyzer keeps its own bounded state, and no sample is
//! held once it has been folded in.

use std::collections::HashMap;
use std::sync::Arc;

use memtrail_diff::trail::Trail;
use memtrail_diff::{
    command_of, series_values, Analysis, Analyzer, Finding, ProcessVerdict, SERIES_NAMES,
};
use memtrail_format::{Marker, ProcessId, Record, Ticks};

use crate::analysis::{human_seconds, Source};

/// What was seen of one process over the whole recording.
#[derive(Debug, Clone)]
pub struct Track {
    pub id: ProcessId,
    pub ppid: u32,
    pub comm: String,
    pub command: String,
    pub first_us: u64,
    pub last_us: u64,
    /// An exit record, or a sample showing the process gone (a zombie).
    pub exited: bool,
    pub exit_code: Option<i32>,
    /// One trail per series, in [`SERIES_NAMES`] order; times are seconds
    /// after the recording's first record.
    pub series: Vec<Trail>,
}

impl Track {
    /// The trail of the series called `name` (`rss`, `fds`, ...).
    pub fn series(&self, name: &str) -> Option<&Trail> {
        let i = SERIES_NAMES.iter().position(|&n| n == name)?;
        self.series.get(i).filter(|t| t.count() > 0)
    }

    /// The series of this process that `p` judged, in report order, each
    /// with its trail and finding: the rows of a rendering's series table.
    pub(crate) fn judged<'a>(
        &'a self,
        p: &'a ProcessVerdict,
    ) -> impl Iterator<Item = (&'static str, &'a Trail, &'a Finding)> + 'a {
        SERIES_NAMES
            .into_iter()
            .filter_map(|name| Some((name, self.series(name)?, p.finding(name)?)))
    }

    /// How the process ended, for the process tree: `exited 3`, `exited`
    /// (no code known), or empty while it was still running.
    pub(crate) fn end(&self) -> String {
        match (self.exited, self.exit_code) {
            (true, Some(code)) => format!("exited {code}"),
            (true, None) => "exited".to_string(),
            (false, _) => String::new(),
        }
    }
}

/// Everything a report renders.
#[derive(Debug, Clone)]
pub struct Report {
    pub source: Source,
    /// The first and last record's time, µs since the Unix epoch.
    pub start_us: u64,
    pub end_us: u64,
    /// Sampling rounds ([`memtrail_format::Ticks`]): the ticks `record`
    /// counts and `diff`'s `#N` moments number.
    pub ticks: u64,
    /// The verdicts, leaks first.
    pub analysis: Analysis,
    /// Every process: those with a verdict in the analysis's order first.
    pub tracks: Vec<Track>,
}

impl Report {
    /// The track of a process.
    pub fn track(&self, id: ProcessId) -> Option<&Track> {
        self.tracks.iter().find(|t| t.id == id)
    }

    /// Seconds from the recording's start to `time_us`.
    pub fn offset(&self, time_us: u64) -> f64 {
        time_us.saturating_sub(self.start_us) as f64 / 1e6
    }

    /// The recording's length, seconds.
    pub fn span(&self) -> f64 {
        self.offset(self.end_us)
    }

    /// The markers, in time order.
    pub fn markers(&self) -> &[Marker] {
        &self.analysis.markers
    }

    /// What every rendering says first, before the leak count:
    /// `2 processes, 124 samples in 62 ticks over 6s, 0 markers`.
    pub(crate) fn headline(&self) -> String {
        format!(
            "{}, {} in {} over {}, {}",
            crate::count(self.analysis.processes.len(), "process", "processes"),
            crate::count(self.analysis.samples as usize, "sample", "samples"),
            crate::count(self.ticks as usize, "tick", "ticks"),
            human_seconds(self.span()),
            crate::count(self.markers().len(), "marker", "markers"),
        )
    }
}

/// Folds records in one at a time (see the module documentation).
/// A track being built, with the names of its last sample.
#[derive(Debug)]
struct Tracked {
    track: Track,
    names: Option<Arc<memtrail_format::ProcessInfo>>,
}

#[derive(Debug, Default)]
pub struct ReportBuilder {
    analyzer: Analyzer,
    tracks: rustc_hash::FxHashMap<ProcessId, Tracked>,
    ticks: Ticks,
    start_us: Option<u64>,
    end_us: u64,
}

impl ReportBuilder {
    pub fn new() -> ReportBuilder {
        ReportBuilder::default()
    }

    /// Adds one record, in recording order.
    pub fn add(&mut self, record: Record) {
        self.track(&record);
        self.analyzer.add(record);
    }

    /// A builder for a recording whose first record (not counting end
    /// frames) is at `start_us`: for a builder fed only a share of the
    /// recording's processes (see [`ReportBuilder::merge`]), which may not
    /// see that record.
    pub fn starting_at(start_us: u64) -> ReportBuilder {
        ReportBuilder {
            start_us: Some(start_us),
            ..ReportBuilder::default()
        }
    }

    /// A sample of a process this builder does not follow, skipped by
    /// its reader (see `memtrail_format::Reader::select`): it counts in
    /// the ticks all the same.
    pub fn add_unread(&mut self, id: ProcessId) {
        self.ticks.place_unread(id);
    }

    /// Joins builders that each read the same recording, every record
    /// about no process and those of a different share of its processes;
    /// all made by [`ReportBuilder::starting_at`] the recording's start,
    /// the first also told of every other sample through
    /// [`ReportBuilder::add_unread`] (it counts the ticks). The report is
    /// the one a single builder fed the whole recording makes (the span
    /// ends at the latest record any of them read).
    pub fn merge(parts: impl IntoIterator<Item = ReportBuilder>) -> ReportBuilder {
        let mut parts = parts.into_iter();
        let Some(mut merged) = parts.next() else {
            return ReportBuilder::new();
        };
        let mut analyzers = vec![std::mem::take(&mut merged.analyzer)];
        for part in parts {
            merged.tracks.extend(part.tracks);
            merged.end_us = merged.end_us.max(part.end_us);
            analyzers.push(part.analyzer);
        }
        merged.analyzer = Analyzer::merge(analyzers);
        merged
    }

    fn track(&mut self, record: &Record) {
        self.ticks.place(record);
        let time_us = record.time_us();
        if !matches!(record, Record::End(_)) {
            let start = *self.start_us.get_or_insert(time_us);
            self.end_us = self.end_us.max(time_us).max(start);
        }
        let start = self.start_us.unwrap_or(time_us);
        match record {
            Record::Process(s) => {
                let tracked = self.tracks.entry(s.id).or_insert_with(|| Tracked {
                    track: Track {
                        id: s.id,
                        ppid: s.info.ppid,
                        comm: s.info.comm.clone(),
                        command: command_of(s),
                        first_us: s.time_us,
                        last_us: s.time_us,
                        exited: false,
                        exit_code: None,
                        series: SERIES_NAMES.iter().map(|_| Trail::new()).collect(),
                    },
                    names: None,
                });
                let track = &mut tracked.track;
                track.last_us = s.time_us;
                // A reader shares the names between samples until they
                // change: the same ones need no copying or comparing.
                if !tracked
                    .names
                    .as_ref()
                    .is_some_and(|n| Arc::ptr_eq(n, &s.info))
                {
                    tracked.names = Some(Arc::clone(&s.info));
                    track.ppid = s.info.ppid;
                    if !s.info.comm.is_empty() {
                        track.comm.clone_from(&s.info.comm);
                    }
                    if !s.info.cmdline.is_empty() && !joins_to(&s.info.cmdline, &track.command) {
                        track.command = command_of(s);
                    }
                }
                // An exiting process (a zombie) has no memory left: that is
                // its end, not a value of its series.
                if s.status.vm_rss.is_none() && track.series[0].count() > 0 {
                    track.exited = true;
                } else {
                    let t = s.time_us.saturating_sub(start) as f64 / 1e6;
                    for (trail, (_, _, v)) in track.series.iter_mut().zip(series_values(s)) {
                        if let Some(v) = v {
                            trail.push(t, v as f64);
                        }
                    }
                }
            }
            Record::Exit(e) => {
                if let Some(Tracked { track, .. }) = self.tracks.get_mut(&e.id) {
                    track.exited = true;
                    track.exit_code = e.exit_code.or(track.exit_code);
                }
            }
            _ => {}
        }
    }

    /// The report on everything added.
    pub fn finish(self, source: Source) -> Report {
        let mut analysis = self.analyzer.analysis();
        analysis.markers.sort_by_key(|m| m.time_us);
        let order: HashMap<ProcessId, usize> = analysis
            .processes
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id(), i))
            .collect();
        let mut tracks: Vec<Track> = self.tracks.into_values().map(|t| t.track).collect();
        tracks.sort_by_key(|t| (order.get(&t.id).copied().unwrap_or(usize::MAX), t.id));
        let start_us = self.start_us.unwrap_or(0);
        Report {
            source,
            start_us,
            end_us: self.end_us.max(start_us),
            ticks: self.ticks.count(),
            analysis,
            tracks,
        }
    }
}

/// A process in the process tree, with its depth (0 for a root).
#[derive(Debug, Clone, Copy)]
pub struct TreeRow<'a> {
    pub depth: usize,
    pub track: &'a Track,
}

/// The processes as a tree (parents before their children, children by
/// start), for lifetimes: a process whose parent was not recorded is a root.
pub fn tree(report: &Report) -> Vec<TreeRow<'_>> {
    let mut by_start: Vec<&Track> = report.tracks.iter().collect();
    by_start.sort_by_key(|t| (t.first_us, t.id));
    let recorded = |pid: u32| by_start.iter().any(|t| t.id.pid == pid);
    let mut out = Vec::new();
    // A recorded ppid that is the process's own pid (pid reuse) cannot loop:
    // each track is visited once.
    let mut seen = std::collections::HashSet::new();
    fn visit<'a>(
        t: &'a Track,
        depth: usize,
        all: &[&'a Track],
        seen: &mut std::collections::HashSet<ProcessId>,
        out: &mut Vec<TreeRow<'a>>,
    ) {
        if !seen.insert(t.id) {
            return;
        }
        out.push(TreeRow { depth, track: t });
        for c in all.iter().filter(|c| c.ppid == t.id.pid && c.id != t.id) {
            visit(c, depth + 1, all, seen, out);
        }
    }
    for t in &by_start {
        if !recorded(t.ppid) || t.ppid == t.id.pid {
            visit(t, 0, &by_start, &mut seen, &mut out);
        }
    }
    // Cycles through reused pids leave processes unvisited: show them as roots.
    for t in &by_start {
        visit(t, 0, &by_start, &mut seen, &mut out);
    }
    out
}

/// Whether `words` joined by spaces is `joined`, without joining them.
fn joins_to(words: &[String], joined: &str) -> bool {
    let mut rest = joined;
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            match rest.strip_prefix(' ') {
                Some(r) => rest = r,
                None => return false,
            }
        }
        match rest.strip_prefix(word.as_str()) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}
