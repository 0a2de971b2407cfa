//! docs/FEATURES.md is generated from the column docs and the feature spec in code; this keeps
//! the two in step.

#[test]
fn features_doc_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/FEATURES.md");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == weir_records::columns_markdown(),
        "docs/FEATURES.md is stale: run `just features-doc` (weir features --markdown > docs/FEATURES.md)"
    );
}
