//! memtrail-report: renderings of memtrail data for people and programs.
//!
//! - [`snapshot`]: one snapshot as a pmap-like table of regions, or JSON
//!   with per-process totals;
//! - [`summary`]: a recording summarised per process (first and last
//!   sample, growth per hour, the regions that grew the most);
//! - [`diff`]: processes at two moments (`memtrail diff`);
//! - [`analysis`]: leak verdicts (`memtrail analyze`);
//! - `memtrail report`: [`ReportBuilder`] folds a recording into a
//!   [`Report`] in one streaming pass ([`recording`]), rendered by a
//!   [`Format`]: [`terminal::Text`], [`markdown::Markdown`] or
//!   [`html::Html`] (a self-contained page with SVG charts);
//! - `memtrail export`: one row per sample through an [`export::Export`]:
//!   CSV, NDJSON or OpenMetrics;
//! - [`exposition`]: live samples and verdicts as Prometheus/OpenMetrics
//!   text (`memtrail serve`).
//!
//! Renderers take the data model of `memtrail-format` and return strings
//! or JSON values; they do no I/O.
//!
//! ```
//! use memtrail_format::{Detail, ProcessId, ProcessInfo, ProcessSample, Status};
//! use memtrail_report::snapshot::{table, Filter, Sort};
//!
//! let sample = ProcessSample {
//!     time_us: 0,
//!     id: ProcessId { pid: 42, start_time: 7 },
//!     info: std::sync::Arc::new(ProcessInfo { comm: "daemon".into(), ..Default::default() }),
//!     detail: Detail::Summary,
//!     status: Status { vm_rss: Some(2048), ..Default::default() },
//!     cpu: None,
//!     rollup: None,
//!     fds: None,
//!     mappings: None,
//!     mappings_fresh: false,
//! };
//! let text = table(&[sample.clone()], &Filter::default(), Sort::Rss);
//! assert!(text.contains("daemon"));
//! assert!(text.contains("2048"));
//!
//! // A recording, folded record by record, rendered for a terminal.
//! use memtrail_format::Record;
//! use memtrail_report::{analysis::Source, terminal::Text, Format, ReportBuilder};
//!
//! let mut builder = ReportBuilder::new();
//! for i in 0..20u64 {
//!     let mut s = sample.clone();
//!     s.time_us = i * 1_000_000;
//!     s.status.vm_rss = Some(2048 + 1024 * i);
//!     builder.add(Record::Process(Box::new(s)));
//! }
//! let report = builder.finish(Source { name: "app.mtr".into(), complete: true });
//! let text = Text { color: false }.render(&report);
//! assert!(text.contains("rss     ▁"), "{text}");
//! assert!(text.lines().all(|l| l.chars().count() <= 80));
//! ```
#![forbid(unsafe_code)]

pub mod analysis;
pub mod census;
pub mod diff;
pub mod export;
pub mod exposition;
pub mod html;
pub mod markdown;
mod native;
pub mod owners;
pub mod recording;
pub mod snapshot;
pub mod summary;
pub mod terminal;

use memtrail_diff::{Change, Kind, ProcessVerdict, RegionGrowth};

pub use recording::{Report, ReportBuilder};

/// One rendering of a whole [`Report`] (hyperfine's exporters): each
/// format is a module ([`terminal`], [`markdown`], [`html`]) with a type
/// that implements this, tested against a reviewed expected file.
pub trait Format {
    /// The whole document.
    fn render(&self, report: &Report) -> String;
}

/// The regions behind a process's memory growth, largest first, at most
/// `n`: every memory finding's regions, each region once.
pub(crate) fn top_regions(p: &ProcessVerdict, n: usize) -> Vec<&RegionGrowth> {
    let mut out: Vec<&RegionGrowth> = Vec::new();
    for f in p.findings.iter().filter(|f| f.kind == Kind::Memory) {
        for r in &f.regions {
            if !out
                .iter()
                .any(|o| o.start == r.start && o.label == r.label && o.change == r.change)
            {
                out.push(r);
            }
        }
    }
    out.sort_by(|a, b| b.growth_kib.cmp(&a.growth_kib).then(a.start.cmp(&b.start)));
    out.truncate(n);
    out
}

/// `1 process`, `3 processes`.
/// `1 process`, `2 processes`: a count with the noun that agrees with it.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub(crate) fn change_name(c: Change) -> &'static str {
    match c {
        Change::New => "new",
        Change::Grown => "grown",
        Change::Shrunk => "shrunk",
        Change::Gone => "gone",
        Change::Same => "same",
    }
}

/// Makes a string from the recorded system safe inside HTML text or a
/// quoted attribute: `& < > " '` become entities, after control and
/// bidirectional characters are shown escaped as by [`printable`].
pub fn html_escape(s: &str) -> String {
    markup_escape(s, |c| match c {
        '"' => Some("&quot;"),
        '\'' => Some("&#39;"),
        _ => None,
    })
}

/// [`printable`] `s`, with `& < >` as HTML entities and every other
/// character that `also` has a replacement for replaced: what HTML and
/// Markdown (which is shown as HTML, raw tags and all) both need, for
/// [`html_escape`] and [`markdown::cell`].
pub(crate) fn markup_escape(s: &str, also: impl Fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(s.len());
    for c in printable(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => match also(c) {
                Some(escaped) => out.push_str(escaped),
                None => out.push(c),
            },
        }
    }
    out
}

/// `1.5 MiB`, `12 KiB`, `3.2 GiB` from KiB.
pub fn human_kib(kib: u64) -> String {
    human_kib_signed(kib as i64)
}

/// Like [`human_kib`] with a sign for growth: `+1.5 MiB`, `-12 KiB`.
pub fn human_kib_signed(kib: i64) -> String {
    let sign = if kib < 0 { "-" } else { "" };
    let v = kib.unsigned_abs() as f64;
    let (value, unit) = if v >= 1024.0 * 1024.0 {
        (v / (1024.0 * 1024.0), "GiB")
    } else if v >= 1024.0 {
        (v / 1024.0, "MiB")
    } else {
        return format!("{sign}{} KiB", kib.unsigned_abs());
    };
    format!("{sign}{value:.1} {unit}")
}

/// Makes a string from the recorded system safe to print on a terminal:
/// control characters (C0, DEL and C1, which could move the cursor, change
/// colours, set the window title or start an escape sequence) and the
/// invisible bidirectional-text controls (which reorder what is shown,
/// as in "Trojan Source", CVE-2021-42574) are shown escaped.
pub fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if needs_escape(c) {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// [`printable`], cut to at most `max` characters with an ellipsis.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    let s = printable(s);
    if s.chars().count() > max {
        s.chars().take(max - 1).collect::<String>() + "…"
    } else {
        s
    }
}

/// A process's command line in at most `max` characters, keeping what
/// tells processes apart: two Python programs are `python3 a.py` and
/// `python3 b.py`, not `/usr/lib/…/bin/python3 /ho…` twice. Steps, until it
/// fits: the whole line; the program by its file name; every path argument
/// by `…/` and its file name; then cut at the end.
pub fn process_label(command: &str, max: usize) -> String {
    let command = printable(command);
    if command.chars().count() <= max {
        return command;
    }
    let words: Vec<&str> = command.split(' ').collect();
    // Paths only: `[kworker/0:1]` or `a/b` in an argument are not files.
    let is_path = |w: &str| w.starts_with('/') || w.starts_with("./") || w.starts_with("../");
    let base = |w: &str| -> String {
        match w.rsplit_once('/') {
            Some((_, name)) if !name.is_empty() && is_path(w) => name.to_string(),
            _ => w.to_string(),
        }
    };
    let mut short: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    short[0] = base(words[0]);
    let joined = short.join(" ");
    if joined.chars().count() <= max {
        return joined;
    }
    for (i, w) in words.iter().enumerate().skip(1) {
        if is_path(w) && !w.ends_with('/') {
            short[i] = format!("…/{}", base(w));
        }
    }
    shorten(&short.join(" "), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_labels_keep_what_tells_processes_apart() {
        let check = |command: &str, max: usize, expected: &str| {
            assert_eq!(process_label(command, max), expected, "{command} in {max}");
        };
        check("/usr/bin/python3 leak.py", 44, "/usr/bin/python3 leak.py");
        check(
            "/root/.pyenv/versions/3.12.4/bin/python3 /tmp/memtrail-demo-4242/leaky.py --rate 2",
            44,
            "python3 …/leaky.py --rate 2",
        );
        check(
            "/root/.pyenv/versions/3.12.4/bin/python3 /work/project/services/ingest/worker_a.py",
            44,
            "python3 …/worker_a.py",
        );
        check(
            "/root/.pyenv/versions/3.12.4/bin/python3 /work/project/services/ingest/worker_b.py",
            44,
            "python3 …/worker_b.py",
        );
        check("[kworker/0:1]", 8, "[kworke…");
        check("/opt/app/bin/server", 10, "server");
    }

    #[test]
    fn human_sizes() {
        for (kib, want) in [
            (0, "0 KiB"),
            (1023, "1023 KiB"),
            (1024, "1.0 MiB"),
            (1536, "1.5 MiB"),
            (3 * 1024 * 1024, "3.0 GiB"),
        ] {
            assert_eq!(human_kib(kib), want);
        }
        assert_eq!(human_kib_signed(-2048), "-2.0 MiB");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("a\x1b[31mb\n"), "a\\u{1b}[31mb\\n");
        assert_eq!(printable("plain /usr/lib"), "plain /usr/lib");
        for (hostile, shown) in [
            ("\x07", "\\u{7}"),
            ("\x7f", "\\u{7f}"),
            ("\u{9b}31m", "\\u{9b}31m"), // C1 CSI
            ("\x1b]0;title\x07", "\\u{1b}]0;title\\u{7}"),
            ("\u{202E}gpj.exe", "\\u{202e}gpj.exe"),
            ("\u{2066}x\u{2069}", "\\u{2066}x\\u{2069}"),
            ("\r\t", "\\r\\t"),
        ] {
            assert_eq!(printable(hostile), shown, "{hostile:?}");
        }
        // Other non-ASCII text is left alone.
        assert_eq!(
            printable("café 日本 [anon:jemalloc]"),
            "café 日本 [anon:jemalloc]"
        );
    }

    /// No renderer passes a hostile command line, comm or path through raw.
    #[test]
    fn renderers_escape_hostile_strings() {
        use memtrail_format::*;
        let hostile = "\x1b]0;owned\x07\x1b[2J\u{9b}1m\u{202E}\x7f";
        let mapping = |start: u64, rss: u64| Mapping {
            start,
            end: start + 4096,
            perms: "rw-p".into(),
            path: format!("/tmp/{hostile}.bin").into(),
            size: 4,
            rss,
            ..Mapping::default()
        };
        let sample = |t: u64, rss: u64, cmdline: Vec<String>| ProcessSample {
            time_us: t,
            id: ProcessId {
                pid: 7,
                start_time: 1,
            },
            info: std::sync::Arc::new(ProcessInfo {
                comm: hostile.into(),
                cmdline,
                ..ProcessInfo::default()
            }),
            detail: Detail::Maps,
            status: Status {
                vm_rss: Some(rss),
                ..Status::default()
            },
            cpu: None,
            rollup: None,
            fds: None,
            mappings: Some(vec![mapping(0x1000, rss)].into()),
            mappings_fresh: true,
        };
        let args = vec![hostile.to_string(), format!("--arg={hostile}")];
        let a = sample(0, 4, args.clone());
        let b = sample(1_000_000, 8, args);
        let no_args = sample(0, 4, Vec::new());
        let table = snapshot::table(
            &[a.clone(), no_args],
            &snapshot::Filter::default(),
            snapshot::Sort::Rss,
        );
        let mut summarizer = summary::Summarizer::new();
        summarizer.add(&a);
        summarizer.add(&b);
        let text = summary::text(&summarizer.finish(), 5);
        for (name, out) in [("table", &table), ("summary", &text)] {
            let raw: Vec<char> = out
                .chars()
                .filter(|&c| c != '\n' && needs_escape(c))
                .collect();
            assert!(raw.is_empty(), "{name} passes {raw:?} raw:\n{out}");
            assert!(out.contains("\\u{1b}]0;owned"), "{name}:\n{out}");
        }
        assert!(table.contains(".bin"), "the path is shown:\n{table}");

        // The report renderings, from the same samples.
        let mut builder = ReportBuilder::new();
        for i in 0..20 {
            let mut s = sample(i * 1_000_000, 4 + i, vec![format!("<script>{hostile}")]);
            std::sync::Arc::make_mut(&mut s.info).comm = format!("<b>{hostile}&\"'");
            builder.add(Record::Process(Box::new(s)));
        }
        builder.add(Record::Marker(Marker {
            time_us: 5_000_000,
            label: format!("<img src=x>{hostile}"),
            pid: None,
            source: "cli".into(),
        }));
        let report = builder.finish(analysis::Source {
            name: "x.mtr".into(),
            complete: true,
        });
        let text = terminal::Text { color: false }.render(&report);
        let md = markdown::Markdown.render(&report);
        let html = html::Html.render(&report);
        for (name, out) in [("text", &text), ("markdown", &md), ("html", &html)] {
            let raw: Vec<char> = out
                .chars()
                .filter(|&c| c != '\n' && needs_escape(c))
                .collect();
            assert!(raw.is_empty(), "{name} passes {raw:?} raw:\n{out}");
        }
        for (name, out) in [("markdown", &md), ("html", &html)] {
            for raw in ["<script>", "<b>", "<img"] {
                assert!(!out.contains(raw), "{name} passes {raw} raw");
            }
        }
        assert!(
            html.contains("&lt;img src=x&gt;"),
            "the marker label in the chart"
        );
        assert!(text.contains("<b>"), "the terminal shows text as it is");
    }
}
