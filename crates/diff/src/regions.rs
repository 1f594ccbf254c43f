//! Region matching: the same region across two samples of one process.

use std::collections::HashMap;

use memtrail_format::Mapping;
use serde::Serialize;

/// How a region changed between two samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Grown,
    Shrunk,
    Same,
    New,
    Gone,
}

/// One region compared across two samples. Sizes in KiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionChange {
    pub change: Change,
    /// The label: a path, `[heap]`, `[anon]`.
    pub label: String,
    /// Start address in the later sample (the earlier one if gone).
    pub start: u64,
    pub anonymous_region: bool,
    pub rss_before: u64,
    pub rss_after: u64,
    pub rss_delta: i64,
    pub anon_delta: i64,
    pub swap_delta: i64,
    pub size_delta: i64,
    /// Matched by label only: the address changed.
    pub moved: bool,
}

fn identity(m: &Mapping) -> (u64, u64, u64, &str) {
    (m.start, m.dev, m.inode, m.path.as_str())
}

fn delta(a: u64, b: u64) -> i64 {
    (b as i64).wrapping_sub(a as i64)
}

fn compare(a: Option<&Mapping>, b: Option<&Mapping>, moved: bool) -> RegionChange {
    let zero = Mapping::default();
    let (x, y) = (a.unwrap_or(&zero), b.unwrap_or(&zero));
    let rss_delta = delta(x.rss, y.rss);
    let change = match (a, b) {
        (None, _) => Change::New,
        (_, None) => Change::Gone,
        _ if rss_delta > 0 || x.swap < y.swap => Change::Grown,
        _ if rss_delta < 0 => Change::Shrunk,
        _ => Change::Same,
    };
    let m = b.or(a).unwrap_or(&zero);
    RegionChange {
        change,
        label: m.label().to_string(),
        start: m.start,
        anonymous_region: m.is_anonymous(),
        rss_before: x.rss,
        rss_after: y.rss,
        rss_delta,
        anon_delta: delta(x.anonymous, y.anonymous),
        swap_delta: delta(x.swap, y.swap),
        size_delta: delta(x.size, y.size),
        moved,
    }
}

/// Every region of `before` and `after` matched and compared, ordered by
/// the size of the change in resident plus swapped memory, largest first.
pub fn regions(before: &[Mapping], after: &[Mapping]) -> Vec<RegionChange> {
    // Match identities with a merge of the two lists ordered by identity:
    // /proc lists regions by address, so the sorts are near free, and no
    // string is hashed (a hash join spent most of a 50k-region diff there).
    let order = |list: &[Mapping]| {
        let mut idx: Vec<usize> = (0..list.len()).collect();
        idx.sort_by(|&a, &b| identity(&list[a]).cmp(&identity(&list[b])));
        idx
    };
    let (b_order, a_order) = (order(before), order(after));
    let mut out = Vec::with_capacity(after.len());
    let mut unmatched_after = Vec::new();
    let mut left: Vec<usize> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < b_order.len() || j < a_order.len() {
        let ord = match (b_order.get(i), a_order.get(j)) {
            (Some(&x), Some(&y)) => identity(&before[x]).cmp(&identity(&after[y])),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match ord {
            std::cmp::Ordering::Equal => {
                out.push(compare(
                    Some(&before[b_order[i]]),
                    Some(&after[a_order[j]]),
                    false,
                ));
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => {
                left.push(b_order[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                unmatched_after.push(&after[a_order[j]]);
                j += 1;
            }
        }
    }
    // Fall back to labels, pairing in address order.
    left.sort_unstable();
    unmatched_after.sort_by_key(|m| m.start);
    let mut by_label: HashMap<&str, std::collections::VecDeque<usize>> = HashMap::new();
    for i in left {
        by_label.entry(before[i].label()).or_default().push_back(i);
    }
    for m in unmatched_after {
        match by_label.get_mut(m.label()).and_then(|q| q.pop_front()) {
            Some(i) => out.push(compare(Some(&before[i]), Some(m), true)),
            None => out.push(compare(None, Some(m), false)),
        }
    }
    for q in by_label.into_values() {
        for i in q {
            out.push(compare(Some(&before[i]), None, false));
        }
    }
    out.sort_by_key(|c| {
        (
            std::cmp::Reverse((c.rss_delta + c.swap_delta).unsigned_abs()),
            c.start,
        )
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(start: u64, path: &str, rss: u64) -> Mapping {
        Mapping {
            start,
            end: start + 0x10000,
            perms: "rw-p".into(),
            path: path.into(),
            size: 64,
            rss,
            anonymous: if path.starts_with('/') { 0 } else { rss },
            ..Default::default()
        }
    }

    fn check(before: &[Mapping], after: &[Mapping], expected: &[(Change, &str, i64, bool)]) {
        let got: Vec<(Change, String, i64, bool)> = regions(before, after)
            .into_iter()
            .map(|c| (c.change, c.label, c.rss_delta, c.moved))
            .collect();
        let want: Vec<(Change, String, i64, bool)> = expected
            .iter()
            .map(|(c, l, d, m)| (*c, l.to_string(), *d, *m))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn same_identity_is_matched_and_ranked_by_growth() {
        check(
            &[region(0x1000, "[heap]", 10), region(0x9000, "", 4)],
            &[region(0x1000, "[heap]", 30), region(0x9000, "", 1000)],
            &[
                (Change::Grown, "[anon]", 996, false),
                (Change::Grown, "[heap]", 20, false),
            ],
        );
    }

    #[test]
    fn moved_region_matches_by_label() {
        check(
            &[region(0x1000, "/lib/a.so", 8)],
            &[region(0x5000, "/lib/a.so", 8)],
            &[(Change::Same, "/lib/a.so", 0, true)],
        );
    }

    #[test]
    fn new_and_gone_regions() {
        check(
            &[region(0x1000, "", 8)],
            &[region(0x1000, "", 8), region(0x7000, "[stack]", 12)],
            &[
                (Change::New, "[stack]", 12, false),
                (Change::Same, "[anon]", 0, false),
            ],
        );
        check(
            &[region(0x1000, "/x", 5)],
            &[],
            &[(Change::Gone, "/x", -5, false)],
        );
    }

    #[test]
    fn empty_inputs() {
        assert!(regions(&[], &[]).is_empty());
    }
}
