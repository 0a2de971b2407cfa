//! `weir serve` against hostile and heavy users (issue 29): the real binary on a real socket,
//! sent what a page elsewhere, a script or a careless paste can send. One test per kind of
//! abuse; each failed on the server before its fix (a crash, an upload taken, a capture
//! overwritten).

mod common;
use common::{get, request, serve, weir};

/// A data directory with the shipped sample analyzed into it.
fn analyzed() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/loopback.pcapng");
    let st = weir()
        .args(["analyze", "-q", sample, "--data-dir"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(st.success());
    (dir, data)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Still up: a plain request is answered.
fn alive(addr: &str, after: &str) {
    let (code, body) = get(addr, "/api/captures");
    assert_eq!(code, 200, "after {after}: {body}");
}

fn post_json(addr: &str, path: &str, v: &serde_json::Value) -> (u16, String) {
    let body = v.to_string();
    let head = format!(
        "Host: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    let (code, _, body) = request(addr, "POST", path, &head, body.as_bytes());
    (code, String::from_utf8_lossy(&body).to_string())
}

/// Item 1: nested parentheses, a run of `not`, a long `or` list (an analyst's IOC list) over
/// every route that parses a query; before, each overflowed the stack and aborted the server.
#[test]
fn no_query_crashes_the_server_and_an_ioc_list_of_10000_works() {
    let (_d, data) = analyzed();
    let (mut child, addr, _log) = serve(&[std::ffi::OsStr::new("--data-dir"), data.as_os_str()]);
    let deep = format!("{}proto%20udp{}", "(".repeat(2_000), ")".repeat(2_000));
    for route in ["/api/search", "/api/export", "/api/alerts.eve"] {
        let (code, body) = get(&addr, &format!("{route}?q={}", deep.replace('(', "%28")));
        assert_eq!(code, 400, "{route}: {body}");
        assert!(body.contains("the limit is 64"), "{route}: {body}");
        alive(&addr, route);
    }
    let (code, body) = get(&addr, &format!("/search?q={deep}"));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("the limit is 64"), "{body}");
    alive(&addr, "/search");

    let (code, body) = get(&addr, "/api/search?q=proto+udp&limit=1");
    assert_eq!(code, 200, "{body}");
    let udp = json(&body)["total"].as_u64().unwrap();
    assert!(udp > 0);
    let nots = format!("{}proto+udp", "not+".repeat(10_000));
    let (code, body) = get(&addr, &format!("/api/search?limit=1&q={nots}"));
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["total"], udp);

    let ports: Vec<String> = (1..=4_000).map(|p| format!("port+{p}")).collect();
    let (code, body) = get(
        &addr,
        &format!("/api/search?limit=1&q={}", ports.join("+or+")),
    );
    assert_eq!(code, 200, "{body}");

    // 10,000 addresses, two of them the sample's: too long for an address line, so posted.
    let (code, body) = get(&addr, "/api/search?limit=1&q=ip+127.0.0.1+or+ip+::1");
    assert_eq!(code, 200, "{body}");
    let want = json(&body)["total"].as_u64().unwrap();
    assert!(want > 0);
    let mut ioc: Vec<String> = (0..9_998)
        .map(|i| format!("ip 10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256))
        .collect();
    ioc.insert(4_000, "ip 127.0.0.1".into());
    ioc.push("ip ::1".into());
    let q = ioc.join(" or ");
    let (code, body) = post_json(
        &addr,
        "/api/search",
        &serde_json::json!({ "q": q, "limit": 5 }),
    );
    assert_eq!(code, 200, "{}", &body[..body.len().min(500)]);
    assert_eq!(json(&body)["total"], want);
    let (code, body) = post_json(
        &addr,
        "/api/export",
        &serde_json::json!({ "q": q, "format": "jsonl" }),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body.lines().count() as u64, want);
    // A posted body of the wrong type says what to send.
    let (code, _, body) = request(
        &addr,
        "POST",
        "/api/search",
        &format!("Host: {addr}\r\nContent-Type: application/json\r\nContent-Length: 7\r\n"),
        b"[1,2,3]",
    );
    assert_eq!(code, 422, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("JSON object"));
    alive(&addr, "the IOC list");
    let _ = child.kill();
    let _ = child.wait();
}

/// Item 2: without a token, a page elsewhere can neither upload (cross-site form, or a
/// `text/plain` POST that needs no preflight) nor read through a rebound name.
#[test]
fn pages_elsewhere_cannot_upload_or_read() {
    let (_d, data) = analyzed();
    let (mut child, addr, _log) = serve(&[std::ffi::OsStr::new("--data-dir"), data.as_os_str()]);
    let pcap = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/loopback.pcapng"
    ))
    .unwrap();
    let uploads = || -> Vec<String> {
        std::fs::read_dir(data.join("uploads"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let upload = |extra: &str, kind: &str| {
        let head = format!(
            "Host: {addr}\r\n{extra}Content-Type: {kind}\r\nContent-Length: {}\r\n",
            pcap.len()
        );
        let (code, _, body) = request(&addr, "POST", "/api/uploads?name=x.pcapng", &head, &pcap);
        (code, String::from_utf8_lossy(&body).to_string())
    };
    let octets = "application/octet-stream";
    let (code, body) = upload("Origin: http://evil.example\r\n", octets);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("evil.example"), "{body}");
    let (code, body) = upload("Sec-Fetch-Site: cross-site\r\n", octets);
    assert_eq!(code, 403, "{body}");
    let (code, body) = upload("Origin: null\r\n", octets);
    assert_eq!(code, 403, "{body}");
    // What a cross-site fetch() may send without a preflight, even with no Origin seen.
    let (code, body) = upload("", "text/plain");
    assert_eq!(code, 415, "{body}");
    assert!(body.contains("application/octet-stream"), "{body}");
    // The HTML form from another site.
    let boundary = "XyZ";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"capture\"; filename=\"x.pcapng\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(&pcap);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let head = format!(
        "Host: {addr}\r\nOrigin: http://evil.example\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n",
        form.len()
    );
    let (code, _, _) = request(&addr, "POST", "/upload", &head, &form);
    assert_eq!(code, 403);
    assert!(uploads().is_empty(), "{:?}", uploads());

    // DNS rebinding: the same socket, asked for by another name.
    let port = addr.rsplit(':').next().unwrap();
    for host in [format!("evil.example:{port}"), "attacker.test".into()] {
        let (code, _, body) = request(
            &addr,
            "GET",
            "/api/search?q=",
            &format!("Host: {host}\r\n"),
            b"",
        );
        assert_eq!(code, 403, "{host}: {}", String::from_utf8_lossy(&body));
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "LOCALHOST".into(),
    ] {
        let (code, _, _) = request(
            &addr,
            "GET",
            "/api/captures",
            &format!("Host: {host}\r\n"),
            b"",
        );
        assert_eq!(code, 200, "{host}");
    }
    // The page itself, same origin: taken.
    let (code, body) = upload(
        &format!("Origin: http://{addr}\r\nSec-Fetch-Site: same-origin\r\n"),
        octets,
    );
    assert_eq!(code, 202, "{body}");
    assert_eq!(uploads().len(), 1, "{:?}", uploads());
    let _ = child.kill();
    let _ = child.wait();

    // --allow-host adds a name; with a token any name is answered (a page elsewhere has no
    // token to send), the token still required.
    let (mut child, addr, _log) = serve(&[
        std::ffi::OsStr::new("--data-dir"),
        data.as_os_str(),
        std::ffi::OsStr::new("--allow-host"),
        std::ffi::OsStr::new("weir.lan"),
    ]);
    let (code, _, _) = request(
        &addr,
        "GET",
        "/api/captures",
        "Host: weir.lan:8080\r\n",
        b"",
    );
    assert_eq!(code, 200);
    let _ = child.kill();
    let _ = child.wait();
    let token = "a-long-enough-token-for-the-test-0123456789";
    let (mut child, addr, _log) = serve(&[
        std::ffi::OsStr::new("--data-dir"),
        data.as_os_str(),
        std::ffi::OsStr::new("--token"),
        std::ffi::OsStr::new(token),
    ]);
    let (code, _, _) = request(&addr, "GET", "/api/captures", "Host: weir.example\r\n", b"");
    assert_eq!(code, 401);
    let (code, _, _) = request(
        &addr,
        "GET",
        "/api/captures",
        &format!("Host: weir.example\r\nAuthorization: Bearer {token}\r\n"),
        b"",
    );
    assert_eq!(code, 200);
    let _ = child.kill();
    let _ = child.wait();
}

fn shared() -> std::path::PathBuf {
    std::env::var_os("WEIR_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
        })
}

/// Upload `bytes` as `name` through the API: status and the answer.
fn upload(addr: &str, name: &str, bytes: &[u8]) -> (u16, serde_json::Value) {
    let head = format!(
        "Host: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n",
        bytes.len()
    );
    let (code, _, body) = request(
        addr,
        "POST",
        &format!("/api/uploads?name={name}"),
        &head,
        bytes,
    );
    (code, json(&String::from_utf8_lossy(&body)))
}

fn wait_done(addr: &str, id: &str) -> serde_json::Value {
    for _ in 0..600 {
        let (_, st) = get(addr, &format!("/api/captures/{id}"));
        let v = json(&st);
        if v["state"] == "done" {
            return v;
        }
        assert_ne!(v["state"], "failed", "{v}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{id} was not analyzed in 60 s");
}

/// Item 3: an upload's capture id comes from its bytes. Other bytes under a name already
/// used are another capture (the first keeps its results and its uploaded object); the same
/// bytes again, under any name, are the capture they already are.
#[test]
fn an_upload_never_replaces_another_capture() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (mut child, addr, _log) = serve(&[std::ffi::OsStr::new("--data-dir"), data.as_os_str()]);
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/loopback.pcapng"
    ))
    .unwrap();
    let other = std::fs::read(shared().join("corpus/realistic/ndpi/NTPv3.pcap")).unwrap();
    let (code, v) = upload(&addr, "evidence.pcap", &sample);
    assert_eq!(code, 202, "{v}");
    let first = v["capture"].as_str().unwrap().to_string();
    assert_eq!(wait_done(&addr, &first)["flows"], 53);
    let stored = |id: &str| -> Vec<u8> {
        let st = json(&get(&addr, &format!("/api/captures/{id}")).1);
        std::fs::read(data.join(st["source"].as_str().unwrap())).unwrap()
    };
    assert_eq!(stored(&first), sample);

    let (code, v) = upload(&addr, "evidence.pcap", &other);
    assert_eq!(code, 202, "{v}");
    let second = v["capture"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let done = wait_done(&addr, &second);
    assert_ne!(done["flows"], 53, "{done}");
    assert_eq!(
        wait_done(&addr, &first)["flows"],
        53,
        "the first is untouched"
    );
    assert_eq!(stored(&first), sample);
    assert_eq!(stored(&second), other);

    for name in ["evidence.pcap", "copy.pcap", "copy.pcap"] {
        let (code, v) = upload(&addr, name, &sample);
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["capture"], first.as_str(), "{v}");
        assert_eq!(v["duplicate"], true, "{v}");
    }
    let (_, all) = get(&addr, "/api/captures");
    assert_eq!(json(&all).as_array().unwrap().len(), 2, "{all}");
    assert_eq!(std::fs::read_dir(data.join("uploads")).unwrap().count(), 2);
    let _ = child.kill();
    let _ = child.wait();
}

/// Item 4: nothing is buffered whole. An upload declared over the limit is refused before a
/// byte of it is read, and the form says "too large" with the limit (it said "Error parsing
/// multipart"); an export is streamed page by page (chunked), every row once.
#[test]
fn uploads_and_exports_stream() {
    let (_d, data) = analyzed();
    let (mut child, addr, _log) = serve(&[
        std::ffi::OsStr::new("--data-dir"),
        data.as_os_str(),
        std::ffi::OsStr::new("--max-upload"),
        std::ffi::OsStr::new("1000"),
    ]);
    // 10 GiB announced, nothing sent: answered at once.
    let head = format!(
        "Host: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n",
        10u64 << 30
    );
    let (code, _, body) = request(&addr, "POST", "/api/uploads?name=big.pcap", &head, b"");
    let body = String::from_utf8_lossy(&body);
    assert_eq!(code, 413, "{body}");
    assert!(
        body.contains("too large (10737418240 bytes: the limit is 1000 bytes"),
        "{body}"
    );
    // Over the limit as it streams, without a length: refused with the same words.
    let big = vec![0xd4u8; 5_000];
    let (code, _, body) = request(
        &addr,
        "POST",
        "/api/uploads?name=big.pcap",
        &format!("Host: {addr}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n"),
        &[format!("{:x}\r\n", big.len()).as_bytes(), &big, b"\r\n0\r\n\r\n"].concat(),
    );
    assert_eq!(code, 413, "{}", String::from_utf8_lossy(&body));
    // The form: back to the captures page with the reason.
    let boundary = "XyZ";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"capture\"; filename=\"big.pcap\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(&big);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let head = format!(
        "Host: {addr}\r\nOrigin: http://{addr}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n",
        form.len()
    );
    let (code, head, _) = request(&addr, "POST", "/upload", &head, &form);
    assert_eq!(code, 303, "{head}");
    // The address carries only the id of the reason the server kept; the page shows it.
    let location = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("location: ")
                .map(|_| l[10..].trim().to_string())
        })
        .unwrap_or_else(|| panic!("no location: {head}"));
    assert!(
        location.starts_with("/?upload_error=") && !location.contains("large"),
        "{location}"
    );
    let (code, _, page) = request(&addr, "GET", &location, &format!("Host: {addr}\r\n"), b"");
    let page = String::from_utf8_lossy(&page);
    assert_eq!(code, 200);
    assert!(page.contains("big.pcap: too large"), "{page}");
    assert!(page.contains("the limit is 1000 bytes"), "{page}");
    assert!(!data.join("uploads").exists());

    let (code, body) = get(&addr, "/api/search?limit=1");
    assert_eq!(code, 200);
    let total = json(&body)["total"].as_u64().unwrap();
    let (code, head, body) = request(
        &addr,
        "GET",
        "/api/export?format=jsonl",
        &format!("Host: {addr}\r\n"),
        b"",
    );
    assert_eq!(code, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    assert_eq!(String::from_utf8_lossy(&body).lines().count() as u64, total);
    let _ = child.kill();
    let _ = child.wait();
}

/// Item 5: weak tokens are refused at start; a browser's token becomes a session (out of the
/// address bar at once, HttpOnly, expiring, ended by /logout); a browser without one is sent
/// to a sign-in page, not shown raw JSON; `bearer` in any case; the access log says who did
/// what, never the token.
#[test]
fn tokens_become_sessions_and_weak_ones_are_refused() {
    let (dir, data) = analyzed();
    for (token, env, says) in [
        (Some("short"), None, "at least 16"),
        (Some("with a space in it, long enough"), None, "spaces"),
        (None, Some(""), "WEIR_TOKEN is set but empty"),
    ] {
        let mut cmd = weir();
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(&data);
        if let Some(t) = token {
            cmd.args(["--token", t]);
        }
        match env {
            Some(v) => cmd.env("WEIR_TOKEN", v),
            None => cmd.env_remove("WEIR_TOKEN"),
        };
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{token:?} {env:?}: {err}");
        assert!(err.contains(says), "{token:?} {env:?}: {err}");
    }
    let token = "Tok-0123456789abcdef/+=";
    let log = dir.path().join("access.jsonl");
    let (mut child, addr, _log) = serve(&[
        std::ffi::OsStr::new("--data-dir"),
        data.as_os_str(),
        std::ffi::OsStr::new("--token"),
        std::ffi::OsStr::new(token),
        std::ffi::OsStr::new("--access-log"),
        log.as_os_str(),
    ]);
    let html = format!("Host: {addr}\r\nAccept: text/html\r\n");
    // A browser without the token: the sign-in page, not JSON.
    let (code, head, _) = request(&addr, "GET", "/search?q=alert%20true", &html, b"");
    assert_eq!(code, 303, "{head}");
    assert!(
        head.contains("location: /login?next=%2Fsearch%3Fq%3Dalert%2520true"),
        "{head}"
    );
    let (code, _, body) = request(&addr, "GET", "/login?next=%2Fsearch", &html, b"");
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&body).contains("name=\"token\""));
    // ?token= (percent-encoded): a session, and the address without it.
    let enc: String = token.bytes().map(|b| format!("%{b:02X}")).collect();
    let (code, head, _) = request(
        &addr,
        "GET",
        &format!("/search?token={enc}&q=proto%20udp"),
        &html,
        b"",
    );
    assert_eq!(code, 303, "{head}");
    assert!(
        head.contains("location: /search?q=proto%20udp\r\n"),
        "{head}"
    );
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap_or_else(|| panic!("no cookie: {head}"))
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Max-Age=43200"),
        "{cookie}"
    );
    assert!(!cookie.contains(token), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let with = |s: &str| format!("Host: {addr}\r\nCookie: {s}\r\n");
    assert_eq!(
        request(&addr, "GET", "/api/captures", &with(&session), b"").0,
        200
    );
    assert_eq!(
        request(
            &addr,
            "GET",
            "/api/captures",
            &with(&format!("weir_token={token}")),
            b""
        )
        .0,
        401
    );
    // The form: the token posted, a session, on to `next` (never to another site).
    let form = format!("token={enc}&next=%2F%2Fevil.example");
    let (code, head, _) = request(
        &addr,
        "POST",
        "/login",
        &format!(
            "Host: {addr}\r\nOrigin: http://{addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            form.len()
        ),
        form.as_bytes(),
    );
    assert_eq!(code, 303, "{head}");
    assert!(head.contains("location: /\r\n"), "{head}");
    // bearer, any case.
    let (code, _, _) = request(
        &addr,
        "GET",
        "/api/captures",
        &format!("Host: {addr}\r\nAuthorization: bearer {token}\r\n"),
        b"",
    );
    assert_eq!(code, 200);
    // Logout ends the session.
    let (code, head, _) = request(
        &addr,
        "POST",
        "/logout",
        &format!(
            "Host: {addr}\r\nOrigin: http://{addr}\r\nCookie: {session}\r\nContent-Length: 0\r\n"
        ),
        b"",
    );
    assert_eq!(code, 303, "{head}");
    assert!(head.contains("Max-Age=0"), "{head}");
    assert_eq!(
        request(&addr, "GET", "/api/captures", &with(&session), b"").0,
        401
    );
    let _ = child.kill();
    let _ = child.wait();
    let lines = std::fs::read_to_string(&log).unwrap();
    assert!(!lines.contains(token) && !lines.contains(&enc), "{lines}");
    let entries: Vec<serde_json::Value> = lines.lines().map(json).collect();
    assert!(
        entries
            .iter()
            .any(|e| e["who"] == "bearer" && e["path"] == "/api/captures" && e["status"] == 200),
        "{lines}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["who"] == "token-in-address" && e["path"] == "/search?q=proto%20udp"),
        "{lines}"
    );
}

/// Item 6: every answer carries the protections a page needs (no framing, no sniffing, no
/// address sent to another site, scripts only with the response's nonce), answers are
/// compressed for clients that ask, an unknown address is a 404 in weir's words, a link cannot
/// put its words in the trusted page, and a connection that never finishes its request's head
/// is closed after the header-read timeout instead of being held (before, 1,500 half-open
/// connections were held 35 s and more).
#[test]
fn answers_are_protected_and_half_open_connections_are_closed() {
    use std::io::{Read, Write};
    let (_d, data) = analyzed();
    let (mut child, addr, _log) = serve(&[std::ffi::OsStr::new("--data-dir"), data.as_os_str()]);
    for path in ["/", "/api/captures", "/weir.css"] {
        let (code, head, _) = request(&addr, "GET", path, &format!("Host: {addr}\r\n"), b"");
        assert_eq!(code, 200, "{path}");
        let head = head.to_ascii_lowercase();
        for h in [
            "x-frame-options: deny",
            "x-content-type-options: nosniff",
            "referrer-policy: same-origin",
        ] {
            assert!(head.contains(h), "{path}: no {h:?} in {head}");
        }
        let csp = head
            .lines()
            .find_map(|l| l.strip_prefix("content-security-policy: "))
            .unwrap_or_else(|| panic!("{path}: no content-security-policy in {head}"));
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("object-src 'none'"), "{path}: {csp}");
        assert!(
            csp.contains("script-src 'none'") || csp.contains("script-src 'nonce-"),
            "{path}: scripts are not limited: {csp}"
        );
    }
    // A page's policy names this response's nonce, and every script on the page carries it:
    // a script injected into the page (it has no nonce) does not run.
    let (_, head, body) = request(&addr, "GET", "/", &format!("Host: {addr}\r\n"), b"");
    let nonce = head
        .split("script-src 'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap_or_else(|| panic!("no nonce in the page's policy: {head}"))
        .to_string();
    let page = String::from_utf8_lossy(&body).into_owned();
    let tags: Vec<&str> = page
        .split("<script")
        .skip(1)
        .map(|t| t.split('>').next().unwrap_or(""))
        .collect();
    assert!(!tags.is_empty(), "no script on the page to check");
    for t in &tags {
        assert!(
            t.contains(&format!("nonce=\"{nonce}\"")),
            "a script without this response's nonce: <script{t}>"
        );
    }
    let (_, head2, _) = request(&addr, "GET", "/", &format!("Host: {addr}\r\n"), b"");
    assert!(
        !head2.contains(&nonce),
        "the nonce is the same on two answers"
    );
    // Compressed for a client that asks (the pages, the API, the bundle), as it streams.
    for path in ["/", "/api/captures", "/weir.css"] {
        let (code, head, _) = request(
            &addr,
            "GET",
            path,
            &format!("Host: {addr}\r\nAccept-Encoding: gzip\r\n"),
            b"",
        );
        assert_eq!(code, 200);
        assert!(
            head.to_ascii_lowercase().contains("content-encoding: gzip"),
            "{path}: not compressed: {head}"
        );
    }
    // An address that is none of weir's: a 404 in weir's words (a page for a browser, JSON
    // for the API), never a 200 or the framework's explanation of its macros.
    for (path, says) in [
        ("/no/such/page", "not one of weir's pages"),
        ("/captures/nope", "no capture \"nope\" here"),
        ("/captures/..%2f", "is not a capture id"),
        ("/flows/nope/0/0", "has no shard 0"),
        ("/api/nope", "no such endpoint"),
        ("/ui/nope", "no such endpoint"),
    ] {
        let (code, _, body) = request(&addr, "GET", path, &format!("Host: {addr}\r\n"), b"");
        let body = String::from_utf8_lossy(&body);
        assert_eq!(code, 404, "{path}: {body}");
        assert!(body.contains(says), "{path}: {body}");
        assert!(!body.contains("server function"), "{path}: {body}");
    }
    // Words in a link are never shown as the server's: an upload refusal is shown by the id
    // the server gave out, an upload's capture only when it is one.
    let hostile = "Your%20session%20expired%3A%20call%20%2B1-555-0100";
    for q in [
        format!("/?upload_error={hostile}"),
        format!("/?uploaded={hostile}"),
        "/?uploaded=evil-000000000000".to_string(),
    ] {
        let (code, _, body) = request(&addr, "GET", &q, &format!("Host: {addr}\r\n"), b"");
        let body = String::from_utf8_lossy(&body);
        assert_eq!(code, 200, "{q}");
        assert!(
            !body.contains("session expired")
                && !body.contains("555-0100")
                && !body.contains("evil-"),
            "{q}: the link's words are on the page"
        );
        assert!(!body.contains("id=\"uploaded\""), "{q}");
    }
    let t0 = std::time::Instant::now();
    let mut half: Vec<std::net::TcpStream> = (0..100)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
                .unwrap();
            s
        })
        .collect();
    // Meanwhile the server answers others.
    assert_eq!(get(&addr, "/api/captures").0, 200);
    for s in &mut half {
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    }
    let held = t0.elapsed();
    assert!(
        held < std::time::Duration::from_secs(20),
        "half-open connections held {held:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Items 7-9 through `weir fl merge`, the binary an operator runs (the merge function runs
/// the same step): hostile edge nodes against a registry in a directory. An oversized payload
/// is refused from its size and never read (item 8); an accepted update whose files are then
/// swapped for a NaN payload of the wrong length under a re-hashed manifest is merged as it
/// was verified, not as it is now, and the merge does not panic (item 7); a second update of
/// an accepted node is a replay, and the published pointer is signed by the registry's key
/// (item 9).
#[test]
fn hostile_edge_updates_meet_the_merge_binary() {
    use weir_fl::params;
    use weir_fl::update::{self, Provenance, SigningKey, UpdateOptions};
    use weir_pipeline::{LocalStore, Store};

    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("reg");
    let regs = reg.to_str().unwrap();
    let fl = |args: &[&str]| {
        let out = weir()
            .args(args)
            .args(["--registry", regs])
            .env_remove("WEIR_REGISTRY_KEY")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "weir {args:?}:\n{text}");
        text
    };
    fl(&["fl", "init"]);
    let store = LocalStore::new(&reg);
    let key = weir_fl::registry::stored_key(&store, false)
        .unwrap()
        .expect("weir fl init keeps a registry key");
    let trusted = weir_fl::Registry::new(&store, Some(key.public_hex()));
    let m0 = trusted.current(None).unwrap().model;
    let nodes: Vec<SigningKey> = (1..=3u8)
        .map(|i| SigningKey::from_seed(&format!("edge-{i}"), [i; 32]).unwrap())
        .collect();
    for k in &nodes {
        fl(&["fl", "register", &k.id, &k.public_hex()]);
    }
    let push = |k: &SigningKey, by: f32| {
        let local = params::with_params(
            &m0,
            &params::flatten(&m0)
                .iter()
                .map(|x| x + by)
                .collect::<Vec<_>>(),
        );
        let s = update::make(
            k,
            &m0,
            &local,
            &Provenance {
                base_version: 0,
                round: 1,
                samples: 100,
                class_counts: {
                    let mut c = vec![0; m0.n_classes()];
                    c[0] = 100;
                    c
                },
            },
            &UpdateOptions::default(),
            &mut params::Gauss::new(7),
        );
        weir_fl::round::upload(&store, &s).unwrap()
    };
    // Item 8: a 3 GiB payload (sparse: no disk, no memory).
    let k1 = push(&nodes[0], 0.01);
    std::fs::File::options()
        .write(true)
        .open(store.path_of(&k1.replace(".json", ".bin")))
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    let k2 = push(&nodes[1], 0.01);
    let said = fl(&["fl", "merge", "--quorum", "2"]);
    assert!(
        said.contains("refused  edge-1: too large to read: the payload is 3221225472 bytes"),
        "{said}"
    );
    assert!(said.contains("accepted edge-2"), "{said}");
    // Item 7: edge-2 swaps its accepted update for a NaN payload of the wrong length, under a
    // manifest that names the new payload's hash.
    let evil = update::encode_payload(&[f32::NAN, 1.0, 2.0]);
    let env: update::Envelope = serde_json::from_slice(&store.get(&k2).unwrap()).unwrap();
    let mut m: update::Manifest = serde_json::from_str(&env.manifest).unwrap();
    m.payload_sha256 = update::sha256_hex(&evil);
    let forged = update::Envelope {
        manifest: serde_json::to_string(&m).unwrap(),
        signature: env.signature,
    };
    std::fs::write(store.path_of(&k2), serde_json::to_vec(&forged).unwrap()).unwrap();
    std::fs::write(store.path_of(&k2.replace(".json", ".bin")), &evil).unwrap();
    // Item 9: edge-2 tries a second update in the same round; edge-3 makes the quorum.
    push(&nodes[1], 0.02);
    push(&nodes[2], 0.01);
    let said = fl(&["fl", "merge", "--quorum", "2"]);
    assert!(said.contains("refused  edge-2: replay"), "{said}");
    assert!(said.contains("accepted edge-3"), "{said}");
    assert!(said.contains("published, version 1"), "{said}");
    // Published from the bytes that were verified, signed by the registry key.
    let v1 = trusted.current(None).unwrap();
    assert_eq!(v1.pointer.version, 1);
    assert!(params::flatten(&v1.model).iter().all(|x| x.is_finite()));
    let card = trusted.card(1).unwrap();
    let mut included: Vec<&str> = card.included.iter().map(|i| i.node.as_str()).collect();
    included.sort_unstable();
    assert_eq!(included, vec!["edge-2", "edge-3"]);
}
