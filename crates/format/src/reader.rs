//! Reading a recording, streaming and surviving damage.

use std::collections::HashSet;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::fastdelta::{DeltaView, FastDelta};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::block::{self, BlockError, BlockReader};
use crate::frame::{self, kind, Encoding, Frame, FRAME_HEADER_LEN, SYNC};
use crate::model::{Header, ProcessId, ProcessSample, Record};
use crate::wire::{self, DeltaWire, KeyframeWire};
use crate::{delta, ReadError, Warning, WarningKind, FORMAT_VERSION, MAGIC, MAX_FRAME_LEN};

/// Bytes asked of the input at a time.
const CHUNK: usize = 64 * 1024;

/// Length of the file header: magic, version, reserved.
const FILE_HEADER_LEN: usize = 12;

/// Opens a recording file.
pub fn open(path: &Path) -> Result<Reader<BufReader<File>>, ReadError> {
    let file = File::open(path).map_err(|error| ReadError::Open {
        path: path.to_path_buf(),
        error,
    })?;
    Reader::start(BufReader::new(file), Some(path.to_path_buf()))
}

/// Reads a recording frame by frame, as an iterator of [`Frame`]s.
///
/// It never holds more than one frame of input (at most [`MAX_FRAME_LEN`]
/// bytes) besides the last sample of each live process, so it reads live
/// pipes and recordings of any length. Damage is survived and reported
/// through [`take_warnings`](Reader::take_warnings): a corrupt stretch is
/// skipped up to the next valid frame, a torn tail ends the iteration, and
/// frames of unknown kinds are skipped. The iterator yields `Err` only when
/// the input itself fails, and then ends.
pub struct Reader<R: Read> {
    input: Input<R>,
    path: Option<PathBuf>,
    header: Header,
    version: u16,
    /// Version 2: the content of the block being read, and where its
    /// next record starts.
    block: Option<OpenBlock>,
    blocks: BlockReader,
    /// Version 2: skipping the blocks of a chain whose earlier block was
    /// lost (already warned about).
    orphans: bool,
    /// The last sample of each process, with its sequence number: what its
    /// next delta applies to.
    bases: FxHashMap<ProcessId, (ProcessSample, u64)>,
    /// Processes whose deltas are being skipped until their next keyframe
    /// (already warned about).
    skipping: FxHashSet<ProcessId>,
    /// Unknown (kind, flags) pairs already warned about.
    unknown: HashSet<(u8, u8)>,
    warnings: Vec<Warning>,
    failed: bool,
    /// Set by [`Reader::select`]: the processes read; the samples of the
    /// others are skipped undecoded.
    selection: Option<Selecting>,
    /// Where delta frames of the common shape are decoded (see
    /// [`Decoded::Fast`]).
    fast: Option<Box<FastDelta>>,
}

/// The processes a reader reads, and what it notes of the others.
struct Selecting {
    keep: Box<dyn Fn(&ProcessId) -> bool + Send>,
    /// Whether skipped samples are noted (see [`Reader::take_skipped`]).
    note: bool,
    noted: Vec<ProcessId>,
}

impl<R: Read> Reader<R> {
    /// Reads and checks the file header and the header frame.
    pub fn new(input: R) -> Result<Self, ReadError> {
        Reader::start(input, None)
    }

    fn start(input: R, path: Option<PathBuf>) -> Result<Self, ReadError> {
        let with_path = |e: ReadError| match &path {
            Some(p) => e.with_path(p),
            None => e,
        };
        let mut input = Input::new(input);
        let (header, version) = read_header(&mut input, FORMAT_VERSION).map_err(with_path)?;
        Ok(Reader {
            input,
            path,
            header,
            version,
            block: None,
            blocks: BlockReader::new(),
            orphans: false,
            bases: FxHashMap::default(),
            skipping: FxHashSet::default(),
            unknown: HashSet::new(),
            warnings: Vec::new(),
            failed: false,
            selection: None,
            fast: None,
        })
    }

    /// Reads only the processes `keep` selects from here on: the samples
    /// of the others are skipped without being decoded (only their
    /// process is read), and their exits, censuses and retention records
    /// are left out; records about no process are all read. Several
    /// readers of one recording, each selecting a share of its processes,
    /// read it in parallel without decoding any sample twice. With
    /// `note_skipped`, the process of each skipped sample is kept for
    /// [`Reader::take_skipped`] (for what counts every sample,
    /// such as [`crate::Ticks`]).
    ///
    /// Damage in a skipped sample's frame is not seen, so not warned
    /// about: the reader selecting that process warns.
    pub fn select(
        &mut self,
        keep: impl Fn(&ProcessId) -> bool + Send + 'static,
        note_skipped: bool,
    ) {
        self.selection = Some(Selecting {
            keep: Box::new(keep),
            note: note_skipped,
            noted: Vec::new(),
        });
    }

    /// The samples skipped since this was last asked (when
    /// [`Reader::select`] was told to note them), as their processes, in
    /// recording order: all of them were before the record read last.
    pub fn take_skipped(&mut self) -> impl Iterator<Item = ProcessId> + '_ {
        self.selection
            .iter_mut()
            .flat_map(|selection| selection.noted.drain(..))
    }

    /// Whether a frame is a sample of a process not selected, then noted
    /// and skipped. A frame whose first fields do not decode is not
    /// skipped: decoding it warns.
    fn unselected(selection: &mut Option<Selecting>, kind: u8, flags: u8, payload: &[u8]) -> bool {
        let Some(selection) = selection else {
            return false;
        };
        if flags != 0 {
            return false;
        }
        if kind != kind::KEYFRAME && kind != kind::DELTA {
            return false;
        }
        let Some(id) = crate::fastdelta::process_of(payload).map(ProcessId::from) else {
            return false;
        };
        if (selection.keep)(&id) {
            return false;
        }
        if selection.note {
            selection.noted.push(id);
        }
        true
    }

    /// Decodes a frame's payload (a version 1 frame, or a record of a
    /// block) into what borrows nothing from where it lies, so the caller
    /// can let go of the input before [`Reader::accept_decoded`].
    fn decode(
        selection: &mut Option<Selecting>,
        fast: &mut Option<Box<FastDelta>>,
        kind: u8,
        flags: u8,
        payload: &[u8],
    ) -> Decoded {
        if Self::unselected(selection, kind, flags, payload) {
            return Decoded::Unselected;
        }
        if kind == kind::DELTA && flags == 0 {
            let mut buffer = fast.take().unwrap_or_default();
            if crate::fastdelta::decode(payload, &mut buffer) {
                return Decoded::Fast(buffer);
            }
            *fast = Some(buffer);
        }
        Decoded::Payload(Payload::decode(kind, flags, payload))
    }

    /// Takes in a decoded frame: the record it yields, if any.
    fn accept_decoded(
        &mut self,
        offset: u64,
        kind: u8,
        flags: u8,
        decoded: Decoded,
    ) -> Option<Frame> {
        match decoded {
            Decoded::Unselected => None,
            Decoded::Fast(delta) => {
                let frame = self.accept_delta(offset, &delta.view());
                self.fast = Some(delta);
                frame
            }
            Decoded::Payload(payload) => self.accept(offset, kind, flags, payload),
        }
    }

    /// Whether a decoded record is about a process not selected.
    fn unselected_record(&mut self, record: &Record) -> bool {
        let Some(selection) = &mut self.selection else {
            return false;
        };
        let id = match record {
            Record::Exit(e) => Some(e.id),
            Record::Census(c) => c.process,
            Record::Retention(r) => r.process,
            _ => None,
        };
        id.is_some_and(|id| !(selection.keep)(&id))
    }

    /// The recording's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The format version of the recording (1 or 2).
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The damage met so far and survived, oldest first; each is returned once.
    pub fn take_warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }

    fn warn(&mut self, offset: u64, kind: WarningKind, message: String) {
        self.warnings.push(Warning {
            offset,
            kind,
            message,
        });
    }

    fn io_error(&mut self, error: io::Error) -> ReadError {
        self.failed = true;
        ReadError::Io {
            path: self.path.clone(),
            offset: self.input.offset,
            error,
        }
    }

    /// The next record of the open block, if any.
    fn next_in_block(&mut self) -> Option<Frame> {
        while let Some(mut open) = self.block.take() {
            if open.pos >= open.content.len() {
                continue;
            }
            let offset = open.offset;
            match block::next_record(&open.content, open.pos) {
                Ok((kind, flags, range)) => {
                    open.pos = range.end;
                    let decoded = if kind == kind::BLOCK {
                        Decoded::Payload(Payload::Undecodable("a block inside a block".into()))
                    } else {
                        let payload = &open.content[range];
                        Self::decode(&mut self.selection, &mut self.fast, kind, flags, payload)
                    };
                    self.block = Some(open);
                    if let Some(frame) = self.accept_decoded(offset, kind, flags, decoded) {
                        return Some(frame);
                    }
                }
                Err(why) => self.warn(
                    offset,
                    WarningKind::Corrupt,
                    format!(
                        "the block at offset {offset} has a valid checksum but its records do not read ({why}); the rest of it was skipped"
                    ),
                ),
            }
        }
        None
    }

    /// Opens a block (a version 2 frame of kind 0x60) for reading.
    fn open_block(&mut self, offset: u64, payload: &[u8]) {
        match self.blocks.read(payload) {
            Ok(content) => {
                self.orphans = false;
                self.block = Some(OpenBlock {
                    content,
                    pos: 0,
                    offset,
                });
            }
            Err(BlockError::Orphan) => {
                if !self.orphans {
                    self.orphans = true;
                    self.warn(
                        offset,
                        WarningKind::MissingBase,
                        format!(
                            "the block at offset {offset} was skipped because it continues the compression of a block that was lost; the next blocks of its chain are skipped too, until a block starts a new chain"
                        ),
                    );
                }
            }
            Err(BlockError::Invalid(why)) => {
                self.orphans = true;
                self.warn(
                    offset,
                    WarningKind::Corrupt,
                    format!(
                        "the block at offset {offset} has a valid checksum but does not decompress ({why}); it was skipped, and the next blocks of its chain are skipped too, until a block starts a new chain"
                    ),
                );
            }
        }
    }

    /// The next frame, skipping and reporting damage.
    fn next_frame(&mut self) -> Result<Option<Frame>, io::Error> {
        loop {
            if let Some(frame) = self.next_in_block() {
                return Ok(Some(frame));
            }
            let offset = self.input.offset;
            match self.input.probe(0)? {
                Probe::Valid { kind, flags, len }
                    if kind == kind::BLOCK && flags == 0 && self.version >= 2 =>
                {
                    let payload = self.input.available()[FRAME_HEADER_LEN..][..len].to_vec();
                    self.input.consume(FRAME_HEADER_LEN + len);
                    self.open_block(offset, &payload);
                }
                Probe::Valid { kind, flags, len } => {
                    let payload = &self.input.available()[FRAME_HEADER_LEN..][..len];
                    let decoded =
                        Self::decode(&mut self.selection, &mut self.fast, kind, flags, payload);
                    self.input.consume(FRAME_HEADER_LEN + len);
                    if let Some(frame) = self.accept_decoded(offset, kind, flags, decoded) {
                        return Ok(Some(frame));
                    }
                }
                Probe::Invalid(reason) => self.skip_corrupt(offset, &reason)?,
                Probe::Incomplete => {
                    let rest = self.input.available();
                    if rest.is_empty() {
                        return Ok(None);
                    }
                    if !SYNC.starts_with(&rest[..rest.len().min(2)]) {
                        self.skip_corrupt(offset, "no frame starts there")?;
                        continue;
                    }
                    // The input ends inside this frame. A valid frame after
                    // its start means its length was damaged; otherwise the
                    // writer was cut off while writing it.
                    let rest = rest.len();
                    if let Some(next) = self.input.find_frame(1)? {
                        self.input.consume(next);
                        self.warn(
                            offset,
                            WarningKind::Corrupt,
                            format!(
                                "corrupt frame at offset {offset} (its length runs past the end of the input): skipped {next} bytes up to the next valid frame at offset {}",
                                self.input.offset
                            ),
                        );
                        continue;
                    }
                    self.input.consume(rest);
                    self.warn(
                        offset,
                        WarningKind::TornTail,
                        format!(
                            "the recording ends with an incomplete frame at offset {offset} ({rest} bytes): the recorder was probably killed; everything before it was read"
                        ),
                    );
                    return Ok(None);
                }
            }
        }
    }

    /// Skips from the damaged frame at `offset` to the next valid frame.
    fn skip_corrupt(&mut self, offset: u64, reason: &str) -> Result<(), io::Error> {
        let found = self.input.resync()?;
        let skipped = self.input.offset - offset;
        let message = if found {
            format!(
                "corrupt frame at offset {offset} ({reason}): skipped {skipped} bytes up to the next valid frame at offset {}",
                self.input.offset
            )
        } else {
            format!(
                "corrupt frame at offset {offset} ({reason}): no valid frame follows it, so the last {skipped} bytes were skipped"
            )
        };
        self.warn(offset, WarningKind::Corrupt, message);
        Ok(())
    }

    /// Turns a checked frame into a record, or reports why it was skipped.
    fn accept(&mut self, offset: u64, kind: u8, flags: u8, payload: Payload) -> Option<Frame> {
        let plain = |record| {
            Some(Frame {
                offset,
                encoding: Encoding::Plain,
                record,
            })
        };
        match payload {
            Payload::Unknown => {
                if self.unknown.insert((kind, flags)) {
                    let what = if flags == 0 {
                        format!("frames of kind 0x{kind:02X}")
                    } else {
                        format!("{} frames with flags 0x{flags:02X}", kind::name(kind))
                    };
                    self.warn(
                        offset,
                        WarningKind::UnknownKind(kind),
                        format!(
                            "{what}, first at offset {offset}, are unknown to this version of memtrail and were skipped: a newer memtrail may show more"
                        ),
                    );
                }
                None
            }
            Payload::Undecodable(error) => {
                self.warn(
                    offset,
                    WarningKind::Corrupt,
                    format!(
                        "the {} frame at offset {offset} has a valid checksum but its payload does not decode ({error}); it was skipped",
                        kind::name(kind)
                    ),
                );
                None
            }
            Payload::Header => {
                self.warn(
                    offset,
                    WarningKind::Corrupt,
                    format!(
                        "a second header frame at offset {offset} was skipped (were two recordings joined together?)"
                    ),
                );
                None
            }
            Payload::Keyframe(wire) => {
                let (sample, seq) = wire.into_model();
                self.skipping.remove(&sample.id);
                self.bases.insert(sample.id, (sample.clone(), seq));
                Some(Frame {
                    offset,
                    encoding: Encoding::Keyframe,
                    record: Record::Process(Box::new(sample)),
                })
            }
            Payload::Delta(wire) => self.accept_delta(offset, &wire.view()),
            Payload::Record(record) => {
                if self.unselected_record(&record) {
                    return None;
                }
                if let Record::Exit(exit) = &record {
                    self.bases.remove(&exit.id);
                    self.skipping.remove(&exit.id);
                }
                plain(record)
            }
        }
    }

    fn accept_delta(&mut self, offset: u64, delta: &DeltaView<'_>) -> Option<Frame> {
        let id: ProcessId = delta.id.into();
        let seq = u16::from_le_bytes(delta.seq);
        let applied = match self.bases.get_mut(&id) {
            None => Err("the sample it builds on was lost or never written"),
            Some((_, base_seq)) if base_seq.wrapping_add(1) as u16 != seq => {
                Err("a sample between it and the last one read was lost")
            }
            // Updated where it lies: the base becomes the new sample, and
            // the record gets a copy (its names and regions shared).
            Some((base, seq)) => Ok(delta::apply_in_place(base, delta).map(|()| {
                *seq = seq.wrapping_add(1);
                Box::new(base.clone())
            })),
        };
        let lost = match applied {
            Ok(Ok(sample)) => {
                return Some(Frame {
                    offset,
                    encoding: Encoding::Delta,
                    record: Record::Process(sample),
                })
            }
            Ok(Err(why)) => {
                self.bases.remove(&id);
                self.skipping.insert(id);
                self.warn(
                    offset,
                    WarningKind::Corrupt,
                    format!(
                        "the delta frame at offset {offset} for process {id} does not fit the sample before it ({why}): it and the next deltas of that process are skipped until its next keyframe"
                    ),
                );
                return None;
            }
            Err(lost) => lost,
        };
        self.bases.remove(&id);
        if self.skipping.insert(id) {
            self.warn(
                offset,
                WarningKind::MissingBase,
                format!(
                    "the delta frame at offset {offset} for process {id} was skipped because {lost}; its next deltas are skipped too, until its next keyframe"
                ),
            );
        }
        None
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Frame, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_frame() {
            Ok(frame) => frame.map(Ok),
            Err(error) => Some(Err(self.io_error(error))),
        }
    }
}

impl<R: Read> fmt::Debug for Reader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("path", &self.path)
            .field("offset", &self.input.offset)
            .field("header", &self.header)
            .field("processes", &self.bases.len())
            .field("warnings", &self.warnings.len())
            .finish_non_exhaustive()
    }
}

/// A frame's payload, decoded.
// Lives on the stack from `decode` to `accept_decoded`, moved once, as the
// `Payload` alone was before; boxing it would allocate for every frame
// that is not a common delta.
#[allow(clippy::large_enum_variant)]
enum Decoded {
    /// A sample of a process not selected (see [`Reader::select`]).
    Unselected,
    /// A delta of the common shape (almost every frame of a recording),
    /// decoded into the reader's buffer and applied from there: the
    /// `Payload` of a delta is several hundred bytes, and moving it cost
    /// more than applying it.
    Fast(Box<FastDelta>),
    Payload(Payload),
}

/// The decompressed content of a block being read.
struct OpenBlock {
    content: Vec<u8>,
    pos: usize,
    /// The block frame's offset: the offset of every record in it.
    offset: u64,
}

/// A frame's payload, decoded according to its kind.
enum Payload {
    Header,
    Keyframe(KeyframeWire),
    Delta(DeltaWire),
    Record(Record),
    Unknown,
    Undecodable(String),
}

impl Payload {
    fn decode(kind: u8, flags: u8, payload: &[u8]) -> Payload {
        if flags != 0 {
            return Payload::Unknown;
        }
        let decoded = match kind {
            kind::HEADER => wire::decode::<wire::HeaderWire>(payload).map(|_| Payload::Header),
            kind::KEYFRAME => wire::decode(payload).map(Payload::Keyframe),
            kind::DELTA => wire::decode(payload).map(Payload::Delta),
            kind::SYSTEM => wire::decode(payload).map(|w: wire::SystemWire| {
                Payload::Record(Record::System(Box::new(w.into_model())))
            }),
            kind::EXIT => wire::decode(payload)
                .map(|w: wire::ExitWire| Payload::Record(Record::Exit(w.into_model()))),
            kind::MARKER => wire::decode(payload)
                .map(|w: wire::MarkerWire| Payload::Record(Record::Marker(w.into_model()))),
            kind::CENSUS => wire::decode(payload).map(|w: wire::CensusWire| {
                Payload::Record(Record::Census(Box::new(w.into_model())))
            }),
            kind::RETENTION => wire::decode(payload).map(|w: wire::RetentionWire| {
                Payload::Record(Record::Retention(Box::new(w.into_model())))
            }),
            kind::NATIVE_STACK => wire::decode(payload).map(|w: crate::native::NativeStackWire| {
                Payload::Record(Record::NativeStack(Box::new(w.into_model())))
            }),
            kind::NATIVE_MODULE => {
                wire::decode(payload).map(|w: crate::native::NativeModuleWire| {
                    Payload::Record(Record::NativeModule(Box::new(w.into_model())))
                })
            }
            kind::NOTICE => wire::decode(payload).map(|w: wire::NoticeWire| {
                Payload::Record(Record::Notice(Box::new(w.into_model())))
            }),
            kind::END => wire::decode(payload)
                .map(|w: wire::EndWire| Payload::Record(Record::End(w.into_model()))),
            _ => Ok(Payload::Unknown),
        };
        decoded.unwrap_or_else(Payload::Undecodable)
    }
}

/// Reads and checks the file header and the header frame, refusing
/// versions after `newest` (a parameter so that tests can play a reader of
/// an older version). Returns the header and the format version.
fn read_header<R: Read>(input: &mut Input<R>, newest: u16) -> Result<(Header, u16), ReadError> {
    let io = |offset, error| ReadError::Io {
        path: None,
        offset,
        error,
    };
    if !input.fill(FILE_HEADER_LEN).map_err(|e| io(0, e))? {
        let start = input.available();
        if start.is_empty() {
            return Err(ReadError::Empty { path: None });
        }
        if !MAGIC.starts_with(&start[..start.len().min(MAGIC.len())]) {
            return Err(not_memtrail(start));
        }
        return Err(ReadError::TruncatedHeader {
            path: None,
            len: start.len() as u64,
        });
    }
    let start = input.available();
    if start[..MAGIC.len()] != MAGIC {
        return Err(not_memtrail(start));
    }
    let version = u16::from_le_bytes([start[8], start[9]]);
    if version > newest {
        return Err(ReadError::UnsupportedVersion {
            path: None,
            found: version,
            supported: newest,
        });
    }
    if version == 0 {
        return Err(ReadError::CorruptHeader {
            path: None,
            offset: 8,
            reason: "format version 0 does not exist".to_string(),
        });
    }
    input.consume(FILE_HEADER_LEN);
    let offset = input.offset;
    let corrupt = |reason: String| ReadError::CorruptHeader {
        path: None,
        offset,
        reason,
    };
    match input.probe(0).map_err(|e| io(offset, e))? {
        Probe::Incomplete => Err(ReadError::TruncatedHeader {
            path: None,
            len: offset + input.available().len() as u64,
        }),
        Probe::Invalid(reason) => Err(corrupt(reason)),
        Probe::Valid { kind, flags, len } => {
            if kind != kind::HEADER {
                return Err(corrupt(format!(
                    "the first frame is a {} frame (kind 0x{kind:02X}), not a header",
                    kind::name(kind)
                )));
            }
            if flags != 0 {
                return Err(corrupt(format!(
                    "the header frame has flags 0x{flags:02X}, unknown to this version: upgrade memtrail"
                )));
            }
            let payload = &input.available()[FRAME_HEADER_LEN..][..len];
            let header = wire::decode::<wire::HeaderWire>(payload)
                .map_err(|e| corrupt(format!("the header frame does not decode: {e}")))?;
            input.consume(FRAME_HEADER_LEN + len);
            Ok((header.into_model(), version))
        }
    }
}

/// The error for input that does not start with the magic bytes, saying
/// what it looks like instead.
fn not_memtrail(start: &[u8]) -> ReadError {
    let start = &start[..start.len().min(16)];
    let hex: Vec<String> = start.iter().map(|b| format!("{b:02x}")).collect();
    let text: String = start
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    let hint = if start.first() == Some(&0x89) && start.get(1..4) == Some(b"MTR") {
        "that is memtrail's signature with its line-ending bytes changed: the file was \
         copied in text mode (FTP ASCII, a git text filter); copy it again in binary mode"
    } else if start.starts_with(&[0x1f, 0x8b]) {
        "that is gzip-compressed data: decompress it first (gunzip)"
    } else if start.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "that is zstd-compressed data: decompress it first (unzstd)"
    } else if start.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        "that is xz-compressed data: decompress it first (unxz)"
    } else if matches!(
        start.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    ) {
        "that looks like JSON: memtrail reads its binary recordings (.mtr), not JSON output"
    } else if start
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        "that is text: memtrail reads binary recordings made by `memtrail record` or `memtrail snap`"
    } else {
        "memtrail recordings start with 89 4d 54 52 0d 0a 1a 0a: check that this is the file you meant"
    };
    ReadError::NotMemtrail {
        path: None,
        found: format!("{} (\"{text}\")", hex.join(" ")),
        hint: hint.to_string(),
    }
}

/// What is at a position of the input.
enum Probe {
    /// A complete frame whose checksum matches.
    Valid { kind: u8, flags: u8, len: usize },
    /// Not a frame, for the reason given.
    Invalid(String),
    /// The input ends before the frame does.
    Incomplete,
}

/// Bytes between two saved prefix checksums (see [`Input::prefix_crc`]).
const MARK_EVERY: usize = 128;

/// Frames up to this long are checked by hashing them; longer ones from
/// prefix checksums, at a cost that does not depend on their length.
const HASH_DIRECTLY: usize = 4 * MARK_EVERY;

/// A window on the input: `buf[pos..]` are the bytes from stream offset
/// `offset` on that were read but not consumed.
///
/// Checking a frame costs at most [`HASH_DIRECTLY`] bytes of CRC work,
/// whatever length its header claims. Resynchronising probes every `MF` in
/// a damaged stretch, and hostile input can make each claim 16 MiB: hashing
/// every candidate's payload would cost 16 MiB per 12 bytes of input.
/// Instead a long candidate is checked from prefix checksums
/// (`marks[k]` is the CRC of `buf[..k * MARK_EVERY]`), by CRC-32's
/// linearity: `crc(A ++ B) = shift(crc(A), len B) ^ crc(B)`. Each byte of
/// the window is hashed into the marks once, so the whole read stays
/// linear in the input.
struct Input<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    offset: u64,
    eof: bool,
    /// Prefix checksums of `buf`, computed on demand; cleared whenever the
    /// window moves.
    marks: Vec<u32>,
    /// The shift operator of the last long length checked (damage tends to
    /// repeat one length).
    shift_op: Option<(usize, u32)>,
    /// Bytes fed to the CRC so far: the work of checking frames.
    hashed: u64,
}

impl<R: Read> Input<R> {
    fn new(inner: R) -> Self {
        Input {
            inner,
            buf: Vec::new(),
            pos: 0,
            offset: 0,
            eof: false,
            marks: Vec::new(),
            shift_op: None,
            hashed: 0,
        }
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.buf.len() - self.pos);
        self.pos += n;
        self.offset += n as u64;
    }

    /// Reads until at least `need` bytes are available; false if the input
    /// ends first. Reads only what is missing, so a live stream is never
    /// waited on for more than the frame at hand.
    fn fill(&mut self, need: usize) -> io::Result<bool> {
        while self.buf.len() - self.pos < need {
            if self.eof {
                return Ok(false);
            }
            // Drop the consumed bytes once they are a chunk and a quarter of
            // the window: moving the rest then costs at most three bytes per
            // byte consumed. Dropping them before every read would move a
            // 16 MiB window for every chunk read while scanning damage.
            if self.pos >= CHUNK.max(self.buf.len() / 4) {
                self.buf.drain(..self.pos);
                self.pos = 0;
                self.marks.clear();
            }
            let old = self.buf.len();
            self.buf.resize(old + CHUNK, 0);
            match self.inner.read(&mut self.buf[old..]) {
                Ok(0) => {
                    self.buf.truncate(old);
                    self.eof = true;
                }
                Ok(n) => self.buf.truncate(old + n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buf.truncate(old),
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        }
        Ok(true)
    }

    /// What is at `at` bytes past the current position.
    fn probe(&mut self, at: usize) -> io::Result<Probe> {
        if !self.fill(at + FRAME_HEADER_LEN)? {
            return Ok(Probe::Incomplete);
        }
        let h = &self.available()[at..at + FRAME_HEADER_LEN];
        if h[..2] != SYNC {
            return Ok(Probe::Invalid(format!(
                "no frame starts there: expected sync bytes 4d 46, found {:02x} {:02x}",
                h[0], h[1]
            )));
        }
        let (kind, flags) = (h[2], h[3]);
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let crc = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        if len > MAX_FRAME_LEN {
            return Ok(Probe::Invalid(format!(
                "its length, {len} bytes, is over the limit of {MAX_FRAME_LEN}"
            )));
        }
        let len = len as usize;
        if !self.fill(at + FRAME_HEADER_LEN + len)? {
            return Ok(Probe::Incomplete);
        }
        if self.frame_crc(self.pos + at, kind, flags, len) != crc {
            return Ok(Probe::Invalid("checksum mismatch".to_string()));
        }
        Ok(Probe::Valid { kind, flags, len })
    }

    /// The CRC of the frame of `len` payload bytes whose sync bytes are at
    /// `buf[start..]`, all of it in the window.
    fn frame_crc(&mut self, start: usize, kind: u8, flags: u8, len: usize) -> u32 {
        let payload = start + FRAME_HEADER_LEN;
        if len <= HASH_DIRECTLY {
            self.hashed += 6 + len as u64;
            return frame::checksum(kind, flags, len as u32, &self.buf[payload..][..len]);
        }
        // crc(head ++ payload) = shift(crc(head), len) ^ crc(payload), and
        // crc(payload) = crc(buf[..end]) ^ shift(crc(buf[..payload]), len).
        self.hashed += 6;
        let head = frame::checksum(kind, flags, len as u32, &[]);
        let before = self.prefix_crc(payload);
        let through = self.prefix_crc(payload + len);
        let op = match self.shift_op {
            Some((cached, op)) if cached == len => op,
            _ => {
                let op = frame::crc_shift_op(len as u64);
                self.shift_op = Some((len, op));
                op
            }
        };
        through ^ frame::crc_shift(head ^ before, op)
    }

    /// The CRC of `buf[..end]`, from the nearest mark at or before `end`.
    fn prefix_crc(&mut self, end: usize) -> u32 {
        let k = end / MARK_EVERY;
        while self.marks.len() <= k {
            let n = self.marks.len();
            let mark = match n.checked_sub(1) {
                None => 0, // the CRC of nothing
                Some(prev) => {
                    self.continue_crc(self.marks[prev], prev * MARK_EVERY, n * MARK_EVERY)
                }
            };
            self.marks.push(mark);
        }
        self.continue_crc(self.marks[k], k * MARK_EVERY, end)
    }

    /// The CRC of `buf[..to]`, given `crc`, that of `buf[..from]`.
    fn continue_crc(&mut self, crc: u32, from: usize, to: usize) -> u32 {
        self.hashed += (to - from) as u64;
        let mut hasher = crc32fast::Hasher::new_with_initial(crc);
        hasher.update(&self.buf[from..to]);
        hasher.finalize()
    }

    /// Skips the byte at the current position and everything after it up to
    /// the next valid frame. False if the input ended first (then all of it
    /// was consumed).
    fn resync(&mut self) -> io::Result<bool> {
        self.consume(1);
        loop {
            match find_sync(self.available()) {
                Some(i) => {
                    self.consume(i);
                    if let Probe::Valid { .. } = self.probe(0)? {
                        return Ok(true);
                    }
                    self.consume(1);
                }
                None => {
                    // Keep a last byte that may begin the sync bytes.
                    let keep = usize::from(self.available().last() == Some(&SYNC[0]));
                    self.consume(self.available().len() - keep);
                    if !self.fill(keep + 1)? {
                        let rest = self.available().len();
                        self.consume(rest);
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// The position of the first valid frame at or after `from` among the
    /// bytes already read, relative to the current position. Used at the
    /// end of the input, so it reads nothing more.
    fn find_frame(&mut self, mut from: usize) -> io::Result<Option<usize>> {
        while let Some(i) = find_sync(&self.available()[from.min(self.available().len())..]) {
            let at = from + i;
            if let Probe::Valid { .. } = self.probe(at)? {
                return Ok(Some(at));
            }
            from = at + 1;
        }
        Ok(None)
    }
}

fn find_sync(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == SYNC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Detail, Host, Marker};
    use crate::Writer;

    fn header() -> Header {
        Header {
            writer: "reader tests".into(),
            host: Host {
                hostname: "h".into(),
                kernel: "6.8.0".into(),
                page_size: 4096,
                clock_ticks: 100,
                boot_time_us: 0,
            },
            started_us: 0,
            target: "--all".into(),
            detail: Detail::Summary,
            interval_us: None,
        }
    }

    fn marker(label_len: usize) -> Record {
        Record::Marker(Marker {
            time_us: 1,
            label: "m".repeat(label_len),
            pid: None,
            source: "test".into(),
        })
    }

    /// `size` bytes of frame headers that each claim `claimed` payload bytes
    /// and all fail their checksum: the worst case for resynchronising.
    fn fake_headers(size: usize, claimed: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(size + FRAME_HEADER_LEN);
        while out.len() < size {
            out.extend_from_slice(&[SYNC[0], SYNC[1], kind::KEYFRAME, 0]);
            out.extend_from_slice(&claimed.to_le_bytes());
            out.extend_from_slice(&[0xAA; 4]);
        }
        out
    }

    /// Reads `bytes`; returns the records, the warnings and the CRC work.
    fn read(bytes: &[u8]) -> (Vec<Record>, Vec<Warning>, u64) {
        let mut reader = Reader::new(bytes).unwrap();
        let records = reader.by_ref().map(|f| f.unwrap().record).collect();
        (records, reader.take_warnings(), reader.input.hashed)
    }

    /// A recording whose first frame is followed by `middle`, then by small
    /// and long (> HASH_DIRECTLY) frames that must all be found again.
    fn around(middle: &[u8]) -> (Vec<u8>, Vec<Record>) {
        let records = vec![marker(10), marker(100_000), marker(20), marker(3_000)];
        let mut writer = Writer::new(Vec::new(), &header()).unwrap();
        writer.write(&records[0]).unwrap();
        let split = writer.get_ref().len();
        for r in &records[1..] {
            writer.write(r).unwrap();
        }
        writer.flush().unwrap();
        let clean = writer.get_ref().clone();
        let mut bytes = clean[..split].to_vec();
        bytes.extend_from_slice(middle);
        bytes.extend_from_slice(&clean[split..]);
        (bytes, records)
    }

    /// A reader of version 1 meeting a version 2 file (the golden one)
    /// refuses it with the message docs/format.md quotes, instead of
    /// skipping its blocks as frames of an unknown kind.
    #[test]
    fn a_version_1_reader_refuses_version_2_with_the_documented_message() {
        let golden = include_bytes!("../../../tests/golden/v2-recording.mtr");
        let error = read_header(&mut Input::new(&golden[..]), 1).unwrap_err();
        assert!(matches!(
            error,
            ReadError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            }
        ));
        let error = error.with_path(Path::new("week.mtr"));
        assert_eq!(
            error.to_string(),
            "week.mtr was written in format version 2, but this memtrail reads only versions up to 1: upgrade memtrail to read it"
        );
        // This version reads it.
        let (_, version) = read_header(&mut Input::new(&golden[..]), FORMAT_VERSION).unwrap();
        assert_eq!(version, 2);
    }

    #[test]
    fn long_frames_are_checked_like_short_ones() {
        let (bytes, records) = around(&[]);
        let (got, warnings, _) = read(&bytes);
        assert_eq!(got, records);
        assert_eq!(warnings, vec![]);
        // A flipped bit anywhere in the long frame's payload is caught.
        let long_at = bytes
            .windows(2)
            .enumerate()
            .filter(|(_, w)| *w == SYNC)
            .nth(2)
            .unwrap()
            .0;
        for at in [
            long_at + FRAME_HEADER_LEN,
            long_at + 50_000,
            long_at + 100_000,
        ] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            let (got, warnings, _) = read(&damaged);
            assert_eq!(
                got,
                [records[0].clone(), records[2].clone(), records[3].clone()]
            );
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert_eq!(warnings[0].offset, long_at as u64);
        }
    }

    /// Regression test: resynchronising over plausible frame headers used
    /// to hash every candidate's claimed payload, up to 16 MiB for each 12
    /// bytes of input (2.9 TB of CRC work, 56 s, for 18 MiB of them). Now
    /// the work is a small constant per byte, whatever the claimed lengths.
    #[test]
    fn resynchronising_over_fake_frame_headers_costs_linear_work() {
        for (size, claimed) in [
            (1 << 20, 4096),
            (2 << 20, 1 << 20),
            (MAX_FRAME_LEN as usize + (1 << 20), MAX_FRAME_LEN),
        ] {
            let (bytes, records) = around(&fake_headers(size, claimed));
            let (got, warnings, hashed) = read(&bytes);
            assert_eq!(got, records, "{size} bytes claiming {claimed}");
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert_eq!(warnings[0].kind, WarningKind::Corrupt);
            let per_byte = hashed as f64 / bytes.len() as f64;
            assert!(
                per_byte < 16.0,
                "{size} bytes of headers claiming {claimed}: {hashed} bytes hashed, {per_byte:.1} per input byte"
            );
        }
    }
}
