//! `record --rotate`: a directory of segments, each a complete recording,
//! and `--keep`: deleting the oldest of them.
//!
//! A segment is written as `NAME.mtr.part` until its header is on disk and
//! the previous segment is finished, then renamed to `NAME.mtr`: readers
//! list `.mtr` files only, so they never meet a segment without a header.
//! The rotation happens between ticks, and the new segment's writer has no
//! delta bases, so every process's first sample in it is a keyframe:
//! nothing is lost or shared at a boundary. A recorder killed at any moment
//! leaves every finished segment whole, and the one in progress readable
//! up to its last block.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use memtrail_format::{End, EndReason, Header, Writer};

use crate::recorder::now_us;
use crate::units::Limit;

pub type Sink = Box<dyn Write + Send>;

/// The segments being written and the limits that rotate and delete them.
pub struct Rotation {
    dir: PathBuf,
    rotate: Limit,
    keep: Option<Limit>,
    header: Header,
    uncompressed: bool,
    /// The number of the next segment.
    next: u64,
    current: PathBuf,
    opened: Instant,
    /// Process samples written before the current segment.
    samples_before: u64,
    pub segments: u64,
}

impl Rotation {
    /// Creates `dir` if needed and starts the first segment.
    pub fn start(
        dir: &Path,
        rotate: Limit,
        keep: Option<Limit>,
        header: Header,
        uncompressed: bool,
    ) -> anyhow::Result<(Rotation, Writer<Sink>)> {
        if dir.as_os_str() == "-" {
            bail!("--rotate writes a directory of segments: name it with -o DIR");
        }
        if dir.is_file() {
            bail!(
                "{} is a file: --rotate writes a directory of segments, so -o must name a directory (it is created if missing)",
                dir.display()
            );
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        let mut next = 0;
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(n) = segment_number(name) {
                if name.ends_with(".mtr.part") {
                    // A segment begun by a recorder killed before it held
                    // a sample: only a header, nothing to keep.
                    let _ = std::fs::remove_file(&path);
                } else {
                    next = next.max(n + 1);
                }
            }
        }
        let mut rotation = Rotation {
            dir: dir.to_path_buf(),
            rotate,
            keep,
            header,
            uncompressed,
            next,
            current: PathBuf::new(),
            opened: Instant::now(),
            samples_before: 0,
            segments: 0,
        };
        let writer = rotation.open_segment()?;
        rotation.publish()?;
        rotation.retain()?;
        Ok((rotation, writer))
    }

    /// Starts the next segment file (as `.part`) with its header.
    fn open_segment(&mut self) -> anyhow::Result<Writer<Sink>> {
        let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
            .to_string()
            .replace(['-', ':'], "");
        let name = format!("{:08}-{stamp}.mtr", self.next);
        self.next += 1;
        self.current = self.dir.join(name);
        let part = part_path(&self.current);
        let file = File::create(&part)
            .with_context(|| format!("cannot create the segment {}", part.display()))?;
        let sink: Sink = Box::new(BufWriter::with_capacity(64 * 1024, file));
        let mut header = self.header.clone();
        header.started_us = now_us();
        let writer = crate::recorder::writer(sink, &header, self.uncompressed)
            .with_context(|| format!("cannot write the segment {}", part.display()))?;
        self.opened = Instant::now();
        self.segments += 1;
        Ok(writer)
    }

    /// Gives the current segment its final name: readers see it from now on.
    fn publish(&self) -> anyhow::Result<()> {
        let part = part_path(&self.current);
        std::fs::rename(&part, &self.current).with_context(|| {
            format!(
                "cannot rename {} to {}",
                part.display(),
                self.current.display()
            )
        })
    }

    /// The segment being written.
    pub fn current(&self) -> &Path {
        &self.current
    }

    /// Called between two ticks (the last one written and flushed) with the
    /// process samples written so far: starts a new segment if the current
    /// one is due, finishing the old one, and deletes what `--keep` no
    /// longer keeps.
    pub fn after_tick(&mut self, writer: &mut Writer<Sink>, samples: u64) -> anyhow::Result<()> {
        let due = match self.rotate {
            Limit::Size(size) => writer.bytes_written() >= size,
            Limit::Duration(age) => self.opened.elapsed() >= age,
        };
        if !due {
            return Ok(());
        }
        let old_path = self.current.clone();
        let new = self.open_segment()?;
        let old = std::mem::replace(writer, new);
        old.finish(&End {
            time_us: now_us(),
            reason: EndReason::Completed,
            samples: samples - self.samples_before,
        })
        .with_context(|| format!("cannot finish the segment {}", old_path.display()))?;
        self.samples_before = samples;
        self.publish()?;
        self.retain()
    }

    /// Process samples written to the current segment, of `samples` in all.
    pub fn samples_in_current(&self, samples: u64) -> u64 {
        samples - self.samples_before
    }

    /// Deletes the oldest segments beyond `--keep`, never the current one.
    fn retain(&self) -> anyhow::Result<()> {
        let Some(keep) = self.keep else {
            return Ok(());
        };
        let mut segments: Vec<(PathBuf, u64, SystemTime)> = Vec::new();
        for path in crate::input::segments_in(&self.dir)? {
            let ours = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| segment_number(n).is_some());
            if !ours {
                continue;
            }
            // A segment deleted meanwhile (by another memtrail) is gone already.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            segments.push((path, meta.len(), modified));
        }
        let mut total: u64 = segments.iter().map(|s| s.1).sum();
        let now = SystemTime::now();
        for (path, len, modified) in segments {
            if path == self.current {
                break;
            }
            let expired = match keep {
                Limit::Size(size) => total > size,
                Limit::Duration(age) => {
                    now.duration_since(modified).unwrap_or(Duration::ZERO) > age
                }
            };
            if !expired {
                break;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => total -= len,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => total -= len,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot delete the old segment {}", path.display())
                    })
                }
            }
        }
        Ok(())
    }
}

/// The number of a segment file named `NNNNNNNN-....mtr` (or `.mtr.part`).
fn segment_number(name: &str) -> Option<u64> {
    if !(name.ends_with(".mtr") || name.ends_with(".mtr.part")) {
        return None;
    }
    let digits = name.split('-').next()?;
    if digits.len() < 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn part_path(path: &Path) -> PathBuf {
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    PathBuf::from(part)
}
