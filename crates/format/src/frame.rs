//! The frame layer: sync bytes, kind, flags, length and checksum around
//! each payload. See docs/format.md, "Frames".

use serde::Serialize;

use crate::model::Record;

/// The first two bytes of every frame (`MF`), searched for when resynchronising.
pub(crate) const SYNC: [u8; 2] = [0x4D, 0x46];

/// Sync (2), kind (1), flags (1), payload length (4), CRC-32 (4).
pub(crate) const FRAME_HEADER_LEN: usize = 12;

/// Frame kinds of format version 1.
pub(crate) mod kind {
    pub(crate) const HEADER: u8 = 0x01;
    pub(crate) const KEYFRAME: u8 = 0x10;
    pub(crate) const DELTA: u8 = 0x11;
    pub(crate) const SYSTEM: u8 = 0x20;
    pub(crate) const EXIT: u8 = 0x30;
    pub(crate) const MARKER: u8 = 0x40;
    pub(crate) const NOTICE: u8 = 0x50;
    pub(crate) const END: u8 = 0x7F;

    /// What a kind is called in messages.
    pub(crate) fn name(kind: u8) -> &'static str {
        match kind {
            HEADER => "header",
            KEYFRAME => "process keyframe",
            DELTA => "process delta",
            SYSTEM => "system sample",
            EXIT => "process exit",
            MARKER => "marker",
            NOTICE => "notice",
            END => "end",
            _ => "unknown",
        }
    }
}

/// CRC-32 (IEEE) over the kind, flags and length bytes, then the payload.
pub(crate) fn checksum(kind: u8, flags: u8, len: u32, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[kind, flags]);
    hasher.update(&len.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Appends one complete frame to `out`. The caller checked the payload length.
pub(crate) fn encode(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("payload length checked against MAX_FRAME_LEN");
    let flags = 0;
    out.extend_from_slice(&SYNC);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(kind, flags, len, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// One record read back from a recording, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Frame {
    /// Byte offset of the frame (its sync bytes) from the start of the stream.
    pub offset: u64,
    /// How the record was stored.
    pub encoding: Encoding,
    pub record: Record,
}

/// How a record was stored in its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// A complete process sample.
    Keyframe,
    /// A process sample stored as its difference from the previous sample
    /// of the same process.
    Delta,
    /// Any record other than a process sample.
    Plain,
}
