//! Without the ONNX Runtime library the classifier says how to get it (own process: the
//! runtime is loaded once per process).

use weir_classify::{Classifier, ClassifyError, Device, Options};

#[test]
fn missing_runtime_says_how_to_fetch_it() {
    std::env::set_var("WEIR_ORT_LIB", "/nonexistent/libonnxruntime.so.1.31.1");
    let m = weir_model::test_model(weir_flow::N_FEATURES, 8, 24, 1);
    let opts = Options {
        device: Device::Cpu,
        feature_version: m.info.feature_version.clone(),
        ..Options::default()
    };
    let e = Classifier::from_bytes(&m.to_onnx(), &opts).unwrap_err();
    assert!(matches!(e, ClassifyError::RuntimeMissing(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("scripts/setup-ort.sh") && msg.contains("/nonexistent/"),
        "{msg}"
    );
}
