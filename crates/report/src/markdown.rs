//! `memtrail report --format markdown`: the terminal summary's content as
//! Markdown tables, for an issue or a pull request.
//!
//! Every string from the recorded system goes through [`cell`]: Markdown
//! and HTML syntax in it (`|`, `*`, `` ` ``, `<`, `[`, ...) is escaped, so a
//! process named `<script>` shows as text wherever the Markdown is shown.

use std::fmt::Write;

use memtrail_diff::Verdict;

use crate::analysis::{human_seconds, rate, tag, value};
use crate::recording::{tree, Report};
use crate::summary::trail_sparkline;
use crate::{change_name, human_kib_signed, top_regions, Format};

/// The Markdown rendering.
#[derive(Debug, Clone, Copy, Default)]
pub struct Markdown;

/// Makes recorded text safe in a Markdown table cell.
pub fn cell(s: &str) -> String {
    crate::markup_escape(s, |c| match c {
        '|' => Some("&#124;"),
        // Markdown's inline syntax, shown literally.
        '\\' => Some(r"\\"),
        '`' => Some(r"\`"),
        '*' => Some(r"\*"),
        '_' => Some(r"\_"),
        '[' => Some(r"\["),
        ']' => Some(r"\]"),
        '~' => Some(r"\~"),
        _ => None,
    })
}

impl Format for Markdown {
    fn render(&self, report: &Report) -> String {
        let mut out = String::new();
        let a = &report.analysis;
        let _ = writeln!(out, "# memtrail report: {}\n", cell(&report.source.name));
        let _ = writeln!(
            out,
            "{}; **{} leaking**{}\n",
            report.headline(),
            a.leaks(),
            if report.source.complete {
                ""
            } else {
                " (the recording is incomplete)"
            }
        );
        let _ = writeln!(out, "| verdict | pid | command | samples | span |");
        let _ = writeln!(out, "| --- | ---: | --- | ---: | ---: |");
        for p in &a.processes {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                tag(p.verdict),
                p.pid,
                cell(&p.command),
                p.samples,
                human_seconds(p.last_us.saturating_sub(p.first_us) as f64 / 1e6)
            );
        }
        for p in &a.processes {
            let Some(track) = report.track(p.id()) else {
                continue;
            };
            let _ = writeln!(
                out,
                "\n## {} pid {} {}\n",
                tag(p.verdict),
                p.pid,
                cell(&track.comm)
            );
            let _ = writeln!(
                out,
                "| series | over time | first | last | pattern | verdict | growth |"
            );
            let _ = writeln!(out, "| --- | --- | ---: | ---: | --- | --- | ---: |");
            for (name, trail, f) in track.judged(p) {
                let _ = writeln!(
                    out,
                    "| {name} | {} | {} | {} | {} | {} | {} |",
                    trail_sparkline(trail, 32),
                    value(f, f.first),
                    value(f, f.last),
                    f.pattern.name(),
                    if f.verdict == Verdict::Leak {
                        "**leak**"
                    } else {
                        f.verdict.name()
                    },
                    rate(f, f.growth_per_hour)
                );
            }
            let sites = crate::native::sites(p);
            if !sites.is_empty() {
                let _ = writeln!(
                    out,
                    "\n| native allocation site | live (est.) | growth | verdict |"
                );
                let _ = writeln!(out, "| --- | ---: | ---: | --- |");
                for f in sites {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} |",
                        cell(crate::native::site(f)),
                        value(f, f.last),
                        rate(f, f.growth_per_hour),
                        f.verdict.name()
                    );
                }
            }
            let regions = top_regions(p, 5);
            if !regions.is_empty() {
                let _ = writeln!(out, "\n| growth | change | count | region |");
                let _ = writeln!(out, "| ---: | --- | ---: | --- |");
                for r in regions {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} |",
                        human_kib_signed(r.growth_kib),
                        change_name(r.change),
                        r.count,
                        cell(&r.label)
                    );
                }
            }
            owners(&mut out, p);
        }
        if !report.markers().is_empty() {
            let _ = writeln!(out, "\n## Markers\n");
            let _ = writeln!(out, "| time | marker | pid | source |");
            let _ = writeln!(out, "| ---: | --- | ---: | --- |");
            for m in report.markers() {
                let _ = writeln!(
                    out,
                    "| +{:.1}s | {} | {} | {} |",
                    report.offset(m.time_us),
                    cell(&m.label),
                    m.pid.map(|p| p.to_string()).unwrap_or_default(),
                    cell(&m.source)
                );
            }
        }
        let rows = tree(report);
        if !rows.is_empty() {
            let _ = writeln!(out, "\n## Process tree\n");
            let _ = writeln!(out, "| process | from | to | end |");
            let _ = writeln!(out, "| --- | ---: | ---: | --- |");
            for row in rows {
                let t = row.track;
                let _ = writeln!(
                    out,
                    "| {}{} {} | +{:.1}s | +{:.1}s | {} |",
                    "&nbsp;&nbsp;".repeat(row.depth.min(10)),
                    t.id.pid,
                    cell(&t.comm),
                    report.offset(t.first_us),
                    report.offset(t.last_us),
                    t.end(),
                );
            }
        }
        out
    }
}

/// What keeps the growing types alive, roots first, as a table.
fn owners(out: &mut String, p: &memtrail_diff::ProcessVerdict) {
    use crate::owners::{arrange, fit_list, growth_list, holds_text};
    let groups =
        arrange(p.findings.iter().filter(|f| {
            f.verdict == Verdict::Leak || f.pattern == memtrail_diff::Pattern::Growing
        }));
    for group in groups {
        let _ = writeln!(out, "\n**What keeps it alive ({})**\n", cell(group.source));
        let _ = writeln!(
            out,
            "| role | type | growth | kept by | each holds | with it |"
        );
        let _ = writeln!(out, "| --- | --- | ---: | --- | --- | --- |");
        let chain = |f: &memtrail_diff::Finding| -> String {
            f.retained_by
                .first()
                .map(|c| {
                    c.steps
                        .iter()
                        .map(|s| cell(s))
                        .collect::<Vec<_>>()
                        .join(" → ")
                })
                .unwrap_or_default()
        };
        for root in &group.roots {
            let f = root.finding;
            let _ = writeln!(
                out,
                "| **root** | **{}** | {} | {} | {} | {} |",
                cell(root.key),
                rate(f, f.growth_per_hour),
                chain(f),
                if f.holds.is_empty() {
                    String::new()
                } else {
                    cell(&holds_text(&f.holds, 200))
                },
                cell(&fit_list(&growth_list(&root.with_it), 200)),
            );
        }
        for (f, key) in &group.others {
            let role = match &f.held_by {
                Some(owner) => format!("held by {}", cell(owner)),
                None => "growing".to_string(),
            };
            let _ = writeln!(
                out,
                "| {role} | {} | {} | {} | | |",
                cell(key),
                rate(f, f.growth_per_hour),
                chain(f),
            );
        }
        if !group.builtins.is_empty() {
            let _ = writeln!(
                out,
                "| builtins | {} | | | | |",
                cell(&fit_list(&growth_list(&group.builtins), 400))
            );
        }
    }
}
