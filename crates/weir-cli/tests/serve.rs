//! `weir serve` as a user runs it: the real binary on a real socket, over what `weir analyze`
//! wrote, answered over plain HTTP; refused where it should be.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

/// GET over a fresh connection: status code and body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    // The body may come chunked: keep what is between the chunk-size lines.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    } else {
        body.to_string()
    };
    (code, body)
}

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
    let mut child = weir()
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut log = BufReader::new(child.stderr.take().unwrap());
    log.read_line(&mut line).unwrap();
    // Keep reading the log: a closed pipe would fail the server's next line.
    std::thread::spawn(move || for _ in log.lines() {});
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
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
