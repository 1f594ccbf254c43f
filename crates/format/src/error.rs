//! Errors (the input cannot be read or written) and warnings (damage that
//! was survived).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::MAX_FRAME_LEN;

/// Why a recording cannot be read at all.
///
/// Damage inside a recording is not an error: it is reported as a
/// [`Warning`] and reading goes on.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot open {}: {error}", .path.display())]
    Open { path: PathBuf, error: io::Error },

    #[error("{} is empty: it holds no recording (was the recorder stopped before it started?)", subject(.path))]
    Empty { path: Option<PathBuf> },

    #[error("{} is not a memtrail recording: it starts with {found}; {hint}", subject(.path))]
    NotMemtrail {
        path: Option<PathBuf>,
        /// The first bytes, in hex and as text.
        found: String,
        /// What those bytes look like and what to do about it.
        hint: String,
    },

    #[error(
        "{} was written in format version {found}, but this memtrail reads only versions up to {supported}: upgrade memtrail to read it",
        subject(.path)
    )]
    UnsupportedVersion {
        path: Option<PathBuf>,
        found: u16,
        supported: u16,
    },

    #[error(
        "{} ends after {len} bytes, inside its header: the recorder stopped (or the file was cut short) before any sample was written, so there is nothing to read",
        subject(.path)
    )]
    TruncatedHeader { path: Option<PathBuf>, len: u64 },

    #[error(
        "{} has a damaged header at byte offset {offset} ({reason}): without it the recording cannot be read",
        subject(.path)
    )]
    CorruptHeader {
        path: Option<PathBuf>,
        offset: u64,
        reason: String,
    },

    #[error("cannot read {} at byte offset {offset}: {error}", subject(.path))]
    Io {
        path: Option<PathBuf>,
        offset: u64,
        error: io::Error,
    },
}

impl ReadError {
    /// The kind of the underlying I/O error, if this is one.
    pub fn io_error_kind(&self) -> Option<io::ErrorKind> {
        match self {
            ReadError::Open { error, .. } | ReadError::Io { error, .. } => Some(error.kind()),
            _ => None,
        }
    }

    /// The file concerned, when the input was opened by path.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ReadError::Open { path, .. } => Some(path),
            ReadError::Empty { path }
            | ReadError::NotMemtrail { path, .. }
            | ReadError::UnsupportedVersion { path, .. }
            | ReadError::TruncatedHeader { path, .. }
            | ReadError::CorruptHeader { path, .. }
            | ReadError::Io { path, .. } => path.as_deref(),
        }
    }

    /// The same error, naming `new` as the file concerned (for a reader
    /// made with [`Reader::new`](crate::Reader::new) on a file opened by
    /// the caller).
    pub fn with_path(mut self, new: &Path) -> ReadError {
        match &mut self {
            ReadError::Open { .. } => {}
            ReadError::Empty { path }
            | ReadError::NotMemtrail { path, .. }
            | ReadError::UnsupportedVersion { path, .. }
            | ReadError::TruncatedHeader { path, .. }
            | ReadError::CorruptHeader { path, .. }
            | ReadError::Io { path, .. } => *path = Some(new.to_path_buf()),
        }
        self
    }
}

/// Names the input in a message: its path, or "the input" for a stream.
fn subject(path: &Option<PathBuf>) -> String {
    match path {
        Some(path) => path.display().to_string(),
        None => "the input".to_string(),
    }
}

/// Why a record could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The output failed; [`WriteError::io_error_kind`] tells a broken pipe
    /// or a full disk apart.
    #[error("cannot write the recording: {0}")]
    Io(io::Error),

    #[error(
        "cannot record {field}: its value is 2^64-1, one more than the largest format version 1 can store"
    )]
    Unrepresentable { field: &'static str },

    #[error(
        "cannot record a {what}: it does not fit in one frame ({MAX_FRAME_LEN} bytes at most)"
    )]
    TooLarge { what: &'static str },

    #[error("cannot encode a {what}: {message}")]
    Encode { what: &'static str, message: String },
}

impl WriteError {
    /// The kind of the underlying I/O error, if this is one: `BrokenPipe`
    /// when the reader went away, `StorageFull` or `Other` with ENOSPC when
    /// the disk is full.
    pub fn io_error_kind(&self) -> Option<io::ErrorKind> {
        match self {
            WriteError::Io(error) => Some(error.kind()),
            _ => None,
        }
    }

    /// The underlying I/O error, if this is one.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            WriteError::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for WriteError {
    fn from(error: io::Error) -> Self {
        WriteError::Io(error)
    }
}

/// Damage met while reading that was survived: what was lost and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Byte offset of the damaged frame from the start of the stream.
    pub offset: u64,
    pub kind: WarningKind,
    /// A sentence for people, naming the offset and what was lost.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What kind of damage a [`Warning`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningKind {
    /// The input ends inside a frame: the recorder was killed mid-write.
    TornTail,
    /// Bytes that are not a valid frame were skipped.
    Corrupt,
    /// Frames of a kind (or with flags) this version does not know were
    /// skipped; reported once per kind.
    UnknownKind(u8),
    /// Process deltas were skipped because the sample they build on was lost.
    MissingBase,
}
