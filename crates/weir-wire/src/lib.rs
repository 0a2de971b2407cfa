//! # weir-wire
//!
//! Owns: what crosses weir's boundaries, defined once: the classes a flow can be called
//! ([`Class`]), the columns of the flow tables ([`columns`]), a capture's status and split
//! report ([`status`]), its summary ([`summary`]) and the federation's page
//! ([`federation`]): what the pipeline writes, the aggregator
//! and search read, the API serves and the web app (server and browser) shows.
//!
//! Versioned: queue messages carry [`WIRE_VERSION`]; stored objects only ever gain optional
//! fields (`serde(default)`), so a newer reader reads an older object, and an incompatible
//! change bumps the version.
//! Must not depend on: anything but the standard library and serde (it compiles for wasm32
//! with the browser bundle, for every binary, and under the synthetic-data generator).
#![warn(missing_docs)]

pub mod class;
pub mod columns;
pub mod federation;
pub mod status;
pub mod summary;

/// The version of the messages this build writes and the newest it reads.
pub const WIRE_VERSION: u32 = 1;

pub use class::{Class, UnknownClass, N_CLASSES};
