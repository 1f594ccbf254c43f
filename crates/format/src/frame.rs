//! The frame layer: sync bytes, kind, flags, length and checksum around
//! each payload. See docs/format.md, "Frames".

use serde::Serialize;

use crate::model::Record;

/// The first two bytes of every frame (`MF`), searched for when resynchronising.
pub(crate) const SYNC: [u8; 2] = [0x4D, 0x46];

/// Sync (2), kind (1), flags (1), payload length (4), CRC-32 (4).
pub(crate) const FRAME_HEADER_LEN: usize = 12;

/// Frame kinds.
pub(crate) mod kind {
    pub(crate) const HEADER: u8 = 0x01;
    pub(crate) const KEYFRAME: u8 = 0x10;
    pub(crate) const DELTA: u8 = 0x11;
    pub(crate) const SYSTEM: u8 = 0x20;
    pub(crate) const EXIT: u8 = 0x30;
    pub(crate) const MARKER: u8 = 0x40;
    pub(crate) const CENSUS: u8 = 0x41;
    pub(crate) const RETENTION: u8 = 0x42;
    pub(crate) const NATIVE_STACK: u8 = 0x43;
    pub(crate) const NATIVE_MODULE: u8 = 0x44;
    pub(crate) const NOTICE: u8 = 0x50;
    /// Version 2 only: compressed records.
    pub(crate) const BLOCK: u8 = 0x60;
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
            CENSUS => "census",
            RETENTION => "retention",
            NATIVE_STACK => "native stack",
            NATIVE_MODULE => "native module",
            NOTICE => "notice",
            BLOCK => "block",
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

/// The reflected CRC-32 polynomial, as in zlib.
const POLY: u32 = 0xEDB8_8320;

/// `a * b` modulo the CRC polynomial, both in the reflected bit order of
/// the CRC (zlib's `multmodp`).
const fn mul_mod_p(a: u32, mut b: u32) -> u32 {
    let mut product = 0;
    let mut bit = 0;
    while bit < 32 {
        if a & (1 << (31 - bit)) != 0 {
            product ^= b;
        }
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
        bit += 1;
    }
    product
}

/// `x^(2^k)` modulo the CRC polynomial, for k in 0..64.
const X_POW_2K: [u32; 64] = {
    let mut table = [0; 64];
    let mut p = 1 << 30; // x^1
    let mut k = 0;
    while k < 64 {
        table[k] = p;
        p = mul_mod_p(p, p);
        k += 1;
    }
    table
};

/// The operator that appends `len` bytes to a CRC: `x^(8 * len)` modulo
/// the polynomial (zlib's `x2nmodp(len, 3)`).
pub(crate) fn crc_shift_op(len: u64) -> u32 {
    let mut p = 1 << 31; // x^0
    let mut n = len;
    let mut k = 3;
    while n != 0 {
        if n & 1 != 0 {
            p = mul_mod_p(X_POW_2K[k], p);
        }
        n >>= 1;
        k += 1;
    }
    p
}

/// Given `crc(A)` and the operator for `len(B)`, the term that CRC-32's
/// linearity adds to `crc(B)`: `crc(A ++ B) == crc_shift(crc(A), op) ^ crc(B)`
/// (zlib's `crc32_combine`). This checks a frame from two prefix checksums
/// in constant time, whatever its length.
pub(crate) fn crc_shift(crc: u32, op: u32) -> u32 {
    mul_mod_p(op, crc)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn crc(bytes: &[u8]) -> u32 {
        crc32fast::hash(bytes)
    }

    #[test]
    fn crc_shift_combines_like_zlib() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for split in [0, 1, 2, 7, 64, 100, 1000, 4999, 5000] {
            let (a, b) = data.split_at(split);
            let op = crc_shift_op(b.len() as u64);
            assert_eq!(
                crc(&data),
                crc_shift(crc(a), op) ^ crc(b),
                "split at {split}"
            );
        }
    }

    #[test]
    fn crc_shift_by_nothing_is_the_identity() {
        assert_eq!(crc_shift(0xCBF4_3926, crc_shift_op(0)), 0xCBF4_3926);
    }
}
