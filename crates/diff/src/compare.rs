//! One process at two moments: totals, regions, descriptors and threads.

use std::collections::BTreeMap;

use memtrail_format::{Fd, ProcessId, ProcessSample};
use serde::Serialize;

use crate::regions::{regions, RegionChange};

/// A figure before and after, KiB or a count; `None` where not observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Figure {
    pub before: Option<u64>,
    pub after: Option<u64>,
    pub delta: Option<i64>,
}

impl Figure {
    fn of(before: Option<u64>, after: Option<u64>) -> Figure {
        Figure {
            before,
            after,
            delta: before
                .zip(after)
                .map(|(a, b)| (b as i64).wrapping_sub(a as i64)),
        }
    }
}

/// A count of descriptors of one kind before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindChange {
    pub kind: &'static str,
    pub before: u64,
    pub after: u64,
    pub delta: i64,
}

/// Descriptors with the same target, opened (or closed) between the two
/// moments. Sockets, pipes and other kernel objects are grouped by kind
/// (`socket`, `pipe`, `anon_inode:[eventfd]`); files by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetCount {
    pub target: String,
    pub count: u64,
}

/// Descriptor changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FdChanges {
    pub total: Figure,
    /// Every kind, largest growth first.
    pub by_kind: Vec<KindChange>,
    /// Targets of descriptors open after but not before (needs `--detail
    /// full` in both samples): what was opened and never closed.
    pub opened: Vec<TargetCount>,
    /// Targets of descriptors open before but not after.
    pub closed: Vec<TargetCount>,
}

/// Whether a process was seen at both moments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    Both,
    /// Only in the later sample: it started in between.
    New,
    /// Only in the earlier sample: it exited in between.
    Gone,
}

/// One process compared at two moments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessDiff {
    pub pid: u32,
    pub start_time: u64,
    pub ppid: u32,
    pub command: String,
    pub presence: Presence,
    pub before_us: Option<u64>,
    pub after_us: Option<u64>,
    pub rss: Figure,
    pub anon: Figure,
    pub file: Figure,
    pub pss: Figure,
    pub swap: Figure,
    pub threads: Figure,
    pub fds: Option<FdChanges>,
    /// Regions ranked by growth (resident + swapped), largest first;
    /// empty unless both samples have regions.
    pub regions: Vec<RegionChange>,
}

impl ProcessDiff {
    /// The process's identity.
    pub fn id(&self) -> ProcessId {
        ProcessId {
            pid: self.pid,
            start_time: self.start_time,
        }
    }

    /// Growth that ranks processes: RSS, else anonymous memory.
    pub fn growth(&self) -> i64 {
        self.rss.delta.or(self.anon.delta).unwrap_or(0)
    }
}

/// The command line of a sample, or its `[comm]` when it has none.
pub fn command_of(s: &ProcessSample) -> String {
    if s.info.cmdline.is_empty() {
        format!("[{}]", s.info.comm)
    } else {
        s.info.cmdline.join(" ")
    }
}

/// Compares a process at two moments. At least one sample must be given;
/// with both, they should be the same process (same [`ProcessId`]).
pub fn compare(
    before: Option<&ProcessSample>,
    after: Option<&ProcessSample>,
) -> Option<ProcessDiff> {
    let any = after.or(before)?;
    let presence = match (before, after) {
        (Some(_), Some(_)) => Presence::Both,
        (None, Some(_)) => Presence::New,
        _ => Presence::Gone,
    };
    let fig =
        |f: fn(&ProcessSample) -> Option<u64>| Figure::of(before.and_then(f), after.and_then(f));
    let fds = match (
        before.and_then(|s| s.fds.as_ref()),
        after.and_then(|s| s.fds.as_ref()),
    ) {
        (None, None) => None,
        (a, b) => Some(fd_changes(a, b)),
    };
    let regions = match (
        before.and_then(|s| s.mappings.as_deref()),
        after.and_then(|s| s.mappings.as_deref()),
    ) {
        (Some(a), Some(b)) => regions(a, b),
        _ => Vec::new(),
    };
    Some(ProcessDiff {
        pid: any.id.pid,
        start_time: any.id.start_time,
        ppid: any.info.ppid,
        command: command_of(any),
        presence,
        before_us: before.map(|s| s.time_us),
        after_us: after.map(|s| s.time_us),
        rss: fig(|s| s.status.vm_rss.or(s.rollup.and_then(|r| r.rss))),
        anon: fig(|s| s.status.rss_anon.or(s.rollup.and_then(|r| r.anonymous))),
        file: fig(|s| s.status.rss_file),
        pss: fig(|s| s.rollup.and_then(|r| r.pss)),
        swap: fig(|s| s.status.vm_swap.or(s.rollup.and_then(|r| r.swap))),
        threads: fig(|s| s.status.threads),
        fds,
        regions,
    })
}

/// Groups a descriptor target: kernel objects by kind, files by path.
pub fn target_group(target: &str) -> &str {
    for kind in ["socket:", "pipe:"] {
        if target.starts_with(kind) {
            return &kind[..kind.len() - 1];
        }
    }
    target
}

/// Descriptor changes between two samples' descriptor lists.
pub fn compare_fds(a: &memtrail_format::Fds, b: &memtrail_format::Fds) -> FdChanges {
    fd_changes(Some(a), Some(b))
}

fn fd_changes(a: Option<&memtrail_format::Fds>, b: Option<&memtrail_format::Fds>) -> FdChanges {
    let zero = memtrail_format::Fds::default();
    let (x, y) = (a.unwrap_or(&zero), b.unwrap_or(&zero));
    let kinds = |f: &memtrail_format::Fds| {
        [
            ("file", f.file),
            ("socket", f.socket),
            ("pipe", f.pipe),
            ("anon_inode", f.anon_inode),
            ("other", f.other),
        ]
    };
    let mut by_kind: Vec<KindChange> = kinds(x)
        .into_iter()
        .zip(kinds(y))
        .map(|((kind, before), (_, after))| KindChange {
            kind,
            before,
            after,
            delta: after as i64 - before as i64,
        })
        .collect();
    by_kind.sort_by_key(|k| std::cmp::Reverse(k.delta));
    let (opened, closed) = match (
        a.and_then(|f| f.targets.as_deref()),
        b.and_then(|f| f.targets.as_deref()),
    ) {
        (Some(t0), Some(t1)) => (only_in(t1, t0), only_in(t0, t1)),
        _ => (Vec::new(), Vec::new()),
    };
    FdChanges {
        total: Figure::of(a.map(|f| f.total()), b.map(|f| f.total())),
        by_kind,
        opened,
        closed,
    }
}

/// Descriptors of `this` (by number and target) that `other` lacks, grouped.
fn only_in(this: &[Fd], other: &[Fd]) -> Vec<TargetCount> {
    let known: std::collections::HashSet<(u32, &str)> =
        other.iter().map(|f| (f.fd, f.target.as_str())).collect();
    let mut groups: BTreeMap<&str, u64> = BTreeMap::new();
    for f in this {
        if !known.contains(&(f.fd, f.target.as_str())) {
            *groups.entry(target_group(&f.target)).or_default() += 1;
        }
    }
    let mut out: Vec<TargetCount> = groups
        .into_iter()
        .map(|(target, count)| TargetCount {
            target: target.to_string(),
            count,
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.target.cmp(&b.target)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use memtrail_format::{Detail, Fds, ProcessInfo, Status};

    fn sample(rss: u64, targets: &[(u32, &str)]) -> ProcessSample {
        ProcessSample {
            time_us: rss,
            id: ProcessId {
                pid: 7,
                start_time: 1,
            },
            info: std::sync::Arc::new(ProcessInfo {
                comm: "d".into(),
                cmdline: vec!["d".into(), "--serve".into()],
                ..Default::default()
            }),
            detail: Detail::Full,
            status: Status {
                vm_rss: Some(rss),
                threads: Some(2),
                ..Default::default()
            },
            cpu: None,
            rollup: None,
            fds: Some(Fds {
                file: targets.len() as u64,
                targets: Some(
                    targets
                        .iter()
                        .map(|(fd, t)| Fd {
                            fd: *fd,
                            target: t.to_string(),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            mappings: None,
            mappings_fresh: true,
        }
    }

    #[test]
    fn figures_and_opened_descriptors() {
        let a = sample(100, &[(0, "/dev/null"), (3, "/tmp/a")]);
        let b = sample(
            350,
            &[
                (0, "/dev/null"),
                (4, "/tmp/x"),
                (5, "/tmp/x"),
                (6, "socket:[99]"),
            ],
        );
        let d = compare(Some(&a), Some(&b)).unwrap();
        assert_eq!(d.presence, Presence::Both);
        assert_eq!(d.rss.delta, Some(250));
        assert_eq!(d.anon.delta, None);
        assert_eq!(d.command, "d --serve");
        let fds = d.fds.unwrap();
        assert_eq!(fds.total.delta, Some(2));
        assert_eq!(
            fds.opened,
            vec![
                TargetCount {
                    target: "/tmp/x".into(),
                    count: 2
                },
                TargetCount {
                    target: "socket".into(),
                    count: 1
                },
            ]
        );
        assert_eq!(
            fds.closed,
            vec![TargetCount {
                target: "/tmp/a".into(),
                count: 1
            }]
        );
    }

    #[test]
    fn one_sided() {
        let a = sample(100, &[]);
        assert_eq!(compare(Some(&a), None).unwrap().presence, Presence::Gone);
        assert_eq!(compare(None, Some(&a)).unwrap().presence, Presence::New);
        assert!(compare(None, None).is_none());
    }
}
