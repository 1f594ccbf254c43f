//! The short version of `cargo xtask soak`: memtrail recording a sibling
//! recorder. It checks that both recorders run cleanly side by side, that
//! the sibling's memory stays put over a few hundred of its ticks, and that
//! `memtrail analyze` judges the sibling `no-leak`.

use memtrail_format::{EndReason, Record};

use crate::util::*;

#[test]
fn a_recorder_recorded_by_a_recorder() {
    let helper = hold(1);
    let dir = tempdir();
    let sibling_file = dir.path().join("sibling.mtr");
    let observed = dir.path().join("observed.mtr");
    let sibling = Background::spawn(&[
        "record",
        "--pid",
        &helper.pid().to_string(),
        "--detail",
        "full",
        "--interval",
        "5ms",
        "-o",
        sibling_file.to_str().unwrap(),
    ]);
    record_samples(
        sibling.0.id(),
        &observed,
        "20ms",
        100,
        &["--detail", "full"],
    );
    let sibling_pid = sibling.0.id();
    sibling.signal("INT");
    let s = sibling.wait();
    assert!(s.status.success(), "{}", stderr(&s));
    let said = stderr(&s);
    assert!(
        said.starts_with("memtrail: recorded ") && said.lines().count() == 1,
        "the sibling said only its summary: {said}"
    );

    let (_, own) = read_all(&sibling_file);
    assert!(matches!(
        own.last(),
        Some(Record::End(e)) if e.reason == EndReason::Interrupted("SIGINT".into())
    ));
    let (_, records) = read_all(&observed);
    let rss: Vec<u64> = samples_of(&records, s_pid(&records))
        .iter()
        .filter_map(|s| s.status.vm_rss)
        .collect();
    assert_eq!(rss.len(), 100);
    // After a warm-up, the sibling's resident memory barely moves while it
    // takes hundreds more samples.
    let settled = rss[20];
    let last = *rss.last().unwrap();
    eprintln!(
        "soak (short): sibling took {} samples; VmRSS {} KiB first, {settled} KiB at sample 20, {last} KiB last",
        samples_of(&own, helper.pid()).len(),
        rss[0]
    );
    assert!(
        last <= settled + 2048,
        "the sibling grew by {} KiB: {rss:?}",
        last - settled
    );
    // And our own analyzer, eating its own dog food, agrees.
    let analysis = analyze_json(&observed);
    let judged = verdict_of(&analysis, sibling_pid);
    assert_eq!(judged["verdict"], "no-leak", "{judged:#}");
    helper.finish();
}

/// The pid of the one process the observer recorded.
fn s_pid(records: &[Record]) -> u32 {
    records
        .iter()
        .find_map(|r| match r {
            Record::Process(s) => Some(s.id.pid),
            _ => None,
        })
        .expect("the sibling was sampled")
}
