//! Federated learning on a laptop, as a user runs it: a registry in a directory, three
//! `weir edge` processes at once, `weir fl merge`, `weir fl status`, `weir analyze
//! --registry`, rollback; refusals a user meets (an unregistered node, a tampered model);
//! with feature `live`, capturing on loopback.

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

#[cfg(feature = "live")]
/// UDP datagrams to `port` in a PCAP file (Ethernet framing, IPv4).
fn udp_to(file: &Path, port: u16) -> usize {
    let f = std::fs::File::open(file).unwrap();
    let mut r = weir_capture::CaptureReader::new(f).unwrap();
    let mut n = 0;
    while let Some(p) = r.next_packet().unwrap() {
        let d = p.data;
        if d.len() < 42 || d[12..14] != [0x08, 0x00] || d[23] != 17 {
            continue;
        }
        let ihl = usize::from(d[14] & 0x0f) * 4;
        let at = 14 + ihl + 2;
        if d.len() >= at + 2 && u16::from_be_bytes([d[at], d[at + 1]]) == port {
            n += 1;
        }
    }
    n
}

/// Live capture (`weir edge run --interface`, feature `live`): the real binary captures on
/// loopback while this test sends UDP datagrams to a port of its own; the file it leaves in
/// the watched folder holds exactly those datagrams (outgoing copies skipped), and the node
/// analyzed it like a dropped capture. Skipped, saying so, where the process may not open a
/// packet socket (no CAP_NET_RAW).
#[cfg(feature = "live")]
#[test]
fn an_edge_node_captures_live_on_loopback_and_analyzes_what_it_captured() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");
    let watch = tmp.path().join("watch");
    std::fs::create_dir_all(&watch).unwrap();
    assert!(weir(&["fl", "init", "--registry", s(&reg)])
        .status
        .success());
    let key = tmp.path().join("node.key");
    let out = weir(&["edge", "key", "--node", "edge-1", "--key", s(&key)]);
    let pk = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        weir(&["fl", "register", "edge-1", &pk, "--registry", s(&reg)])
            .status
            .success()
    );
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rx.local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["edge", "run", "--node", "edge-1", "--key", s(&key)])
        .args(["--registry", s(&reg), "--watch", s(&watch)])
        .args(["--interface", "lo", "--interval", "3", "--once"])
        .env_remove("WEIR_REGISTRY_PUBKEY")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Send once it says the socket is open.
    let mut log = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut err = String::new();
    loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut log, &mut line).unwrap() == 0 {
            break;
        }
        err.push_str(&line);
        if line.contains("capturing on lo") {
            break;
        }
    }
    if err.contains("CAP_NET_RAW") {
        eprintln!("SKIPPED: this process may not open a packet socket: {err}");
        let _ = child.wait();
        return;
    }
    assert!(err.contains("capturing on lo"), "{err}");
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let sent = 40;
    for i in 0..sent {
        tx.send_to(format!("weir live {i}").as_bytes(), ("127.0.0.1", port))
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::io::Read::read_to_string(&mut log, &mut err).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{err}");
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(&watch)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}\n{err}");
    assert!(
        !std::fs::read_dir(&watch).unwrap().any(|e| e
            .unwrap()
            .path()
            .to_string_lossy()
            .ends_with(".part")),
        "a .part file was left behind"
    );
    assert_eq!(udp_to(&files[0], port), sent, "{err}");
    assert!(
        err.contains("captured") && err.contains("into 1 files"),
        "{err}"
    );
    // The node analyzed the capture it made and pushed its alerts file.
    assert!(err.contains("alerts (pushed edge/"), "{err}");
}
