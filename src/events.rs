//! The events channel: a FIFO or a file of JSON lines that a running
//! program writes (markers, censuses) and the recorder reads into the
//! recording. The format is in docs/events.md.
//!
//! The recorder never blocks on it: a FIFO is opened non-blocking and the
//! recorder holds a write end itself, so a writer that exits does not turn
//! the FIFO into an endless end-of-file and a later writer still gets
//! through; a regular file is tailed from where the last read stopped
//! (from its start again if it was truncated). A bad line becomes a notice
//! in the recording and is skipped; nothing about the channel can stop a
//! recording.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use memtrail_format::{
    Census, CensusCount, Marker, Notice, NoticeKind, ProcessId, Record, Retention, RetentionChain,
};
use nix::fcntl::OFlag;

/// The environment variable that names the channel for the programs
/// `memtrail run` starts and for `memtrail mark`.
pub const ENV: &str = "MEMTRAIL_EVENTS";
/// Longest line read, newline excluded; longer lines are skipped.
pub const MAX_LINE: usize = 1 << 20;
/// Longest marker label kept, in bytes (longer ones are cut).
pub const MAX_LABEL: usize = 1024;
/// Longest census key kept, in bytes (longer ones are cut).
pub const MAX_KEY: usize = 512;
/// Longest step of a retention chain kept, in bytes (longer ones are cut).
pub const MAX_STEP: usize = 256;
/// Longest census source name, in bytes.
pub const MAX_SOURCE: usize = 64;
/// Bad lines recorded as notices, per channel; one more notice says that
/// later ones are skipped silently.
const MAX_NOTICES: u64 = 100;
/// Most bytes read from the channel per drain, so a flooding writer cannot
/// stall the sampling loop.
const READ_BUDGET: usize = 16 << 20;

/// An events channel being read.
#[derive(Debug)]
pub struct Events {
    path: PathBuf,
    file: File,
    /// The write end held open on a FIFO (see the module doc).
    _write_end: Option<File>,
    fifo: bool,
    /// The FIFO was created by us and is removed when done.
    created: bool,
    /// The start of a line whose newline has not arrived yet.
    partial: Vec<u8>,
    /// The current line is longer than [`MAX_LINE`]: skip to its newline.
    overlong: bool,
    /// Lines read so far (the number of the line in hand, from 1).
    line: u64,
    bad: u64,
    /// Reading failed for good; no more reads.
    broken: bool,
    /// `run --native`: waiting for the command's sampler to say hello.
    native_watch: Option<crate::native::HelloWatch>,
}

impl Events {
    /// Opens the channel at `path` for reading: a FIFO or a regular file.
    /// A path that does not exist is created as a FIFO (and removed when
    /// the recording ends).
    pub fn open(path: &Path) -> anyhow::Result<Events> {
        let mut created = false;
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                make_fifo(path)?;
                created = true;
                std::fs::metadata(path)
                    .with_context(|| format!("cannot use the events channel {}", path.display()))?
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot use the events channel {}", path.display()))
            }
        };
        let fifo = meta.file_type().is_fifo();
        if !fifo && !meta.is_file() {
            anyhow::bail!(
                "the events channel {} is neither a FIFO nor a regular file: name a new path \
                 (it is created as a FIFO) or an existing file",
                path.display()
            );
        }
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(path)
            .with_context(|| format!("cannot open the events channel {}", path.display()))?;
        let write_end = if fifo {
            Some(
                OpenOptions::new()
                    .write(true)
                    .custom_flags(OFlag::O_NONBLOCK.bits())
                    .open(path)
                    .with_context(|| {
                        format!("cannot open the events channel {}", path.display())
                    })?,
            )
        } else {
            None
        };
        Ok(Events {
            path: path.to_path_buf(),
            file,
            _write_end: write_end,
            fifo,
            created,
            partial: Vec::new(),
            overlong: false,
            line: 0,
            bad: 0,
            broken: false,
            native_watch: None,
        })
    }

    /// Expects the native sampler of process `pid` to say hello (`run
    /// --native`); if it does not, a notice says so.
    pub fn watch_native(&mut self, pid: u32) {
        self.native_watch = Some(crate::native::HelloWatch::new(pid));
    }

    /// Reads every complete line available now and turns it into records:
    /// markers, censuses, and notices for bad lines. Never blocks, never
    /// fails. `last` also takes a final line that lacks its newline.
    pub fn drain(&mut self, last: bool) -> Vec<Record> {
        let mut out = Vec::new();
        if self.broken {
            return out;
        }
        if !self.fifo {
            // A truncated file starts over.
            let len = self.file.metadata().map(|m| m.len()).unwrap_or(0);
            let pos = self.file.stream_position().unwrap_or(0);
            if len < pos {
                let _ = self.file.seek(SeekFrom::Start(0));
                self.partial.clear();
                self.overlong = false;
            }
        }
        let mut buf = [0u8; 64 * 1024];
        let mut read = 0usize;
        while read < READ_BUDGET {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    read += n;
                    self.take(&buf[..n], &mut out);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.broken = true;
                    let message = format!(
                        "cannot read the events channel any more ({e}); later events are lost, \
                         the recording goes on"
                    );
                    eprintln!("memtrail: warning: {}: {message}", self.path.display());
                    out.push(self.notice(NoticeKind::Other, message));
                    break;
                }
            }
        }
        if last && !self.partial.is_empty() && !self.overlong {
            let line = std::mem::take(&mut self.partial);
            self.line += 1;
            self.one_line(&line, &mut out);
        }
        if let Some(watch) = &mut self.native_watch {
            let notices = watch.check(&out, last, &self.path.display().to_string());
            watch.once_on_the_timeline(&mut out);
            out.extend(notices);
        }
        out
    }

    /// Splits `bytes` into lines, carrying an unfinished one over.
    fn take(&mut self, mut bytes: &[u8], out: &mut Vec<Record>) {
        while let Some(nl) = memchr(bytes) {
            let (head, rest) = (&bytes[..nl], &bytes[nl + 1..]);
            bytes = rest;
            self.line += 1;
            if self.overlong {
                self.overlong = false;
                self.partial.clear();
                continue;
            }
            if self.partial.len() + head.len() > MAX_LINE {
                self.partial.clear();
                self.bad_line(format!("longer than {} bytes", MAX_LINE), out);
                continue;
            }
            if self.partial.is_empty() {
                self.one_line(head, out);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(head);
                self.one_line(&line, out);
            }
        }
        if self.overlong {
            return;
        }
        if self.partial.len() + bytes.len() > MAX_LINE {
            // Said now, counted when its newline comes.
            self.partial.clear();
            self.overlong = true;
            self.bad_line_numbered(
                self.line + 1,
                format!("longer than {} bytes", MAX_LINE),
                out,
            );
            return;
        }
        self.partial.extend_from_slice(bytes);
    }

    fn one_line(&mut self, line: &[u8], out: &mut Vec<Record>) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match parse(line) {
            Ok(record) => out.push(record),
            Err(why) => self.bad_line(why, out),
        }
    }

    fn bad_line(&mut self, why: String, out: &mut Vec<Record>) {
        self.bad_line_numbered(self.line, why, out);
    }

    fn bad_line_numbered(&mut self, line: u64, why: String, out: &mut Vec<Record>) {
        self.bad += 1;
        if self.bad == 1 {
            eprintln!(
                "memtrail: warning: {}: line {line}: {} (skipped; later bad lines are \
                 recorded as notices only; the format is in docs/events.md)",
                self.path.display(),
                memtrail_report::printable(&why)
            );
        }
        let message = match self.bad {
            n if n <= MAX_NOTICES => format!("line {line} skipped: {why}"),
            n if n == MAX_NOTICES + 1 => format!(
                "line {line} skipped: {why}; more than {MAX_NOTICES} bad lines, later ones \
                 are skipped without a notice"
            ),
            _ => return,
        };
        out.push(self.notice(NoticeKind::Malformed, message));
    }

    /// A notice about the channel itself (not a process), stamped now.
    fn notice(&self, kind: NoticeKind, message: String) -> Record {
        Record::Notice(Box::new(Notice {
            time_us: crate::recorder::now_us(),
            process: None,
            kind,
            path: self.path.display().to_string(),
            message,
        }))
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Creates a FIFO only its owner can use.
pub fn make_fifo(path: &Path) -> anyhow::Result<()> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).with_context(|| {
        format!(
            "cannot create the events channel {} (a FIFO): check that its directory \
                 exists and is writable",
            path.display()
        )
    })
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// One line into a marker or a census, or why not.
fn parse(line: &[u8]) -> Result<Record, String> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("not JSON ({e})"))?;
    let obj = value
        .as_object()
        .ok_or("not a JSON object (expected {\"marker\": ...} or {\"census\": ...})")?;
    let pid = match obj.get("pid") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .filter(|&p| p > 0)
                .ok_or("\"pid\" is not a process id")?,
        ),
    };
    let time_us = match obj.get("time") {
        None | Some(serde_json::Value::Null) => crate::recorder::now_us(),
        Some(v) => {
            let secs = v
                .as_f64()
                .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e11)
                .ok_or("\"time\" is not seconds since 1970")?;
            (secs * 1e6).round() as u64
        }
    };
    if let Some(retention) = obj.get("retention") {
        if obj.contains_key("marker") || obj.contains_key("census") {
            return Err("\"retention\" with another event: one event per line".into());
        }
        return retention_record(retention, pid, time_us);
    }
    if let Some(native) = crate::native::parse_event(obj, pid, time_us, identity) {
        return native;
    }
    match (obj.get("marker"), obj.get("census")) {
        (Some(label), None) => {
            let label = label.as_str().ok_or("\"marker\" is not a string")?;
            let source = match obj.get("source") {
                None => "events",
                Some(s) => s
                    .as_str()
                    .filter(|s| !s.is_empty() && s.len() <= MAX_SOURCE)
                    .ok_or("\"source\" is not a short string")?,
            };
            Ok(Record::Marker(Marker {
                time_us,
                label: cut(label, MAX_LABEL),
                pid,
                source: source.to_string(),
            }))
        }
        (None, Some(census)) => {
            let census = census.as_object().ok_or("\"census\" is not an object")?;
            let source = census
                .get("source")
                .and_then(|s| s.as_str())
                .filter(|s| !s.is_empty() && s.len() <= MAX_SOURCE)
                .ok_or("\"census\" has no \"source\" (a short string)")?;
            let counts = census
                .get("counts")
                .and_then(|c| c.as_object())
                .ok_or("\"census\" has no \"counts\" object")?;
            let mut list = Vec::with_capacity(counts.len());
            for (key, count) in counts {
                let count = count.as_u64().ok_or_else(|| {
                    format!("the count of {:?} is not a whole number ≥ 0", cut(key, 60))
                })?;
                list.push(CensusCount {
                    key: cut(key, MAX_KEY),
                    count,
                });
            }
            list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
            list.truncate(Census::MAX_KEYS);
            Ok(Record::Census(Box::new(Census {
                time_us,
                process: pid.and_then(identity),
                source: source.to_string(),
                counts: list,
            })))
        }
        (Some(_), Some(_)) => Err("both \"marker\" and \"census\": one event per line".into()),
        (None, None) => Err("neither \"marker\", \"census\" nor \"retention\"".into()),
    }
}

/// A `retention` event into a retention record, or why not.
fn retention_record(
    value: &serde_json::Value,
    pid: Option<u32>,
    time_us: u64,
) -> Result<Record, String> {
    let r = value.as_object().ok_or("\"retention\" is not an object")?;
    let source = r
        .get("source")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty() && s.len() <= MAX_SOURCE)
        .ok_or("\"retention\" has no \"source\" (a short string)")?;
    let key = r
        .get("type")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .ok_or("\"retention\" has no \"type\" (a string)")?;
    let native = match r.get("native") {
        None => false,
        Some(v) => v
            .as_bool()
            .ok_or("\"retention.native\" is not true or false")?,
    };
    let sampled = match r.get("sampled") {
        None => 0,
        Some(v) => v
            .as_u64()
            .ok_or("\"retention.sampled\" is not a whole number ≥ 0")?,
    };
    let counts = |field: &str| -> Result<Vec<CensusCount>, String> {
        let Some(v) = r.get(field) else {
            return Ok(Vec::new());
        };
        let map = v
            .as_object()
            .ok_or_else(|| format!("\"retention.{field}\" is not an object"))?;
        let mut list = Vec::with_capacity(map.len());
        for (k, n) in map {
            let count = n.as_u64().ok_or_else(|| {
                format!(
                    "\"retention.{field}\": {:?} is not a whole number ≥ 0",
                    cut(k, 60)
                )
            })?;
            list.push(CensusCount {
                key: cut(k, MAX_KEY),
                count,
            });
        }
        list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
        list.truncate(Retention::MAX_COUNTS);
        Ok(list)
    };
    let owners = counts("owners")?;
    let holds = counts("holds")?;
    let mut chains = Vec::new();
    if let Some(v) = r.get("chains") {
        let list = v.as_array().ok_or("\"retention.chains\" is not an array")?;
        for c in list {
            let steps = c
                .get("steps")
                .and_then(|s| s.as_array())
                .ok_or("a chain has no \"steps\" array")?;
            let mut texts = Vec::with_capacity(steps.len().min(Retention::MAX_STEPS));
            for step in steps.iter().take(Retention::MAX_STEPS) {
                let text = step.as_str().ok_or("a chain step is not a string")?;
                texts.push(cut(text, MAX_STEP));
            }
            let instances = match c.get("instances") {
                None => 1,
                Some(n) => n
                    .as_u64()
                    .ok_or("a chain's \"instances\" is not a whole number ≥ 0")?,
            };
            chains.push(RetentionChain {
                steps: texts,
                instances,
            });
        }
    }
    chains.sort_by_key(|c| std::cmp::Reverse(c.instances));
    chains.truncate(Retention::MAX_CHAINS);
    Ok(Record::Retention(Box::new(Retention {
        time_us,
        process: pid.and_then(identity),
        source: source.to_string(),
        key: cut(key, MAX_KEY),
        native,
        sampled,
        owners,
        holds,
        chains,
    })))
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The identity of a live process: its pid and start time.
fn identity(pid: u32) -> Option<ProcessId> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // Field 22 overall is the 20th after comm (state is field 3).
    let start_time = rest.split_whitespace().nth(19)?.parse().ok()?;
    Some(ProcessId { pid, start_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str, expected: Result<&str, &str>) {
        let got = parse(line.as_bytes());
        match (got, expected) {
            (Ok(r), Ok(want)) => {
                let json = serde_json::to_string(&r).unwrap();
                assert!(json.contains(want), "{line}: {json} lacks {want}");
            }
            (Err(why), Err(want)) => assert!(why.contains(want), "{line}: {why} lacks {want}"),
            (got, want) => panic!("{line}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn lines_parse_into_markers_and_censuses_or_say_why_not() {
        check(
            r#"{"marker": "before step"}"#,
            Ok(r#""label":"before step""#),
        );
        check(
            r#"{"marker": "x", "time": 1700000000.5}"#,
            Ok(r#""time_us":1700000000500000"#),
        );
        check(
            r#"{"marker": "x", "source": "probe"}"#,
            Ok(r#""source":"probe""#),
        );
        check(
            r#"{"census": {"source": "gc", "counts": {"dict": 3, "list": 9}}}"#,
            Ok(r#""counts":[{"key":"list","count":9},{"key":"dict","count":3}]"#),
        );
        check("not json", Err("not JSON"));
        check("[1, 2]", Err("not a JSON object"));
        check(r#"{"marker": 5}"#, Err("not a string"));
        check(r#"{"marker": "x", "pid": -1}"#, Err("\"pid\""));
        check(r#"{"marker": "x", "time": "now"}"#, Err("\"time\""));
        check(r#"{"census": {"counts": {}}}"#, Err("no \"source\""));
        check(
            r#"{"census": {"source": "gc", "counts": {"a": -1}}}"#,
            Err("whole number"),
        );
        check(
            r#"{"census": {"source": "gc", "counts": {"a": 1.5}}}"#,
            Err("whole number"),
        );
        check(r#"{"other": 1}"#, Err("neither"));
        check(
            r#"{"retention": {"source": "gc", "type": "app.Session", "sampled": 4, "owners": {}, "holds": {"dict": 20}, "chains": [{"steps": ["app.SESSIONS", "[<key>]"], "instances": 4}]}}"#,
            Ok(r#""chains":[{"steps":["app.SESSIONS","[<key>]"],"instances":4}]"#),
        );
        check(
            r#"{"retention": {"source": "gc", "type": "x", "chains": [{"steps": [1]}]}}"#,
            Err("not a string"),
        );
        check(r#"{"retention": {"source": "gc"}}"#, Err("no \"type\""));
    }

    #[test]
    fn a_census_keeps_the_largest_counts() {
        let counts: Vec<String> = (0..1000).map(|i| format!("\"k{i}\": {i}")).collect();
        let line = format!(
            r#"{{"census": {{"source": "gc", "counts": {{{}}}}}}}"#,
            counts.join(",")
        );
        let Ok(Record::Census(c)) = parse(line.as_bytes()) else {
            panic!("not a census")
        };
        assert_eq!(c.counts.len(), Census::MAX_KEYS);
        assert_eq!(c.counts[0].count, 999);
        assert_eq!(
            c.counts.last().unwrap().count,
            1000 - Census::MAX_KEYS as u64
        );
    }

    #[test]
    fn the_embedded_python_hook_is_every_file_of_the_package() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/memtrail_hook");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".py"))
            .map(|name| format!("memtrail_hook/{name}"))
            .collect();
        on_disk.push("sitecustomize.py".to_string());
        on_disk.sort();
        let mut embedded: Vec<String> = PYTHON_HOOK.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "list every module in PYTHON_HOOK");
    }

    #[test]
    fn labels_are_cut_at_a_character_boundary() {
        let label = "é".repeat(MAX_LABEL);
        assert_eq!(cut(&label, MAX_LABEL).len(), MAX_LABEL);
        assert_eq!(cut("aé", 2), "a");
    }
}

/// A directory only this user can enter, removed with everything in it
/// when dropped: where `run` puts its FIFO and its Python hooks.
#[derive(Debug)]
pub struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    pub fn new() -> anyhow::Result<PrivateDir> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        let stamp = crate::recorder::now_us();
        let mut last = None;
        for attempt in 0..100u64 {
            let path = base.join(format!(
                "memtrail-{}-{}",
                std::process::id(),
                stamp.wrapping_add(attempt)
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(PrivateDir { path }),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "cannot create a private directory in {} for the events channel: \
                             set TMPDIR to a writable directory",
                            base.display()
                        )
                    })
                }
            }
        }
        Err(last.map_or_else(|| anyhow::anyhow!("no name left"), anyhow::Error::new))
            .with_context(|| format!("cannot create a private directory in {}", base.display()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The Python hook that `run --python-gc/--python-tracemalloc` writes into
/// its private directory and puts first on PYTHONPATH: the
/// `sitecustomize` bootstrap and the `memtrail_hook` package it starts
/// (python/ at the repository root), as (path below that directory,
/// contents).
pub const PYTHON_HOOK: &[(&str, &str)] = &[
    (
        "sitecustomize.py",
        include_str!("../python/sitecustomize.py"),
    ),
    (
        "memtrail_hook/__init__.py",
        include_str!("../python/memtrail_hook/__init__.py"),
    ),
    (
        "memtrail_hook/census.py",
        include_str!("../python/memtrail_hook/census.py"),
    ),
    (
        "memtrail_hook/chains.py",
        include_str!("../python/memtrail_hook/chains.py"),
    ),
    (
        "memtrail_hook/channel.py",
        include_str!("../python/memtrail_hook/channel.py"),
    ),
    (
        "memtrail_hook/listener.py",
        include_str!("../python/memtrail_hook/listener.py"),
    ),
    (
        "memtrail_hook/owners.py",
        include_str!("../python/memtrail_hook/owners.py"),
    ),
    (
        "memtrail_hook/runner.py",
        include_str!("../python/memtrail_hook/runner.py"),
    ),
];
