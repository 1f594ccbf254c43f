//! `memtrail report --format markdown`: the terminal summary's content as
//! Markdown tables, for an issue or a pull request.
//!
//! Every string from the recorded system goes through [`cell`]: Markdown
//! and HTML syntax in it (`|`, `*`, `` ` ``, `<`, `[`, ...) is escaped, so a
//! process named `<script>` shows as text wherever the Markdown is shown.

use std::fmt::Write;

use memtrail_diff::{Verdict, SERIES_NAMES};

use crate::analysis::{human_seconds, rate, tag, value};
use crate::recording::{tree, Report};
use crate::summary::sparkline;
use crate::{change_name, human_kib_signed, printable, top_regions, Format};

/// The Markdown rendering.
#[derive(Debug, Clone, Copy, Default)]
pub struct Markdown;

/// Makes recorded text safe in a Markdown table cell.
pub fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in printable(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("&#124;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

impl Format for Markdown {
    fn render(&self, report: &Report) -> String {
        let mut out = String::new();
        let a = &report.analysis;
        let _ = writeln!(out, "# memtrail report: {}\n", cell(&report.source.name));
        let _ = writeln!(
            out,
            "{}, {} samples over {}, {}; **{} leaking**{}\n",
            crate::count(a.processes.len(), "process", "processes"),
            a.samples,
            human_seconds(report.span()),
            crate::count(report.markers().len(), "marker", "markers"),
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
            for name in SERIES_NAMES {
                let (Some(trail), Some(f)) = (track.series(name), p.finding(name)) else {
                    continue;
                };
                let values: Vec<u64> = trail
                    .buckets()
                    .iter()
                    .map(|b| b.max.max(0.0) as u64)
                    .collect();
                let _ = writeln!(
                    out,
                    "| {name} | {} | {} | {} | {} | {} | {} |",
                    sparkline(&values, 32),
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
                let end = match (t.exited, t.exit_code) {
                    (true, Some(code)) => format!("exited {code}"),
                    (true, None) => "exited".to_string(),
                    (false, _) => String::new(),
                };
                let _ = writeln!(
                    out,
                    "| {}{} {} | +{:.1}s | +{:.1}s | {end} |",
                    "&nbsp;&nbsp;".repeat(row.depth.min(10)),
                    t.id.pid,
                    cell(&t.comm),
                    report.offset(t.first_us),
                    report.offset(t.last_us),
                );
            }
        }
        out
    }
}
