//! The checks the fuzz target runs on every input. The normal test suite
//! includes this file too (crates/format/tests/tests.rs) and replays the
//! seeds in `fuzz/seeds/decode` through it, so CI runs the same checks
//! without cargo-fuzz.

use memtrail_format::{Reader, Record, Writer};

/// Reads `data` as a recording and checks what any input must give:
/// no panic (the fuzzer's job), no error but a bad header (a byte slice
/// cannot fail to read), frames at increasing offsets inside the input
/// (records of one version 2 block share its offset), every warning naming
/// its offset, and records that survive being written again, in both
/// versions, and read back unchanged.
pub fn check(data: &[u8]) {
    let Ok(mut reader) = Reader::new(data) else {
        return;
    };
    let header = reader.header().clone();
    let mut records = Vec::new();
    let mut last = None;
    for frame in reader.by_ref() {
        let frame = frame.expect("reading a byte slice cannot fail after its header");
        assert!(
            frame.offset < data.len() as u64,
            "frame offset past the input"
        );
        assert!(
            last.map_or(true, |l| l <= frame.offset),
            "frame offsets must not decrease"
        );
        last = Some(frame.offset);
        records.push(frame.record);
    }
    for warning in reader.take_warnings() {
        assert!(warning.offset <= data.len() as u64, "{warning:?}");
        assert!(
            warning
                .message
                .contains(&format!("offset {}", warning.offset)),
            "a warning must name its offset: {warning:?}"
        );
    }

    // What was read can be written again and reads back the same.
    for compressed in [false, true] {
        let made = if compressed {
            Writer::compressed(Vec::new(), &header)
        } else {
            Writer::new(Vec::new(), &header)
        };
        let Ok(mut writer) = made else {
            return;
        };
        if records.iter().any(|r| writer.write(r).is_err()) || writer.flush().is_err() {
            return;
        }
        let bytes = writer.get_ref().clone();
        let mut again = Reader::new(bytes.as_slice()).expect("a rewritten recording opens");
        assert_eq!(again.header(), &header);
        let reread: Vec<Record> = again
            .by_ref()
            .map(|f| f.expect("a rewritten recording reads").record)
            .collect();
        assert_eq!(reread, records, "records changed when written again");
        assert_eq!(
            again.take_warnings(),
            vec![],
            "a rewritten recording is clean"
        );
    }
}
