//! Format version 2: records in compressed blocks. Torn tails and damage
//! cost whole blocks (and the rest of a block's chain), never a misread.

use memtrail_format::*;

use crate::damage::{small_end, small_records};
use crate::util::*;

/// The small recording of the damage tests in version 2: a block after
/// every `per_block` records, chains of `chain` blocks.
fn small_compressed(per_block: usize, chain: u32) -> Vec<u8> {
    let mut writer = Writer::compressed(Vec::new(), &header(Detail::Full))
        .unwrap()
        .keyframe_interval(3)
        .chain_blocks(chain);
    for (i, r) in small_records().iter().enumerate() {
        writer.write(r).unwrap();
        if (i + 1) % per_block == 0 {
            writer.flush().unwrap();
        }
    }
    writer.finish(&small_end()).unwrap()
}

fn all_records() -> Vec<Record> {
    let mut records = small_records();
    records.push(Record::End(small_end()));
    records
}

/// Reads without panicking on errors: records, warnings, or the error.
fn try_read(bytes: &[u8]) -> Result<(Vec<Frame>, Vec<Warning>), ReadError> {
    let mut reader = Reader::new(bytes)?;
    let frames = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
    Ok((frames, reader.take_warnings()))
}

/// The offsets of the block frames of a version 2 recording (from its
/// records: every record carries its block's offset).
fn block_offsets(frames: &[Frame]) -> Vec<u64> {
    let mut offsets: Vec<u64> = frames.iter().map(|f| f.offset).collect();
    offsets.dedup();
    offsets
}

#[test]
fn compressed_recordings_read_back_exactly() {
    for (per_block, chain) in [(1, 1), (1, 60), (3, 2), (100, 60)] {
        let bytes = small_compressed(per_block, chain);
        assert_eq!(bytes[8..10], [2, 0], "version 2");
        let mut reader = Reader::new(bytes.as_slice()).unwrap();
        assert_eq!(reader.version(), 2);
        let frames = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
        assert_eq!(reader.take_warnings(), vec![]);
        assert_eq!(records(&frames), all_records(), "{per_block} per block");
        let blocks = block_offsets(&frames).len();
        assert_eq!(blocks, all_records().len().div_ceil(per_block));
    }
}

#[test]
fn a_compressed_steady_stream_is_smaller_than_version_1() {
    let mut records = Vec::new();
    let mut samples: Vec<ProcessSample> = (0..50).map(|p| summary(1000 + p, 0)).collect();
    for t in 0..120u64 {
        for (p, s) in samples.iter_mut().enumerate() {
            s.time_us = t * 1_000_000 + p as u64 * 37;
            s.status.vm_rss = Some(10_000 + t * (p as u64 % 3));
            records.push(process(s.clone()));
        }
    }
    let v1 = write(&header(Detail::Summary), &records, 60);
    let mut writer = Writer::compressed(Vec::new(), &header(Detail::Summary)).unwrap();
    for chunk in records.chunks(50) {
        for r in chunk {
            writer.write(r).unwrap();
        }
        writer.flush().unwrap();
    }
    let v2 = writer.get_ref().clone();
    let (_, frames, warnings) = read(&v2);
    assert_eq!(warnings, vec![]);
    assert_eq!(crate::util::records(&frames), records);
    let per_sample = |b: &[u8]| b.len() as f64 / records.len() as f64;
    eprintln!(
        "6000 summary samples: {:.1} B each in version 1, {:.1} B in version 2",
        per_sample(&v1),
        per_sample(&v2)
    );
    assert!(v2.len() * 3 < v1.len(), "{} vs {}", v2.len(), v1.len());
}

#[test]
fn compressed_truncation_at_every_byte_loses_only_the_torn_block() {
    let bytes = small_compressed(2, 3);
    let (frames, _) = try_read(&bytes).unwrap();
    let blocks = block_offsets(&frames);
    let header_end = blocks[0];
    for cut in 0..=bytes.len() {
        let (got, warnings) = match try_read(&bytes[..cut]) {
            Ok(read) => read,
            Err(error) => {
                assert!((cut as u64) < header_end, "cut at {cut}: {error}");
                continue;
            }
        };
        // Every block that ends before the cut is read whole.
        let complete = blocks
            .iter()
            .enumerate()
            .filter(|&(i, _)| blocks.get(i + 1).map_or(bytes.len() as u64, |&b| b) <= cut as u64)
            .count();
        let expected: Vec<Frame> = frames
            .iter()
            .filter(|f| blocks[..complete].contains(&f.offset))
            .cloned()
            .collect();
        assert_eq!(got, expected, "cut at {cut}");
        let torn = complete < blocks.len() && blocks[complete] < cut as u64;
        if torn {
            assert_eq!(warnings.len(), 1, "cut at {cut}: {warnings:?}");
            assert_eq!(
                (warnings[0].kind, warnings[0].offset),
                (WarningKind::TornTail, blocks[complete])
            );
        } else {
            assert_eq!(warnings, vec![], "cut at {cut}");
        }
    }
}

#[test]
fn compressed_bit_flips_lose_at_most_the_rest_of_a_chain() {
    let chain = 2;
    let bytes = small_compressed(2, chain);
    let (frames, _) = try_read(&bytes).unwrap();
    let blocks = block_offsets(&frames);
    let header_end = blocks[0] as usize;
    for bit in header_end * 8..bytes.len() * 8 {
        let mut damaged = bytes.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        let at = (bit / 8) as u64;
        let (got, warnings) = try_read(&damaged).unwrap();
        assert!(!warnings.is_empty(), "flip at bit {bit} was not noticed");
        let hit = blocks.iter().rposition(|&b| b <= at).unwrap();
        // Everything before the damaged block is read; nothing is made up.
        let before: Vec<Frame> = frames
            .iter()
            .filter(|f| f.offset < blocks[hit])
            .cloned()
            .collect();
        assert_eq!(
            got[..before.len().min(got.len())],
            before[..],
            "flip at bit {bit}"
        );
        let mut rest = frames.iter();
        for f in &got {
            assert!(
                rest.any(|clean| clean == f),
                "flip at bit {bit}: {f:?} was not in the recording, or out of order"
            );
        }
        // Records that are not process deltas, in blocks that start a chain
        // after the damaged block's chain, are all read again.
        let next_chain = (hit / chain as usize + 1) * chain as usize;
        for f in frames.iter().filter(|f| {
            blocks.get(next_chain).is_some_and(|&b| f.offset >= b) && f.encoding != Encoding::Delta
        }) {
            assert!(
                got.contains(f),
                "flip at bit {bit}: lost {f:?} {warnings:?}"
            );
        }
    }
}

#[test]
fn a_version_2_block_inside_a_version_1_file_is_an_unknown_frame() {
    // Version 1 readers skip kind 0x60 like any unknown kind; this one
    // must not start decompressing it either.
    let v2 = small_compressed(100, 60);
    let (frames, _) = try_read(&v2).unwrap();
    let block_at = frames[0].offset as usize;
    let mut v1 = write(&header(Detail::Full), &[], 60);
    v1.extend_from_slice(&v2[block_at..]);
    let (got, warnings) = try_read(&v1).unwrap();
    assert_eq!(got, vec![]);
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].kind, WarningKind::UnknownKind(0x60));
}
