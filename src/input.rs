//! Where recordings come from: a file, standard input, a file that is
//! still being written (`--follow`), or several files read as one: a
//! directory of segments written by `record --rotate`, or files named one
//! after the other.

use std::fs::File;
use std::io::{BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use memtrail_format::{Frame, Header, ReadError, Reader, Record, Warning};

/// An opened recording, named for messages.
pub struct Input {
    pub name: String,
    /// Standard input or a followed file: data may still be arriving.
    pub live: bool,
    pub reader: Segments,
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

/// The files a list of inputs names: a directory stands for its `.mtr`
/// files in name order (the order `record --rotate` numbers its segments).
pub fn expand(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in inputs {
        if path.as_os_str() == "-" {
            if inputs.len() > 1 {
                bail!("`-` (standard input) cannot be read together with other recordings");
            }
            files.push(path.clone());
        } else if path.is_dir() {
            let segments = segments_in(path)?;
            if segments.is_empty() {
                bail!(
                    "{} is a directory without recordings (.mtr files): name a recording, or the \
                     directory `memtrail record --rotate` wrote",
                    path.display()
                );
            }
            files.extend(segments);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// The `.mtr` files of a directory, sorted by name.
pub fn segments_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut segments = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list directory {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list directory {}", dir.display()))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "mtr") && path.is_file() {
            segments.push(path);
        }
    }
    segments.sort();
    Ok(segments)
}

/// Opens `path` (`-` for standard input, a directory for its segments)
/// and the `more` recordings to read after it, as one recording. With
/// `follow` (one file only), end of file means "wait for more" until
/// `stop` is set.
pub fn open(
    path: &Path,
    more: &[PathBuf],
    follow: Option<Arc<AtomicBool>>,
) -> anyhow::Result<Input> {
    let mut inputs = vec![path.to_path_buf()];
    inputs.extend_from_slice(more);
    // A file named on the command line must open (a segment listed from
    // a directory may vanish meanwhile, and is then skipped).
    for input in &inputs {
        if input.as_os_str() != "-" && !input.is_dir() {
            File::open(input)
                .with_context(|| format!("cannot open recording {}", input.display()))?;
        }
    }
    let files = expand(&inputs)?;
    let stdin = path.as_os_str() == "-";
    let several = files.len() > 1 || path.is_dir();
    if several && follow.is_some() {
        bail!("--follow reads one growing file, not a directory or several recordings");
    }
    let name = if stdin {
        "standard input".to_string()
    } else if inputs.len() == 1 {
        path.display().to_string()
    } else {
        format!("{} and {} more", path.display(), inputs.len() - 1)
    };
    let live = stdin || follow.is_some();
    let reader = Segments::open(files, several, live, follow)
        .with_context(|| format!("cannot read recording {name}"))?;
    Ok(Input { name, live, reader })
}

/// Opens one recording file (or `-`) for reading.
fn open_one(
    path: &Path,
    follow: Option<Arc<AtomicBool>>,
) -> Result<Reader<BufReader<Box<dyn Read + Send>>>, ReadError> {
    let source: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        let file = File::open(path).map_err(|error| ReadError::Open {
            path: path.to_path_buf(),
            error,
        })?;
        match follow {
            Some(stop) => Box::new(Follow { file, stop }),
            None => Box::new(file),
        }
    };
    let reader = Reader::new(BufReader::with_capacity(64 * 1024, source));
    if path.as_os_str() == "-" {
        reader
    } else {
        reader.map_err(|e| e.with_path(path))
    }
}

/// Several recording files read one after the other as one recording:
/// the header is the first file's, the end frames of all but the last file
/// are dropped (a segment ends where the next begins), and each file's
/// damage is reported with its name. A file that cannot be read at all
/// (a segment deleted by retention while it was listed, one cut short
/// inside its header by a crash) is skipped with a warning, unless no
/// file can be read.
///
/// Segments are independent (each starts with keyframes), so when there
/// are several they are decoded ahead, each on its own thread, up to one
/// per core beyond the one being consumed, while the caller folds the
/// records in order: a week of segments is decoded on every core. Each
/// thread hands over batches through a bounded channel, so memory stays
/// bounded by the lookahead, whatever the length of the recording.
pub struct Segments {
    header: Header,
    version: u16,
    warnings: Vec<Warning>,
    /// The segment whose records are being handed out, first in line.
    ahead: std::collections::VecDeque<Ahead>,
    /// Files not started yet.
    rest: std::vec::IntoIter<PathBuf>,
    /// Records of the current batch, in reverse order (popped from the end).
    batch: Vec<Frame>,
    several: bool,
    lookahead: usize,
    batch_len: usize,
}

/// A segment being decoded on its own thread.
struct Ahead {
    name: String,
    receiver: std::sync::mpsc::Receiver<Decoded>,
}

/// What a decoding thread sends.
enum Decoded {
    Frames(Vec<Frame>),
    Warnings(Vec<Warning>),
    /// The file could not be opened at all: skip it.
    Unreadable(ReadError),
    /// Reading failed midway (an I/O error): the recording cannot be read.
    Failed(ReadError),
}

/// Records per batch handed from a decoding thread.
const BATCH: usize = 512;
/// Batches a decoding thread may have waiting.
const BATCHES_WAITING: usize = 4;

type FileReader = Reader<BufReader<Box<dyn Read + Send>>>;

impl Segments {
    fn open(
        files: Vec<PathBuf>,
        several: bool,
        live: bool,
        follow: Option<Arc<AtomicBool>>,
    ) -> Result<Segments, ReadError> {
        let mut rest = files.into_iter();
        let mut warnings = Vec::new();
        let mut first_error = None;
        while let Some(path) = rest.next() {
            match open_one(&path, follow.clone()) {
                Ok(reader) => {
                    let lookahead = std::thread::available_parallelism().map_or(2, |n| n.get());
                    let mut segments = Segments {
                        header: reader.header().clone(),
                        version: reader.version(),
                        warnings,
                        ahead: std::collections::VecDeque::new(),
                        rest,
                        batch: Vec::new(),
                        several,
                        lookahead,
                        // A live stream's records are handed over one by
                        // one, as they arrive.
                        batch_len: if live { 1 } else { BATCH },
                    };
                    segments.start(path.display().to_string(), Ok(reader));
                    segments.fill();
                    return Ok(segments);
                }
                Err(error) if several => {
                    warnings.push(skipped(&path.display().to_string(), &error));
                    first_error.get_or_insert(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(first_error.expect("expand gives at least one file"))
    }

    /// Starts decoding a segment on its own thread: an opened reader, or
    /// a path to open there.
    fn start(&mut self, name: String, source: Result<FileReader, PathBuf>) {
        let (sender, receiver) = std::sync::mpsc::sync_channel(BATCHES_WAITING);
        let batch_len = self.batch_len;
        std::thread::spawn(move || decode(source, sender, batch_len));
        self.ahead.push_back(Ahead { name, receiver });
    }

    /// Starts segments until `lookahead` are in flight.
    fn fill(&mut self) {
        while self.ahead.len() <= self.lookahead {
            let Some(path) = self.rest.next() else {
                return;
            };
            self.start(path.display().to_string(), Err(path));
        }
    }

    /// The recording's header: the first file's.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The format version of the first file.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The file being read, when several are read as one.
    pub fn current_file(&self) -> Option<&str> {
        if !self.several {
            return None;
        }
        self.ahead.front().map(|a| a.name.as_str())
    }

    /// What the readers skipped since this was last asked.
    pub fn take_warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }

    /// Whether the segment in front is the last one.
    fn in_last(&self) -> bool {
        self.ahead.len() <= 1 && self.rest.len() == 0
    }
}

/// A decoding thread: reads a segment and sends its records in batches.
/// It stops early if the receiver is gone.
fn decode(
    source: Result<FileReader, PathBuf>,
    sender: std::sync::mpsc::SyncSender<Decoded>,
    batch_len: usize,
) {
    let mut reader = match source {
        Ok(reader) => reader,
        Err(path) => match open_one(&path, None) {
            Ok(reader) => reader,
            Err(error) => {
                let _ = sender.send(Decoded::Unreadable(error));
                return;
            }
        },
    };
    let mut batch = Vec::with_capacity(batch_len);
    loop {
        match reader.next() {
            Some(Ok(frame)) => {
                batch.push(frame);
                let warnings = reader.take_warnings();
                if !warnings.is_empty() || batch.len() >= batch_len {
                    batch.reverse();
                    if sender
                        .send(Decoded::Frames(std::mem::take(&mut batch)))
                        .is_err()
                    {
                        return;
                    }
                }
                if !warnings.is_empty() && sender.send(Decoded::Warnings(warnings)).is_err() {
                    return;
                }
            }
            Some(Err(error)) => {
                batch.reverse();
                let _ = sender.send(Decoded::Frames(batch));
                let _ = sender.send(Decoded::Failed(error));
                return;
            }
            None => {
                batch.reverse();
                let _ = sender.send(Decoded::Frames(batch));
                let _ = sender.send(Decoded::Warnings(reader.take_warnings()));
                return;
            }
        }
    }
}

/// The warning for a file of several that cannot be read at all.
fn skipped(name: &str, error: &ReadError) -> Warning {
    Warning {
        offset: 0,
        kind: memtrail_format::WarningKind::Corrupt,
        message: format!("{name} was skipped: {error} (the rest of the recording is read)"),
    }
}

impl Iterator for Segments {
    type Item = Result<Frame, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(frame) = self.batch.pop() {
                if matches!(frame.record, Record::End(_)) && !self.in_last() {
                    // The end of a segment, not of the recording.
                    continue;
                }
                return Some(Ok(frame));
            }
            let front = self.ahead.front()?;
            match front.receiver.recv() {
                Ok(Decoded::Frames(batch)) => self.batch = batch,
                Ok(Decoded::Warnings(warnings)) => {
                    for mut w in warnings {
                        if self.several {
                            w.message = format!("{}: {}", front.name, w.message);
                        }
                        self.warnings.push(w);
                    }
                }
                Ok(Decoded::Unreadable(error)) => {
                    let w = skipped(&front.name, &error);
                    self.warnings.push(w);
                }
                Ok(Decoded::Failed(error)) => {
                    self.ahead.clear();
                    self.rest = Vec::new().into_iter();
                    return Some(Err(error));
                }
                Err(_) => {
                    // That segment is done.
                    self.ahead.pop_front();
                    self.fill();
                }
            }
        }
    }
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
pub fn warn(name: &str, reader: &mut Segments) {
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
