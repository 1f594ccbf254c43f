//! memtrail-probe: memory checkpoints for Rust programs.
//!
//! Logging `getrusage(RUSAGE_SELF).ru_maxrss` before and after each step
//! is how leaks are often found by hand. [`checkpoint`] makes that
//! permanent: it reads the process's resident memory (VmRSS) and its peak
//! (VmHWM) from `/proc/self/status` and returns a [`Checkpoint`] with both
//! figures and how they changed since the previous checkpoint and since the
//! first. When the process runs under `memtrail run` (or `MEMTRAIL_EVENTS`
//! names an events channel), it also puts a marker with the label and the
//! figures on the recording's timeline, so `memtrail diff --from
//! 'marker:LABEL'` can compare the steps.
//!
//! It never panics and never blocks: without `/proc` the figures are
//! `None`; without a channel, or with one that nobody reads, or whose
//! buffer is full, the marker is silently not written
//! ([`Checkpoint::marked`] tells). No dependencies beyond `std`.
//!
//! ```
//! let start = memtrail_probe::checkpoint("start");
//! let buffer = vec![1u8; 8 << 20]; // 8 MiB, touched
//! let after = memtrail_probe::checkpoint("after the buffer");
//! if let (Some(_), Some(_)) = (start.rss_kib, after.rss_kib) {
//!     // On Linux: at least most of the 8 MiB is resident now.
//!     assert!(after.rss_delta_kib > 4 * 1024, "{after:?}");
//!     assert!(after.hwm_kib >= after.rss_kib); // the peak is never below now
//! }
//! assert_eq!(after.label, "after the buffer");
//! drop(buffer);
//! ```
#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable naming the events channel (set by `memtrail run`).
pub const EVENTS_ENV: &str = "MEMTRAIL_EVENTS";

/// Longest label sent, in bytes: with the figures it stays within the 1024
/// bytes memtrail keeps.
const MAX_LABEL: usize = 900;
/// Writes of at most this many bytes to a FIFO arrive whole.
const PIPE_BUF: usize = 4096;

/// What one checkpoint saw. Memory in KiB, as /proc reports it; the deltas
/// are 0 when a figure is unknown now or was unknown before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub label: String,
    /// VmRSS now: resident memory.
    pub rss_kib: Option<u64>,
    /// VmHWM now: the peak of resident memory so far (what `ru_maxrss` says).
    pub hwm_kib: Option<u64>,
    /// Change since the previous checkpoint (0 for the first).
    pub rss_delta_kib: i64,
    pub hwm_delta_kib: i64,
    /// Change since the first checkpoint.
    pub rss_since_start_kib: i64,
    pub hwm_since_start_kib: i64,
    /// Whether a marker reached an events channel.
    pub marked: bool,
}

#[derive(Debug, Clone, Copy)]
struct Figures {
    rss: Option<u64>,
    hwm: Option<u64>,
}

/// The first and the previous checkpoint's figures.
static STATE: Mutex<Option<(Figures, Figures)>> = Mutex::new(None);

/// Reads VmRSS and VmHWM, compares them with the previous and the first
/// checkpoint, and writes a marker to `$MEMTRAIL_EVENTS` if it is set.
pub fn checkpoint(label: &str) -> Checkpoint {
    let now = read_figures();
    let (first, prev) = {
        // A panic elsewhere while holding the lock leaves valid data.
        let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
        let (first, prev) = state.unwrap_or((now, now));
        *state = Some((first, now));
        (first, prev)
    };
    let delta = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => a as i64 - b as i64,
        _ => 0,
    };
    let mut c = Checkpoint {
        label: label.to_string(),
        rss_kib: now.rss,
        hwm_kib: now.hwm,
        rss_delta_kib: delta(now.rss, prev.rss),
        hwm_delta_kib: delta(now.hwm, prev.hwm),
        rss_since_start_kib: delta(now.rss, first.rss),
        hwm_since_start_kib: delta(now.hwm, first.hwm),
        marked: false,
    };
    c.marked = mark(&c);
    c
}

fn read_figures() -> Figures {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Figures {
        rss: field("VmRSS:"),
        hwm: field("VmHWM:"),
    }
}

/// `O_NONBLOCK` on Linux: a FIFO with no reader fails to open (ENXIO)
/// instead of waiting for one, and a full one fails to write (EAGAIN).
#[cfg(any(target_arch = "mips", target_arch = "mips64"))]
const O_NONBLOCK: i32 = 0x80;
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const O_NONBLOCK: i32 = 0x4000;
#[cfg(not(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
const O_NONBLOCK: i32 = 0o4000;

/// Writes the marker line; false if there is no channel or it failed.
fn mark(c: &Checkpoint) -> bool {
    let Some(path) = std::env::var_os(EVENTS_ENV).filter(|p| !p.is_empty()) else {
        return false;
    };
    let line = marker_line(c);
    let mut options = OpenOptions::new();
    options.append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(O_NONBLOCK);
    }
    match options.open(path) {
        // One write: a line within PIPE_BUF arrives whole.
        Ok(mut file) => file.write(line.as_bytes()).is_ok_and(|n| n == line.len()),
        Err(_) => false,
    }
}

/// `{"marker": "LABEL (rss ... KiB +..., hwm ... KiB +...)", ...}`.
fn marker_line(c: &Checkpoint) -> String {
    let mut label = String::new();
    for ch in c.label.chars() {
        if label.len() + ch.len_utf8() > MAX_LABEL {
            break;
        }
        label.push(ch);
    }
    let figure = |name: &str, v: Option<u64>, d: i64| match v {
        Some(v) => format!("{name} {v} KiB {d:+}"),
        None => format!("{name} unknown"),
    };
    label.push_str(&format!(
        " ({}, {})",
        figure("rss", c.rss_kib, c.rss_delta_kib),
        figure("hwm", c.hwm_kib, c.hwm_delta_kib)
    ));
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let line = |label: &str| {
        format!(
            "{{\"marker\":{},\"pid\":{},\"time\":{time:.6},\"source\":\"probe\"}}\n",
            json_string(label),
            std::process::id()
        )
    };
    let full = line(&label);
    if full.len() <= PIPE_BUF {
        return full;
    }
    // Control characters take 6 bytes each once escaped.
    line(
        &label
            .chars()
            .filter(|c| !c.is_control())
            .collect::<String>(),
    )
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_carry_the_figures() {
        let c = Checkpoint {
            label: "step \"1\"\n".into(),
            rss_kib: Some(2048),
            hwm_kib: None,
            rss_delta_kib: -4,
            hwm_delta_kib: 0,
            rss_since_start_kib: 0,
            hwm_since_start_kib: 0,
            marked: false,
        };
        let line = marker_line(&c);
        assert!(
            line.starts_with(r#"{"marker":"step \"1\"\n (rss 2048 KiB -4, hwm unknown)","pid":"#)
        );
        assert!(line.ends_with("\"source\":\"probe\"}\n"));
        assert_eq!(json_string("\u{1}é"), "\"\\u0001é\"");
    }

    #[test]
    fn long_labels_keep_the_line_within_pipe_buf() {
        let c = checkpoint(&"é".repeat(5000));
        assert!(marker_line(&c).len() <= PIPE_BUF);
        let c = checkpoint(&"\u{1}".repeat(800));
        assert!(marker_line(&c).len() <= PIPE_BUF);
    }
}
