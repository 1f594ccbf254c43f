//! `run --native`: the preloaded sampler (crates/preload, carried inside
//! this binary), its lines on the events channel, and the naming of its
//! stacks when a recording is read (memtrail-symbolize). docs/native.md.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use memtrail_format::{Marker, NativeModule, NativeStack, Notice, NoticeKind, Record};
use memtrail_symbolize::Symbolizer;
use serde_json::{Map, Value};

/// The sampler, built from crates/preload by build.rs.
const PRELOAD: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libmemtrail_preload.so"));
/// Its file name in the private directory; memtrail-symbolize knows it by
/// this name, to leave its frames out.
pub const PRELOAD_NAME: &str = "libmemtrail_preload.so";
/// How long the command has to say hello before memtrail says it cannot
/// sample it.
pub const HELLO_PATIENCE: Duration = Duration::from_secs(3);

/// Writes the sampler into `dir` (memtrail's private directory of this
/// run, mode 0700) and sets the command's environment: LD_PRELOAD (before
/// any the user set), the rate and the census interval. Children inherit
/// the environment, so every process of the tree that execs a dynamically
/// linked program loads it too.
pub fn prepare(
    command: &mut std::process::Command,
    dir: &Path,
    rate: u64,
    interval: Duration,
) -> anyhow::Result<PathBuf> {
    if PRELOAD.is_empty() {
        anyhow::bail!("--native works on Linux only");
    }
    let path = dir.join(PRELOAD_NAME);
    std::fs::write(&path, PRELOAD)
        .with_context(|| format!("cannot write the native sampler to {}", path.display()))?;
    let mut preload = std::ffi::OsString::from(&path);
    if let Some(old) = std::env::var_os("LD_PRELOAD").filter(|p| !p.is_empty()) {
        preload.push(" ");
        preload.push(old);
    }
    command
        .env("LD_PRELOAD", preload)
        .env("MEMTRAIL_NATIVE_RATE", rate.max(1).to_string())
        .env(
            "MEMTRAIL_NATIVE_INTERVAL",
            interval
                .as_millis()
                .clamp(10, u128::from(u32::MAX))
                .to_string(),
        );
    Ok(path)
}

/// Parses the sampler's lines (`native`, `native_stack`, `native_module`;
/// docs/events.md); None for any other line.
pub fn parse_event(
    obj: &Map<String, Value>,
    pid: Option<u32>,
    time_us: u64,
    identity: impl Fn(u32) -> Option<memtrail_format::ProcessId>,
) -> Option<Result<Record, String>> {
    if let Some(hello) = obj.get("native") {
        return Some(hello_marker(hello, pid, time_us));
    }
    if let Some(stack) = obj.get("native_stack") {
        return Some((|| {
            let stack = stack
                .as_object()
                .ok_or("\"native_stack\" is not an object")?;
            let id = stack
                .get("id")
                .and_then(Value::as_str)
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .ok_or("\"native_stack\" has no \"id\" (16 hex digits)")?;
            let frames = stack
                .get("frames")
                .and_then(Value::as_array)
                .ok_or("\"native_stack\" has no \"frames\" array")?
                .iter()
                .take(NativeStack::MAX_FRAMES)
                .map(|f| f.as_u64().ok_or("a frame is not an address"))
                .collect::<Result<Vec<u64>, _>>()?;
            Ok(Record::NativeStack(Box::new(NativeStack {
                time_us,
                process: pid.and_then(&identity),
                id,
                frames,
            })))
        })());
    }
    if let Some(module) = obj.get("native_module") {
        return Some((|| {
            let m = module
                .as_object()
                .ok_or("\"native_module\" is not an object")?;
            let number = |name: &str| {
                m.get(name)
                    .and_then(Value::as_u64)
                    .ok_or_else(|| format!("\"native_module\" has no \"{name}\" address"))
            };
            let path = m
                .get("path")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty() && p.len() <= 4096)
                .ok_or("\"native_module\" has no \"path\"")?;
            let hex = m.get("build_id").and_then(Value::as_str).unwrap_or("");
            let build_id = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| "\"build_id\" is not hex")?;
            Ok(Record::NativeModule(Box::new(NativeModule {
                time_us,
                process: pid.and_then(&identity),
                start: number("start")?,
                end: number("end")?,
                bias: number("bias")?,
                path: path.to_string(),
                build_id: build_id
                    .into_iter()
                    .take(NativeModule::MAX_BUILD_ID)
                    .collect(),
            })))
        })());
    }
    None
}

/// The hello line becomes a marker on the timeline, saying the process is
/// sampled and at what rate, or that it cannot be.
fn hello_marker(hello: &Value, pid: Option<u32>, time_us: u64) -> Result<Record, String> {
    let hello = hello.as_object().ok_or("\"native\" is not an object")?;
    let rate = hello.get("rate").and_then(Value::as_u64).unwrap_or(0);
    let interposed = hello
        .get("interposed")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let label = if interposed {
        format!("{SAMPLING_ON} (one sample per {rate} bytes on average)")
    } else {
        format!("{SAMPLING_OFF}: {NOT_INTERPOSABLE}")
    };
    Ok(Record::Marker(Marker {
        time_us,
        label,
        pid,
        source: "native".into(),
    }))
}

const SAMPLING_ON: &str = "native sampling on";
const SAMPLING_OFF: &str = "native sampling off";
const NOT_INTERPOSABLE: &str = "the program has a malloc of its own (its own jemalloc or \
tcmalloc, or another allocator linked in), which the preloaded sampler cannot see; see \
docs/native.md";

/// Watches for the command's hello: a program that never says it (linked
/// statically, or not reached by LD_PRELOAD) or says it cannot be sampled
/// gets a notice in the recording and on standard error, not silence.
#[derive(Debug)]
pub struct HelloWatch {
    pid: u32,
    deadline: Instant,
    heard: bool,
    told: bool,
    /// Whether a "sampling on" marker is on the timeline already.
    announced: bool,
}

impl HelloWatch {
    pub fn new(pid: u32) -> HelloWatch {
        HelloWatch {
            pid,
            deadline: Instant::now() + HELLO_PATIENCE,
            heard: false,
            told: false,
            announced: false,
        }
    }

    /// Keeps one "native sampling on" marker on the timeline, the first:
    /// every process the command starts says it (a shell script, or
    /// pyenv's `python3` shim, starts dozens of helpers in a second), and
    /// the same line dozens of times hides the markers that matter. The
    /// censuses say which processes are sampled; "sampling off" markers
    /// all stay. Call after [`HelloWatch::check`], which needs them all.
    pub fn once_on_the_timeline(&mut self, records: &mut Vec<Record>) {
        records.retain(|r| match r {
            Record::Marker(m) if m.source == "native" && m.label.starts_with(SAMPLING_ON) => {
                !std::mem::replace(&mut self.announced, true)
            }
            _ => true,
        });
    }

    /// Looks at the records just read from the channel; returns notices to
    /// add to them. `last`: the recording ends (the command exited).
    pub fn check(&mut self, records: &[Record], last: bool, channel: &str) -> Vec<Record> {
        let mut out = Vec::new();
        for r in records {
            if let Record::Marker(m) = r {
                if m.source == "native" && m.pid == Some(self.pid) {
                    self.heard = true;
                    if m.label.starts_with(SAMPLING_OFF) && !self.told {
                        self.told = true;
                        out.push(self.notice(
                            channel,
                            format!(
                                "process {}: native sampling is not possible: {NOT_INTERPOSABLE}",
                                self.pid
                            ),
                        ));
                    }
                }
            }
        }
        if !self.heard && !self.told && (last || Instant::now() >= self.deadline) {
            self.told = true;
            out.push(self.notice(
                channel,
                format!(
                    "process {}: the native sampler never reported (within {}s): the program is \
                     probably linked statically, or LD_PRELOAD is not honoured (setuid); its \
                     allocations are not sampled. See docs/native.md",
                    self.pid,
                    HELLO_PATIENCE.as_secs()
                ),
            ));
        }
        out
    }

    fn notice(&self, channel: &str, message: String) -> Record {
        eprintln!("memtrail: warning: {message}");
        Record::Notice(Box::new(Notice {
            time_us: crate::recorder::now_us(),
            process: None,
            kind: NoticeKind::Other,
            path: channel.to_string(),
            message,
        }))
    }
}

/// Names the stacks of `native` censuses as records are read (for
/// analyze, diff, report and run's own analysis); other records pass
/// unchanged.
#[derive(Debug, Default)]
pub struct Names {
    symbolizer: Option<Symbolizer>,
}

impl Names {
    pub fn new() -> Names {
        Names::default()
    }

    pub fn pass(&mut self, record: Record) -> Record {
        match record {
            Record::NativeModule(_) | Record::NativeStack(_) => {
                self.symbolizer
                    .get_or_insert_with(Symbolizer::new)
                    .learn(&record);
                record
            }
            Record::Census(c) if c.source == memtrail_symbolize::SOURCE => {
                Record::Census(Box::new(
                    self.symbolizer
                        .get_or_insert_with(Symbolizer::new)
                        .name_census(*c),
                ))
            }
            other => other,
        }
    }
}
