//! # weir-cli (library part)
//!
//! Owns: what weir's two command lines share, `weir` and `weir-status` (`weir status` over a
//! bucket): the status table and its options ([`status`]). Must not own: anything a library
//! crate, a function or the web app needs (that goes in a library crate).
#![warn(missing_docs)]

pub mod status;
