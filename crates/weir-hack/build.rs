//! Nothing to build: the build-dependencies above are what this crate is for (host-side
//! features of syn; see Cargo.toml).
fn main() {}
