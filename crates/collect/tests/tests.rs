//! Integration tests of memtrail-collect: against a fake /proc built from
//! captured files (`fake_proc`), and against real processes (`live`).

mod fake_proc;
mod live;
mod util;
