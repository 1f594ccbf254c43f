//! `record --rotate/--keep`: a directory of segments, each a complete
//! recording, read by every command as one recording.

use std::path::{Path, PathBuf};
use std::process::Command;

use memtrail_format::{Encoding, Record, WarningKind};

use crate::util::*;

/// The `.mtr` segments of a directory, in name order.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "mtr"))
                .collect()
        })
        .unwrap_or_default();
    segments.sort();
    segments
}

/// The verdicts of `analyze --format json`: pid, verdict and growth of
/// every process, without what names the input.
fn verdicts(path: &Path) -> Vec<String> {
    let analysis = analyze_json(path);
    let mut out: Vec<String> = analysis["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p.as_object_mut().unwrap().remove("source");
            p.to_string()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_rotating_recording_reads_as_one_and_gives_the_verdicts_of_one_file() {
    let dir = tempdir();
    let segs = dir.path().join("segments");
    let leaker = Command::new(leak_binary())
        .args(["malloc", "60"])
        .spawn()
        .expect("leak starts");
    let pid = leaker.id();
    let recorded = std::panic::catch_unwind(|| {
        record_samples(
            pid,
            &segs,
            "50ms",
            60,
            &["--rotate", "400ms", "--detail", "maps"],
        )
    });
    let mut leaker = leaker;
    let _ = leaker.kill();
    let _ = leaker.wait();
    recorded.unwrap();

    let files = segments(&segs);
    assert!(files.len() >= 3, "{files:?}");
    // Each segment is a complete recording, whose first sample of the
    // process is a keyframe, and which ends with an end frame.
    let mut total = 0;
    for file in &files {
        let mut reader = memtrail_format::open(file).unwrap();
        let frames: Vec<_> = reader.by_ref().map(|f| f.unwrap()).collect();
        assert_eq!(reader.take_warnings(), vec![], "{}", file.display());
        let first = frames
            .iter()
            .find(|f| matches!(&f.record, Record::Process(s) if s.id.pid == pid))
            .unwrap_or_else(|| panic!("no sample of {pid} in {}", file.display()));
        assert_eq!(first.encoding, Encoding::Keyframe, "{}", file.display());
        assert!(matches!(frames.last().unwrap().record, Record::End(_)));
        total += frames
            .iter()
            .filter(|f| matches!(&f.record, Record::Process(s) if s.id.pid == pid))
            .count();
    }
    assert_eq!(total, 60, "every tick's sample is in exactly one segment");

    // The same data in one file: the segments joined end to end (a reader
    // warns about the joins, and reads on).
    let joined = dir.path().join("joined.mtr");
    let mut bytes = Vec::new();
    for file in &files {
        bytes.extend(std::fs::read(file).unwrap());
    }
    std::fs::write(&joined, bytes).unwrap();
    let from_dir = verdicts(&segs);
    assert_eq!(from_dir, verdicts(&joined));
    let leak = verdict_of(&analyze_json(&segs), pid).clone();
    assert_eq!(leak["verdict"], "leak", "{leak:#}");

    // report, export, dump and diff read the directory too, and several
    // files named one after the other.
    for args in [
        vec!["report"],
        vec!["export", "--format", "csv"],
        vec!["dump"],
        vec!["diff"],
    ] {
        let mut args = args.clone();
        args.push(segs.to_str().unwrap());
        let o = run(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).is_empty() || !stderr(&o).contains("warning"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let names: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    let mut args = vec!["dump"];
    args.extend(&names);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let dumped: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let samples = dumped
        .iter()
        .filter(|l| l["type"] == "process" && l["id"]["pid"] == pid)
        .count();
    assert_eq!(samples, 60);
    assert_eq!(
        dumped.iter().filter(|l| l["type"] == "end").count(),
        1,
        "only the last segment's end frame ends the recording"
    );
    assert_eq!(dumped[1]["file"], names[0]);
}

#[test]
fn a_rotating_recording_survives_sigkill_at_a_segment_boundary() {
    let helper = hold(2);
    let pid = helper.pid();
    let dir = tempdir();
    // A new segment after every tick: every moment is next to a boundary.
    // Killed after a different number of segments each round.
    for (round, wanted) in [3usize, 6, 11].into_iter().enumerate() {
        let segs = dir.path().join(format!("killed-{round}"));
        let rec = record_in_background(pid, &segs, &["--rotate", "1"]);
        wait_for("segments", || {
            (segments(&segs).len() >= wanted).then_some(())
        });
        rec.signal("KILL");
        let o = rec.wait();
        assert_eq!(o.status.code(), None, "killed by a signal");

        let files = segments(&segs);
        let mut ticks = 0;
        let mut samples = 0;
        for (i, file) in files.iter().enumerate() {
            let last = i + 1 == files.len();
            let mut reader = match memtrail_format::open(file) {
                Ok(reader) => reader,
                Err(e) => panic!(
                    "round {round}: segment {} does not open: {e}",
                    file.display()
                ),
            };
            let frames: Vec<_> = reader.by_ref().map(|f| f.unwrap()).collect();
            let warnings = reader.take_warnings();
            match warnings.as_slice() {
                [] => {}
                [w] if last => assert_eq!(w.kind, WarningKind::TornTail, "{w:?}"),
                more => panic!("round {round}, {}: {more:?}", file.display()),
            }
            if !last {
                assert!(
                    matches!(frames.last().map(|f| &f.record), Some(Record::End(_))),
                    "round {round}: a finished segment ends with an end frame"
                );
            }
            let mut first = true;
            for f in &frames {
                match &f.record {
                    Record::System(_) => ticks += 1,
                    Record::Process(s) if s.id.pid == pid => {
                        samples += 1;
                        if first {
                            assert_eq!(f.encoding, Encoding::Keyframe);
                            first = false;
                        }
                    }
                    _ => {}
                }
            }
        }
        // Each tick is one block holding its system sample and the
        // process's sample: none is lost or cut in two at a boundary.
        assert_eq!(samples, ticks, "round {round}");
        assert!(samples >= wanted - 1, "round {round}: {samples} samples");
        let o = run(&["analyze", segs.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        // No half-made segment is ever visible under its final name.
        for entry in std::fs::read_dir(&segs).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                name.ends_with(".mtr") || name.ends_with(".mtr.part"),
                "{name}"
            );
        }
    }
    helper.finish();
}

#[test]
fn keep_deletes_the_oldest_segments_beyond_the_size() {
    let helper = hold(1);
    let pid = helper.pid();
    let dir = tempdir();
    let segs = dir.path().join("kept");
    // Segments of about 2 KiB (a tick of full detail is more): at most
    // three or four of them fit in 8 KiB.
    let rec = record_in_background(
        pid,
        &segs,
        &["--detail", "full", "--rotate", "2KiB", "--keep", "8KiB"],
    );
    let mut highest = 0;
    wait_for("many segments written", || {
        let files = segments(&segs);
        if let Some(last) = files.last() {
            let n: u64 = last.file_name().unwrap().to_str().unwrap()[..8]
                .parse()
                .unwrap();
            highest = n;
        }
        (highest >= 8).then_some(())
    });
    rec.signal("INT");
    let o = rec.wait();
    assert!(o.status.success(), "{}", stderr(&o));
    let files = segments(&segs);
    let first: u64 = files[0].file_name().unwrap().to_str().unwrap()[..8]
        .parse()
        .unwrap();
    assert!(first > 0, "the oldest segments were deleted: {files:?}");
    // Everything but the newest fits in the limit (the newest is never deleted).
    let kept: u64 = files[..files.len() - 1]
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert!(kept <= 8 * 1024, "{kept} bytes kept: {files:?}");
    // What is left still reads as one recording.
    let o = run(&["analyze", segs.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    helper.finish();
}

#[test]
fn rotate_needs_a_directory_and_keep_needs_rotate() {
    let dir = tempdir();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let o = run(&[
        "record",
        "--pid",
        "1",
        "--rotate",
        "1h",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is a file"), "{}", stderr(&o));
    let o = run(&["record", "--pid", "1", "--keep", "1h", "-o", "x"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--rotate"), "{}", stderr(&o));
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = run(&["analyze", empty.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("without recordings"), "{}", stderr(&o));
}
