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
use memtrail_format::{Frame, Header, ProcessId, ReadError, Reader, Record, Warning};

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

/// A recording named on the command line, not opened yet: its files and
/// how to read them.
pub struct Plan {
    pub name: String,
    /// Standard input or a followed file: data may still be arriving.
    pub live: bool,
    files: Vec<PathBuf>,
    several: bool,
    follow: Option<Arc<AtomicBool>>,
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
    plan(path, more, follow)?.open()
}

/// Checks what `path` and `more` name (see [`open`]) without reading it.
pub fn plan(
    path: &Path,
    more: &[PathBuf],
    follow: Option<Arc<AtomicBool>>,
) -> anyhow::Result<Plan> {
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
    Ok(Plan {
        name,
        live,
        files,
        several,
        follow,
    })
}

/// What a lane of [`Plan::read_in_lanes`] is handed, in recording order.
pub enum Item {
    /// A record about a process of the lane, or about no process.
    Record(Record),
    /// A sample of a process of another lane, skipped undecoded: its
    /// process (only when asked for).
    Skipped(ProcessId),
}

/// What [`Plan::read_in_lanes`] reads with.
pub struct Lanes<F, E, G> {
    /// Whether the first lane is handed [`Item::Skipped`] (the others
    /// never are).
    pub note_skipped: bool,
    /// Set (by Ctrl-C) to stop reading early.
    pub stop: Option<Arc<AtomicBool>>,
    /// A lane's state, made on its thread from the lane's number (0 for
    /// the first).
    pub start: F,
    /// Folds an item into a lane's state.
    pub each: E,
    /// What a lane's state gives at the end (on its thread).
    pub finish: G,
}

impl Plan {
    /// Opens the recording for reading in order (see [`Segments`]).
    pub fn open(self) -> anyhow::Result<Input> {
        let reader = Segments::open(self.files, self.several, self.live, self.follow)
            .with_context(|| format!("cannot read recording {}", self.name))?;
        Ok(Input {
            name: self.name,
            live: self.live,
            reader,
        })
    }

    /// Reads a recording of files (not a stream) on one thread per core,
    /// each reading every file but decoding only the samples of its share
    /// of the processes (`memtrail_format::Reader::select`) and folding
    /// them into its own state: processes are independent, so nothing
    /// crosses threads until the states are joined, and no sample is
    /// decoded twice. Returns the lanes' states and whether the end frame
    /// was read; what the readers skipped is told on standard error, once.
    pub fn read_in_lanes<S, T, F, E, G>(
        &self,
        lanes: Lanes<F, E, G>,
    ) -> anyhow::Result<(Vec<T>, bool)>
    where
        T: Send,
        F: Fn(usize) -> S + Sync,
        E: Fn(&mut S, Item) + Sync,
        G: Fn(S) -> T + Sync,
    {
        // Opened once, here: every lane reads the very same files, even
        // if retention deletes one meanwhile (the lanes must meet the same
        // samples to read each process once).
        let opened: Vec<Opened> = self
            .files
            .iter()
            .map(|path| {
                File::open(path)
                    .map(Arc::new)
                    .map_err(|e| (e.kind(), e.to_string()))
            })
            .collect();
        self.check_header(&opened)
            .with_context(|| format!("cannot read recording {}", self.name))?;
        let count = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_LANES);
        let results: Vec<Result<Lane<T>, ReadError>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..count)
                .map(|lane| {
                    let (lanes, opened) = (&lanes, &opened);
                    scope.spawn(move || self.read_lane(lane, count, opened, lanes))
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("a reading thread panicked"))
                .collect()
        });
        let mut states = Vec::with_capacity(count);
        let mut warnings = Vec::new();
        let mut complete = false;
        for result in results {
            let lane = result.with_context(|| format!("cannot read recording {}", self.name))?;
            states.push(lane.state);
            warnings.extend(lane.warnings);
            complete |= lane.complete;
        }
        // Damage that every lane read is told once, in file order.
        warnings.sort_by_key(|(file, whole, w)| (*file, *whole, w.offset));
        warnings
            .dedup_by(|a, b| a.0 == b.0 && a.2.offset == b.2.offset && a.2.message == b.2.message);
        for (file, whole, w) in warnings {
            if self.several && whole == Whole::Frame {
                let file = self.files[file].display();
                eprintln!("memtrail: warning: {}: {file}: {}", self.name, w.message);
            } else {
                eprintln!("memtrail: warning: {}: {}", self.name, w.message);
            }
        }
        Ok((states, complete))
    }

    /// The time of the recording's first record (end frames aside), if
    /// it has one: read from the first file that opens.
    pub fn first_time_us(&self) -> Option<u64> {
        self.files.iter().find_map(|path| {
            let reader = open_one(path, None).ok()?;
            reader
                .map_while(Result::ok)
                .find(|frame| !matches!(frame.record, Record::End(_)))
                .map(|frame| frame.record.time_us())
        })
    }

    /// Fails as [`Segments`] does when no file can be read (the only
    /// file is no recording, or none of several is), before lanes start.
    fn check_header(&self, opened: &[Opened]) -> Result<(), ReadError> {
        let mut first_error = None;
        for (path, file) in self.files.iter().zip(opened) {
            match read_at(path, file) {
                Ok(_) => return Ok(()),
                Err(error) if self.several => {
                    first_error.get_or_insert(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(first_error.expect("expand gives at least one file"))
    }

    /// One lane: every file, in order, the processes of lane `lane`.
    fn read_lane<S, T, F, E, G>(
        &self,
        lane: usize,
        count: usize,
        opened: &[Opened],
        lanes: &Lanes<F, E, G>,
    ) -> Result<Lane<T>, ReadError>
    where
        F: Fn(usize) -> S,
        E: Fn(&mut S, Item),
        G: Fn(S) -> T,
    {
        let mut state = (lanes.start)(lane);
        let mut warnings = Vec::new();
        let mut complete = false;
        let stopped = || {
            lanes
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
        };
        // Only the first lane is told of the others' samples.
        let note = count > 1 && lanes.note_skipped && lane == 0;
        for (file, path) in self.files.iter().enumerate() {
            let mut reader = match read_at(path, &opened[file]) {
                Ok(reader) => reader,
                Err(error) if self.several => {
                    let w = skipped(&path.display().to_string(), &error);
                    warnings.push((file, Whole::File, w));
                    continue;
                }
                Err(error) => return Err(error),
            };
            if count > 1 {
                reader.select(move |id| lane_of(id, count) == lane, note);
            }
            let last = file + 1 == self.files.len();
            while let Some(frame) = reader.next() {
                let frame = frame?;
                if note {
                    for id in reader.take_skipped() {
                        (lanes.each)(&mut state, Item::Skipped(id));
                    }
                }
                if matches!(frame.record, Record::End(_)) {
                    // The end of a segment is not the end of the recording.
                    if !last {
                        continue;
                    }
                    complete = true;
                }
                (lanes.each)(&mut state, Item::Record(frame.record));
                if stopped() {
                    break;
                }
            }
            for id in reader.take_skipped() {
                (lanes.each)(&mut state, Item::Skipped(id));
            }
            let damage = reader.take_warnings().into_iter();
            warnings.extend(damage.map(|w| (file, Whole::Frame, w)));
            if stopped() {
                break;
            }
        }
        Ok(Lane {
            state: (lanes.finish)(state),
            warnings,
            complete,
        })
    }
}

/// At most this many lanes: each reads (decompresses and frames) the
/// whole recording, so more cores buy less and less.
const MAX_LANES: usize = 8;

/// The lane of a process: a mix of its identity, so that consecutive pids
/// spread evenly. (Giving each new process to the lane with the fewest
/// samples so far balances the lanes exactly, but looking the process up
/// for every frame cost more than the imbalance: measured 2.1 s against
/// 1.6-1.9 s for 6 hours of 200 processes.)
fn lane_of(id: &ProcessId, lanes: usize) -> usize {
    let mut x = u64::from(id.pid) ^ id.start_time.rotate_left(32);
    // splitmix64's finalizer.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x % lanes as u64) as usize
}

/// What a lane read.
struct Lane<S> {
    state: S,
    /// With the index of their file.
    warnings: Vec<(usize, Whole, Warning)>,
    complete: bool,
}

/// What a lane's warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Whole {
    /// The whole file, skipped: the warning names it.
    File,
    /// Frames of the file.
    Frame,
}

/// A file of a recording opened for its lanes, or why it did not open
/// (kept as kind and message: each lane that meets it reports it).
type Opened = Result<Arc<File>, (std::io::ErrorKind, String)>;

/// A reader of a file opened once and read by several lanes, each at its
/// own offset.
fn read_at(path: &Path, opened: &Opened) -> Result<FileReader, ReadError> {
    let file = match opened {
        Ok(file) => Arc::clone(file),
        Err((kind, message)) => {
            return Err(ReadError::Open {
                path: path.to_path_buf(),
                error: std::io::Error::new(*kind, message.clone()),
            })
        }
    };
    let source: Box<dyn Read + Send> = Box::new(At { file, pos: 0 });
    Reader::new(BufReader::with_capacity(64 * 1024, source)).map_err(|e| e.with_path(path))
}

/// Reads a shared file from its own offset.
struct At {
    file: Arc<File>,
    pos: u64,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
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
        note_incomplete(&self.name, covered);
    }
}

/// The note for the recording `name` without an end frame; `covered`
/// says what the output covers, e.g. "the verdicts cover".
pub fn note_incomplete(name: &str, covered: &str) {
    eprintln!(
        "memtrail: note: {name} has no end frame (still being written, or its recorder was \
         killed): {covered} what was read"
    );
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
