//! `memtrail dump`: NDJSON, torn tails, closed pipes.

use std::io::Read;
use std::process::Stdio;

use crate::util::*;

/// A real recording of a sleeping helper, `count` ticks.
fn recording(dir: &std::path::Path, count: u32) -> std::path::PathBuf {
    let helper = hold(1);
    let out = dir.join("d.mtr");
    record_samples(helper.pid(), &out, "10ms", count, &[]);
    helper.finish();
    out
}

#[test]
fn dump_of_a_torn_recording_prints_every_complete_frame_and_warns() {
    let dir = tempdir();
    let path = recording(dir.path(), 4);
    let full = run(&["dump", path.to_str().unwrap()]);
    assert!(full.status.success());
    let full_lines = stdout(&full).lines().count();

    // Cut the last frame (the End frame) in half, as a killed recorder would.
    let bytes = std::fs::read(&path).unwrap();
    let torn = dir.path().join("torn.mtr");
    std::fs::write(&torn, &bytes[..bytes.len() - 3]).unwrap();
    let o = run(&["dump", torn.to_str().unwrap()]);
    assert!(o.status.success(), "a torn tail is not an error");
    assert_eq!(stdout(&o).lines().count(), full_lines - 1);
    let e = stderr(&o);
    assert!(e.contains("torn.mtr") && e.contains("offset"), "{e}");
}

#[test]
fn dump_into_a_closed_pipe_ends_quietly() {
    let dir = tempdir();
    let path = recording(dir.path(), 200);
    let mut child = memtrail()
        .args(["dump", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one byte, then close the pipe like `| head -c 1` would.
    let mut stdout = child.stdout.take().unwrap();
    let mut one = [0u8; 1];
    stdout.read_exact(&mut one).unwrap();
    drop(stdout);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {err}");
    assert_eq!(err, "", "no message for a closed pipe");
}

#[test]
fn dump_rejects_a_file_that_is_not_a_recording() {
    let dir = tempdir();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "hello, this is text\n").unwrap();
    let o = run(&["dump", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("notes.txt"), "names the file: {e}");
    assert!(e.contains("not a memtrail recording"), "{e}");

    let o = run(&["dump", dir.path().join("missing.mtr").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.mtr"));
}
