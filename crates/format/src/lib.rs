//! memtrail-format: memtrail's data model and its stable binary container.
//!
//! A recording is a [`Header`] followed by [`Record`]s: process samples
//! ([`ProcessSample`]), machine-wide samples, process exits, markers,
//! notices, and an [`End`] when the recorder stopped cleanly. The model
//! types ([`model`]) say what is recorded; this crate also says how it is
//! stored:
//!
//! - [`Writer`] writes a recording to any [`std::io::Write`]: a file header,
//!   then one checksummed frame per record. Process samples are stored as
//!   deltas from the previous sample of the same process, with a full
//!   keyframe every [`Writer::keyframe_interval`] samples.
//! - [`Ticks`] numbers the sampling rounds (ticks) of a recording: the
//!   one meaning of a moment for every command.
//! - [`Reader`] (or [`open`] for a file) reads one back as an iterator of
//!   [`Frame`]s, each a record with its offset and [`Encoding`]. It streams,
//!   so it reads live pipes, and it survives damage: a torn tail, a corrupt
//!   stretch or a frame kind from a later version becomes a [`Warning`]
//!   (see [`Reader::take_warnings`]) and reading goes on. Only a failing
//!   input or an unreadable header is a [`ReadError`].
//!
//! The bytes are specified in `docs/format.md` and pinned by golden files:
//! a recording written today opens in every later version.
//!
//! ```
//! use memtrail_format::*;
//!
//! let header = Header {
//!     writer: "example 1.0".into(),
//!     host: Host {
//!         hostname: "box".into(),
//!         kernel: "6.8.0".into(),
//!         page_size: 4096,
//!         clock_ticks: 100,
//!         boot_time_us: 1_700_000_000_000_000,
//!     },
//!     started_us: 1_700_000_100_000_000,
//!     target: "--pid 42".into(),
//!     detail: Detail::Summary,
//!     interval_us: Some(1_000_000),
//! };
//! let mut sample = ProcessSample {
//!     time_us: header.started_us,
//!     id: ProcessId { pid: 42, start_time: 5_000 },
//!     info: std::sync::Arc::new(ProcessInfo { comm: "leaky".into(), ..ProcessInfo::default() }),
//!     detail: Detail::Summary,
//!     status: Status { vm_rss: Some(10_240), ..Status::default() },
//!     cpu: None,
//!     rollup: None,
//!     fds: None,
//!     mappings: None,
//!     mappings_fresh: false,
//! };
//!
//! let mut writer = Writer::new(Vec::new(), &header)?;
//! writer.write(&Record::Process(Box::new(sample.clone())))?;
//! sample.time_us += 1_000_000;
//! sample.status.vm_rss = Some(10_496);
//! writer.write(&Record::Process(Box::new(sample.clone())))?; // stored as a delta
//! let end = End { time_us: sample.time_us, reason: EndReason::Completed, samples: 2 };
//! let bytes = writer.finish(&end)?;
//!
//! let mut reader = Reader::new(bytes.as_slice())?;
//! assert_eq!(reader.header(), &header);
//! let frames = reader.by_ref().collect::<Result<Vec<Frame>, ReadError>>()?;
//! assert_eq!(frames.len(), 3);
//! assert_eq!(frames[1].encoding, Encoding::Delta);
//! assert_eq!(frames[1].record, Record::Process(Box::new(sample)));
//! assert!(reader.take_warnings().is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod block;
mod delta;
mod error;
mod fastdelta;
mod frame;
pub mod model;
pub mod native;
mod reader;
mod tick;
mod wire;
mod writer;

pub use error::{ReadError, Warning, WarningKind, WriteError};
pub use frame::{Encoding, Frame};
pub use model::*;
pub use native::{NativeModule, NativeStack};
pub use reader::{open, Reader};
pub use tick::Ticks;
pub use writer::Writer;

/// The first eight bytes of every recording. As in PNG, the high-bit first
/// byte, the CR LF pair, the DOS end-of-file byte (0x1A) and the final LF
/// catch files damaged by 7-bit or text-mode transfers.
pub const MAGIC: [u8; 8] = [0x89, b'M', b'T', b'R', b'\r', b'\n', 0x1A, b'\n'];

/// The newest format version this crate reads and writes: 2 (compressed
/// blocks, [`Writer::compressed`]). [`Writer::new`] writes version 1.
pub const FORMAT_VERSION: u16 = 2;

/// The largest payload of one frame, in bytes (16 MiB). Readers reject
/// longer frames without allocating for them.
pub const MAX_FRAME_LEN: u32 = 16 * 1024 * 1024;
