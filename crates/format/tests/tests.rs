//! memtrail-format's integration tests, one binary.

mod alloc;
mod compressed;
mod damage;
mod golden;
mod properties;
mod roundtrip;
mod seeds;
mod select;
mod util;

/// The fuzz target's checks (see fuzz/src/lib.rs), run here on the seeds
/// and on random input without cargo-fuzz.
#[path = "../../../fuzz/src/lib.rs"]
mod fuzz_check;
