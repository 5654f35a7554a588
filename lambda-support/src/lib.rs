//! What every Lambda entry point shares, kept out of the schema crate so `shared` stays records
//! and cleaning: JSON logs and the dependency panic hook ([`runtime`]), configuration read from
//! the environment, and one CloudWatch Embedded Metric Format line per invocation
//! ([`metrics`]).

#![warn(missing_docs)]

pub mod metrics;
pub mod runtime;
