//! memtrail-report: renderings of memtrail data for people and programs.
//!
//! - [`snapshot`]: one snapshot as a pmap-like table of regions, or JSON
//!   with per-process totals;
//! - [`summary`]: a recording summarised per process (first and last
//!   sample, growth per hour, the regions that grew the most);
//! - [`diff`]: processes at two moments (`memtrail diff`);
//! - [`analysis`]: leak verdicts (`memtrail analyze`).
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
//!     info: ProcessInfo { comm: "daemon".into(), ..Default::default() },
//!     detail: Detail::Summary,
//!     status: Status { vm_rss: Some(2048), ..Default::default() },
//!     cpu: None,
//!     rollup: None,
//!     fds: None,
//!     mappings: None,
//!     mappings_fresh: false,
//! };
//! let text = table(&[sample], &Filter::default(), Sort::Rss);
//! assert!(text.contains("daemon"));
//! assert!(text.contains("2048"));
//! ```
#![forbid(unsafe_code)]

pub mod analysis;
pub mod diff;
pub mod snapshot;
pub mod summary;

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
/// control characters (which could move the cursor or change colours) are
/// shown escaped.
pub fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
