//! What the tests of `weir serve` share: the binary, started on a free port, and plain HTTP/1.1
//! over fresh connections (so what is sent is exactly what a hostile client could send).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

pub fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

/// GET over a fresh connection: status code and body.
pub fn get(addr: &str, path: &str) -> (u16, String) {
    let (code, _, body) = request(addr, "GET", path, &format!("Host: {addr}\r\n"), b"");
    (code, String::from_utf8_lossy(&body).to_string())
}

/// Start `weir serve` on a free port with `args`: the child, its address, and its log lines
/// after the first (read all along: a closed pipe would fail the server's next line).
pub fn serve<S: AsRef<std::ffi::OsStr>>(
    args: &[S],
) -> (
    std::process::Child,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    let mut child = weir()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .env_remove("WEIR_REGISTRY_PUBKEY")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut log = BufReader::new(child.stderr.take().unwrap());
    log.read_line(&mut line).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in log.lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (child, addr, rx)
}

/// One request over a fresh connection, `head` the lines after the request line (each ending
/// in CRLF; Host and Content-Length are not added): status, response head and body.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    head: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\n{head}Connection: close\r\n\r\n"
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {:?}", String::from_utf8_lossy(&raw)))
        + 4;
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&raw[end..])
    } else {
        raw[end..].to_vec()
    };
    (code, head, body)
}

/// A chunked body's bytes.
pub fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..i]).unwrap_or("0");
        let n =
            usize::from_str_radix(size.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < i + 2 + n {
            break;
        }
        out.extend_from_slice(&rest[i + 2..i + 2 + n]);
        rest = &rest[(i + 4 + n).min(rest.len())..];
    }
    out
}

/// POST a body over a fresh connection: status code and body.
pub fn post(addr: &str, path: &str, body: &[u8]) -> (u16, String) {
    let head = format!(
        "Host: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n",
        body.len()
    );
    let (code, _, body) = request(addr, "POST", path, &head, body);
    (code, String::from_utf8_lossy(&body).to_string())
}
