//! Damaged and hostile input: no panics, bounded memory, and everything not
//! touched by the damage is recovered.

use std::collections::HashSet;

use memtrail_format::*;

use crate::alloc::peak_during;
use crate::util::*;

/// The most memory reading a small damaged recording may take: one input
/// chunk (64 KiB) and the frames read, with room to spare.
const SMALL_READ_MEMORY: usize = 256 * 1024;

/// The most memory reading any input may take: the window holding one
/// frame of the largest size (16 MiB) and a chunk, with the slack of the
/// window's growth and the prefix checksums kept to check it.
const ANY_READ_MEMORY: usize = 3 * MAX_FRAME_LEN as usize;

/// A small recording of every kind of frame: two processes with keyframes
/// and deltas (keyframe interval 3), a system sample, a marker, an exit and
/// the end.
fn small_recording() -> Vec<u8> {
    let mut writer = Writer::new(Vec::new(), &header(Detail::Full))
        .unwrap()
        .keyframe_interval(3);
    for r in &small_records() {
        writer.write(r).unwrap();
    }
    writer.finish(&small_end()).unwrap()
}

pub fn small_end() -> End {
    End {
        time_us: 10,
        reason: EndReason::Completed,
        samples: 10,
    }
}

/// The records of [`small_recording`] before its end.
pub fn small_records() -> Vec<Record> {
    let mut a = summary(10, 1_000);
    let mut b = full(20, 1_000, 3);
    let mut records = vec![process(a.clone()), process(b.clone())];
    for t in 1..5u64 {
        a.time_us += 1_000_000;
        a.status.vm_rss = Some(100 + t);
        b.time_us += 1_000_000;
        std::sync::Arc::make_mut(b.mappings.as_mut().unwrap())[1].rss += t;
        records.push(process(a.clone()));
        records.push(process(b.clone()));
        if t == 2 {
            records.push(Record::System(Box::new(SystemSample {
                time_us: 3,
                ..SystemSample::default()
            })));
            records.push(Record::Marker(Marker {
                time_us: 3,
                label: "m".into(),
                pid: None,
                source: "cli".into(),
            }));
        }
    }
    records.push(Record::Exit(ProcessExit {
        time_us: 9,
        id: a.id,
        exit_code: None,
    }));
    records
}

/// The frames of an undamaged recording, and where its header ends.
fn clean(bytes: &[u8]) -> (Vec<Frame>, u64) {
    let (_, frames, warnings) = read(bytes);
    assert!(warnings.is_empty());
    let header_end = frames[0].offset;
    (frames, header_end)
}

fn frame_end(frames: &[Frame], i: usize, total: usize) -> u64 {
    frames.get(i + 1).map_or(total as u64, |f| f.offset)
}

#[test]
fn truncation_at_every_byte() {
    let bytes = small_recording();
    let (frames, header_end) = clean(&bytes);
    let mut most = 0;
    for cut in 0..=bytes.len() {
        let input = &bytes[..cut];
        let (read, peak) = peak_during(|| {
            let mut reader = Reader::new(input)?;
            let got = reader.by_ref().collect::<Result<Vec<_>, _>>();
            Ok::<_, ReadError>((got, reader.take_warnings()))
        });
        assert!(peak <= SMALL_READ_MEMORY, "cut at {cut}: {peak} bytes");
        most = most.max(peak);
        let (got, warnings) = match read {
            Ok(read) => read,
            Err(error) => {
                assert!((cut as u64) < header_end, "cut at {cut}: {error}");
                match (cut, &error) {
                    (0, ReadError::Empty { .. }) | (1.., ReadError::TruncatedHeader { .. }) => {}
                    _ => panic!("cut at {cut}: unexpected {error:?}"),
                }
                continue;
            }
        };
        assert!(
            cut as u64 >= header_end,
            "cut at {cut} inside the header was accepted"
        );
        let got = got.unwrap();
        let complete: Vec<Frame> = frames
            .iter()
            .enumerate()
            .filter(|&(i, _)| frame_end(&frames, i, bytes.len()) <= cut as u64)
            .map(|(_, f)| f.clone())
            .collect();
        assert_eq!(got, complete, "cut at {cut}");
        let cut64 = cut as u64;
        let torn = (0..frames.len())
            .position(|i| frames[i].offset < cut64 && cut64 < frame_end(&frames, i, bytes.len()));
        match torn {
            None => assert_eq!(warnings, vec![], "cut at {cut}"),
            Some(torn) => {
                assert_eq!(warnings.len(), 1, "cut at {cut}: {warnings:?}");
                let w = &warnings[0];
                assert_eq!(
                    (w.kind, w.offset),
                    (WarningKind::TornTail, frames[torn].offset),
                    "cut at {cut}"
                );
                let len = cut as u64 - frames[torn].offset;
                assert!(
                    w.message
                        .contains(&format!("at offset {} ({len} bytes)", w.offset)),
                    "{}",
                    w.message
                );
            }
        }
    }
    eprintln!(
        "truncation: {} cuts of a {}-byte recording of {} frames, peak memory {most} bytes",
        bytes.len() + 1,
        bytes.len(),
        frames.len()
    );
}

/// What a reader should recover when frame `hit` is destroyed: every other
/// frame, except the deltas of the same process up to its next keyframe.
fn expected_after_losing(frames: &[Frame], hit: usize) -> (Vec<Frame>, bool) {
    let mut broken = HashSet::new();
    let mut out = Vec::new();
    let mut missing_base = false;
    for (i, f) in frames.iter().enumerate() {
        let id = match &f.record {
            Record::Process(s) => Some(s.id),
            _ => None,
        };
        if i == hit {
            broken.extend(id);
            continue;
        }
        match (f.encoding, id) {
            (Encoding::Keyframe, Some(id)) => {
                broken.remove(&id);
            }
            (Encoding::Delta, Some(id)) if broken.contains(&id) => {
                missing_base = true;
                continue;
            }
            _ => {}
        }
        out.push(f.clone());
    }
    (out, missing_base)
}

#[test]
fn single_bit_flips_everywhere() {
    let bytes = small_recording();
    let (frames, header_end) = clean(&bytes);
    let mut most = 0;
    for bit in 0..bytes.len() * 8 {
        let mut damaged = bytes.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        let at = (bit / 8) as u64;
        let (read, peak) = peak_during(|| {
            let mut reader = Reader::new(damaged.as_slice())?;
            let got = reader.by_ref().collect::<Result<Vec<_>, _>>();
            Ok::<_, ReadError>((got, reader.take_warnings()))
        });
        assert!(peak <= SMALL_READ_MEMORY, "flip at bit {bit}: {peak} bytes");
        most = most.max(peak);
        let (got, warnings) = match read {
            Ok((got, warnings)) => (got.unwrap(), warnings),
            Err(error) => {
                assert!(at < header_end, "flip at bit {bit}: {error}");
                assert!(!error.to_string().is_empty());
                continue;
            }
        };
        if at < header_end {
            // Only the reserved bytes of the file header may change unnoticed.
            assert!((10..12).contains(&at), "flip at bit {bit} was not noticed");
            assert_eq!(got, frames);
            continue;
        }
        let hit = frames.iter().rposition(|f| f.offset <= at).unwrap();
        let (expected, missing_base) = expected_after_losing(&frames, hit);
        assert_eq!(
            got, expected,
            "flip at bit {bit} (in frame {hit}), warnings {warnings:?}"
        );
        let w = &warnings[0];
        assert_eq!(
            w.offset, frames[hit].offset,
            "flip at bit {bit}: {warnings:?}"
        );
        assert!(
            w.message.contains(&format!("offset {}", w.offset)),
            "{}",
            w.message
        );
        match w.kind {
            WarningKind::Corrupt => {}
            // A longer length in the last frame looks like a torn tail.
            WarningKind::TornTail => assert_eq!(hit, frames.len() - 1, "flip at bit {bit}"),
            other => panic!("flip at bit {bit}: {other:?}"),
        }
        assert_eq!(
            warnings.iter().any(|w| w.kind == WarningKind::MissingBase),
            missing_base,
            "flip at bit {bit}: {warnings:?}"
        );
    }
    eprintln!(
        "bit flips: {} single-bit flips of a {}-byte recording, peak memory {most} bytes",
        bytes.len() * 8,
        bytes.len()
    );
}

/// A frame with a valid checksum around any payload.
fn raw_frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind, flags]);
    crc.update(&len.to_le_bytes());
    crc.update(payload);
    let mut out = vec![0x4D, 0x46, kind, flags];
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A recording with `middle` spliced in between its first and second frames.
fn splice(middle: &[u8]) -> (Vec<u8>, Vec<Frame>, u64) {
    let bytes = small_recording();
    let (frames, _) = clean(&bytes);
    let at = frames[1].offset as usize;
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(middle);
    out.extend_from_slice(&bytes[at..]);
    let shifted = frames
        .into_iter()
        .enumerate()
        .map(|(i, mut f)| {
            if i >= 1 {
                f.offset += middle.len() as u64;
            }
            f
        })
        .collect();
    (out, shifted, at as u64)
}

/// Reads hostile input within the memory bound. (Its CRC work is bounded
/// by the reader's own tests, which can count it.)
fn read_bounded(bytes: &[u8]) -> (Vec<Frame>, Vec<Warning>) {
    let ((_, frames, warnings), peak) = peak_during(|| read(bytes));
    assert!(peak <= ANY_READ_MEMORY, "{peak} bytes");
    (frames, warnings)
}

#[test]
fn a_length_of_u32_max_is_refused() {
    let mut bogus = vec![0x4D, 0x46, 0x10, 0];
    bogus.extend_from_slice(&u32::MAX.to_le_bytes());
    bogus.extend_from_slice(&[0; 4]);
    let (bytes, frames, at) = splice(&bogus);
    let (got, warnings) = read_bounded(&bytes);
    assert_eq!(got, frames);
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        (warnings[0].kind, warnings[0].offset),
        (WarningKind::Corrupt, at)
    );
    assert!(
        warnings[0].message.contains("over the limit"),
        "{}",
        warnings[0].message
    );
}

#[test]
fn a_length_just_under_the_limit_at_the_end_is_a_torn_tail() {
    let bytes = small_recording();
    let mut bytes = bytes[..bytes.len()].to_vec();
    let at = bytes.len() as u64;
    bytes.extend_from_slice(&[0x4D, 0x46, 0x10, 0]);
    bytes.extend_from_slice(&MAX_FRAME_LEN.to_le_bytes());
    bytes.extend_from_slice(&[0; 100]);
    let (_, warnings) = read_bounded(&bytes);
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        (warnings[0].kind, warnings[0].offset),
        (WarningKind::TornTail, at)
    );
}

#[test]
fn a_vec_length_of_2_60_does_not_allocate() {
    let huge = [&[253u8][..], &(1u64 << 60).to_le_bytes()].concat();
    // A keyframe whose cmdline claims 2^60 strings.
    let keyframe = [&[1u8, 1, 0, 0, /* info: ppid, comm */ 0, 0][..], &huge].concat();
    // A delta whose mapping change list claims 2^60 entries.
    let delta = [
        &[
            1u8, 1, 0, 0, 0, /* info */ 0, /* status */ 0, 0, 0, 0,
            /* mappings */ 2, 0,
        ][..],
        &huge,
    ]
    .concat();
    // A marker whose label claims 2^60 bytes.
    let marker = [&[0u8][..], &huge].concat();
    let mut bogus = raw_frame(0x10, 0, &keyframe);
    bogus.extend(raw_frame(0x11, 0, &delta));
    bogus.extend(raw_frame(0x40, 0, &marker));
    let (bytes, frames, _) = splice(&bogus);
    let (got, warnings) = read_bounded(&bytes);
    assert_eq!(got, frames);
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(
        warnings.iter().all(|w| w.kind == WarningKind::Corrupt),
        "{warnings:?}"
    );
    assert!(
        warnings[0].message.contains("does not decode"),
        "{}",
        warnings[0].message
    );
}

#[test]
fn unknown_kinds_and_flags_are_skipped_with_one_warning_each() {
    let mut extra = raw_frame(0x60, 0, b"from the future");
    extra.extend(raw_frame(0x60, 0, b"again"));
    extra.extend(raw_frame(0x40, 1, b"a marker with a flag"));
    extra.extend(raw_frame(0x61, 0, b""));
    let (bytes, frames, at) = splice(&extra);
    let (got, warnings) = read_bounded(&bytes);
    assert_eq!(got, frames);
    let kinds: Vec<_> = warnings.iter().map(|w| w.kind).collect();
    use WarningKind::UnknownKind;
    assert_eq!(
        kinds,
        [UnknownKind(0x60), UnknownKind(0x40), UnknownKind(0x61)]
    );
    assert_eq!(warnings[0].offset, at);
}

#[test]
fn garbage_between_frames_is_skipped() {
    let garbage: Vec<u8> = (0..5000u32)
        .map(|i| (i * 7919 % 251) as u8)
        .chain([0x4D, 0x46, 0x4D])
        .collect();
    let (bytes, frames, at) = splice(&garbage);
    let (got, warnings) = read_bounded(&bytes);
    assert_eq!(got, frames);
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        (warnings[0].kind, warnings[0].offset),
        (WarningKind::Corrupt, at)
    );
    assert!(
        warnings[0].message.contains("skipped 5003 bytes"),
        "{}",
        warnings[0].message
    );
}

#[test]
fn garbage_at_the_end_is_reported() {
    let mut bytes = small_recording();
    let (frames, _) = clean(&bytes);
    let at = bytes.len() as u64;
    bytes.extend_from_slice(b"trailing junk");
    let (got, warnings) = read_bounded(&bytes);
    assert_eq!(got, frames);
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        (warnings[0].kind, warnings[0].offset),
        (WarningKind::Corrupt, at)
    );
}

#[test]
fn a_second_header_is_skipped() {
    let bytes = small_recording();
    let (frames, header_end) = clean(&bytes);
    let header_frame = bytes[12..header_end as usize].to_vec();
    let (bytes, shifted, _) = splice(&header_frame);
    let (got, warnings) = read_bounded(&bytes);
    assert_eq!(got.len(), frames.len());
    assert_eq!(got, shifted);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].message.contains("second header"));
}

#[test]
fn errors_say_what_the_input_is() {
    let check = |input: &[u8], expected: &str| {
        let error = Reader::new(input).unwrap_err();
        let message = error.to_string();
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    };
    check(b"", "the input is empty");
    check(b"\x89MT", "ends after 3 bytes, inside its header");
    check(b"\x89MTR\r\n\x1a\n\x01\x00\x00\x00", "ends after 12 bytes");
    check(
        b"\x89MTR\n\x1a\n\x01\x00\x00\x00\x00\x00",
        "copied in text mode",
    );
    check(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", "gzip");
    check(
        b"{\"type\": \"process\", \"time_us\": 1}",
        "looks like JSON",
    );
    check(b"USER PID %CPU %MEM\n", "that is text");
    check(
        b"\x89MTR\r\n\x1a\n\x03\x00\x00\x00",
        "format version 3, but this memtrail reads only versions up to 2",
    );
    check(
        b"\x89MTR\r\n\x1a\n\x01\x00\x00\x00MF\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        "damaged header at byte offset 12",
    );
    let bytes = small_recording();
    let mut not_header = bytes[..12].to_vec();
    not_header.extend(raw_frame(0x40, 0, &[0, 0, 0, 0]));
    check(&not_header, "the first frame is a marker frame");
}

#[test]
fn open_names_the_path() {
    let dir = std::env::temp_dir().join(format!("memtrail-format-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.mtr");
    let error = open(&missing).unwrap_err();
    assert_eq!(error.io_error_kind(), Some(std::io::ErrorKind::NotFound));
    assert!(error.to_string().contains("missing.mtr"), "{error}");

    let text = dir.join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let error = open(&text).unwrap_err();
    assert_eq!(error.path(), Some(text.as_path()));
    assert!(
        error.to_string().starts_with(&text.display().to_string()),
        "{error}"
    );

    let good = dir.join("good.mtr");
    std::fs::write(&good, small_recording()).unwrap();
    let reader = open(&good).unwrap();
    assert_eq!(reader.count(), clean(&small_recording()).0.len());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_input_error_ends_the_iteration() {
    struct FailsAfter(Vec<u8>);
    impl std::io::Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("device gone"));
            }
            let n = self.0.len().min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }
    let bytes = small_recording();
    let (frames, _) = clean(&bytes);
    let cut = frames[3].offset as usize + 5;
    let mut reader = Reader::new(FailsAfter(bytes[..cut].to_vec())).unwrap();
    let got: Vec<_> = reader.by_ref().collect();
    assert_eq!(got.len(), 4);
    let error = got[3].as_ref().unwrap_err();
    assert!(
        matches!(error, ReadError::Io { offset, .. } if *offset == frames[3].offset),
        "{error:?}"
    );
    assert!(error.to_string().contains("device gone"));
    assert!(reader.next().is_none());
}

/// `size` bytes of frame headers that each claim `claimed` payload bytes
/// (a checksum that never matches): what a reader must scan past.
fn fake_headers(size: usize, claimed: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 12);
    while out.len() < size {
        out.extend_from_slice(&[0x4D, 0x46, 0x10, 0]);
        out.extend_from_slice(&claimed.to_le_bytes());
        out.extend_from_slice(&[0xAA; 4]);
    }
    out
}

#[test]
fn memory_stays_bounded_on_hostile_input_of_any_size() {
    // Headers claiming the largest frame make the reader hold 16 MiB ahead
    // at each candidate; twice as much input must not take more memory.
    let mut peaks = Vec::new();
    for size in [17 << 20, 34 << 20] {
        let (bytes, frames, at) = splice(&fake_headers(size, MAX_FRAME_LEN));
        let ((got, warnings), peak) = peak_during(|| read_bounded(&bytes));
        assert_eq!(got, frames);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(
            (warnings[0].kind, warnings[0].offset),
            (WarningKind::Corrupt, at)
        );
        assert!(
            warnings[0].message.contains(&format!("offset {at}")),
            "{}",
            warnings[0].message
        );
        peaks.push(peak);
    }
    eprintln!(
        "hostile input: 17 and 34 MiB of fake 16 MiB headers read with peak memory {peaks:?} bytes"
    );
    // Garbage without a single sync byte is read in constant memory.
    let garbage = vec![0x00; 32 << 20];
    let (bytes, frames, _) = splice(&garbage);
    let ((got, _), peak) = peak_during(|| read_bounded(&bytes));
    assert_eq!(got, frames);
    assert!(
        peak <= SMALL_READ_MEMORY,
        "{peak} bytes for 32 MiB of zeros"
    );
}
