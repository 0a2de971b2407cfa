//! Federated learning on a laptop, as a user runs it: a registry in a directory, three
//! `weir edge` processes at once, `weir fl merge`, `weir fl status`, `weir analyze
//! --registry`, rollback; refusals a user meets (an unregistered node, a tampered model).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shared() -> PathBuf {
    std::env::var_os("WEIR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

fn weir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .env_remove("WEIR_REGISTRY_PUBKEY")
        .env_remove("WEIR_REGISTRY_KEY")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = weir(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "weir {args:?}:\n{err}");
    String::from_utf8_lossy(&out.stdout).into_owned() + &err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn edge_nodes_merge_publish_and_analyze_follows_the_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");
    let regs = s(&reg);
    ok(&["fl", "init", "--registry", regs]);
    let nodes = [
        (
            "edge-1",
            "labeled/attacks/doup123/slowloris.pcap",
            "DoS SlowHTTPTest",
        ),
        (
            "edge-2",
            "labeled/attacks/sqlmap/sqlmap.pcap",
            "Web Attack - SQL Injection",
        ),
        (
            "edge-3",
            "labeled/attacks/stratosphere/malicious-ssh-bruteforce.pcap",
            "SSH Patator",
        ),
    ];
    let mut runs = Vec::new();
    for (node, file, class) in nodes {
        let d = tmp.path().join(node);
        std::fs::create_dir_all(&d).unwrap();
        let name = Path::new(file).file_name().unwrap().to_str().unwrap();
        std::fs::copy(shared().join(file), d.join(name)).unwrap();
        std::fs::write(
            d.join("labels.csv"),
            format!("file,class,rule\n{name},{class},all\n"),
        )
        .unwrap();
        let key = d.join("node.key");
        let pk = ok(&["edge", "key", "--node", node, "--key", s(&key)]);
        let pk = pk.lines().next().unwrap().to_string();
        assert_eq!(pk.len(), 64, "{pk}");
        ok(&["fl", "register", node, &pk, "--registry", regs]);
        runs.push((node, d, key));
    }
    // Three nodes at once.
    let children: Vec<_> = runs
        .iter()
        .map(|(node, d, key)| {
            Command::new(env!("CARGO_BIN_EXE_weir"))
                .args([
                    "edge",
                    "run",
                    "--node",
                    node,
                    "--key",
                    s(key),
                    "--registry",
                    regs,
                ])
                .args(["--watch", s(d), "--once"])
                .env_remove("WEIR_REGISTRY_PUBKEY")
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains("alerts (pushed edge/") && err.contains("update of"),
            "{err}"
        );
    }
    // A node nobody registered: its update is refused with the reason.
    let stranger = tmp.path().join("edge-9");
    std::fs::create_dir_all(&stranger).unwrap();
    std::fs::copy(
        shared().join("labeled/attacks/sqlmap/sqlmap.pcap"),
        stranger.join("sqlmap.pcap"),
    )
    .unwrap();
    std::fs::write(
        stranger.join("labels.csv"),
        "file,class,rule\nsqlmap.pcap,Web Attack - SQL Injection,all\n",
    )
    .unwrap();
    let k9 = stranger.join("node.key");
    ok(&[
        "edge",
        "run",
        "--node",
        "edge-9",
        "--key",
        s(&k9),
        "--registry",
        regs,
        "--watch",
        s(&stranger),
        "--once",
    ]);
    let merged = ok(&["fl", "merge", "--registry", regs]);
    assert!(
        merged.contains("round 1 closed") && merged.contains("published, version 1"),
        "{merged}"
    );
    assert!(merged.contains("refused  edge-9: unknown node"), "{merged}");
    let status = ok(&["fl", "status", "--registry", regs]);
    assert!(status.contains("serving version 1"), "{status}");
    let json: serde_json::Value = serde_json::from_str(&String::from_utf8_lossy(
        &weir(&["fl", "status", "--registry", regs, "--json"]).stdout,
    ))
    .unwrap();
    assert_eq!(json["versions"].as_array().unwrap().len(), 2);
    // A second merge step changes nothing: version 1 exists once.
    let again = ok(&["fl", "merge", "--registry", regs]);
    assert!(again.contains("round 2 open: 0 accepted"), "{again}");

    // `weir analyze --registry` runs version 1: every row says so.
    let cap = shared().join("labeled/attacks/doup123/udp__flood.pcap");
    let data = tmp.path().join("data");
    let out = weir(&[
        "analyze",
        "--json",
        "-q",
        "--device",
        "cpu",
        "--registry",
        regs,
        "--data-dir",
        s(&data),
        s(&cap),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["model_version"].as_str().unwrap().ends_with("+fl.v1"),
        "{v}"
    );

    // A tampered model file is refused with the reason; nothing is analyzed with it.
    let model = reg.join("registry/v000001/model.onnx");
    let mut b = std::fs::read(&model).unwrap();
    let n = b.len();
    b[n / 2] ^= 0x08;
    std::fs::write(&model, &b).unwrap();
    let out = weir(&[
        "analyze",
        "-q",
        "--device",
        "cpu",
        "--registry",
        regs,
        "--data-dir",
        s(&data),
        s(&cap),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("refused") && err.contains("SHA-256"), "{err}");

    // Rollback to version 0 is one command; analyze then runs the shipped model again.
    ok(&["fl", "rollback", "0", "--registry", regs]);
    let out = weir(&[
        "analyze",
        "--json",
        "-q",
        "--device",
        "cpu",
        "--registry",
        regs,
        "--data-dir",
        s(&data),
        s(&cap),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!v["model_version"].as_str().unwrap().contains("+fl"), "{v}");
    // Errors name what the user typed.
    let out = weir(&["fl", "status"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--registry DIR"));
    let out = weir(&["analyze", "--registry", "/nonexistent-reg", s(&cap)]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent-reg: no registry there"));
}

/// The merge's evaluation set from labelled captures: stored where the screen and the gate
/// read it; a bad CSV is refused naming the file and line.
#[test]
fn the_evaluation_set_comes_from_labelled_captures() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");
    let regs = s(&reg);
    ok(&["fl", "init", "--registry", regs]);
    let csv = tmp.path().join("eval.csv");
    let a = shared().join("labeled/attacks/sqlmap/sqlmap.pcap");
    let b = shared().join("labeled/attacks/doup123/slowloris.pcap");
    std::fs::write(
        &csv,
        format!(
            "file,class,rule\n{},Web Attack - SQL Injection,all\n{},DoS SlowHTTPTest,all\n",
            s(&a),
            s(&b)
        ),
    )
    .unwrap();
    let out = ok(&["fl", "eval-set", s(&csv), "--registry", regs]);
    assert!(
        out.contains("flows from 2 captures") && out.contains("Web Attack - SQL Injection"),
        "{out}"
    );
    let stored = std::fs::read(reg.join("fl/eval/eval.bin")).unwrap();
    assert!(stored.starts_with(b"WEIREVAL"), "{} bytes", stored.len());
    // A class weir does not know: refused, naming the file and line.
    std::fs::write(&csv, format!("file,class,rule\n{},Phishing,all\n", s(&a))).unwrap();
    let out = weir(&["fl", "eval-set", s(&csv), "--registry", regs]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("eval.csv:2") && err.contains("Phishing"),
        "{err}"
    );
    let missing = tmp.path().join("nope.csv");
    let out = weir(&["fl", "eval-set", s(&missing), "--registry", regs]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("nope.csv"), "{err}");
}
