//! Write the deterministic test model and its reference outputs, to check the ONNX export
//! against another runtime: `cargo run -p weir-model --example export_test_model -- OUT_DIR`.
fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    let m = weir_model::test_model(6, 16, 4, 42);
    std::fs::write(dir.join("test_model.onnx"), m.to_onnx()).expect("write model");
    let x: Vec<f32> = (0..18).map(|i| (i as f32 * 0.77).sin() * 5.0).collect();
    let out = m.forward(&x);
    let json =
        serde_json::json!({"x": x, "probabilities": out.probabilities, "energy": out.energy});
    std::fs::write(dir.join("test_model.json"), json.to_string()).expect("write reference");
}
