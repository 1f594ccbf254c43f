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
use plotters::style::text_anchor::{HPos, Pos, VPos};

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

/// The band above a chart's plot that holds its marker labels: two rows.
const MARKER_BAND: u32 = 30;
const MARKER_ROW: i32 = 14;
/// The marker labels' font size as given to plotters (which draws text at
/// about 0.8 of it).
const MARKER_FONT: f64 = 12.0;

/// A generous estimate of a marker label's width in pixels (no font
/// metrics here): 0.62 em per character at the size drawn.
fn label_width(label: &str) -> i32 {
    (label.chars().count() as f64 * MARKER_FONT * 0.8 * 0.62).ceil() as i32
}

const STYLE: &str = "
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1000px; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.leak { color: #fff; background: #c0392b; font-weight: bold; }
.ok { color: #fff; background: #27ae60; }
.unknown { background: #f1c40f; }
span.leak, span.ok, span.unknown { padding: 0.1em 0.45em; border-radius: 0.2em; }
section { border-top: 2px solid #ddd; margin-top: 1.5em; }
.bar { position: relative; height: 0.9em; background: #eee; min-width: 300px; }
.bar span { position: absolute; top: 0; bottom: 0; background: #2980b9; }
.cmd { font-family: monospace; }
.cmd span { white-space: nowrap; }
svg { display: block; }
.chain code { background: #f4f4f4; padding: 0 0.2em; white-space: nowrap; }
.root { font-weight: bold; }
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
                command_html(&p.command),
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
                "<p>{} more {} in the verdicts table without charts: \
                 `memtrail report --format markdown` lists them all, and \
                 `memtrail export` has every sample.</p>",
                a.processes.len() - MAX_SECTIONS,
                if a.processes.len() - MAX_SECTIONS == 1 {
                    "process is"
                } else {
                    "processes are"
                }
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
        command_html(&p.command),
        p.ppid,
        p.start_time,
        p.samples,
        report.offset(track.first_us),
        report.offset(track.last_us),
        if track.exited { ", exited" } else { "" }
    );

    owners_section(out, p);

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
    next_steps(out, report, p);
    let _ = writeln!(out, "</section>");
}

/// What keeps the growing types alive, roots first: each root's chain of
/// references as a row of steps, what one instance holds and what hangs
/// off it; the other growing types and the built-in ones after.
fn owners_section(out: &mut String, p: &ProcessVerdict) {
    use crate::owners::{arrange, fit_list, growth_list, holds_text};
    let groups =
        arrange(p.findings.iter().filter(|f| {
            f.verdict == Verdict::Leak || f.pattern == memtrail_diff::Pattern::Growing
        }));
    for group in groups {
        let _ = writeln!(
            out,
            "<h3>What keeps it alive ({})</h3>\n<table>",
            html_escape(group.source)
        );
        let _ = writeln!(
            out,
            "<tr><th>role</th><th>type</th><th>growth</th><th>kept by</th>\
             <th>each holds</th><th>with it</th></tr>"
        );
        let chain = |f: &memtrail_diff::Finding| -> String {
            f.retained_by
                .first()
                .map(|c| {
                    let steps: Vec<String> = c
                        .steps
                        .iter()
                        .map(|s| format!("<code>{}</code>", html_escape(s)))
                        .collect();
                    format!("<span class=\"chain\">{}</span>", steps.join(" → "))
                })
                .unwrap_or_default()
        };
        for root in &group.roots {
            let f = root.finding;
            let _ = writeln!(
                out,
                "<tr><td class=\"{}\">root</td><td class=\"root cmd\">{}</td><td class=\"n\">{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td></tr>",
                class(f.verdict),
                html_escape(root.key),
                rate(f, f.growth_per_hour),
                chain(f),
                html_escape(&if f.holds.is_empty() {
                    String::new()
                } else {
                    holds_text(&f.holds, 200)
                }),
                html_escape(&fit_list(&growth_list(&root.with_it), 200)),
            );
        }
        for (f, key) in &group.others {
            let role = match &f.held_by {
                Some(owner) => format!("held by {}", html_escape(owner)),
                None => "growing".to_string(),
            };
            let _ = writeln!(
                out,
                "<tr><td>{role}</td><td class=\"cmd\">{}</td><td class=\"n\">{}</td>\
                 <td>{}</td><td></td><td></td></tr>",
                html_escape(key),
                rate(f, f.growth_per_hour),
                chain(f),
            );
        }
        if !group.builtins.is_empty() {
            let _ = writeln!(
                out,
                "<tr><td>builtins</td><td colspan=\"5\">{}</td></tr>",
                html_escape(&fit_list(&growth_list(&group.builtins), 400))
            );
        }
        let _ = writeln!(out, "</table>");
    }
}

/// What a reader can do next about a process that grew: the commands
/// that look closer, for its recording and its kind of program.
fn next_steps(out: &mut String, report: &Report, p: &ProcessVerdict) {
    if p.verdict != Verdict::Leak {
        return;
    }
    let file = shell_quote(&report.source.name);
    let mut steps = vec![format!(
        "which regions grew, appeared or vanished between two moments (markers \
         make good moments): <code>memtrail diff {file} --pid {} --from start --to end</code>",
        p.pid
    )];
    if !p.exited {
        steps.push(format!(
            "a grown region among its neighbours, in address order as pmap prints \
             them (a library's or an arena's neighbours tell whose memory it is): \
             <code>memtrail snap --pid {} --sort addr</code>",
            p.pid
        ));
    }
    let python = p
        .command
        .split(' ')
        .next()
        .and_then(|argv0| argv0.rsplit('/').next())
        .is_some_and(|name| name.starts_with("python"));
    let has = |source: &str| {
        p.findings
            .iter()
            .any(|f| f.series.starts_with(&format!("census:{source}:")))
    };
    if python && !has("gc") {
        steps.push(
            "which objects pile up: run it again under <code>memtrail run --python-gc</code> \
             (objects by type) or <code>--python-tracemalloc</code> (bytes by source line)"
                .to_string(),
        );
        if !p.exited {
            steps.push(format!(
                "or, without a restart if its environment has the hook \
                 (<code>memtrail python-hook install</code>): \
                 <code>memtrail attach {} --python-gc --duration 10m</code>",
                p.pid
            ));
        }
    } else if !python && !has("native") {
        steps.push(
            "which C, C++ or Rust function allocates it: run it again under \
             <code>memtrail run --native</code> (sampled allocation stacks at a few \
             percent of cost, docs/native.md)"
                .to_string(),
        );
    }
    let _ = writeln!(out, "<h3>What next</h3>\n<ul>");
    for step in steps {
        // `file` and the pid are escaped or numeric; the rest is ours.
        let _ = writeln!(out, "<li>{step}</li>");
    }
    let _ = writeln!(out, "</ul>");
}

/// A command line for a `.cmd` element: each argument in a span that
/// never wraps (lines break between arguments, never inside a path).
fn command_html(command: &str) -> String {
    command
        .split(' ')
        .map(|arg| format!("<span>{}</span>", html_escape(arg)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `name` as one shell word, escaped for HTML.
fn shell_quote(name: &str) -> String {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@".contains(c));
    let word = if plain {
        name.to_string()
    } else {
        format!("'{}'", name.replace('\'', "'\\''"))
    };
    html_escape(&word)
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
    // Markers of this process (or of none in particular).
    let markers: Vec<&memtrail_format::Marker> = report
        .markers()
        .iter()
        .filter(|m| m.pid.map_or(true, |pid| pid == p.pid))
        .collect();
    // Counts are drawn on whole numbers: a top of at least 4, ticks at
    // most one per unit.
    let counts = spec.unit == "count";
    let y_max = if counts { y_max.ceil() } else { y_max };
    let area = root
        .margin(8, 8, 8, 8)
        .titled(caption, ("sans-serif", 16))
        .map_err(err)?;
    // A band of its own between the caption and the plot for the marker
    // labels: never over the series, never under the legend (which sits
    // inside the plot).
    let body = if markers.is_empty() {
        area
    } else {
        area.split_vertically(MARKER_BAND).1
    };
    let mut chart = ChartBuilder::on(&body)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(err)?;
    let whole = |v: &f64| format!("{v:.0}");
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(format!("{x_unit} after the recording started"))
        .y_desc(unit)
        .light_line_style(RGBColor(0xee, 0xee, 0xee));
    if counts {
        mesh.y_labels((y_max as usize).clamp(2, 10))
            .y_label_formatter(&whole);
    }
    mesh.draw().map_err(err)?;

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

    // Markers: vertical lines through the plot, labelled in the band
    // above it, each label on the first of two rows where it does not run
    // into the one before it.
    let marker_style = RGBColor(0x55, 0x55, 0x55).mix(0.7).stroke_width(1);
    let (x_pixels, y_pixels) = chart.plotting_area().get_pixel_range();
    let mut row_ends = [i32::MIN; 2];
    for m in &markers {
        let t = report.offset(m.time_us) / per;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(t, 0.0), (t, y_max)],
                marker_style,
            )))
            .map_err(err)?;
        let label: String = printable(&m.label).chars().take(40).collect();
        let (x, _) = chart.backend_coord(&(t, y_max));
        let width = label_width(&label);
        // Left-aligned on its line; right-aligned when it would leave the
        // chart on the right.
        let (left, anchor) = if x + width > x_pixels.end {
            (x - width, HPos::Right)
        } else {
            (x, HPos::Left)
        };
        let row = if left > row_ends[0] + 4 {
            0
        } else if left > row_ends[1] + 4 {
            1
        } else {
            usize::from(row_ends[1] < row_ends[0])
        };
        row_ends[row] = left + width;
        let y = y_pixels.start - MARKER_BAND as i32 + 2 + row as i32 * MARKER_ROW;
        let style = ("sans-serif", MARKER_FONT)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(anchor, VPos::Top));
        root.draw(&Text::new(label, (x, y), style)).map_err(err)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Source;
    use crate::recording::ReportBuilder;
    use memtrail_format::{Fds, Marker, ProcessId, ProcessInfo, ProcessSample, Record, Status};

    /// A leaking process (RSS up 1 MiB a second, descriptors 3 to 6) over
    /// 40 s, with markers close together, in the middle and at the very
    /// end, rendered to HTML.
    fn page() -> String {
        page_of(&[
            "/usr/bin/python3",
            "/srv/a-long-directory-name/with-hyphens/leaky-service.py",
        ])
    }

    /// A report page of a leaking process whose command line is `cmdline`.
    fn page_of(cmdline: &[&str]) -> String {
        let id = ProcessId {
            pid: 42,
            start_time: 7,
        };
        let info = ProcessInfo {
            comm: cmdline[0]
                .rsplit('/')
                .next()
                .unwrap()
                .chars()
                .take(15)
                .collect(),
            cmdline: cmdline.iter().map(|a| a.to_string()).collect(),
            ..ProcessInfo::default()
        };
        let mut builder = ReportBuilder::new();
        let marker = |t: u64, label: &str| {
            Record::Marker(Marker {
                time_us: t * 1_000_000,
                label: label.into(),
                pid: None,
                source: "cli".into(),
            })
        };
        for t in 0..40u64 {
            let status = Status {
                vm_rss: Some(10_240 + t * 1024),
                rss_anon: Some(4096 + t * 1024),
                rss_file: Some(6144),
                threads: Some(1),
                ..Status::default()
            };
            let mut s = ProcessSample::summary(t * 1_000_000, id, info.clone(), status);
            s.fds = Some(Fds {
                file: 3 + t / 13,
                ..Fds::default()
            });
            builder.add(Record::Process(Box::new(s)));
            match t {
                1 => builder.add(marker(1, "leak starts")),
                2 => builder.add(marker(2, "warm-up done, second marker")),
                20 => builder.add(marker(20, "halfway")),
                39 => builder.add(marker(39, "the very last marker of all")),
                _ => {}
            }
        }
        Html.render(&builder.finish(Source {
            name: "x.mtr".into(),
            complete: true,
        }))
    }

    /// `<text>` elements of an SVG: x, y, anchor, content.
    fn texts(svg: &str) -> Vec<(i32, i32, String, String)> {
        svg.split("<text ")
            .skip(1)
            .map(|t| {
                let attr = |name: &str| -> String {
                    let key = format!("{name}=\"");
                    let from = t.find(&key).map(|i| i + key.len()).unwrap_or(0);
                    t[from..].split('"').next().unwrap_or("").to_string()
                };
                let content = t
                    .split('>')
                    .nth(1)
                    .unwrap_or("")
                    .split('<')
                    .next()
                    .unwrap_or("");
                (
                    attr("x").parse().unwrap(),
                    attr("y").parse().unwrap(),
                    attr("text-anchor"),
                    content.trim().to_string(),
                )
            })
            .collect()
    }

    /// The top of the plot: the highest point of any line (the y axis and
    /// the marker lines reach it).
    fn plot_top(svg: &str) -> i32 {
        svg.split("points=\"")
            .skip(1)
            .flat_map(|p| p.split('"').next().unwrap().split_whitespace())
            .map(|xy| xy.split(',').nth(1).unwrap().parse::<i32>().unwrap())
            .min()
            .unwrap()
    }

    fn charts(page: &str) -> Vec<&str> {
        page.split("<svg")
            .skip(1)
            .map(|s| s.split("</svg>").next().unwrap())
            .collect()
    }

    const LABELS: [&str; 4] = [
        "leak starts",
        "warm-up done, second marker",
        "halfway",
        "the very last marker of all",
    ];

    #[test]
    fn marker_labels_sit_in_their_band_above_the_plot_and_apart() {
        let page = page();
        let charts = charts(&page);
        assert_eq!(charts.len(), 2);
        for svg in charts {
            let top = plot_top(svg);
            let labels: Vec<_> = texts(svg)
                .into_iter()
                .filter(|t| LABELS.contains(&t.3.as_str()))
                .collect();
            assert_eq!(labels.len(), 4, "{labels:?}");
            let mut boxes = Vec::new();
            for (x, y, anchor, label) in &labels {
                // Drawn from its top (VPos::Top), about 10 px high.
                assert!(
                    *y > 20 && y + 10 <= top,
                    "{label} at y {y}, plot from {top}"
                );
                let width = label_width(label);
                let (left, right) = match anchor.as_str() {
                    "end" => (x - width, *x),
                    _ => (*x, x + width),
                };
                assert!(
                    left >= 0 && right <= WIDTH as i32,
                    "{label}: {left}..{right}"
                );
                boxes.push((left, right, *y, label));
            }
            for (i, a) in boxes.iter().enumerate() {
                for b in &boxes[i + 1..] {
                    let apart = a.2 != b.2 || a.1 + 4 <= b.0 || b.1 + 4 <= a.0;
                    assert!(apart, "{a:?} runs into {b:?}");
                }
            }
            // The legend box is inside the plot, so below every label.
            let legend = svg
                .split("<rect ")
                .find(|r| r.contains("stroke=\"#CCCCCC\""))
                .expect("a legend box");
            let legend_y: i32 = legend
                .split("y=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(legend_y >= top, "legend at {legend_y}, plot from {top}");
        }
    }

    #[test]
    fn counts_are_labelled_with_whole_numbers() {
        let page = page();
        let counts = charts(&page)[1];
        let ticks: Vec<String> = texts(counts)
            .into_iter()
            .filter(|t| t.2 == "end" && !LABELS.contains(&t.3.as_str()))
            .map(|t| t.3)
            .collect();
        assert!(ticks.len() >= 3, "{ticks:?}");
        for tick in &ticks {
            assert!(
                tick.parse::<u64>().is_ok(),
                "a count axis labelled {tick:?}: {ticks:?}"
            );
        }
    }

    #[test]
    fn commands_break_between_arguments_and_badges_are_padded() {
        let page = page();
        assert!(
            page.contains(
                "<span>/usr/bin/python3</span> \
                 <span>/srv/a-long-directory-name/with-hyphens/leaky-service.py</span>"
            ),
            "each argument unbroken"
        );
        assert!(STYLE.contains(".cmd span { white-space: nowrap; }"));
        assert!(!STYLE.contains("break-all"));
        assert!(STYLE.contains("span.leak, span.ok, span.unknown { padding:"));
    }

    #[test]
    fn a_leak_says_what_to_do_next() {
        let page = page();
        let next = page
            .split("<h3>What next</h3>")
            .nth(1)
            .expect("a What next list");
        assert!(next.contains("memtrail diff x.mtr --pid 42"), "{next}");
        assert!(
            next.contains("memtrail snap --pid 42 --sort addr"),
            "{next}"
        );
        assert!(next.contains("--python-gc"), "{next}");
        // Still running: attach instead of a restart; Python, so not --native.
        assert!(next.contains("memtrail attach 42 --python-gc"), "{next}");
        assert!(!next.contains("--native"), "{next}");
    }

    #[test]
    fn a_native_leak_suggests_the_native_sampler() {
        let page = page_of(&["/usr/sbin/leaky-daemon", "--foreground"]);
        let next = page
            .split("<h3>What next</h3>")
            .nth(1)
            .expect("a What next list");
        assert!(next.contains("memtrail run --native"), "{next}");
        assert!(!next.contains("--python-gc"), "{next}");
    }
}
