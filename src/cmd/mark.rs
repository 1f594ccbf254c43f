//! `memtrail mark LABEL`: one marker line into an events channel.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};

use anyhow::{bail, Context};
use nix::fcntl::OFlag;

use crate::cli::MarkArgs;
use crate::events;

/// Writes of at most this many bytes to a pipe are atomic (POSIX PIPE_BUF
/// on Linux): a marker line never interleaves with another writer's line.
const PIPE_BUF: usize = 4096;

pub fn run(args: MarkArgs) -> anyhow::Result<u8> {
    let path = match args
        .events
        .clone()
        .or_else(|| std::env::var_os(events::ENV).map(Into::into))
    {
        Some(path) => path,
        None => bail!(
            "no events channel: name one with --events PATH (the one `memtrail record \
             --events PATH` reads), or call mark from a command that `memtrail run` started \
             (it sets ${})",
            events::ENV
        ),
    };
    if args.label.len() > events::MAX_LABEL {
        bail!(
            "the label is {} bytes long; a marker label is at most {} bytes",
            args.label.len(),
            events::MAX_LABEL
        );
    }
    let mut event = serde_json::json!({
        "marker": args.label,
        "time": crate::recorder::now_us() as f64 / 1e6,
        "source": "cli",
    });
    if let Some(pid) = args.pid {
        event["pid"] = pid.into();
    }
    let mut line = serde_json::to_vec(&event)?;
    line.push(b'\n');
    if line.len() > PIPE_BUF {
        bail!(
            "the marker takes {} bytes as a JSON line, more than the {PIPE_BUF} that can be \
             written to a FIFO in one piece: use a shorter label (control characters take 6 \
             bytes each)",
            line.len()
        );
    }
    let shown = path.display();
    let meta = std::fs::metadata(&path).with_context(|| {
        format!(
            "cannot use the events channel {shown}: is a recorder reading it \
             (`memtrail record --events {shown}` or `memtrail run`)?"
        )
    })?;
    let fifo = meta.file_type().is_fifo();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .append(!fifo)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(&path)
        .map_err(|e| {
            if e.raw_os_error() == Some(nix::libc::ENXIO) {
                anyhow::anyhow!(
                    "nobody is reading the events channel {shown}: the recorder has stopped or \
                     not started yet; start `memtrail record --events {shown} ...` first"
                )
            } else {
                anyhow::Error::new(e).context(format!("cannot open the events channel {shown}"))
            }
        })?;
    file.write_all(&line).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            anyhow::anyhow!(
                "the events channel {shown} is full: its recorder is not reading it (stuck or \
                 stopped?); the marker was not written"
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot write to the events channel {shown}"))
        }
    })?;
    Ok(0)
}
