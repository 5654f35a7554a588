//! The lake: Arrow schemas and Delta Lake tables for the pipeline (SPEC §5–§7).
//!
//! Modules follow the data: [`schema`] fixes each table's columns, [`batch`] turns cleaned rows
//! and quarantine rows into Arrow record batches, [`table`] opens (or creates) the Delta tables
//! under a lake root, [`append`] commits one batch of inputs exactly once (with [`position`] and
//! [`offsets`] saying how an input's progress is kept in the Delta log, and [`committed`]
//! reading it back in one pass), and [`read`] reads
//! rows back as JSON for checks, summaries and tests.
//!
//! This crate holds the heavy dependencies (delta-rs); the ingest API never links it.

#![warn(missing_docs)]

pub mod append;
pub mod batch;
pub mod committed;
mod datafile;
#[cfg(feature = "queries")]
pub mod maintenance;
pub mod offsets;
pub mod position;
#[cfg(feature = "queries")]
pub mod queries;
pub mod read;
#[cfg(feature = "queries")]
pub mod report;
pub mod schema;
pub mod table;

pub use append::{
    AppendError, AppendReport, Bookkeeping, CleanCounts, Input, LakeRow, TableReport,
};
pub use batch::{CleanColumns, ColumnsBuilder};
pub use position::Position;
pub use schema::{LakeTable, QuarantineRow};
pub use table::{Lake, LakeError};
