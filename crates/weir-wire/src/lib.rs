//! # weir-wire
//!
//! Owns: the names of what crosses weir's boundaries, once: the columns of the flow tables
//! ([`columns`]), which the pipeline writes, the aggregator and search read, the API serves
//! and the web app (server and browser) shows. Must not depend on: anything but the standard
//! library (it compiles for wasm32 with the browser bundle, and for every binary).
#![warn(missing_docs)]

pub mod columns;
