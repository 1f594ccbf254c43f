//! Checkpoints around steps that allocate, one of which keeps its memory.
//! Run under `memtrail run -- target/debug/examples/checkpoints` and see
//! the markers with `memtrail dump`; the figures are printed too.

fn main() {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let c = memtrail_probe::checkpoint("start");
    println!("{}: rss {:?} KiB marked {}", c.label, c.rss_kib, c.marked);
    for step in 1..=3 {
        // 16 MiB, touched so it is resident, and kept: a leak per step.
        kept.push(vec![step as u8; 16 << 20]);
        let c = memtrail_probe::checkpoint(&format!("step {step}"));
        println!(
            "{}: rss {:?} KiB ({:+} KiB), peak {:?} KiB marked {}",
            c.label, c.rss_kib, c.rss_delta_kib, c.hwm_kib, c.marked
        );
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    let total: usize = kept.iter().map(Vec::len).sum();
    println!("kept {} MiB", total >> 20);
}
