//! memtrail-format's integration tests, one binary.

mod damage;
mod golden;
mod roundtrip;
mod util;
