//! `memtrail report --html`: one self-contained page, opened straight
//! from disk.
//!
//! Pure HTML, CSS and inline SVG: no script at all, nothing fetched (no
//! CDN, font or image from elsewhere), and a Content-Security-Policy that
//! forbids it anyway. Charts are drawn by plotters' SVG backend from the
//! downsampled series (each bucket's minimum and maximum, so peaks and
//! troughs show however long the recording); markers are labelled vertical
//! lines and the analyzer's fitted trend is drawn dashed over its series.
//!
//! Every string from the recorded system goes through [`html_escape`]
//! here, or through plotters, which escapes the text and attributes it
//! writes into the SVG.

use std::fmt::Write;

use memtrail_diff::{ProcessVerdict, Verdict};
use plotters::prelude::*;

use crate::analysis::{human_seconds, rate, tag, value};
use crate::recording::{tree, Report, Track};
use crate::{change_name, html_escape, human_kib_signed, printable, top_regions, Format};

/// The page's Content-Security-Policy: inline styles, nothing else.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// Processes drawn in full (leaks first, then by growth): a recording of
/// every process on a machine would otherwise make a page of hundreds of
/// charts (each about 40 KiB of SVG).
pub const MAX_SECTIONS: usize = 25;

/// Chart size in pixels.
const WIDTH: u32 = 960;
const HEIGHT: u32 = 300;

const STYLE: &str = "
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1000px; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.leak { color: #fff; background: #c0392b; font-weight: bold; }
.ok { color: #fff; background: #27ae60; }
.unknown { background: #f1c40f; }
section { border-top: 2px solid #ddd; margin-top: 1.5em; }
.bar { position: relative; height: 0.9em; background: #eee; min-width: 300px; }
.bar span { position: absolute; top: 0; bottom: 0; background: #2980b9; }
.cmd { font-family: monospace; word-break: break-all; }
svg { display: block; }
";

/// The HTML rendering.
#[derive(Debug, Clone, Copy, Default)]
pub struct Html;

fn class(v: Verdict) -> &'static str {
    match v {
        Verdict::Leak => "leak",
        Verdict::NoLeak => "ok",
        Verdict::InsufficientData => "unknown",
    }
}

impl Format for Html {
    fn render(&self, report: &Report) -> String {
        let mut out = String::new();
        let a = &report.analysis;
        let title = html_escape(&report.source.name);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
             <meta name=\"referrer\" content=\"no-referrer\">\n\
             <title>memtrail report: {title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        );
        let _ = writeln!(out, "<h1>memtrail report: {title}</h1>");
        let _ = writeln!(
            out,
            "<p>{}; <strong>{} leaking</strong>{}.</p>",
            report.headline(),
            a.leaks(),
            if report.source.complete {
                ""
            } else {
                " (the recording is incomplete: no end frame)"
            }
        );

        let _ = writeln!(out, "<h2>Verdicts</h2>\n<table>");
        let _ = writeln!(
            out,
            "<tr><th>verdict</th><th>pid</th><th>command</th><th>samples</th><th>span</th><th>leaking series</th></tr>"
        );
        for p in &a.processes {
            let leaking: Vec<String> = p
                .findings
                .iter()
                .filter(|f| f.verdict == Verdict::Leak)
                .map(|f| format!("{} {}", f.series, rate(f, f.growth_per_hour)))
                .collect();
            let _ = writeln!(
                out,
                "<tr><td class=\"{}\">{}</td><td class=\"n\"><a href=\"#p{}-{}\">{}</a></td>\
                 <td class=\"cmd\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                class(p.verdict),
                tag(p.verdict),
                p.pid,
                p.start_time,
                p.pid,
                html_escape(&p.command),
                p.samples,
                human_seconds(p.last_us.saturating_sub(p.first_us) as f64 / 1e6),
                html_escape(&leaking.join(", ")),
            );
        }
        let _ = writeln!(out, "</table>");

        if !report.markers().is_empty() {
            let _ = writeln!(out, "<h2>Markers</h2>\n<table>");
            let _ = writeln!(
                out,
                "<tr><th>time</th><th>marker</th><th>pid</th><th>source</th></tr>"
            );
            for m in report.markers() {
                let _ = writeln!(
                    out,
                    "<tr><td class=\"n\">+{:.1}s</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                    report.offset(m.time_us),
                    html_escape(&m.label),
                    m.pid.map(|p| p.to_string()).unwrap_or_default(),
                    html_escape(&m.source),
                );
            }
            let _ = writeln!(out, "</table>");
        }

        process_tree(&mut out, report);

        for p in a.processes.iter().take(MAX_SECTIONS) {
            if let Some(track) = report.track(p.id()) {
                process_section(&mut out, report, p, track);
            }
        }
        if a.processes.len() > MAX_SECTIONS {
            let _ = writeln!(
                out,
                "<p>{} more processes are in the verdicts table without charts: \
                 `memtrail report --format markdown` lists them all, and \
                 `memtrail export` has every sample.</p>",
                a.processes.len() - MAX_SECTIONS
            );
        }
        let _ = writeln!(out, "</body>\n</html>");
        out
    }
}

fn process_tree(out: &mut String, report: &Report) {
    let rows = tree(report);
    if rows.is_empty() {
        return;
    }
    let span = report.span().max(1e-6);
    let _ = writeln!(out, "<h2>Process tree</h2>\n<table>");
    let _ = writeln!(
        out,
        "<tr><th>process</th><th>from</th><th>to</th><th>end</th><th>lifetime</th></tr>"
    );
    for row in rows {
        let t = row.track;
        let (from, to) = (report.offset(t.first_us), report.offset(t.last_us));
        let end = t.end();
        let left = (from / span * 100.0).clamp(0.0, 100.0);
        let width = ((to - from) / span * 100.0).clamp(0.5, 100.0 - left);
        let _ = writeln!(
            out,
            "<tr><td style=\"padding-left:{:.1}em\">{} {}</td><td class=\"n\">+{from:.1}s</td>\
             <td class=\"n\">+{to:.1}s</td><td>{end}</td><td><div class=\"bar\">\
             <span style=\"left:{left:.2}%;width:{width:.2}%\"></span></div></td></tr>",
            0.6 + 1.2 * row.depth.min(10) as f64,
            t.id.pid,
            html_escape(&t.comm),
        );
    }
    let _ = writeln!(out, "</table>");
}

fn process_section(out: &mut String, report: &Report, p: &ProcessVerdict, track: &Track) {
    let _ = writeln!(
        out,
        "<section id=\"p{}-{}\">\n<h2><span class=\"{}\">{}</span> pid {} {}</h2>",
        p.pid,
        p.start_time,
        class(p.verdict),
        tag(p.verdict),
        p.pid,
        html_escape(&track.comm)
    );
    let _ = writeln!(
        out,
        "<p class=\"cmd\">{}</p>\n<p>ppid {}, start time {} (clock ticks after boot), \
         {} samples from +{:.1}s to +{:.1}s{}</p>",
        html_escape(&p.command),
        p.ppid,
        p.start_time,
        p.samples,
        report.offset(track.first_us),
        report.offset(track.last_us),
        if track.exited { ", exited" } else { "" }
    );

    for spec in &CHARTS {
        let recorded: Vec<&str> = spec
            .series
            .iter()
            .copied()
            .filter(|n| track.series(n).is_some())
            .collect();
        if !recorded.is_empty() {
            out.push_str(&chart(report, p, track, spec, &recorded));
        }
    }

    let _ = writeln!(out, "<table>");
    let _ = writeln!(
        out,
        "<tr><th>series</th><th>first</th><th>last</th><th>pattern</th><th>verdict</th>\
         <th>growth</th><th>retained</th><th>confidence</th><th>note</th></tr>"
    );
    for f in &p.findings {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td>\
             <td class=\"{}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{:.2}</td><td>{}</td></tr>",
            html_escape(&f.series),
            value(f, f.first),
            value(f, f.last),
            f.pattern.name(),
            class(f.verdict),
            f.verdict.name(),
            rate(f, f.growth_per_hour),
            rate(f, f.retained_per_hour),
            f.confidence,
            html_escape(f.note.as_deref().unwrap_or("")),
        );
    }
    let _ = writeln!(out, "</table>");

    let sites = crate::native::sites(p);
    if !sites.is_empty() {
        let _ = writeln!(
            out,
            "<h3>Native allocation sites</h3>\n<table>\n<tr><th>site (function, file:line, callers)</th>\
             <th>live (est.)</th><th>growth</th><th>verdict</th></tr>"
        );
        for f in sites {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"{}\">{}</td></tr>",
                html_escape(crate::native::site(f)),
                value(f, f.last),
                rate(f, f.growth_per_hour),
                class(f.verdict),
                f.verdict.name()
            );
        }
        let _ = writeln!(out, "</table>");
    }
    let regions = top_regions(p, 10);
    if !regions.is_empty() {
        let _ = writeln!(out, "<h3>Top growing regions</h3>\n<table>");
        let _ = writeln!(
            out,
            "<tr><th>growth</th><th>change</th><th>count</th><th>start</th><th>region</th></tr>"
        );
        for r in regions {
            let _ = writeln!(
                out,
                "<tr><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{:x}</td><td class=\"cmd\">{}</td></tr>",
                human_kib_signed(r.growth_kib),
                change_name(r.change),
                r.count,
                r.start,
                html_escape(&r.label),
            );
        }
        let _ = writeln!(out, "</table>");
    }
    let _ = writeln!(out, "</section>");
}

/// One chart of a process section.
struct Chart {
    caption: &'static str,
    /// The y axis' unit.
    unit: &'static str,
    /// The series' unit to the axis'.
    scale: f64,
    /// The series it shows; drawn when the process has any of them.
    series: &'static [&'static str],
}

const CHARTS: [Chart; 2] = [
    Chart {
        caption: "Memory (MiB): RSS = anon + file + shmem",
        unit: "MiB",
        scale: 1.0 / 1024.0,
        series: &["rss", "anon", "file", "shmem", "pss", "swap"],
    },
    Chart {
        caption: "File descriptors and threads",
        unit: "count",
        scale: 1.0,
        series: &["fds", "threads"],
    },
];

/// A colour per series, told apart without relying on red and green alone.
fn colour(series: &str) -> RGBColor {
    match series {
        "rss" => RGBColor(0x22, 0x22, 0x22),
        "anon" => RGBColor(0xc0, 0x39, 0x2b),
        "file" => RGBColor(0x29, 0x80, 0xb9),
        "shmem" => RGBColor(0x8e, 0x44, 0xad),
        "pss" => RGBColor(0xe6, 0x7e, 0x22),
        "swap" => RGBColor(0x16, 0xa0, 0x85),
        "fds" => RGBColor(0x29, 0x80, 0xb9),
        _ => RGBColor(0xd3, 0x54, 0x00),
    }
}

/// The chart `spec` of the recorded `series` of a process as an SVG
/// element; a message instead if plotters fails (it should not with an
/// in-memory backend).
fn chart(
    report: &Report,
    p: &ProcessVerdict,
    track: &Track,
    spec: &Chart,
    series: &[&str],
) -> String {
    let mut svg = String::new();
    match draw(&mut svg, report, p, track, spec, series) {
        Ok(()) => svg + "\n",
        Err(e) => format!(
            "<p>chart {} unavailable: {}</p>\n",
            html_escape(spec.caption),
            html_escape(&e)
        ),
    }
}

fn draw(
    svg: &mut String,
    report: &Report,
    p: &ProcessVerdict,
    track: &Track,
    spec: &Chart,
    series: &[&str],
) -> Result<(), String> {
    let &Chart {
        caption,
        unit,
        scale,
        ..
    } = spec;
    let err = |e: DrawingAreaErrorKind<_>| e.to_string();
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    // Time in the unit that keeps the axis' labels short.
    let span = report.span();
    let (per, x_unit) = if span < 180.0 {
        (1.0, "seconds")
    } else if span < 3.0 * 3600.0 {
        (60.0, "minutes")
    } else if span < 3.0 * 86400.0 {
        (3600.0, "hours")
    } else {
        (86400.0, "days")
    };
    let x_max = (span / per).max(1e-3);
    let y_max = series
        .iter()
        .filter_map(|n| track.series(n))
        .flat_map(|t| t.buckets())
        .map(|b| b.max * scale)
        .fold(0.0, f64::max)
        .max(if scale < 1.0 { 1.0 } else { 4.0 })
        * 1.12;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(format!("{x_unit} after the recording started"))
        .y_desc(unit)
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .draw()
        .map_err(err)?;

    for &name in series {
        let Some(trail) = track.series(name) else {
            continue;
        };
        let c = colour(name);
        // Each bucket's minimum then maximum: the line visits every trough
        // and peak of the points the bucket holds.
        let points: Vec<(f64, f64)> = trail
            .buckets()
            .iter()
            .flat_map(|b| [(b.t / per, b.min * scale), (b.t / per, b.max * scale)])
            .collect();
        let width = if name == "rss" || name == "fds" { 2 } else { 1 };
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(width)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(3)));
    }

    // The analyzer's fitted line, over the series it judged: the first
    // series (RSS or descriptors) always, and any series judged a leak.
    let offset = report.offset(p.first_us);
    for (i, &name) in series.iter().enumerate() {
        let Some(f) = p.finding(name) else { continue };
        let Some(line) = f.trend_line else { continue };
        if i > 0 && f.verdict != Verdict::Leak {
            continue;
        }
        let c = colour(name);
        let from = ((offset + line.from_s) / per, line.from.max(0.0) * scale);
        let to = ((offset + line.to_s) / per, line.to.max(0.0) * scale);
        chart
            .draw_series(DashedLineSeries::new(
                [from, to],
                8,
                5,
                c.mix(0.8).stroke_width(2),
            ))
            .map_err(err)?
            .label(format!("{name} trend {}", rate(f, f.growth_per_hour)))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.mix(0.8)));
    }

    // Markers: labelled vertical lines.
    let marker_style = RGBColor(0x55, 0x55, 0x55).mix(0.7).stroke_width(1);
    for (i, m) in report
        .markers()
        .iter()
        .filter(|m| m.pid.map_or(true, |pid| pid == p.pid))
        .enumerate()
    {
        let t = report.offset(m.time_us) / per;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(t, 0.0), (t, y_max)],
                marker_style,
            )))
            .map_err(err)?;
        // Labels alternate between two heights so neighbours do not overlap.
        let y = y_max * if i % 2 == 0 { 0.96 } else { 0.90 };
        let label: String = printable(&m.label).chars().take(40).collect();
        chart
            .draw_series(std::iter::once(Text::new(
                label,
                (t, y),
                ("sans-serif", 12).into_font().color(&BLACK),
            )))
            .map_err(err)?;
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(0xcc, 0xcc, 0xcc))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
