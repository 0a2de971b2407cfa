//! Helpers shared by the integration tests: where ../shared is, and running the flow stage.
#![allow(dead_code)]

use std::path::PathBuf;

use weir_flow::{extract, ExtractOptions, FlowRecord, Summary};

/// The shared data folder (`WEIR_SHARED`, else `../shared` beside the repository).
pub fn shared() -> PathBuf {
    if let Ok(p) = std::env::var("WEIR_SHARED") {
        return PathBuf::from(p);
    }
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let p = here.join("../../../shared");
    assert!(
        p.join("corpus").is_dir(),
        "shared data not found at {} (set WEIR_SHARED)",
        p.display()
    );
    p
}

/// Run the flow stage over a file with default options.
pub fn flows_of(path: &std::path::Path) -> (Vec<FlowRecord>, Summary) {
    flows_with(path, &ExtractOptions::default())
}

/// Run the flow stage over a file with the given options.
pub fn flows_with(path: &std::path::Path, opts: &ExtractOptions) -> (Vec<FlowRecord>, Summary) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut all = Vec::new();
    let s = extract(std::io::BufReader::new(f), opts, |b| all.extend(b), |_| {})
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (all, s)
}
