//! Where recordings come from: a file, standard input, or a file that is
//! still being written (`--follow`).

use std::fs::File;
use std::io::{BufReader, IsTerminal, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use memtrail_format::{Reader, Record};

/// An opened recording, named for messages.
pub struct Input {
    pub name: String,
    /// Standard input or a followed file: data may still be arriving.
    pub live: bool,
    pub reader: Reader<BufReader<Box<dyn Read + Send>>>,
}

/// Refuses `-` when standard input is a terminal: a recording has to be
/// piped in. `example` is the pipeline to suggest.
pub fn refuse_terminal_stdin(path: &Path, example: &str) -> anyhow::Result<()> {
    if path.as_os_str() == "-" && std::io::stdin().is_terminal() {
        anyhow::bail!(
            "standard input is a terminal, not a recording: pipe one in (`{example}`) or name \
             a file"
        );
    }
    Ok(())
}

/// Opens `path` (`-` for standard input). With `follow`, end of file means
/// "wait for more" until `stop` is set.
pub fn open(path: &Path, follow: Option<Arc<AtomicBool>>) -> anyhow::Result<Input> {
    let stdin = path.as_os_str() == "-";
    let (name, source): (String, Box<dyn Read + Send>) = if stdin {
        ("standard input".into(), Box::new(std::io::stdin()))
    } else {
        let file = File::open(path)
            .with_context(|| format!("cannot open recording {}", path.display()))?;
        let name = path.display().to_string();
        match follow.clone() {
            Some(stop) => (name, Box::new(Follow { file, stop })),
            None => (name, Box::new(file)),
        }
    };
    let live = stdin || follow.is_some();
    let reader = Reader::new(BufReader::with_capacity(64 * 1024, source))
        .with_context(|| format!("cannot read recording {name}"))?;
    Ok(Input { name, live, reader })
}

impl Input {
    /// Tells on standard error what the reader skipped (torn tails, damaged
    /// frames) since it was last asked.
    pub fn warn(&mut self) {
        warn(&self.name, &mut self.reader);
    }

    /// Reads the recording to its end, handing every record to `each` and
    /// telling what the reader skipped as it goes. Returns whether the end
    /// frame was read.
    pub fn read_all(
        &mut self,
        mut each: impl FnMut(Record) -> anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        let mut complete = false;
        while let Some(frame) = self.reader.next() {
            let frame = frame.with_context(|| format!("cannot read recording {}", self.name))?;
            self.warn();
            complete |= matches!(frame.record, Record::End(_));
            each(frame.record)?;
        }
        self.warn();
        Ok(complete)
    }

    /// The note for a recording without an end frame; `covered` says what
    /// the output covers, e.g. "the verdicts cover".
    pub fn note_incomplete(&self, covered: &str) {
        eprintln!(
            "memtrail: note: {} has no end frame (still being written, or its recorder \
             was killed): {covered} what was read",
            self.name
        );
    }
}

/// Tells on standard error what `reader` of the recording `name` skipped
/// since it was last asked.
pub fn warn<R: Read>(name: &str, reader: &mut Reader<R>) {
    for w in reader.take_warnings() {
        eprintln!("memtrail: warning: {name}: {}", w.message);
    }
}

/// A file read like `tail -f`: at its end, wait for the writer to add more.
struct Follow {
    file: File,
    stop: Arc<AtomicBool>,
}

impl Read for Follow {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.file.read(buf)?;
            if n > 0 || buf.is_empty() || self.stop.load(Ordering::Relaxed) {
                return Ok(n);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
