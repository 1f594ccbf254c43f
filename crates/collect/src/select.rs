//! Which processes a tick reads: listing /proc and following a tree.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use memtrail_format::ProcessId;

use crate::parse;

/// One process found by listing /proc, from its `stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub(crate) id: ProcessId,
    pub(crate) ppid: u32,
    pub(crate) comm: String,
}

/// Every process under `proc_root`, sorted by pid. Processes that vanish
/// while being listed, or whose stat cannot be read, are left out.
pub(crate) fn list(proc_root: &Path) -> std::io::Result<Vec<Listed>> {
    let mut listed = Vec::new();
    for entry in std::fs::read_dir(proc_root)? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(bytes) = std::fs::read(entry.path().join("stat")) else {
            continue;
        };
        let Ok(stat) = parse::stat(&bytes) else {
            continue;
        };
        listed.push(Listed {
            id: ProcessId {
                pid,
                start_time: stat.start_time,
            },
            ppid: stat.ppid,
            comm: stat.comm,
        });
    }
    listed.sort_by_key(|l| l.id.pid);
    Ok(listed)
}

/// The processes of a tree: `seeds` (the root and every member seen
/// before) that are still listed, and all their descendants now.
///
/// Members are followed by identity, so a descendant whose parent exited
/// (and who was reparented to init or a subreaper) stays in the tree.
pub(crate) fn tree(
    listed: &[Listed],
    seeds: impl IntoIterator<Item = ProcessId>,
) -> BTreeSet<ProcessId> {
    let mut children: HashMap<u32, Vec<ProcessId>> = HashMap::new();
    for l in listed {
        children.entry(l.ppid).or_default().push(l.id);
    }
    let present: BTreeSet<ProcessId> = listed.iter().map(|l| l.id).collect();
    let mut members: BTreeSet<ProcessId> = seeds
        .into_iter()
        .filter(|id| present.contains(id))
        .collect();
    let mut todo: Vec<ProcessId> = members.iter().copied().collect();
    while let Some(parent) = todo.pop() {
        // A listed process whose ppid is this pid is this process's child:
        // had its parent been an earlier holder of the pid, it would have
        // been reparented when that one exited.
        for &child in children.get(&parent.pid).into_iter().flatten() {
            if child.pid != parent.pid && members.insert(child) {
                todo.push(child);
            }
        }
    }
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(pid: u32, start_time: u64, ppid: u32) -> Listed {
        Listed {
            id: ProcessId { pid, start_time },
            ppid,
            comm: String::new(),
        }
    }

    fn id(pid: u32, start_time: u64) -> ProcessId {
        ProcessId { pid, start_time }
    }

    #[test]
    fn tree_follows_descendants_and_reparented_members() {
        let all = [
            listed(1, 1, 0),
            listed(10, 5, 1),
            listed(11, 6, 10),
            listed(12, 7, 11),
            listed(20, 8, 1),
            // pid 30 was a member (30@9) but was reparented to init.
            listed(30, 9, 1),
            listed(31, 10, 30),
        ];
        let members = |seeds: &[ProcessId]| {
            tree(&all, seeds.iter().copied())
                .into_iter()
                .map(|i| i.pid)
                .collect::<Vec<_>>()
        };
        assert_eq!(members(&[id(10, 5)]), [10, 11, 12]);
        assert_eq!(members(&[id(11, 6)]), [11, 12]);
        assert_eq!(members(&[id(10, 5), id(30, 9)]), [10, 11, 12, 30, 31]);
        // A seed whose pid now belongs to another process is not a member.
        assert_eq!(members(&[id(10, 4)]), Vec::<u32>::new());
        assert_eq!(members(&[]), Vec::<u32>::new());
    }
}
