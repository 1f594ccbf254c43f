//! memtrail-report.
#![forbid(unsafe_code)]
