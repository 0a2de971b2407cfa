//! `weir serve` as a user runs it: the real binary on a real socket, over what `weir analyze`
//! wrote, answered over plain HTTP; refused where it should be.

mod common;
use common::{get, post, serve, weir};

#[test]
fn weir_serve_answers_over_http_what_analyze_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/loopback.pcapng");
    let st = weir()
        .args(["analyze", "-q", sample, "--data-dir"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(st.success());
    let (mut child, addr, _log) = serve(&[std::ffi::OsStr::new("--data-dir"), data.as_os_str()]);
    let (code, body) = get(&addr, "/api/captures");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(v[0]["state"], "done", "{v}");
    assert_eq!(v[0]["flows"], 53);
    let (code, body) = get(&addr, "/api/search?q=proto%20udp&limit=3");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["total"].as_u64().unwrap() > 0);
    let rows = v["rows"].as_array().unwrap();
    assert!(!rows.is_empty() && rows.len() <= 3, "{v}");
    assert!(rows.iter().all(|r| r["proto"] == 17), "{v}");
    let (code, body) = get(&addr, "/api/search?q=proto%20udpp");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("not a protocol"), "{body}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn weir_serve_refuses_what_it_cannot_serve_safely() {
    let dir = tempfile::tempdir().unwrap();
    let out = weir()
        .args(["serve", "--addr", "0.0.0.0:8080", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("needs a token"), "{err}");
    let out = weir()
        .args(["serve", "--data-dir", "no-such-dir"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-dir: no such directory"), "{err}");
}

/// A little-endian PCAPNG with its last Enhanced Packet Block appended `n` more times.
fn with_last_packet_repeated(pcapng: &[u8], n: usize) -> Vec<u8> {
    let mut at = 0;
    let mut last = None;
    while at + 8 <= pcapng.len() {
        let kind = u32::from_le_bytes(pcapng[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(pcapng[at + 4..at + 8].try_into().unwrap()) as usize;
        if kind == 6 {
            last = Some(at..at + len);
        }
        at += len;
    }
    let block = &pcapng[last.expect("an enhanced packet block")];
    let mut out = pcapng.to_vec();
    for _ in 0..n {
        out.extend_from_slice(block);
    }
    out
}

/// Upload `bytes` as `name` and wait until it is analyzed: the model versions of its rows.
fn upload_and_versions(addr: &str, name: &str, bytes: &[u8]) -> Vec<String> {
    let (code, body) = post(addr, &format!("/api/uploads?name={name}"), bytes);
    assert_eq!(code, 202, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = v["capture"].as_str().unwrap().to_string();
    for _ in 0..600 {
        let (_, st) = get(addr, &format!("/api/captures/{id}"));
        if st.contains("\"done\"") {
            let (code, rows) = get(addr, &format!("/api/search?capture={id}&limit=10000"));
            assert_eq!(code, 200, "{rows}");
            let r: serde_json::Value = serde_json::from_str(&rows).unwrap();
            let mut out: Vec<String> = r["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|row| row["model_version"].as_str().unwrap().to_string())
                .collect();
            out.sort();
            out.dedup();
            return out;
        }
        assert!(!st.contains("\"failed\""), "{st}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{name} was not analyzed in 60 s");
}

/// `weir serve --registry`: uploads are classified by the registry's current version, picked
/// up without a restart; a tampered version is refused and the running one keeps serving.
#[test]
fn weir_serve_follows_the_registry_without_a_restart() {
    use weir_fl::registry::{Card, Registry};
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("reg");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let st = weir()
        .args(["fl", "init", "--registry"])
        .arg(&reg)
        .env_remove("WEIR_REGISTRY_KEY")
        .status()
        .unwrap();
    assert!(st.success());
    let (mut child, addr, rx) = serve(&[
        std::ffi::OsStr::new("--data-dir"),
        data.as_os_str(),
        std::ffi::OsStr::new("--registry"),
        reg.as_os_str(),
    ]);
    let pcap = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/loopback.pcapng"
    ))
    .unwrap();
    // Each upload other bytes (the sample with its last packet repeated 0, 1, 2 times): the
    // same bytes again would be the capture they already are, not analyzed again.
    let v0 = upload_and_versions(&addr, "first.pcapng", &with_last_packet_repeated(&pcap, 0));
    assert_eq!(v0.len(), 1, "{v0:?}");
    assert!(!v0[0].contains("+fl."), "{v0:?}");
    // Publish version 1 (the same graph, other weights) while the server runs.
    let store = weir_pipeline::LocalStore::new(&reg);
    let r = Registry::new(&store, None);
    let cur = r.current(None).unwrap();
    let p: Vec<f32> = weir_fl::params::flatten(&cur.model)
        .iter()
        .map(|x| x * 0.9)
        .collect();
    let mut m1 = weir_fl::params::with_params(&cur.model, &p);
    m1.info.model_version = weir_fl::round::federated_version(&cur.model.info.model_version, 1);
    let (_, etag) = r.pointer().unwrap().unwrap();
    let card = Card {
        version: 1,
        base_version: Some(0),
        round: Some(1),
        made_by: "test".into(),
        included: Vec::new(),
        excluded: Vec::new(),
        samples: 0,
        metrics: None,
        created_unix: 0,
    };
    r.publish(Some(&etag), 1, 2, &m1, &card, None)
        .unwrap()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let v1 = upload_and_versions(&addr, "second.pcapng", &with_last_packet_repeated(&pcap, 1));
    assert_eq!(v1, vec![format!("{}+fl.v1", v0[0])]);
    // Version 2's file tampered with after publishing: refused, version 1 keeps serving.
    let (_, etag) = r.pointer().unwrap().unwrap();
    let mut m2 = m1.clone();
    m2.info.model_version = weir_fl::round::federated_version(&m1.info.model_version, 2);
    r.publish(Some(&etag), 2, 3, &m2, &Card { version: 2, ..card }, None)
        .unwrap()
        .unwrap();
    let f = reg.join("registry/v000002/model.onnx");
    let mut b = std::fs::read(&f).unwrap();
    let n = b.len();
    b[n / 2] ^= 0x08;
    std::fs::write(&f, &b).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let v2 = upload_and_versions(&addr, "third.pcapng", &with_last_packet_repeated(&pcap, 2));
    assert_eq!(v2, v1);
    let _ = child.kill();
    let _ = child.wait();
    let log: Vec<String> = rx.try_iter().collect();
    assert!(
        log.iter()
            .any(|l| l.contains("switched") && l.contains("+fl.v1")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("refused") && l.contains("SHA-256")),
        "{log:?}"
    );
}
