//! Censuses (counts taken inside a process: objects by type, bytes by
//! allocation site) compared between two moments, as the by-hand diff of
//! two `gc.get_objects()` counts did.

use std::collections::HashMap;

use memtrail_format::{Census, ProcessId, Retention, RetentionChain};
use serde::Serialize;

use crate::roots::Role;

/// Whether a census source counts bytes (Python's `tracemalloc`, the
/// native allocation sites of `run --native`); every other source counts
/// objects.
pub fn counts_bytes(source: &str) -> bool {
    matches!(source, "tracemalloc" | "native")
}

/// One key's count at two moments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CensusChange {
    pub key: String,
    pub before: u64,
    pub after: u64,
    pub delta: i64,
    /// For a type whose retention the Python hook measured by the second
    /// moment: `root` or `held` (by `held_by`), as in `analyze`.
    pub role: Option<Role>,
    pub held_by: Option<String>,
    /// The chains that kept sampled instances alive, anchor first.
    pub retained_by: Vec<RetentionChain>,
}

/// One source of one process at two moments: what changed, largest
/// absolute change first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CensusDiff {
    /// The process counted, when the census named one.
    pub process: Option<ProcessId>,
    pub source: String,
    /// When the two censuses were taken (none: no census then).
    pub before_us: Option<u64>,
    pub after_us: Option<u64>,
    /// Keys whose count changed. A key absent from one census (not
    /// counted, or below the census's top keys) counts 0 there.
    pub changes: Vec<CensusChange>,
}

/// Pairs the censuses of `before` and `after` by process and source and
/// ranks each pair's changes.
pub fn compare_censuses(before: &[Census], after: &[Census]) -> Vec<CensusDiff> {
    type Key<'a> = (Option<ProcessId>, &'a str);
    let mut pairs: HashMap<Key<'_>, (Option<&Census>, Option<&Census>)> = HashMap::new();
    for c in before {
        pairs.entry((c.process, &c.source)).or_default().0 = Some(c);
    }
    for c in after {
        pairs.entry((c.process, &c.source)).or_default().1 = Some(c);
    }
    let mut out: Vec<CensusDiff> = pairs
        .into_iter()
        .map(|((process, source), (a, b))| CensusDiff {
            process,
            source: source.to_string(),
            before_us: a.map(|c| c.time_us),
            after_us: b.map(|c| c.time_us),
            changes: changes(a, b),
        })
        .collect();
    out.sort_by(|x, y| {
        x.process
            .cmp(&y.process)
            .then_with(|| x.source.cmp(&y.source))
    });
    out
}

fn changes(a: Option<&Census>, b: Option<&Census>) -> Vec<CensusChange> {
    let mut counts: HashMap<&str, (u64, u64)> = HashMap::new();
    for e in a.map_or(&[][..], |c| &c.counts) {
        counts.entry(&e.key).or_default().0 = e.count;
    }
    for e in b.map_or(&[][..], |c| &c.counts) {
        counts.entry(&e.key).or_default().1 = e.count;
    }
    let mut out: Vec<CensusChange> = counts
        .into_iter()
        .filter(|(_, (x, y))| x != y)
        .map(|(key, (before, after))| CensusChange {
            key: key.to_string(),
            before,
            after,
            delta: (after as i128 - before as i128).clamp(i64::MIN as i128, i64::MAX as i128)
                as i64,
            role: None,
            held_by: None,
            retained_by: Vec::new(),
        })
        .collect();
    out.sort_by(|x, y| {
        y.delta
            .unsigned_abs()
            .cmp(&x.delta.unsigned_abs())
            .then_with(|| x.key.cmp(&y.key))
    });
    out
}

/// Gives the changes of `diffs` the retention the Python hook measured
/// (the latest per process, source and type): a type that grew and is
/// held by something that did not grow is a root, one whose instances
/// hang off another type that grew is held by it (docs/leak-detection.md).
/// Roots that grew come first (the program's own classes, then those
/// holding growing objects), then the rest as before.
pub fn attach_retention(diffs: &mut [CensusDiff], retentions: &[Retention]) {
    for d in diffs.iter_mut() {
        let grew: std::collections::HashSet<String> = d
            .changes
            .iter()
            .filter(|c| c.delta > 0)
            .map(|c| c.key.clone())
            .collect();
        let mut rank: std::collections::HashMap<String, (bool, bool)> = Default::default();
        for c in d.changes.iter_mut() {
            let Some(r) = retentions
                .iter()
                .filter(|r| r.process == d.process && r.source == d.source && r.key == c.key)
                .max_by_key(|r| r.time_us)
            else {
                continue;
            };
            c.retained_by = r.chains.clone();
            // As in `analyze`: the program's own classes first, and those
            // that hold growing objects before those that hold none.
            let native = r.native || crate::roots::is_builtin(&c.key);
            rank.insert(c.key.clone(), (native, r.holds.is_empty()));
            let owner = r
                .owners
                .iter()
                .filter(|o| o.key != c.key && grew.contains(&o.key))
                .max_by(|a, b| a.count.cmp(&b.count).then_with(|| b.key.cmp(&a.key)))
                .filter(|o| o.count * 2 >= r.sampled.max(1));
            match owner {
                Some(o) => {
                    c.role = Some(Role::Held);
                    c.held_by = Some(o.key.clone());
                }
                None if c.delta > 0 && !r.chains.is_empty() => c.role = Some(Role::Root),
                None => {}
            }
        }
        // A stable sort: the rest keeps its order by size of change.
        d.changes.sort_by_key(|c| {
            let root = c.role == Some(Role::Root);
            let (native, empty) = rank.get(&c.key).copied().unwrap_or((true, true));
            (!root, root && native, root && empty)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memtrail_format::CensusCount;

    fn census(time_us: u64, counts: &[(&str, u64)]) -> Census {
        Census {
            time_us,
            process: Some(ProcessId {
                pid: 7,
                start_time: 1,
            }),
            source: "gc".into(),
            counts: counts
                .iter()
                .map(|(k, n)| CensusCount {
                    key: k.to_string(),
                    count: *n,
                })
                .collect(),
        }
    }

    #[test]
    fn changes_are_ranked_by_size_and_missing_keys_count_zero() {
        let a = census(1, &[("dict", 1000), ("list", 50), ("gone", 5), ("same", 9)]);
        let b = census(
            2,
            &[("dict", 1010), ("list", 550), ("Widget", 300), ("same", 9)],
        );
        let d = compare_censuses(&[a], &[b]);
        assert_eq!(d.len(), 1);
        let got: Vec<(&str, i64)> = d[0].changes.iter().map(|c| (&*c.key, c.delta)).collect();
        assert_eq!(
            got,
            [("list", 500), ("Widget", 300), ("dict", 10), ("gone", -5)]
        );
        assert_eq!((d[0].before_us, d[0].after_us), (Some(1), Some(2)));
    }

    #[test]
    fn roots_that_grew_come_first_with_their_chains() {
        let a = census(1, &[("dict", 1000), ("app.Session", 10), ("app.Child", 30)]);
        let b = census(
            2,
            &[("dict", 3000), ("app.Session", 60), ("app.Child", 180)],
        );
        let mut d = compare_censuses(&[a], &[b]);
        let retention = |key: &str, owners: &[(&str, u64)], steps: &[&str]| Retention {
            time_us: 2,
            process: d[0].process,
            source: "gc".into(),
            key: key.into(),
            native: false,
            sampled: 4,
            owners: owners
                .iter()
                .map(|(k, n)| CensusCount {
                    key: k.to_string(),
                    count: *n,
                })
                .collect(),
            holds: vec![],
            chains: vec![RetentionChain {
                steps: steps.iter().map(|s| s.to_string()).collect(),
                instances: 4,
            }],
        };
        let r = [
            retention("app.Session", &[], &["app.SESSIONS", "[<key>]"]),
            retention(
                "app.Child",
                &[("app.Session", 4)],
                &["app.SESSIONS", "[<key>]", "Session.children", "[i]"],
            ),
        ];
        attach_retention(&mut d, &r);
        let got: Vec<(&str, Option<Role>)> =
            d[0].changes.iter().map(|c| (&*c.key, c.role)).collect();
        assert_eq!(
            got,
            [
                ("app.Session", Some(Role::Root)),
                ("dict", None),
                ("app.Child", Some(Role::Held)),
            ]
        );
        assert_eq!(d[0].changes[0].retained_by[0].steps[0], "app.SESSIONS");
        assert_eq!(d[0].changes[2].held_by.as_deref(), Some("app.Session"));
    }

    #[test]
    fn a_census_on_one_side_only_is_all_change() {
        let b = census(2, &[("x", 3)]);
        let d = compare_censuses(&[], &[b]);
        assert_eq!(d[0].before_us, None);
        assert_eq!(d[0].changes[0].delta, 3);
    }
}
