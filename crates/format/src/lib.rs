//! memtrail-format: the data model and the binary container.
#![forbid(unsafe_code)]

pub mod model;
pub use model::*;
