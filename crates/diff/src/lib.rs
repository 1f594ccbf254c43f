//! memtrail-diff.
#![forbid(unsafe_code)]
