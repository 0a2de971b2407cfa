//! # weir-hack
//!
//! Owns: nothing but its Cargo.toml, which pins the features the tests' dev-dependencies
//! switch on, so every build of the workspace compiles each dependency once. Must not: hold
//! code, or be depended on (being a workspace member is enough).
