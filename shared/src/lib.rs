//! The schema crate every stage of the pipeline shares.
//!
//! Data flows one way through its modules:
//! [`record`] (raw JSON as it arrives, decoded by key name) → [`clean`] (typed, cleaned rows, or
//! the reason a record cannot be cleaned). [`route`] tells which record type a topic, stream or
//! object key carries. [`parallel`] spreads a large batch's cleaning over the cores.
//!
//! It is deliberately light (serde, chrono and a few small crates; no Arrow or Delta) so the ingest API, which validates with the
//! very same code, stays small and starts fast. Arrow and Delta Lake live in the `lake` crate.

#![warn(missing_docs)]

pub mod clean;
pub mod parallel;
pub mod record;
pub mod route;

pub use clean::{
    clean_record, clean_record_with, clean_text, clean_text_with, clean_value, CleanGeo, CleanPin,
    CleanRow, CleanUser, CleanView, Cleaned, GeoView, PinView, QualityWarning, UserView,
};
pub use record::{RawObject, RecordError, RecordType};
