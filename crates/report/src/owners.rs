//! Census findings arranged by ownership, for every rendering that shows a
//! leak: the root types first, each with the chain of references that
//! keeps it alive, what one instance holds and the growing types that hang
//! off it; then the other growing types; then the built-in types in one
//! summary line (see [`memtrail_diff::roots`]).

use std::fmt::Write;

use memtrail_diff::roots::is_builtin;
use memtrail_diff::{Finding, Holding, Kind, Role};

use crate::analysis::{rate, value};
use crate::{printable, shorten};

/// A root type and what hangs off it.
#[derive(Debug)]
pub struct Root<'a> {
    pub finding: &'a Finding,
    pub key: &'a str,
    /// Growing types (not built-in) whose instances hang off this one.
    pub with_it: Vec<(&'a Finding, &'a str)>,
}

/// The census findings of one source, arranged.
#[derive(Debug)]
pub struct Arranged<'a> {
    pub source: &'a str,
    pub roots: Vec<Root<'a>>,
    /// Growing types that are neither roots nor hang off a root shown.
    pub others: Vec<(&'a Finding, &'a str)>,
    /// Growing built-in types that are not roots (source `gc` only).
    pub builtins: Vec<(&'a Finding, &'a str)>,
}

/// `census:SOURCE:KEY` as (SOURCE, KEY).
pub fn split(series: &str) -> Option<(&str, &str)> {
    series.strip_prefix("census:")?.split_once(':')
}

/// Arranges census findings by source, in their order (roots first, as
/// the analysis orders them).
pub fn arrange<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Vec<Arranged<'a>> {
    let mut out: Vec<Arranged<'a>> = Vec::new();
    let findings: Vec<&Finding> = findings
        .into_iter()
        .filter(|f| f.kind == Kind::Census)
        .collect();
    for f in &findings {
        let Some((source, _)) = split(&f.series) else {
            continue;
        };
        if !out.iter().any(|a| a.source == source) {
            out.push(Arranged {
                source,
                roots: Vec::new(),
                others: Vec::new(),
                builtins: Vec::new(),
            });
        }
    }
    for group in &mut out {
        let mine: Vec<(&Finding, &str)> = findings
            .iter()
            .filter_map(|f| {
                let (source, key) = split(&f.series)?;
                (source == group.source).then_some((*f, key))
            })
            .collect();
        for (f, key) in &mine {
            if f.role == Some(Role::Root) {
                group.roots.push(Root {
                    finding: f,
                    key,
                    with_it: Vec::new(),
                });
            }
        }
        for (f, key) in mine {
            if f.role == Some(Role::Root) {
                continue;
            }
            if group.source == "gc" && is_builtin(key) {
                group.builtins.push((f, key));
                continue;
            }
            let root = f
                .held_by
                .as_deref()
                .and_then(|owner| group.roots.iter_mut().find(|r| r.key == owner));
            match root {
                Some(root) => root.with_it.push((f, key)),
                None => group.others.push((f, key)),
            }
        }
    }
    out
}

/// `~5 dict, 5 list, 3 app.Child`: what one instance holds, as many
/// entries as fit in `width` columns.
pub fn holds_text(holds: &[Holding], width: usize) -> String {
    let items: Vec<String> = holds
        .iter()
        .map(|h| format!("{} {}", h.per_instance, printable(&h.key)))
        .collect();
    let mut line = String::from("~");
    for (i, item) in items.iter().enumerate() {
        let extra = if i == 0 { 0 } else { 2 };
        if i > 0 && line.chars().count() + extra + item.chars().count() > width {
            line.push_str(", …");
            break;
        }
        if i > 0 {
            line.push_str(", ");
        }
        line.push_str(item);
    }
    line
}

/// A chain's steps joined by arrows, broken into lines of at most `width`
/// columns (at an arrow; a step too long for a line is cut).
pub fn chain_lines(steps: &[String], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for (i, step) in steps.iter().enumerate() {
        let step = shorten(&printable(step), width.saturating_sub(2).max(8));
        let piece = if i == 0 { step } else { format!(" → {step}") };
        if !line.is_empty() && line.chars().count() + piece.chars().count() > width {
            lines.push(std::mem::take(&mut line));
            line = piece.trim_start().to_string();
        } else {
            line.push_str(&piece);
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `dict +1.3M/h, list +40/h`: findings by name and growth.
pub fn growth_list(items: &[(&Finding, &str)]) -> Vec<String> {
    items
        .iter()
        .map(|(f, key)| format!("{} {}", printable(key), rate(f, f.growth_per_hour)))
        .collect()
}

/// As many items as fit in `width` columns, joined with `, `, with a
/// count of the rest.
pub fn fit_list(items: &[String], width: usize) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for item in items {
        let extra = if out.is_empty() { 0 } else { 2 };
        if !out.is_empty() && out.chars().count() + extra + item.chars().count() + 10 > width {
            break;
        }
        if extra > 0 {
            out.push_str(", ");
        }
        out.push_str(item);
        shown += 1;
    }
    if shown < items.len() {
        let _ = write!(out, " (+{} more)", items.len() - shown);
    }
    out
}

/// The census findings of one process as text for `memtrail analyze`,
/// fitting 80 columns: per source, the roots with their chains, holdings
/// and what hangs off them; the other growing keys; built-in types in one
/// line.
pub(crate) fn census_text(out: &mut String, findings: &[&Finding]) {
    for group in arrange(findings.iter().copied()) {
        for root in &group.roots {
            let f = root.finding;
            let _ = writeln!(
                out,
                "     root    {:<9} {:>13}  conf {:.2}  {} -> {}",
                f.pattern.name(),
                rate(f, f.growth_per_hour),
                f.confidence,
                value(f, f.first),
                value(f, f.last),
            );
            let _ = writeln!(
                out,
                "{:17}{}",
                "",
                shorten(&printable(&format!("{}:{}", group.source, root.key)), 62)
            );
            if let Some(chain) = f.retained_by.first() {
                for (i, line) in chain_lines(&chain.steps, 54).iter().enumerate() {
                    let lead = if i == 0 { "kept by " } else { "        " };
                    let _ = writeln!(out, "{:17}{lead}{line}", "");
                }
            }
            if !f.holds.is_empty() {
                let _ = writeln!(out, "{:17}each holds {}", "", holds_text(&f.holds, 52));
            }
            if !root.with_it.is_empty() {
                let _ = writeln!(
                    out,
                    "{:17}with it: {}",
                    "",
                    fit_list(&growth_list(&root.with_it), 54)
                );
            }
        }
        for (f, key) in &group.others {
            // The type or site is the point, and can be long: a line of its own.
            let _ = writeln!(
                out,
                "     census  {:<9} {:>13}  conf {:.2}  {} -> {}",
                f.pattern.name(),
                rate(f, f.growth_per_hour),
                f.confidence,
                value(f, f.first),
                value(f, f.last),
            );
            let name = format!("{}:{key}", group.source);
            let _ = writeln!(out, "{:17}{}", "", shorten(&printable(&name), 62));
            if let Some(owner) = &f.held_by {
                let _ = writeln!(out, "{:17}held by {}", "", shorten(&printable(owner), 54));
            }
        }
        if !group.builtins.is_empty() {
            let _ = writeln!(
                out,
                "     builtins {}",
                fit_list(&growth_list(&group.builtins), 80 - 14)
            );
        }
    }
}

/// What keeps the growing types of a process alive, in a few lines of at
/// most `width` columns for `memtrail report`: per source, each root with
/// its growth, chain, holdings and what hangs off it, then the other
/// growing keys and the built-in types, a line each. Empty without census
/// findings.
pub fn brief_lines(findings: &[Finding], width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for group in arrange(findings.iter().filter(|f| grows(f))) {
        lines.push(format!("inside ({}): roots first", printable(group.source)));
        for root in &group.roots {
            let f = root.finding;
            lines.push(format!(
                "root {} {}",
                shorten(&printable(root.key), width.saturating_sub(20)),
                rate(f, f.growth_per_hour)
            ));
            if let Some(chain) = f.retained_by.first() {
                for line in chain_lines(&chain.steps, width.saturating_sub(5)) {
                    lines.push(format!("     {line}"));
                }
            }
            if !f.holds.is_empty() {
                lines.push(format!(
                    "     each holds {}",
                    holds_text(&f.holds, width.saturating_sub(16))
                ));
            }
            if !root.with_it.is_empty() {
                lines.push(format!(
                    "     with it: {}",
                    fit_list(&growth_list(&root.with_it), width.saturating_sub(14))
                ));
            }
        }
        if !group.others.is_empty() {
            lines.push(format!(
                "growing: {}",
                fit_list(&growth_list(&group.others), width.saturating_sub(9))
            ));
        }
        if !group.builtins.is_empty() {
            lines.push(format!(
                "builtins: {}",
                fit_list(&growth_list(&group.builtins), width.saturating_sub(10))
            ));
        }
    }
    lines
}

/// Whether a census finding is worth showing: a leak or growth.
fn grows(f: &Finding) -> bool {
    f.kind == Kind::Census
        && (f.verdict == memtrail_diff::Verdict::Leak
            || f.pattern == memtrail_diff::Pattern::Growing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_break_at_arrows() {
        let steps: Vec<String> = ["app.cache.SESSIONS", "[<key>]", "Session.children", "[i]"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            chain_lines(&steps, 80),
            ["app.cache.SESSIONS → [<key>] → Session.children → [i]"]
        );
        assert_eq!(
            chain_lines(&steps, 30),
            ["app.cache.SESSIONS → [<key>]", "→ Session.children → [i]"]
        );
        let holds = [
            Holding {
                key: "dict".into(),
                per_instance: 20,
            },
            Holding {
                key: "list".into(),
                per_instance: 3,
            },
        ];
        assert_eq!(holds_text(&holds, 40), "~20 dict, 3 list");
    }
}
