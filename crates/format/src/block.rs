//! Compressed blocks of format version 2: records packed without their
//! frame headers, compressed with zstd in chains of blocks that share one
//! compression context. See docs/format.md, "Blocks (version 2)".

use std::io::{self, Write};
use std::time::{Duration, Instant};

use zstd::stream::raw::{DParameter, Decoder, InBuffer, Operation, OutBuffer};

use crate::MAX_FRAME_LEN;

/// The zstd compression level writers use: 16, zstd's first level with
/// optimal parsing (`btopt`), with the minimum match of 3 bytes below. A
/// recording is mostly small deltas of varints: matches are short and
/// many, and an optimal parser with short matches finds what level 3's
/// greedy one misses. Rewriting real recordings (the compression
/// example) against level 3: 30% fewer bytes on `record --all` of a host
/// compiling Rust (summary 9.32 -> 6.55 B per process sample, rollup
/// 10.20 -> 7.23), 32% on a quiet host, 16% on a 1,000-region process;
/// about 4.5 µs more CPU per process sample (3% of a recorder's CPU on
/// `record --all`) and 0.6 MiB more memory (the 3-byte hash table).
/// Level 16 with its own minimum match (5) saved only 15%; levels 18 and
/// 19 (`btultra`) 2-3% more than this, at twice its CPU.
/// docs/performance.md, "The compression level".
const LEVEL: i32 = 16;
const MIN_MATCH: u32 = 3;

/// The zstd window writers use (2^19 = 512 KiB): more than one tick of a
/// large recording, so a sample finds its predecessor in the context.
/// With the two tables below (96 KiB, plus the 512 KiB table of 3-byte
/// hashes that the minimum match of 3 brings), where level 16 on its own
/// would choose a 4 MiB window and tables of 2^22 entries each (32 MiB),
/// and level 3 a 2 MiB window and 768 KiB of tables: the files came out
/// the same size or smaller with these on recordings of a host and of a
/// 1,000-region process (docs/performance.md, "Recorder memory" and "The
/// compression level"); a window of 2^18 was as good, 2^17 worse: this
/// keeps a step of margin.
const WINDOW_LOG: u32 = 19;

/// zstd's hash table (2^14 entries) and its search tree (2^13), for the
/// same reason. A tick's records resemble the last tick's, a few KiB
/// back, so small tables lose nothing a larger one would find.
const HASH_LOG: u32 = 14;
const CHAIN_LOG: u32 = 13;

/// The largest zstd window a reader accepts (2^23 = 8 MiB): a block asking
/// for more is invalid, so decompressing takes bounded memory.
pub(crate) const MAX_WINDOW_LOG: u32 = 23;

/// The largest content (decompressed size) of one block: a block holds at
/// most [`BLOCK_TARGET`] bytes and one more record, itself at most
/// [`MAX_FRAME_LEN`] bytes with its 7-byte head.
pub(crate) const MAX_CONTENT_LEN: u32 = 2 * MAX_FRAME_LEN;

/// A writer ends a block once its content reaches this size (256 KiB):
/// the content and its compressed copy are the writer's buffers, and blocks
/// of one chain share their compression context whatever their size...
const BLOCK_TARGET: usize = 256 * 1024;

/// ...or once it has been open this long, so that a live reader and a
/// crash lose at most about a second.
const BLOCK_AGE: Duration = Duration::from_secs(1);

/// A writer starts a new chain (a fresh compression context) after this
/// many blocks, or once a chain's content reaches [`CHAIN_BYTES`]: what a
/// damaged block costs is the rest of its chain. Four keyframe intervals
/// (of the default 60 samples): a process keyframe then finds its previous
/// keyframe in the same chain three times in four, and costs a fraction
/// of one that starts a chain (docs/format.md, "Chains").
pub(crate) const DEFAULT_CHAIN_BLOCKS: u32 = 240;
const CHAIN_BYTES: u64 = 16 * 1024 * 1024;

/// Length of the longest record head: kind, flags, and a 5-byte varint.
const RECORD_HEAD_MAX: usize = 7;

/// The head of a block's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockHead {
    /// Identifies the chain: the writer's offset of the chain's first block.
    pub chain: u64,
    /// The block's position in its chain, 0 for the first.
    pub index: u32,
    /// Length of the decompressed content.
    pub content_len: u32,
    /// CRC-32 of the decompressed content.
    pub content_crc: u32,
}

/// Appends `v` as a varint (docs/format.md, "Payload encoding").
pub(crate) fn put_varint(out: &mut Vec<u8>, v: u64) {
    if v <= 250 {
        out.push(v as u8);
    } else if let Ok(v) = u16::try_from(v) {
        out.push(0xFB);
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = u32::try_from(v) {
        out.push(0xFC);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        out.push(0xFD);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Reads a varint from the start of `bytes`: the value and its length.
pub(crate) fn get_varint(bytes: &[u8]) -> Result<(u64, usize), &'static str> {
    let fixed = |n: usize| -> Result<u64, &'static str> {
        let b = bytes.get(1..1 + n).ok_or("a varint runs past the end")?;
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(b);
        Ok(u64::from_le_bytes(v))
    };
    match bytes.first() {
        None => Err("a varint runs past the end"),
        Some(&b) if b <= 250 => Ok((u64::from(b), 1)),
        Some(0xFB) => Ok((fixed(2)?, 3)),
        Some(0xFC) => Ok((fixed(4)?, 5)),
        Some(0xFD) => Ok((fixed(8)?, 9)),
        Some(_) => Err("invalid varint tag (FE or FF)"),
    }
}

/// Reads a varint that must fit in a u32.
fn get_varint_u32(bytes: &[u8]) -> Result<(u32, usize), &'static str> {
    let (v, n) = get_varint(bytes)?;
    let v = u32::try_from(v).map_err(|_| "a varint is too large for a u32")?;
    Ok((v, n))
}

impl BlockHead {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.chain);
        put_varint(out, u64::from(self.index));
        put_varint(out, u64::from(self.content_len));
        out.extend_from_slice(&self.content_crc.to_le_bytes());
    }

    /// The head and the compressed data after it.
    pub(crate) fn decode(payload: &[u8]) -> Result<(BlockHead, &[u8]), String> {
        let (chain, a) = get_varint(payload)?;
        let (index, b) = get_varint_u32(&payload[a..])?;
        let (content_len, c) = get_varint_u32(&payload[a + b..])?;
        let at = a + b + c;
        let crc = payload
            .get(at..at + 4)
            .ok_or("the block's head runs past the end of its payload")?;
        if content_len > MAX_CONTENT_LEN {
            return Err(format!(
                "its content length, {content_len} bytes, is over the limit of {MAX_CONTENT_LEN}"
            ));
        }
        let head = BlockHead {
            chain,
            index,
            content_len,
            content_crc: u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]),
        };
        Ok((head, &payload[at + 4..]))
    }
}

/// Appends a record (kind, flags, varint length, payload) to block content.
pub(crate) fn put_record(content: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    content.push(kind);
    content.push(0);
    put_varint(content, payload.len() as u64);
    content.extend_from_slice(payload);
}

/// The next record of block content at `pos`: kind, flags, payload range.
pub(crate) fn next_record(
    content: &[u8],
    pos: usize,
) -> Result<(u8, u8, std::ops::Range<usize>), String> {
    let rest = &content[pos..];
    if rest.len() < 3 {
        return Err("a record's head runs past the end of the block".into());
    }
    let (kind, flags) = (rest[0], rest[1]);
    let (len, n) = get_varint_u32(&rest[2..])?;
    if len > MAX_FRAME_LEN {
        return Err(format!(
            "a record's length, {len} bytes, is over the limit of {MAX_FRAME_LEN}"
        ));
    }
    let start = pos + 2 + n;
    let end = start + len as usize;
    if end > content.len() {
        return Err(format!(
            "a record of {len} bytes runs past the end of the block"
        ));
    }
    Ok((kind, flags, start..end))
}

/// The writer's side: the content of the block being filled and the
/// compression context of its chain.
pub(crate) struct BlockWriter {
    content: Vec<u8>,
    /// When the block being filled got its first record.
    opened: Option<Instant>,
    encoder: Option<zstd::stream::write::Encoder<'static, Vec<u8>>>,
    chain: u64,
    index: u32,
    chain_bytes: u64,
    pub(crate) chain_blocks: u32,
}

impl BlockWriter {
    pub(crate) fn new() -> Self {
        BlockWriter {
            content: Vec::new(),
            opened: None,
            encoder: None,
            chain: 0,
            index: 0,
            chain_bytes: 0,
            chain_blocks: DEFAULT_CHAIN_BLOCKS,
        }
    }

    /// Adds a record; true when the block should be ended now (it is full
    /// or has been open for a second).
    pub(crate) fn push(&mut self, kind: u8, payload: &[u8]) -> bool {
        let now = Instant::now();
        let opened = *self.opened.get_or_insert(now);
        self.content.reserve(RECORD_HEAD_MAX + payload.len());
        put_record(&mut self.content, kind, payload);
        self.content.len() >= BLOCK_TARGET || now.duration_since(opened) >= BLOCK_AGE
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.content.is_empty()
    }

    /// Compresses the content into a block payload, given the offset at
    /// which the block will be written. Empties the content.
    pub(crate) fn end_block(&mut self, offset: u64) -> io::Result<Vec<u8>> {
        if self.encoder.is_none() {
            let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), LEVEL)?;
            encoder.window_log(WINDOW_LOG)?;
            encoder.set_parameter(zstd::zstd_safe::CParameter::HashLog(HASH_LOG))?;
            encoder.set_parameter(zstd::zstd_safe::CParameter::ChainLog(CHAIN_LOG))?;
            encoder.set_parameter(zstd::zstd_safe::CParameter::MinMatch(MIN_MATCH))?;
            encoder.include_checksum(false)?;
            encoder.include_contentsize(false)?;
            self.encoder = Some(encoder);
            self.chain = offset;
            self.index = 0;
            self.chain_bytes = 0;
        }
        let encoder = self.encoder.as_mut().expect("just made");
        encoder.write_all(&self.content)?;
        encoder.flush()?;
        let head = BlockHead {
            chain: self.chain,
            index: self.index,
            content_len: u32::try_from(self.content.len()).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "block content over 4 GiB")
            })?,
            content_crc: crc32fast::hash(&self.content),
        };
        // Taken, not drained: a large block's buffer is not kept.
        let data = std::mem::take(encoder.get_mut());
        let mut payload = Vec::with_capacity(24 + data.len());
        head.encode(&mut payload);
        payload.extend_from_slice(&data);
        self.chain_bytes += self.content.len() as u64;
        self.index += 1;
        if self.index >= self.chain_blocks.max(1) || self.chain_bytes >= CHAIN_BYTES {
            self.encoder = None;
        }
        // A huge block's buffer is not kept for the small ones that follow.
        if self.content.capacity() > 2 * BLOCK_TARGET {
            self.content = Vec::new();
        } else {
            self.content.clear();
        }
        self.opened = None;
        Ok(payload)
    }
}

/// The reader's side: the decompression context of the chain being read.
pub(crate) struct BlockReader {
    decoder: Option<Decoder<'static>>,
    /// The chain being read and the index of its next block; none when no
    /// chain is being read (at the start, or after a lost block).
    expect: Option<(u64, u32)>,
}

/// Why a block could not be read.
pub(crate) enum BlockError {
    /// The block continues a chain whose previous block was not read.
    Orphan,
    /// The block is damaged (despite its frame's checksum).
    Invalid(String),
}

impl BlockReader {
    pub(crate) fn new() -> Self {
        BlockReader {
            decoder: None,
            expect: None,
        }
    }

    /// A fresh decompression context for a chain's first block.
    fn start_chain(&mut self) -> io::Result<()> {
        match self.decoder.as_mut() {
            Some(decoder) => decoder.reinit(),
            None => {
                let mut decoder = Decoder::new()?;
                decoder.set_parameter(DParameter::WindowLogMax(MAX_WINDOW_LOG))?;
                self.decoder = Some(decoder);
                Ok(())
            }
        }
    }

    /// Decompresses a block payload into its content.
    pub(crate) fn read(&mut self, payload: &[u8]) -> Result<Vec<u8>, BlockError> {
        let (head, data) = BlockHead::decode(payload).map_err(BlockError::Invalid)?;
        if head.index == 0 {
            self.start_chain()
                .map_err(|e| BlockError::Invalid(e.to_string()))?;
        } else if self.expect != Some((head.chain, head.index)) {
            return Err(BlockError::Orphan);
        }
        // Whatever happens now, the chain continues only if this block is read.
        self.expect = None;
        let decoder = self.decoder.as_mut().expect("made at the chain's start");
        let content =
            decompress(decoder, data, head.content_len as usize).map_err(BlockError::Invalid)?;
        if crc32fast::hash(&content) != head.content_crc {
            return Err(BlockError::Invalid(
                "its content does not match its checksum".into(),
            ));
        }
        self.expect = Some((head.chain, head.index + 1));
        Ok(content)
    }
}

/// Decompresses `data`, which must give exactly `len` bytes.
fn decompress(decoder: &mut Decoder<'static>, data: &[u8], len: usize) -> Result<Vec<u8>, String> {
    // One byte more than announced, to notice a block that gives more.
    let mut out = vec![0u8; len + 1];
    let mut input = InBuffer::around(data);
    let mut output = OutBuffer::around(&mut out[..]);
    loop {
        let (read, written) = (input.pos(), output.pos());
        decoder
            .run(&mut input, &mut output)
            .map_err(|e| format!("its data does not decompress ({e})"))?;
        if output.pos() > len {
            return Err(format!(
                "its data gives more than the {len} bytes announced"
            ));
        }
        if input.pos() == read && output.pos() == written {
            break;
        }
    }
    let got = output.pos();
    if input.pos() < data.len() {
        return Err("its data does not decompress (stuck before its end)".into());
    }
    if got != len {
        return Err(format!(
            "its data gives {got} bytes, not the {len} announced"
        ));
    }
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_width() {
        for v in [
            0,
            1,
            250,
            251,
            65_535,
            65_536,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(get_varint(&out), Ok((v, out.len())), "{v}");
        }
    }

    #[test]
    fn chained_blocks_decompress_in_order_and_only_in_order() {
        let mut writer = BlockWriter::new();
        writer.chain_blocks = 3;
        let mut blocks = Vec::new();
        for i in 0..6u8 {
            writer.push(0x40, &vec![i; 100 + usize::from(i)]);
            blocks.push(writer.end_block(1000 * u64::from(i)).unwrap());
        }
        let mut reader = BlockReader::new();
        for (i, block) in blocks.iter().enumerate() {
            let content = reader.read(block).ok().unwrap();
            let (kind, _, range) = next_record(&content, 0).unwrap();
            assert_eq!(
                (kind, content[range.start], range.len()),
                (0x40, i as u8, 100 + i)
            );
        }
        // Skipping block 1 orphans block 2; block 3 starts a new chain.
        let mut reader = BlockReader::new();
        assert!(reader.read(&blocks[0]).is_ok());
        assert!(matches!(reader.read(&blocks[2]), Err(BlockError::Orphan)));
        assert!(reader.read(&blocks[3]).is_ok());
        assert!(reader.read(&blocks[4]).is_ok());
    }
}
