//! `memtrail report`'s terminal summary: per process its verdict, a
//! sparkline per series and the regions that grew, fitting 80 columns.
//!
//! Colour is written as ANSI styles when asked for; the caller decides
//! (the CLI writes through `anstream`, which strips them when standard
//! output is not a terminal or `NO_COLOR` is set).

use std::fmt::Write;

use anstyle::{AnsiColor, Style};
use memtrail_diff::{ProcessVerdict, Verdict};

use crate::analysis::{rate, tag, value};
use crate::recording::{tree, Report};
use crate::summary::trail_sparkline;
use crate::{human_kib_signed, shorten, top_regions, Format};

/// Sparkline width: the series lines stay within 80 columns.
const SPARK: usize = 32;

/// The terminal summary.
#[derive(Debug, Clone, Copy, Default)]
pub struct Text {
    /// Write ANSI colours.
    pub color: bool,
}

impl Text {
    fn paint(&self, style: Style, s: &str) -> String {
        if self.color {
            format!("{}{s}{}", style.render(), style.render_reset())
        } else {
            s.to_string()
        }
    }

    fn verdict(&self, v: Verdict) -> String {
        let style = match v {
            Verdict::Leak => AnsiColor::Red.on_default().bold(),
            Verdict::NoLeak => AnsiColor::Green.on_default(),
            Verdict::InsufficientData => AnsiColor::Yellow.on_default(),
        };
        // Padded before painting, so columns line up with and without colour.
        self.paint(style, &format!("{:<4}", tag(v)))
    }
}

impl Format for Text {
    fn render(&self, report: &Report) -> String {
        let mut out = String::new();
        let a = &report.analysis;
        let _ = writeln!(
            out,
            "{}",
            shorten(
                &format!(
                    "memtrail report: {}{}",
                    report.source.name,
                    if report.source.complete {
                        ""
                    } else {
                        " (incomplete)"
                    }
                ),
                80
            )
        );
        let _ = writeln!(out, "{}; {} leaking", report.headline(), a.leaks());
        // Processes too short to judge (shells, launchers, pool workers)
        // add up: one line for all of them, as `memtrail analyze` does.
        let mut brief = Vec::new();
        for p in &a.processes {
            if p.verdict == Verdict::InsufficientData && a.processes.len() > 1 {
                brief.push(format!("{} {}", p.pid, shorten(&p.comm, 15)));
                continue;
            }
            out.push('\n');
            self.process(&mut out, report, p);
        }
        if !brief.is_empty() {
            let what = format!(
                " {} too short to judge:",
                crate::count(brief.len(), "process", "processes")
            );
            let head = format!("{}{what}", self.verdict(Verdict::InsufficientData));
            let mut line = String::new();
            // Visible width so far: the 4-column tag and the words after it.
            let mut width = 4 + what.chars().count();
            let mut shown = 0;
            for b in &brief {
                if width + b.chars().count() + 2 > 76 {
                    break;
                }
                line.push_str(if shown == 0 { " " } else { ", " });
                line.push_str(b);
                width += b.chars().count() + 2;
                shown += 1;
            }
            if shown < brief.len() {
                line.push_str(", …");
            }
            let _ = writeln!(out, "\n{head}{line}");
        }
        if !report.markers().is_empty() {
            let _ = writeln!(out, "\nmarkers");
            for m in report.markers() {
                let pid = m.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
                let line = format!(
                    "  {:>8}  {}{pid}",
                    format!("+{:.1}s", report.offset(m.time_us)),
                    m.label
                );
                let _ = writeln!(out, "{}", shorten(&line, 80));
            }
        }
        let rows = tree(report);
        if !rows.is_empty() {
            let _ = writeln!(out, "\nprocess tree (seconds after the start)");
            for row in rows {
                let t = row.track;
                let end = t.end();
                let end = if end.is_empty() {
                    end
                } else {
                    format!(", {end}")
                };
                let life = format!(
                    "  {:.1}-{:.1}s{end}",
                    report.offset(t.first_us),
                    report.offset(t.last_us)
                );
                let indent = "  ".repeat(row.depth.min(10));
                let head = format!("  {indent}{} ", t.id.pid);
                let room = 80usize.saturating_sub(head.chars().count() + life.chars().count());
                let _ = writeln!(out, "{head}{}{life}", shorten(&t.comm, room.max(4)));
            }
        }
        out
    }
}

impl Text {
    fn process(&self, out: &mut String, report: &Report, p: &ProcessVerdict) {
        let _ = writeln!(
            out,
            "{} pid {:<7} {}",
            self.verdict(p.verdict),
            p.pid,
            crate::process_label(&p.command, 80 - 18)
        );
        let Some(track) = report.track(p.id()) else {
            return;
        };
        for (name, trail, f) in track.judged(p) {
            let spark = trail_sparkline(trail, SPARK);
            let pattern = if f.verdict == Verdict::Leak {
                self.paint(AnsiColor::Red.on_default().bold(), "LEAK")
            } else {
                f.pattern.name().to_string()
            };
            let _ = writeln!(
                out,
                "  {:<7} {:<w$} {:>10} -> {:<10} {}",
                name,
                spark,
                value(f, f.first),
                value(f, f.last),
                pattern,
                w = SPARK
            );
            if f.verdict == Verdict::Leak {
                let _ = writeln!(
                    out,
                    "{:10}growing {}, retained {}, confidence {:.2}",
                    "",
                    rate(f, f.growth_per_hour),
                    rate(f, f.retained_per_hour),
                    f.confidence
                );
            }
        }
        let sites = crate::native::sites(p);
        if !sites.is_empty() {
            let _ = writeln!(out, "  native allocation sites (estimated live bytes)");
            for f in sites {
                let _ = writeln!(
                    out,
                    "  {:>12} {:>12} {}",
                    value(f, f.last),
                    rate(f, f.growth_per_hour),
                    shorten(crate::native::site(f), 80 - 29)
                );
            }
        }
        let regions = top_regions(p, 3);
        if !regions.is_empty() {
            let _ = writeln!(out, "  top growing regions");
            for r in regions {
                let count = if r.count > 1 {
                    format!(" x{}", r.count)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "  {:>12} {:<5} {}",
                    human_kib_signed(r.growth_kib),
                    crate::change_name(r.change),
                    shorten(&format!("{}{count}", r.label), 80 - 22)
                );
            }
        }
        for line in crate::owners::brief_lines(&p.findings, 80 - 2) {
            let _ = writeln!(out, "  {line}");
        }
    }
}
