//! One snapshot: a pmap-like table of regions per process, or JSON.

use std::fmt::Write;

use memtrail_format::{Header, Mapping, ProcessSample, SystemSample};
use serde::Serialize;

use crate::printable;

/// Which regions to list. Totals always cover every region.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only regions with at least this much resident memory (KiB).
    pub min_rss_kb: u64,
    /// Only anonymous regions.
    pub anon_only: bool,
}

impl Filter {
    pub fn keeps(&self, m: &Mapping) -> bool {
        m.rss >= self.min_rss_kb && (!self.anon_only || m.is_anonymous())
    }
}

/// Order of regions and processes: largest first, or by address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Rss,
    Pss,
    Anon,
    Swap,
    Size,
    Addr,
}

/// Sums over every region of a process, KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub regions: u64,
    pub size: u64,
    pub rss: u64,
    pub pss: u64,
    pub anonymous: u64,
    pub swap: u64,
    pub private_dirty: u64,
}

impl Totals {
    pub fn of(mappings: &[Mapping]) -> Totals {
        mappings.iter().fold(Totals::default(), |mut t, m| {
            t.regions += 1;
            t.size += m.size;
            t.rss += m.rss;
            t.pss += m.pss;
            t.anonymous += m.anonymous;
            t.swap += m.swap;
            t.private_dirty += m.private_dirty;
            t
        })
    }
}

fn mapping_key(m: &Mapping, sort: Sort) -> u64 {
    match sort {
        Sort::Rss => m.rss,
        Sort::Pss => m.pss,
        Sort::Anon => m.anonymous,
        Sort::Swap => m.swap,
        Sort::Size => m.size,
        Sort::Addr => m.start,
    }
}

fn process_key(s: &ProcessSample, sort: Sort) -> u64 {
    let r = s.rollup.unwrap_or_default();
    match sort {
        Sort::Rss | Sort::Addr => s.status.vm_rss.unwrap_or(0),
        Sort::Pss => r.pss.unwrap_or(0),
        Sort::Anon => s.status.rss_anon.or(r.anonymous).unwrap_or(0),
        Sort::Swap => s.status.vm_swap.or(r.swap).unwrap_or(0),
        Sort::Size => s.status.vm_size.unwrap_or(0),
    }
}

/// The listed regions of one sample: filtered, then sorted.
pub fn selected<'a>(sample: &'a ProcessSample, filter: &Filter, sort: Sort) -> Vec<&'a Mapping> {
    let mut list: Vec<&Mapping> = sample
        .mappings
        .iter()
        .flatten()
        .filter(|m| filter.keeps(m))
        .collect();
    match sort {
        Sort::Addr => list.sort_by_key(|m| m.start),
        _ => list.sort_by_key(|m| (std::cmp::Reverse(mapping_key(m, sort)), m.start)),
    }
    list
}

fn sorted_processes(processes: &[ProcessSample], sort: Sort) -> Vec<&ProcessSample> {
    let mut list: Vec<&ProcessSample> = processes.iter().collect();
    match sort {
        Sort::Addr => list.sort_by_key(|s| s.id.pid),
        _ => list.sort_by_key(|s| (std::cmp::Reverse(process_key(s, sort)), s.id.pid)),
    }
    list
}

fn command_line(s: &ProcessSample) -> String {
    if s.info.cmdline.is_empty() {
        format!("[{}]", printable(&s.info.comm))
    } else {
        printable(&s.info.cmdline.join(" "))
    }
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// The pmap-like table: per process, its regions (when the snapshot has
/// them) or one line of totals per process (when it does not). Sizes in KiB.
pub fn table(processes: &[ProcessSample], filter: &Filter, sort: Sort) -> String {
    let mut out = String::new();
    if processes.is_empty() {
        out.push_str("no processes matched\n");
        return out;
    }
    let (with_maps, without): (Vec<&ProcessSample>, Vec<&ProcessSample>) =
        sorted_processes(processes, sort)
            .into_iter()
            .partition(|s| s.mappings.is_some());

    for (i, s) in with_maps.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let all = s.mappings.as_deref().unwrap_or(&[]);
        let shown = selected(s, filter, sort);
        let _ = writeln!(out, "{}:   {}", s.id.pid, command_line(s));
        let _ = writeln!(
            out,
            "{:>16} {:>10} {:>10} {:>10} {:>10} {:>10} {:<4} Mapping",
            "Address", "Kbytes", "RSS", "PSS", "Anon", "Swap", "Mode"
        );
        for m in &shown {
            let _ = writeln!(
                out,
                "{:>16x} {:>10} {:>10} {:>10} {:>10} {:>10} {:<4} {}",
                m.start,
                m.size,
                m.rss,
                m.pss,
                m.anonymous,
                m.swap,
                m.perms,
                printable(m.label())
            );
        }
        let t = Totals::of(all);
        let _ = writeln!(out, "{} {}", "-".repeat(16), ["----------"; 5].join(" "));
        let _ = writeln!(
            out,
            "{:>16} {:>10} {:>10} {:>10} {:>10} {:>10} {} of {} regions shown{}",
            "total kB",
            t.size,
            t.rss,
            t.pss,
            t.anonymous,
            t.swap,
            shown.len(),
            all.len(),
            if s.mappings_fresh {
                ""
            } else {
                " (regions from an earlier read)"
            }
        );
    }

    if !without.is_empty() {
        if !with_maps.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{:>8} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>5} {:>5} Command",
            "PID", "PPID", "RSS", "Anon", "File", "PSS", "Swap", "FDs", "Thr"
        );
        let any_pss = without.iter().any(|s| s.rollup.is_some());
        for s in without {
            let _ = writeln!(
                out,
                "{:>8} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>5} {:>5} {}",
                s.id.pid,
                s.info.ppid,
                opt(s.status.vm_rss),
                opt(s.status.rss_anon),
                opt(s.status.rss_file),
                opt(s.rollup.and_then(|r| r.pss)),
                opt(s.status.vm_swap),
                opt(s.fds.as_ref().map(|f| f.total())),
                opt(s.status.threads),
                command_line(s)
            );
        }
        if any_pss {
            let _ = writeln!(out, "(sizes in kB)");
        } else {
            let _ = writeln!(out, "(sizes in kB; PSS needs --detail rollup or more)");
        }
    }
    out
}

/// The JSON document of `memtrail snap --format json`: every sample as
/// `memtrail dump` prints it, with `mappings` filtered and sorted as asked
/// and `totals` over every region.
pub fn json(
    header: &Header,
    system: &SystemSample,
    processes: &[ProcessSample],
    filter: &Filter,
    sort: Sort,
) -> serde_json::Value {
    let procs: Vec<serde_json::Value> = sorted_processes(processes, sort)
        .into_iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).unwrap_or(serde_json::Value::Null);
            if let Some(obj) = v.as_object_mut() {
                if let Some(all) = &s.mappings {
                    let shown: Vec<&Mapping> = selected(s, filter, sort);
                    obj.insert(
                        "totals".into(),
                        serde_json::to_value(Totals::of(all)).unwrap_or_default(),
                    );
                    obj.insert(
                        "mappings".into(),
                        serde_json::to_value(shown).unwrap_or_default(),
                    );
                } else {
                    obj.insert("totals".into(), serde_json::Value::Null);
                }
            }
            v
        })
        .collect();
    serde_json::json!({
        "header": header,
        "filter": { "min_rss_kb": filter.min_rss_kb, "anon_only": filter.anon_only },
        "system": system,
        "processes": procs,
    })
}
