//! `weir analyze` end to end (real ONNX Runtime, the built-in model), and its errors.

use std::path::PathBuf;
use std::process::Command;

fn shared() -> PathBuf {
    std::env::var_os("WEIR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

/// `weir analyze --json` on the CPU into `dir`: the process output and the parsed summary.
fn analyze_json(
    dir: &std::path::Path,
    cap: &std::path::Path,
) -> (std::process::Output, serde_json::Value) {
    let out = weir()
        .args(["analyze", "--json", "-q", "--device", "cpu", "--data-dir"])
        .arg(dir)
        .arg(cap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = serde_json::from_slice(&out.stdout).unwrap();
    (out, s)
}

#[test]
fn analyze_writes_results_and_a_summary_that_agree_with_the_flow_stage() {
    let cap = shared().join("labeled/attacks/eternalsafety/metasploit-ms017-010-win7x64.pcap");
    let dir = tempfile::tempdir().unwrap();
    let (_, s) = analyze_json(dir.path(), &cap);
    // the flow count is the flow stage's
    let flows = weir()
        .args(["flows", "--json", "-q", "-o"])
        .arg(dir.path().join("f.parquet"))
        .arg(&cap)
        .output()
        .unwrap();
    let f: serde_json::Value = serde_json::from_slice(&flows.stdout).unwrap();
    assert_eq!(s["flows"], f["flows"]);
    assert_eq!(s["flows"].as_u64(), Some(28));
    let per_class: u64 = s["classes"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(per_class, 28, "every flow has exactly one class");
    assert_eq!(s["provider"], "CPUExecutionProvider");
    assert_eq!(s["model_version"], "weir-mlp/1");
    assert_eq!(s["status"], "done");
    // The layout the functions write to S3, under the id an upload of this file would get.
    let id = weir_pipeline::capture_id("uploads/metasploit-ms017-010-win7x64.pcap");
    assert_eq!(s["id"], id.as_str());
    let res = dir.path().join("captures").join(&id);
    let parquet = std::fs::read(res.join("results/00000.parquet")).unwrap();
    assert_eq!(&parquet[..4], b"PAR1");
    assert_eq!(&parquet[parquet.len() - 4..], b"PAR1");
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(res.join("summary.json")).unwrap()).unwrap();
    assert_eq!(on_disk["classes"], s["classes"]);
    assert_eq!(on_disk["flows"], 28);
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(res.join("status.json")).unwrap()).unwrap();
    assert_eq!(status["state"], "done");
    assert_eq!(status["shards"], 1);
    let days = std::fs::read_dir(res.join("flows")).unwrap().count();
    assert!(days >= 1, "search layout written");
    // `weir status` lists it done; a capture dropped into uploads/ is listed queued.
    std::fs::create_dir_all(dir.path().join("uploads")).unwrap();
    std::fs::copy(&cap, dir.path().join("uploads/next.pcap")).unwrap();
    let out = weir()
        .args(["status", "--json", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let states: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["capture"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    let next = weir_pipeline::capture_id("uploads/next.pcap");
    let mut want = vec![(id.as_str(), "done"), (next.as_str(), "queued")];
    want.sort();
    assert_eq!(states, want);
    std::fs::remove_dir_all(dir.path().join("uploads")).unwrap();
    // --wait: a line per change until the capture is final (done: exit 0); an id that is
    // not there is an error that says so.
    let out = weir()
        .args(["status", "--wait", &id, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains(&format!(" {id} ")) && l.contains(" done ")),
        "{text}"
    );
    let out = weir()
        .args([
            "status",
            "--wait",
            "nope-00000000",
            "--timeout",
            "1",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no capture nope-00000000"), "{err}");
    // Analyzing again rewrites the same objects: nothing is counted twice.
    let (_, again) = analyze_json(dir.path(), &cap);
    assert_eq!(again["flows"], 28);
    assert_eq!(again["classes"], s["classes"]);
}

#[test]
fn analyze_keeps_what_a_truncated_capture_holds() {
    let full = std::fs::read(shared().join("labeled/attacks/dictattack/test.pcap")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &full[..full.len() / 2 + 7]).unwrap();
    let (_, s) = analyze_json(dir.path(), &cut);
    assert_eq!(s["status"], "done-with-warnings", "{s}");
    assert!(s["warning"].as_str().is_some_and(|w| !w.is_empty()), "{s}");
    let n = s["flows"].as_u64().unwrap();
    assert!(
        n > 10 && n <= 138,
        "{n} flows from half of a 138-flow capture"
    );
}

#[test]
fn bad_model_and_unusable_cuda_are_clear_errors() {
    let cap = shared().join("labeled/normal/filesamples/simple_http.pcap");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.onnx");
    std::fs::write(&bad, b"definitely not a model").unwrap();
    let out = weir()
        .args(["analyze", "-q", "--device", "cpu", "--model"])
        .arg(&bad)
        .arg("--data-dir")
        .arg(dir.path())
        .arg(&cap)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not an ONNX model") && err.contains("weir train"),
        "{err}"
    );
    let gpu = std::path::Path::new(&std::env::var("HOME").unwrap())
        .join(".cache/weir/ort/1.31.1/gpu/libonnxruntime_providers_cuda.so");
    if !gpu.exists() {
        let out = weir()
            .args(["analyze", "-q", "--device", "cuda", "--data-dir"])
            .arg(dir.path())
            .arg(&cap)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("CUDA requested but unavailable"), "{err}");
    }
}

#[test]
fn the_shipped_model_fits_this_engine() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/weir-mlp.onnx"
    ))
    .unwrap();
    let info = weir_model::read_info(&bytes).unwrap();
    assert_eq!(info.feature_version, weir_flow::FEATURE_VERSION);
    let names: Vec<&str> = weir_flow::FEATURES.iter().map(|s| s.name).collect();
    assert_eq!(info.features, names);
    assert_eq!(info.classes, weir_train::CLASSES.map(String::from).to_vec());
    assert!(bytes.len() < 1 << 20, "the shipped model stays small");
}
