//! The fuzz target's seeds, replayed through its checks on every test run.

use crate::fuzz_check::check;

#[test]
fn fuzz_seeds_pass_the_fuzz_checks() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/decode");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        check(&bytes);
        // Every prefix too: cheap at these sizes, and each is a torn tail.
        for cut in (0..bytes.len()).step_by(7) {
            check(&bytes[..cut]);
        }
        seen += 1;
    }
    assert!(seen >= 5, "{seen} seeds in {}", dir.display());
}
