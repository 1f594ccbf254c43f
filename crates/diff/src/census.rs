//! Censuses (counts taken inside a process: objects by type, bytes by
//! allocation site) compared between two moments, as the by-hand diff of
//! two `gc.get_objects()` counts did.

use std::collections::HashMap;

use memtrail_format::{Census, ProcessId};
use serde::Serialize;

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
    fn a_census_on_one_side_only_is_all_change() {
        let b = census(2, &[("x", 3)]);
        let d = compare_censuses(&[], &[b]);
        assert_eq!(d[0].before_us, None);
        assert_eq!(d[0].changes[0].delta, 3);
    }
}
