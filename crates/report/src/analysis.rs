//! `memtrail analyze`: verdicts as text for people and JSON for programs.
//!
//! The JSON shape is a contract (docs/leak-detection.md, "JSON output"):
//! later tools parse it, so fields are only ever added.

use std::fmt::Write;

use memtrail_diff::{Analysis, Change, Finding, Kind, Pattern, ProcessVerdict, Verdict};
use serde::Serialize;

use crate::{human_kib, human_kib_signed, shorten};

/// Where the analysis came from, for the JSON document.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    /// The file name, or `standard input`.
    pub name: String,
    /// False while a live stream is still arriving, or when it ended
    /// without its end frame (a recorder that was killed).
    pub complete: bool,
}

/// The JSON document: `source`, `complete`, `samples`, `leaks`,
/// `processes` (see [`memtrail_diff::ProcessVerdict`]) and `markers`.
pub fn json(analysis: &Analysis, source: &Source) -> serde_json::Value {
    serde_json::json!({
        "source": source.name,
        "complete": source.complete,
        "samples": analysis.samples,
        "leaks": analysis.leaks(),
        "processes": analysis.processes,
        "markers": analysis.markers,
    })
}

/// A rate per hour in the series' unit.
pub fn rate(f: &Finding, per_hour: f64) -> String {
    match f.kind {
        Kind::Census if f.unit == "bytes" => {
            let sign = if per_hour > 0.0 { "+" } else { "" };
            format!(
                "{sign}{}/h",
                human_kib_signed((per_hour / 1024.0).round() as i64)
            )
        }
        Kind::Memory => {
            let sign = if per_hour > 0.0 { "+" } else { "" };
            format!("{sign}{}/h", human_kib_signed(per_hour.round() as i64))
        }
        _ => format!("{per_hour:+.0}/h"),
    }
}

pub(crate) fn value(f: &Finding, v: f64) -> String {
    match f.kind {
        Kind::Census if f.unit == "bytes" => human_kib((v.max(0.0) / 1024.0).round() as u64),
        Kind::Memory => human_kib(v.max(0.0).round() as u64),
        _ => format!("{v:.0}"),
    }
}

/// A duration in the largest fitting unit: `45s`, `12m`, `3.5h`, `2.1d`.
pub fn human_seconds(s: f64) -> String {
    if s < 90.0 {
        format!("{s:.0}s")
    } else if s < 90.0 * 60.0 {
        format!("{:.0}m", s / 60.0)
    } else if s < 48.0 * 3600.0 {
        format!("{:.1}h", s / 3600.0)
    } else {
        format!("{:.1}d", s / 86400.0)
    }
}

pub(crate) fn tag(v: Verdict) -> &'static str {
    match v {
        Verdict::Leak => "LEAK",
        Verdict::NoLeak => "ok",
        Verdict::InsufficientData => "?",
    }
}

/// Whether a finding is worth a line of text: leaks and shapes that
/// explain why something that grew is not one.
fn notable(f: &Finding) -> bool {
    if f.kind == Kind::Census {
        // Dozens of types or sites per process: only those that grow.
        return f.verdict == Verdict::Leak || f.pattern == Pattern::Growing;
    }
    if f.series == "file" {
        // Page cache comes and goes; worth a line only when it explains
        // growth elsewhere.
        return f.note.is_some() || f.pattern == Pattern::Growing;
    }
    f.verdict == Verdict::Leak
        || f.note.is_some()
        || matches!(
            f.pattern,
            Pattern::Growing | Pattern::Plateau | Pattern::Step | Pattern::Sawtooth
        )
}

/// The verdicts as text, leaks first, fitting 80 columns. `all` also lists
/// processes that did not leak in full; otherwise they get one line each.
pub fn text(analysis: &Analysis, all: bool) -> String {
    text_in(analysis, all, 80)
}

/// [`text`] in `width` columns (at least 60): wider leaves more of each
/// command line.
pub fn text_in(analysis: &Analysis, all: bool, width: usize) -> String {
    let width = width.max(60);
    let mut out = String::new();
    if analysis.processes.is_empty() {
        let _ = writeln!(out, "no process samples yet");
        return out;
    }
    let mut brief = Vec::new();
    for p in &analysis.processes {
        if p.verdict == Verdict::InsufficientData && !all {
            brief.push(format!("{} {}", p.pid, shorten(&p.comm, 15)));
            continue;
        }
        process_text(&mut out, p, all || p.verdict == Verdict::Leak, width);
    }
    if !brief.is_empty() {
        // Short-lived helpers (shells, launchers, pool workers) add up:
        // one line for all of them.
        let mut line = format!(
            "?    {} too short to judge (<{} samples):",
            crate::count(brief.len(), "process", "processes"),
            memtrail_diff::MIN_POINTS
        );
        let mut shown = 0;
        for b in &brief {
            if line.chars().count() + b.chars().count() + 2 > 78 {
                break;
            }
            line.push_str(if shown == 0 { " " } else { ", " });
            line.push_str(b);
            shown += 1;
        }
        if shown < brief.len() {
            line.push_str(", …");
        }
        let _ = writeln!(out, "{line}");
    }
    if !analysis.markers.is_empty() {
        // Offsets from the recording's first sample, as `report` and
        // `diff` show them.
        let start = analysis.start_us;
        let list: Vec<String> = analysis
            .markers
            .iter()
            .map(|m| {
                let secs = m.time_us.saturating_sub(start) as f64 / 1e6;
                format!("+{secs:.1}s {}", shorten(&crate::printable(&m.label), 30))
            })
            .collect();
        let mut line = String::new();
        let mut shown = 0;
        for item in &list {
            if shown > 0 && line.chars().count() + 2 + item.chars().count() > 80 - 26 {
                break;
            }
            if shown > 0 {
                line.push_str("; ");
            }
            line.push_str(item);
            shown += 1;
        }
        if shown < list.len() {
            line.push_str(&format!(" (+{} more)", list.len() - shown));
        }
        let _ = writeln!(out, "\nmarkers ({}): {line}", list.len());
    }
    let leaks = analysis.leaks();
    let judged = analysis
        .processes
        .iter()
        .filter(|p| p.verdict != Verdict::InsufficientData)
        .count();
    let _ = writeln!(
        out,
        "\n{} of {} ({} judged; {})",
        leaks,
        crate::count(analysis.processes.len(), "process leaks", "processes leak"),
        judged,
        crate::count(analysis.samples as usize, "sample", "samples"),
    );
    out
}

fn process_text(out: &mut String, p: &ProcessVerdict, detailed: bool, width: usize) {
    let secs = p.last_us.saturating_sub(p.first_us) as f64 / 1e6;
    // The tag, the pid and the samples take 36 columns; the rest is the
    // command's.
    let room = width - 36;
    let _ = writeln!(
        out,
        "{:<4} pid {:<7} {:<room$} {:>3} samples, {}",
        tag(p.verdict),
        p.pid,
        crate::process_label(&p.command, room),
        p.samples,
        human_seconds(secs)
    );
    if p.verdict == Verdict::InsufficientData {
        let _ = writeln!(
            out,
            "     too few samples to judge (a process needs {})",
            memtrail_diff::MIN_POINTS
        );
        return;
    }
    if !detailed {
        return;
    }
    // Regions and limits are the same for every memory series: tell them once.
    let mut told_regions = false;
    let mut told_limit = false;
    let census: Vec<&Finding> = p
        .findings
        .iter()
        .filter(|f| f.kind == Kind::Census && notable(f))
        .collect();
    for f in p.findings.iter().filter(|f| notable(f)) {
        if f.kind == Kind::Census {
            continue;
        }
        let _ = writeln!(
            out,
            "     {:<7} {:<7} {:<9} {:>13}  conf {:.2}  {} -> {}",
            f.kind.name(),
            f.series,
            f.pattern.name(),
            rate(f, f.growth_per_hour),
            f.confidence,
            value(f, f.first),
            value(f, f.last),
        );
        if let Some(note) = &f.note {
            let _ = writeln!(out, "{:17}{note}", "");
        }
        if !f.regions.is_empty() && !told_regions {
            told_regions = true;
            let list: Vec<String> = f
                .regions
                .iter()
                .take(3)
                .map(|r| match r.change {
                    Change::New if r.count > 1 => format!(
                        "+{} {} ({} new)",
                        human_kib_signed(r.growth_kib),
                        shorten(&r.label, 24),
                        r.count
                    ),
                    Change::New => format!(
                        "+{} {} (new)",
                        human_kib_signed(r.growth_kib),
                        shorten(&r.label, 24)
                    ),
                    _ => format!(
                        "+{} {} {:x}",
                        human_kib_signed(r.growth_kib),
                        shorten(&r.label, 24),
                        r.start
                    ),
                })
                .collect();
            let _ = writeln!(out, "{:17}regions: {}", "", fit(&list, 80 - 26));
        }
        if !f.fd_kinds.is_empty() {
            let kinds: Vec<String> = f
                .fd_kinds
                .iter()
                .map(|k| format!("{} {}->{}", k.kind, k.before, k.after))
                .collect();
            let _ = writeln!(out, "{:17}kinds: {}", "", kinds.join(", "));
        }
        if !f.fd_targets.is_empty() {
            let targets: Vec<String> = f
                .fd_targets
                .iter()
                .take(3)
                .map(|t| format!("{} x{}", shorten(&t.target, 30), t.count))
                .collect();
            let _ = writeln!(out, "{:17}opened: {}", "", fit(&targets, 80 - 25));
        }
        if let Some(limit) = f.time_to_limit.as_ref().filter(|_| !told_limit) {
            told_limit = true;
            let _ = writeln!(
                out,
                "{:17}{} ({} left) reached in ~{} at {}",
                "",
                shorten(&limit.limit, 30),
                human_kib(limit.headroom_kib),
                human_seconds(limit.seconds),
                rate(f, f.retained_per_hour)
            );
        }
    }
    crate::owners::census_text(out, &census);
}

/// As many items as fit in `width` columns, joined with `; `.
fn fit(items: &[String], width: usize) -> String {
    let mut out = String::new();
    for item in items {
        let extra = if out.is_empty() { 0 } else { 2 };
        if !out.is_empty() && out.chars().count() + extra + item.chars().count() > width {
            break;
        }
        if extra > 0 {
            out.push_str("; ");
        }
        out.push_str(item);
    }
    out
}

/// One line per process for a live update.
pub fn status_line(analysis: &Analysis) -> String {
    let leaking: Vec<String> = analysis
        .processes
        .iter()
        .filter(|p| p.verdict == Verdict::Leak)
        .map(|p| {
            let series: Vec<&str> = p
                .findings
                .iter()
                .filter(|f| f.verdict == Verdict::Leak)
                .map(|f| f.series.as_str())
                .collect();
            format!("{} ({})", p.pid, series.join(","))
        })
        .collect();
    if leaking.is_empty() {
        format!(
            "{}, {}: no leak so far",
            crate::count(analysis.samples as usize, "sample", "samples"),
            crate::count(analysis.processes.len(), "process", "processes"),
        )
    } else {
        format!(
            "{}, {}: leaking: {}",
            crate::count(analysis.samples as usize, "sample", "samples"),
            crate::count(analysis.processes.len(), "process", "processes"),
            leaking.join(" ")
        )
    }
}
