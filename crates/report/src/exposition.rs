//! Live metrics in the Prometheus text format (0.0.4) and OpenMetrics 1.0,
//! for `memtrail serve`: the current memory series of every tracked
//! process, the verdicts of the live analyzer, and the recorder's own
//! health.
//!
//! Everything a scraper sees is defined here, once: the metric families
//! (names, types, help) in [`Family`] constants and the label escaping in
//! [`escape_label`]. Per-process series carry the labels `pid`,
//! `start_time` (clock ticks after boot, /proc/PID/stat field 22: with the
//! pid, the process's identity) and `comm`; `cmdline` only when asked.
//! Cardinality is bounded by the caller (`serve --max-processes`).
//!
//! The per-process families ([`PROCESS_FAMILIES`]), their label set and
//! the escaping are also what `memtrail export --format openmetrics`
//! writes (`export::openmetrics`), so history backfilled from a recording
//! and live scrapes are one set of series.

use std::fmt::Write;

use memtrail_diff::{Analysis, Kind, ProcessVerdict, Verdict};
use memtrail_format::{ProcessId, ProcessSample};

/// Which text format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`: what every Prometheus scrapes.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`, ending in `# EOF`.
    OpenMetrics,
}

impl Format {
    /// The format a scraper asked for in its `Accept` header: OpenMetrics
    /// if it names it (Prometheus does, first), the classic text otherwise.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The recorder's own health, exported beside the processes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecorderMetrics {
    /// Collections (reads of /proc) since start.
    pub collections: u64,
    /// Process samples taken of tracked processes since start.
    pub samples: u64,
    /// Processes tracked now.
    pub tracked: usize,
    /// Processes seen in the last collection but not tracked (the cap).
    pub dropped: usize,
    /// The cap on tracked processes.
    pub max_processes: usize,
    /// How long the last collection took.
    pub collect_seconds: f64,
    /// How long the last judgement took, once there was one.
    pub judge_seconds: Option<f64>,
    /// When the verdicts were last computed, seconds since the Unix epoch.
    pub judged_at: Option<f64>,
}

/// What one exposition shows.
#[derive(Debug)]
pub struct Exposition<'a> {
    /// The last sample of every tracked process.
    pub processes: &'a [ProcessSample],
    /// The latest verdicts, once judged.
    pub analysis: Option<&'a Analysis>,
    pub recorder: &'a RecorderMetrics,
    /// Add a `cmdline` label of at most this many characters.
    pub cmdline_label: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Gauge,
    Counter,
}

/// One metric family. Counter names are given without `_total`.
#[derive(Debug)]
struct Family {
    name: &'static str,
    kind: Type,
    help: &'static str,
}

const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: Type::Gauge,
        help,
    }
}

/// One per-process family: a series of every process, in bytes or a
/// count. The live page (here) and the OpenMetrics export of a recording
/// (`export::openmetrics`) both take their names, units and help from
/// [`PROCESS_FAMILIES`], so a backfilled history and a live scrape are
/// the same metrics.
#[derive(Debug)]
pub(crate) struct ProcessFamily {
    /// The metric name, with its unit suffix.
    pub(crate) name: &'static str,
    /// The kind of the series it shows: memory (KiB, shown in bytes) or
    /// a count.
    pub(crate) kind: Kind,
    /// `# HELP` on the live page.
    help: &'static str,
    /// `# HELP` in an export. The two texts were written apart and say
    /// different things; both are kept as they are because they are part
    /// of what scrapers and backfilled blocks store.
    pub(crate) export_help: &'static str,
}

impl ProcessFamily {
    /// The OpenMetrics `# UNIT`: `bytes` for memory, none for a count.
    pub(crate) fn unit(&self) -> Option<&'static str> {
        (self.kind == Kind::Memory).then_some("bytes")
    }

    /// One unit of the series in the metric's unit (see [`scale`]).
    pub(crate) fn scale(&self) -> u64 {
        scale(self.kind)
    }
}

const fn process(
    name: &'static str,
    kind: Kind,
    help: &'static str,
    export_help: &'static str,
) -> ProcessFamily {
    ProcessFamily {
        name,
        kind,
        help,
        export_help,
    }
}

/// Per-process memory and count gauges, in the order of the analyzer's
/// series (`memtrail_diff::series_values`, `SERIES_NAMES`): family `i`
/// shows series `i`.
pub(crate) const PROCESS_FAMILIES: [ProcessFamily; 8] = [
    process(
        "memtrail_process_rss_bytes",
        Kind::Memory,
        "Resident memory (VmRSS) of the process.",
        "Resident memory (VmRSS): anonymous + file-backed + shared",
    ),
    process(
        "memtrail_process_anon_bytes",
        Kind::Memory,
        "Resident anonymous memory (RssAnon): heap, stacks, anonymous mmaps.",
        "Resident anonymous memory (RssAnon): heap, stacks, anonymous mappings",
    ),
    process(
        "memtrail_process_file_bytes",
        Kind::Memory,
        "Resident file-backed memory (RssFile): mapped files, page cache.",
        "Resident file-backed memory (RssFile): mapped files, reclaimable",
    ),
    process(
        "memtrail_process_shmem_bytes",
        Kind::Memory,
        "Resident shared memory (RssShmem).",
        "Resident shared memory (RssShmem): shm, tmpfs and shared anonymous mappings",
    ),
    process(
        "memtrail_process_pss_bytes",
        Kind::Memory,
        "Proportional set size (needs --detail rollup or more).",
        "Proportional set size (smaps_rollup Pss)",
    ),
    process(
        "memtrail_process_swap_bytes",
        Kind::Memory,
        "Swapped-out memory of the process (VmSwap).",
        "Swapped-out memory (VmSwap)",
    ),
    process(
        "memtrail_process_fds",
        Kind::Fds,
        "Open file descriptors.",
        "Open file descriptors",
    ),
    process(
        "memtrail_process_threads",
        Kind::Threads,
        "Threads.",
        "Threads",
    ),
];

const LEAK_SUSPECTED: Family = gauge(
    "memtrail_leak_suspected",
    "1 if the live analyzer judges the series a leak (sustained growth to the end), else 0.",
);
const GROWTH: Family = gauge(
    "memtrail_growth_per_hour",
    "Growth rate of the series per hour (Theil-Sen slope): bytes for memory, a count for fds and threads.",
);
const TIME_TO_LIMIT: Family = gauge(
    "memtrail_time_to_limit_seconds",
    "Seconds until the limit (cgroup memory.max or MemAvailable) is reached at the retained growth rate.",
);
const BUILD_INFO: Family = gauge("memtrail_build_info", "The memtrail version serving.");
const COLLECTIONS: Family = Family {
    name: "memtrail_collections",
    kind: Type::Counter,
    help: "Reads of /proc since memtrail serve started.",
};
const SAMPLES: Family = Family {
    name: "memtrail_samples",
    kind: Type::Counter,
    help: "Process samples taken of tracked processes since start.",
};
const TRACKED: Family = gauge("memtrail_processes_tracked", "Processes tracked now.");
const DROPPED: Family = gauge(
    "memtrail_processes_dropped",
    "Processes seen in the last collection but not tracked: over --max-processes.",
);
const MAX_PROCESSES: Family = gauge(
    "memtrail_max_processes",
    "The cap on tracked processes (--max-processes).",
);
const COLLECT_DURATION: Family = gauge(
    "memtrail_collect_duration_seconds",
    "How long the last read of /proc took.",
);
const JUDGE_DURATION: Family = gauge(
    "memtrail_judge_duration_seconds",
    "How long the last judgement of every series took.",
);
const JUDGED_AT: Family = gauge(
    "memtrail_last_judgement_timestamp_seconds",
    "When the verdicts were last computed (Unix time).",
);

/// Renders one exposition.
pub fn render(e: &Exposition<'_>, format: Format) -> String {
    let mut out = Out {
        text: String::new(),
        format,
    };
    let labels: Vec<String> = e
        .processes
        .iter()
        .map(|p| process_labels(p, e.cmdline_label))
        .collect();

    for (index, process) in PROCESS_FAMILIES.iter().enumerate() {
        let family = gauge(process.name, process.help);
        out.family(&family);
        for (p, labels) in e.processes.iter().zip(&labels) {
            let (_, kind, value) = memtrail_diff::series_values(p)
                .nth(index)
                .expect("PROCESS_FAMILIES lists every series");
            if let Some(v) = value {
                out.sample(&family, labels, scaled(kind, v as f64));
            }
        }
    }

    let verdicts: Vec<(&String, &ProcessVerdict)> = match e.analysis {
        Some(analysis) => e
            .processes
            .iter()
            .zip(&labels)
            .filter_map(|(p, labels)| {
                analysis
                    .processes
                    .iter()
                    .find(|v| v.id() == p.id)
                    .map(|v| (labels, v))
            })
            .collect(),
        None => Vec::new(),
    };
    out.family(&LEAK_SUSPECTED);
    for (labels, v) in &verdicts {
        for f in &v.findings {
            let leak = f64::from(u8::from(f.verdict == Verdict::Leak));
            out.sample(&LEAK_SUSPECTED, &series(labels, &f.series), leak);
        }
    }
    out.family(&GROWTH);
    for (labels, v) in &verdicts {
        for f in &v.findings {
            out.sample(
                &GROWTH,
                &series(labels, &f.series),
                scaled(f.kind, f.growth_per_hour),
            );
        }
    }
    out.family(&TIME_TO_LIMIT);
    for (labels, v) in &verdicts {
        for f in &v.findings {
            if let Some(p) = &f.time_to_limit {
                let labels = format!(
                    "{},limit=\"{}\"",
                    series(labels, &f.series),
                    escape_label(&p.limit)
                );
                out.sample(&TIME_TO_LIMIT, &labels, p.seconds);
            }
        }
    }

    let r = e.recorder;
    out.family(&BUILD_INFO);
    out.sample(
        &BUILD_INFO,
        &format!("version=\"{}\"", escape_label(env!("CARGO_PKG_VERSION"))),
        1.0,
    );
    out.single(&COLLECTIONS, r.collections as f64);
    out.single(&SAMPLES, r.samples as f64);
    out.single(&TRACKED, r.tracked as f64);
    out.single(&DROPPED, r.dropped as f64);
    out.single(&MAX_PROCESSES, r.max_processes as f64);
    out.single(&COLLECT_DURATION, r.collect_seconds);
    if let Some(s) = r.judge_seconds {
        out.single(&JUDGE_DURATION, s);
    }
    if let Some(t) = r.judged_at {
        out.single(&JUDGED_AT, t);
    }
    if format == Format::OpenMetrics {
        out.text.push_str("# EOF\n");
    }
    out.text
}

/// One unit of a series of `kind` in the metric's unit: memory series
/// are KiB in the data model and bytes in Prometheus.
fn scale(kind: Kind) -> u64 {
    match kind {
        Kind::Memory => 1024,
        // Counts, or bytes already (tracemalloc censuses; `serve` reads
        // no events channel, so none reach it today).
        Kind::Fds | Kind::Threads | Kind::Census => 1,
    }
}

fn scaled(kind: Kind, value: f64) -> f64 {
    value * scale(kind) as f64
}

/// The labels of a process's identity, without braces:
/// `pid="..",start_time="..",comm=".."`.
pub(crate) fn process_identity(id: ProcessId, comm: &str) -> String {
    format!(
        "pid=\"{}\",start_time=\"{}\",comm=\"{}\"",
        id.pid,
        id.start_time,
        escape_label(comm)
    )
}

fn process_labels(p: &ProcessSample, cmdline: Option<usize>) -> String {
    let mut labels = process_identity(p.id, &p.info.comm);
    if let Some(max) = cmdline {
        let full = p.info.cmdline.join(" ");
        let cut: String = full.chars().take(max).collect();
        let _ = write!(labels, ",cmdline=\"{}\"", escape_label(&cut));
    }
    labels
}

fn series(labels: &str, series: &str) -> String {
    format!("{labels},series=\"{}\"", escape_label(series))
}

/// A label value as both formats (and the OpenMetrics export) want it:
/// backslash, double quote and line feed escaped. Values come from the
/// observed processes (`comm` is set by the process itself), so this is
/// the only thing between a hostile process name and the scraper's parser.
pub(crate) fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

struct Out {
    text: String,
    format: Format,
}

impl Out {
    fn family(&mut self, f: &Family) {
        let (name, kind) = match (f.kind, self.format) {
            (Type::Gauge, _) => (f.name.to_string(), "gauge"),
            // OpenMetrics names the counter family without `_total`; the
            // classic format names it as its sample.
            (Type::Counter, Format::OpenMetrics) => (f.name.to_string(), "counter"),
            (Type::Counter, Format::Prometheus) => (format!("{}_total", f.name), "counter"),
        };
        let _ = writeln!(self.text, "# HELP {name} {}", f.help);
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, f: &Family, labels: &str, value: f64) {
        let suffix = if f.kind == Type::Counter {
            "_total"
        } else {
            ""
        };
        let _ = writeln!(
            self.text,
            "{}{suffix}{{{labels}}} {}",
            f.name,
            number(value)
        );
    }

    fn single(&mut self, f: &Family, value: f64) {
        self.family(f);
        let suffix = if f.kind == Type::Counter {
            "_total"
        } else {
            ""
        };
        let _ = writeln!(self.text, "{}{suffix} {}", f.name, number(value));
    }
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memtrail_format::{ProcessInfo, Status};

    fn sample() -> ProcessSample {
        ProcessSample::summary(
            0,
            ProcessId {
                pid: 42,
                start_time: 7,
            },
            ProcessInfo {
                comm: "evil\"\\\nname".into(),
                cmdline: vec!["/bin/daemon".into(), "--flag".into()],
                ..Default::default()
            },
            Status {
                vm_rss: Some(2048),
                rss_anon: Some(1024),
                threads: Some(3),
                ..Default::default()
            },
        )
    }

    fn check(format: Format, cmdline: Option<usize>, expected: &str) {
        let recorder = RecorderMetrics {
            collections: 5,
            samples: 5,
            tracked: 1,
            dropped: 2,
            max_processes: 1,
            collect_seconds: 0.25,
            judge_seconds: None,
            judged_at: None,
        };
        let processes = [sample()];
        let text = render(
            &Exposition {
                processes: &processes,
                analysis: None,
                recorder: &recorder,
                cmdline_label: cmdline,
            },
            format,
        );
        let interesting: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("# HELP"))
            .filter(|l| !l.starts_with("memtrail_build_info"))
            .collect();
        assert_eq!(interesting.join("\n"), expected.trim(), "\n{text}");
    }

    #[test]
    fn prometheus_text_escapes_labels_and_names_counters_with_total() {
        check(
            Format::Prometheus,
            None,
            r#"
# TYPE memtrail_process_rss_bytes gauge
memtrail_process_rss_bytes{pid="42",start_time="7",comm="evil\"\\\nname"} 2097152
# TYPE memtrail_process_anon_bytes gauge
memtrail_process_anon_bytes{pid="42",start_time="7",comm="evil\"\\\nname"} 1048576
# TYPE memtrail_process_file_bytes gauge
# TYPE memtrail_process_shmem_bytes gauge
# TYPE memtrail_process_pss_bytes gauge
# TYPE memtrail_process_swap_bytes gauge
# TYPE memtrail_process_fds gauge
# TYPE memtrail_process_threads gauge
memtrail_process_threads{pid="42",start_time="7",comm="evil\"\\\nname"} 3
# TYPE memtrail_leak_suspected gauge
# TYPE memtrail_growth_per_hour gauge
# TYPE memtrail_time_to_limit_seconds gauge
# TYPE memtrail_build_info gauge
# TYPE memtrail_collections_total counter
memtrail_collections_total 5
# TYPE memtrail_samples_total counter
memtrail_samples_total 5
# TYPE memtrail_processes_tracked gauge
memtrail_processes_tracked 1
# TYPE memtrail_processes_dropped gauge
memtrail_processes_dropped 2
# TYPE memtrail_max_processes gauge
memtrail_max_processes 1
# TYPE memtrail_collect_duration_seconds gauge
memtrail_collect_duration_seconds 0.25
"#,
        );
    }

    #[test]
    fn openmetrics_ends_with_eof_and_names_counter_families_without_total() {
        let recorder = RecorderMetrics::default();
        let text = render(
            &Exposition {
                processes: &[],
                analysis: None,
                recorder: &recorder,
                cmdline_label: None,
            },
            Format::OpenMetrics,
        );
        assert!(text.ends_with("\n# EOF\n"), "{text}");
        assert!(
            text.contains("# TYPE memtrail_collections counter\nmemtrail_collections_total 0\n")
        );
    }

    #[test]
    fn the_cmdline_label_is_only_there_when_asked_and_is_truncated() {
        let line = process_labels(&sample(), Some(8));
        assert!(line.ends_with(",cmdline=\"/bin/dae\""), "{line}");
        assert!(!process_labels(&sample(), None).contains("cmdline"));
    }

    #[test]
    fn process_families_are_the_analyzer_series_in_order() {
        let kinds: Vec<Kind> = memtrail_diff::series_values(&sample())
            .map(|(_, kind, _)| kind)
            .collect();
        let names: Vec<String> = memtrail_diff::SERIES_NAMES
            .iter()
            .zip(&kinds)
            .map(|(series, &kind)| match kind {
                Kind::Memory => format!("memtrail_process_{series}_bytes"),
                _ => format!("memtrail_process_{series}"),
            })
            .collect();
        assert_eq!(PROCESS_FAMILIES.map(|f| f.kind).to_vec(), kinds);
        assert_eq!(PROCESS_FAMILIES.map(|f| f.name.to_string()).to_vec(), names);
    }

    #[test]
    fn scrapers_asking_for_openmetrics_get_it() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Prometheus);
        assert_eq!(Format::negotiate(None), Format::Prometheus);
    }
}
