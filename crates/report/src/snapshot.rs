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
        .flat_map(|m| m.iter())
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
    printable(&memtrail_diff::command_of(s))
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
        let all = s.mappings.as_deref().map_or(&[][..], Vec::as_slice);
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
    serde_json::to_value(json_doc(header, system, processes, filter, sort))
        .unwrap_or(serde_json::Value::Null)
}

/// The same document as [`json`], to be serialized as it is written: its
/// keys come out in the same (sorted) order as a `serde_json::Value`'s,
/// but the regions, which are nearly all of it, are never turned into a
/// tree of maps first (a tenth of the time for 10k regions).
pub fn json_doc<'a>(
    header: &'a Header,
    system: &'a SystemSample,
    processes: &'a [ProcessSample],
    filter: &'a Filter,
    sort: Sort,
) -> JsonSnapshot<'a> {
    JsonSnapshot {
        header,
        system,
        processes: sorted_processes(processes, sort),
        filter,
        sort,
    }
}

/// See [`json_doc`].
#[derive(Debug)]
pub struct JsonSnapshot<'a> {
    header: &'a Header,
    system: &'a SystemSample,
    processes: Vec<&'a ProcessSample>,
    filter: &'a Filter,
    sort: Sort,
}

impl Serialize for JsonSnapshot<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeMap};
        // The small parts go through a Value, which sorts their keys.
        let header = serde_json::to_value(self.header).map_err(S::Error::custom)?;
        let system = serde_json::to_value(self.system).map_err(S::Error::custom)?;
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry(
            "filter",
            &serde_json::json!({
                "min_rss_kb": self.filter.min_rss_kb,
                "anon_only": self.filter.anon_only,
            }),
        )?;
        map.serialize_entry("header", &header)?;
        let processes: Vec<ProcessJson<'_>> = self
            .processes
            .iter()
            .map(|s| ProcessJson {
                sample: s,
                filter: self.filter,
                sort: self.sort,
            })
            .collect();
        map.serialize_entry("processes", &processes)?;
        map.serialize_entry("system", &system)?;
        map.end()
    }
}

/// One process: the sample as a map with sorted keys, `totals` added and
/// `mappings` written region by region.
struct ProcessJson<'a> {
    sample: &'a ProcessSample,
    filter: &'a Filter,
    sort: Sort,
}

impl Serialize for ProcessJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeMap};
        let s = self.sample;
        // Everything but the regions, through a Value for sorted keys.
        let rest = ProcessSample {
            time_us: s.time_us,
            id: s.id,
            info: s.info.clone(),
            detail: s.detail,
            status: s.status,
            cpu: s.cpu,
            rollup: s.rollup,
            fds: s.fds.clone(),
            mappings: None,
            mappings_fresh: s.mappings_fresh,
        };
        let serde_json::Value::Object(mut fields) =
            serde_json::to_value(&rest).map_err(S::Error::custom)?
        else {
            return Err(S::Error::custom("a sample is not a JSON object"));
        };
        let totals = s.mappings.as_deref().map(|m| Totals::of(m));
        fields.insert(
            "totals".into(),
            serde_json::to_value(totals).map_err(S::Error::custom)?,
        );
        let mut map = serializer.serialize_map(Some(fields.len()))?;
        for (key, value) in &fields {
            if key == "mappings" && s.mappings.is_some() {
                let shown: Vec<SortedMapping<'_>> = selected(s, self.filter, self.sort)
                    .into_iter()
                    .map(SortedMapping)
                    .collect();
                map.serialize_entry(key, &shown)?;
            } else {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// A region with its keys in sorted order, as a `serde_json::Value` of it
/// would have them (a test checks the two agree).
struct SortedMapping<'a>(&'a Mapping);

impl Serialize for SortedMapping<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let m = self.0;
        let mut map = serializer.serialize_map(Some(18))?;
        map.serialize_entry("anonymous", &m.anonymous)?;
        map.serialize_entry("dev", &m.dev)?;
        map.serialize_entry("end", &m.end)?;
        map.serialize_entry("inode", &m.inode)?;
        map.serialize_entry("locked", &m.locked)?;
        map.serialize_entry("offset", &m.offset)?;
        map.serialize_entry("path", &m.path)?;
        map.serialize_entry("perms", &m.perms)?;
        map.serialize_entry("private_clean", &m.private_clean)?;
        map.serialize_entry("private_dirty", &m.private_dirty)?;
        map.serialize_entry("pss", &m.pss)?;
        map.serialize_entry("rss", &m.rss)?;
        map.serialize_entry("shared_clean", &m.shared_clean)?;
        map.serialize_entry("shared_dirty", &m.shared_dirty)?;
        map.serialize_entry("size", &m.size)?;
        map.serialize_entry("start", &m.start)?;
        map.serialize_entry("swap", &m.swap)?;
        map.serialize_entry("swap_pss", &m.swap_pss)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memtrail_format::*;

    /// The document as it was built before it was streamed: the oracle.
    fn json_through_values(
        header: &Header,
        system: &SystemSample,
        processes: &[ProcessSample],
        filter: &Filter,
        sort: Sort,
    ) -> serde_json::Value {
        let procs: Vec<serde_json::Value> = sorted_processes(processes, sort)
            .into_iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap();
                let obj = v.as_object_mut().unwrap();
                if let Some(all) = &s.mappings {
                    let shown: Vec<&Mapping> = selected(s, filter, sort);
                    obj.insert(
                        "totals".into(),
                        serde_json::to_value(Totals::of(all)).unwrap(),
                    );
                    obj.insert("mappings".into(), serde_json::to_value(shown).unwrap());
                } else {
                    obj.insert("totals".into(), serde_json::Value::Null);
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

    fn mapping(i: u64) -> Mapping {
        // Every field different, so a field added to Mapping but not to
        // SortedMapping (or out of order) shows.
        Mapping {
            start: 0x1000 * i,
            end: 0x1000 * i + 0x3000,
            perms: "rw-p".into(),
            offset: 1,
            dev: 2,
            inode: 3,
            path: if i % 2 == 0 {
                "[heap]".into()
            } else {
                Default::default()
            },
            size: 12,
            rss: 8 + i,
            pss: 7,
            shared_clean: 6,
            shared_dirty: 5,
            private_clean: 4,
            private_dirty: 9,
            anonymous: 10 + i,
            swap: 11,
            swap_pss: Some(13),
            locked: None,
        }
    }

    #[test]
    fn streamed_json_is_the_value_json_byte_for_byte() {
        let header = Header {
            writer: "t".into(),
            host: Host {
                hostname: "h\"q".into(),
                kernel: "6.8".into(),
                page_size: 4096,
                clock_ticks: 100,
                boot_time_us: 1,
            },
            started_us: 2,
            target: "--pid 1".into(),
            detail: Detail::Maps,
            interval_us: None,
        };
        let system = SystemSample {
            time_us: 3,
            meminfo: MemInfo {
                mem_total: Some(100),
                ..MemInfo::default()
            },
            cgroups: vec![CgroupMemory {
                path: "/".into(),
                current_bytes: Some(5),
                max_bytes: None,
            }],
        };
        let with_maps = ProcessSample {
            time_us: 4,
            id: ProcessId {
                pid: 10,
                start_time: 5,
            },
            info: std::sync::Arc::new(ProcessInfo {
                ppid: 1,
                comm: "a".into(),
                cmdline: vec!["a".into(), "b".into()],
                uid: Some(0),
                cgroup: None,
            }),
            detail: Detail::Maps,
            status: Status {
                vm_rss: Some(40),
                ..Status::default()
            },
            cpu: Some(Cpu::default()),
            rollup: Some(Rollup::default()),
            fds: Some(Fds::default()),
            mappings: Some(std::sync::Arc::new((0..5).map(mapping).collect())),
            mappings_fresh: false,
        };
        let without = ProcessSample {
            id: ProcessId {
                pid: 11,
                start_time: 6,
            },
            mappings: None,
            rollup: None,
            ..with_maps.clone()
        };
        let empty = ProcessSample {
            id: ProcessId {
                pid: 12,
                start_time: 7,
            },
            mappings: Some(Vec::new().into()),
            ..with_maps.clone()
        };
        let processes = [with_maps, without, empty];
        for filter in [
            Filter::default(),
            Filter {
                min_rss_kb: 10,
                anon_only: true,
            },
        ] {
            for sort in [Sort::Rss, Sort::Addr, Sort::Anon] {
                let old = json_through_values(&header, &system, &processes, &filter, sort);
                let doc = json_doc(&header, &system, &processes, &filter, sort);
                assert_eq!(
                    serde_json::to_string_pretty(&doc).unwrap(),
                    serde_json::to_string_pretty(&old).unwrap(),
                    "{filter:?} {sort:?}"
                );
                assert_eq!(json(&header, &system, &processes, &filter, sort), old);
            }
        }
    }
}
