//! Any bytes through the recording reader: `cargo xtask fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| memtrail_fuzz::check(data));
