//! memtrail-format's integration tests, one binary.

mod alloc;
mod damage;
mod golden;
mod roundtrip;
mod util;
