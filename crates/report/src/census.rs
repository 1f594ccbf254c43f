//! Census changes and markers between two moments, for `memtrail diff`.

use std::fmt::Write;

use memtrail_diff::{CensusDiff, Role};
use memtrail_format::Marker;

use crate::owners::chain_lines;
use crate::{printable, shorten};

/// Each census pair as a table of its `top` largest changes (type or site,
/// before, after, delta), then the markers of the window with their
/// offsets from `started_us`. Empty when there is neither.
pub fn text(diffs: &[CensusDiff], markers: &[Marker], started_us: u64, top: usize) -> String {
    let mut out = String::new();
    let offset = |us: Option<u64>| match us {
        Some(us) => format!("+{:.1}s", us.saturating_sub(started_us) as f64 / 1e6),
        None => "none".to_string(),
    };
    for d in diffs {
        let who = match d.process {
            Some(id) => format!("pid {}", id.pid),
            None => "no process named".to_string(),
        };
        let _ = writeln!(
            out,
            "\ncensus {} of {who} ({} -> {}): {} keys changed",
            shorten(&printable(&d.source), 20),
            offset(d.before_us),
            offset(d.after_us),
            d.changes.len()
        );
        if d.changes.is_empty() {
            continue;
        }
        let what = if memtrail_diff::counts_bytes(&d.source) {
            "site (bytes)"
        } else {
            "key"
        };
        let _ = writeln!(
            out,
            "  {:<44} {:>10} {:>10} {:>10}",
            what, "before", "after", "delta"
        );
        for c in d.changes.iter().take(top) {
            // A native site names its function first (`keep (a.c:3) ←
            // caller`): cut at the right there, at the left for paths.
            let key = if d.source == "native" {
                crate::shorten(&c.key, 44)
            } else {
                shorten_left(&printable(&c.key), 44)
            };
            let _ = writeln!(
                out,
                "  {:<44} {:>10} {:>10} {:>+10}",
                key, c.before, c.after, c.delta
            );
            match (c.role, c.retained_by.first()) {
                (Some(Role::Root), Some(chain)) => {
                    for (i, line) in chain_lines(&chain.steps, 66).iter().enumerate() {
                        let lead = if i == 0 { "root, kept by" } else { "" };
                        let _ = writeln!(out, "    {lead:<13} {line}");
                    }
                }
                (Some(Role::Held), _) => {
                    if let Some(owner) = &c.held_by {
                        let _ = writeln!(
                            out,
                            "    {:<13} {}",
                            "held by",
                            shorten(&printable(owner), 66)
                        );
                    }
                }
                _ => {}
            }
        }
        if d.changes.len() > top {
            let _ = writeln!(out, "  ... {} more (--top N)", d.changes.len() - top);
        }
    }
    if !markers.is_empty() {
        let _ = writeln!(out, "\nmarkers between the two moments:");
        for m in markers {
            let _ = writeln!(
                out,
                "  {:>8}  {} ({}{})",
                offset(Some(m.time_us)),
                shorten(&printable(&m.label), 50),
                m.source,
                m.pid.map(|p| format!(", pid {p}")).unwrap_or_default()
            );
        }
    }
    out
}

/// Cut at the left: the end of a path and its line number matter most.
fn shorten_left(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let tail: String = s.chars().skip(n - (max - 1)).collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use memtrail_diff::CensusChange;
    use memtrail_format::ProcessId;

    #[test]
    fn census_changes_and_markers_read_as_a_table() {
        let d = CensusDiff {
            process: Some(ProcessId {
                pid: 42,
                start_time: 1,
            }),
            source: "gc".into(),
            before_us: Some(1_000_000),
            after_us: Some(3_000_000),
            changes: vec![CensusChange {
                key: "__main__.Widget".into(),
                before: 10,
                after: 510,
                delta: 500,
                role: Some(Role::Root),
                held_by: None,
                retained_by: vec![memtrail_format::RetentionChain {
                    steps: vec!["__main__.KEPT".into(), "[i]".into()],
                    instances: 4,
                }],
            }],
        };
        let m = Marker {
            time_us: 2_000_000,
            label: "step".into(),
            pid: None,
            source: "cli".into(),
        };
        let text = text(&[d], &[m], 0, 20);
        assert!(text.contains("census gc of pid 42 (+1.0s -> +3.0s): 1 keys changed"));
        assert!(text.contains("__main__.Widget"));
        assert!(text.contains("+500"));
        assert!(text.contains("root, kept by __main__.KEPT → [i]"), "{text}");
        assert!(text.contains("+2.0s  step (cli)"));
        assert_eq!(shorten_left("/a/very/long/path.py:12", 10), "…ath.py:12");
    }
}
