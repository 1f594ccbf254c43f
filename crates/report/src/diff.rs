//! `memtrail diff`: one process (or many) at two moments, as text or JSON.

use std::fmt::Write;

use memtrail_diff::{Change, Figure, ProcessDiff, RegionChange};

use crate::{human_kib, human_kib_signed, printable, shorten};

/// Which regions to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffFilter {
    /// Only regions whose resident + swapped size changed by at least this
    /// much (KiB), either way.
    pub min_change_kib: u64,
    /// Only anonymous regions.
    pub anon_only: bool,
    /// At most this many regions per process.
    pub top: usize,
}

impl Default for DiffFilter {
    fn default() -> DiffFilter {
        DiffFilter {
            min_change_kib: 1,
            anon_only: false,
            top: 20,
        }
    }
}

impl DiffFilter {
    pub fn keeps(&self, r: &RegionChange) -> bool {
        (r.rss_delta + r.swap_delta).unsigned_abs() >= self.min_change_kib
            && (!self.anon_only || r.anonymous_region)
            && !matches!(r.change, Change::Same)
    }
}

/// The regions of a diff that the filter keeps, in rank order.
pub fn shown<'a>(d: &'a ProcessDiff, filter: &DiffFilter) -> Vec<&'a RegionChange> {
    d.regions
        .iter()
        .filter(|r| filter.keeps(r))
        .take(filter.top)
        .collect()
}

/// The JSON document: `before`, `after` (descriptions of the two moments),
/// `filter` and `processes`, ranked by RSS growth, each with the kept
/// `regions` and the number of `regions_changed` in all. Takes the diffs by
/// value so that the regions left out are never serialized.
pub fn json(
    diffs: Vec<ProcessDiff>,
    before: &str,
    after: &str,
    filter: &DiffFilter,
) -> serde_json::Value {
    let processes: Vec<serde_json::Value> = diffs
        .into_iter()
        .map(|mut d| {
            let changed = d
                .regions
                .iter()
                .filter(|r| r.change != Change::Same)
                .count();
            let kept: Vec<RegionChange> = shown(&d, filter).into_iter().cloned().collect();
            d.regions = kept;
            let mut v = serde_json::to_value(&d).unwrap_or_default();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("regions_changed".into(), changed.into());
            }
            v
        })
        .collect();
    serde_json::json!({
        "before": before,
        "after": after,
        "filter": {
            "min_change_kib": filter.min_change_kib,
            "anon_only": filter.anon_only,
            "top": filter.top,
        },
        "processes": processes,
    })
}

fn cell(v: Option<u64>, kib: bool) -> String {
    match v {
        None => "-".into(),
        Some(v) if kib => human_kib(v),
        Some(v) => v.to_string(),
    }
}

fn delta_cell(f: &Figure, kib: bool) -> String {
    match f.delta {
        None => "-".into(),
        Some(d) if kib => human_kib_signed(d),
        Some(d) => format!("{d:+}"),
    }
}

/// The diffs as text, fitting 80 columns.
pub fn text(diffs: &[ProcessDiff], before: &str, after: &str, filter: &DiffFilter) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "before: {}\nafter:  {}",
        printable(before),
        printable(after)
    );
    if diffs.is_empty() {
        let _ = writeln!(out, "\nno processes in either");
        return out;
    }
    for d in diffs {
        let command = shorten(&d.command, 56);
        let presence = match d.presence {
            memtrail_diff::Presence::Both => String::new(),
            memtrail_diff::Presence::New => " (started in between)".into(),
            memtrail_diff::Presence::Gone => " (exited in between)".into(),
        };
        let _ = writeln!(out, "\npid {} {}{}", d.pid, command, presence);
        let _ = writeln!(
            out,
            "  {:<8} {:>12} {:>12} {:>12}",
            "", "before", "after", "change"
        );
        for (name, f, kib) in [
            ("RSS", &d.rss, true),
            ("Anon", &d.anon, true),
            ("File", &d.file, true),
            ("PSS", &d.pss, true),
            ("Swap", &d.swap, true),
            ("Threads", &d.threads, false),
        ] {
            if f.before.is_none() && f.after.is_none() {
                continue;
            }
            let _ = writeln!(
                out,
                "  {:<8} {:>12} {:>12} {:>12}",
                name,
                cell(f.before, kib),
                cell(f.after, kib),
                delta_cell(f, kib)
            );
        }
        if let Some(fds) = &d.fds {
            let kinds: Vec<String> = fds
                .by_kind
                .iter()
                .filter(|k| k.delta != 0)
                .map(|k| format!("{} {:+}", k.kind, k.delta))
                .collect();
            let _ = writeln!(
                out,
                "  {:<8} {:>12} {:>12} {:>12}  {}",
                "FDs",
                cell(fds.total.before, false),
                cell(fds.total.after, false),
                delta_cell(&fds.total, false),
                kinds.join(", ")
            );
            for (what, list) in [("opened", &fds.opened), ("closed", &fds.closed)] {
                if list.is_empty() {
                    continue;
                }
                let items: Vec<String> = list
                    .iter()
                    .take(5)
                    .map(|t| format!("{} x{}", printable(&t.target), t.count))
                    .collect();
                let _ = writeln!(out, "  {what}: {}", items.join("; "));
            }
        }
        let regions = shown(d, filter);
        let changed = d.regions.iter().filter(|r| filter.keeps(r)).count();
        if !regions.is_empty() {
            let _ = writeln!(
                out,
                "  {:>12} {:<6} {:>14} {:>12}  Region",
                "Change", "", "Address", "RSS after"
            );
            for r in &regions {
                let _ = writeln!(
                    out,
                    "  {:>12} {:<6} {:>14x} {:>12}  {}{}",
                    human_kib_signed(r.rss_delta + r.swap_delta),
                    match r.change {
                        Change::Grown => "grown",
                        Change::Shrunk => "shrunk",
                        Change::New => "new",
                        Change::Gone => "gone",
                        Change::Same => "same",
                    },
                    r.start,
                    human_kib(r.rss_after),
                    printable(&r.label),
                    if r.moved { " (moved)" } else { "" }
                );
            }
            if changed > regions.len() {
                let _ = writeln!(
                    out,
                    "  ... {} more changed regions",
                    changed - regions.len()
                );
            }
        } else if !d.regions.is_empty() {
            let _ = writeln!(out, "  no region changed by the minimum asked for");
        }
    }
    out
}
