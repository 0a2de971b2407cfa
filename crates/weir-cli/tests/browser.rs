//! The web app in a real browser (Debian's chromium through chromedriver), as an analyst uses
//! it: upload a capture and watch it reach done, its dashboard, search with the query language
//! and its mistakes, paging, click-to-filter, the time histogram, a flow with its explanation
//! and its packets; and hostile text shown as text with nothing run. Screenshots go to
//! $WEIR_SCREENSHOTS (default target/screenshots) for a person to look at.
//!
//! Needs `--features browser-tests`, chromium + chromedriver and the browser bundle
//! (WEIR_SITE): scripts/test.sh provides all three.
#![cfg(feature = "browser-tests")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

fn shared() -> PathBuf {
    std::env::var_os("WEIR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// A child process killed (by PID) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `weir serve` over `data`, and the address it listens on.
fn serve(data: &Path) -> (Killed, String) {
    let site =
        std::env::var("WEIR_SITE").expect("WEIR_SITE: the browser bundle (scripts/build-web.sh)");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--site",
            &site,
            "--data-dir",
        ])
        .arg(data)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep reading its log (a closed pipe would fail the server's next line), into a file.
    let log = data.with_extension("serve.log");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = std::fs::File::create(log).unwrap();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(out, "{line}");
            if let Some(a) = line
                .split("http://")
                .nth(1)
                .and_then(|s| s.split('/').next())
            {
                let _ = tx.send(a.to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("weir serve did not say where it listens");
    (Killed(child), addr)
}

/// chromedriver on a free port, and a browser session with the flags that work here.
async fn browser(profile: &Path) -> (Killed, Client) {
    let port = free_port();
    let driver = Command::new(
        std::env::var("WEIR_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()),
    )
    .arg(format!("--port={port}"))
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect(
        "chromedriver (apt-get install chromium-driver; scripts/setup-web.sh with WEIR_BROWSER=1)",
    );
    let driver = Killed(driver);
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": std::env::var("WEIR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a chromium session");
    (driver, client)
}

fn shots() -> PathBuf {
    let dir = std::env::var_os("WEIR_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

/// Text of the first element matching `css`.
async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Click the first element matching `css`.
async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Type `text` into the first element matching `css`.
async fn type_in(c: &Client, css: &str, text: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .send_keys(text)
        .await
        .unwrap();
}

/// Wait until `css` matches, up to `secs`.
async fn wait(c: &Client, css: &str, secs: u64) {
    let t0 = Instant::now();
    loop {
        if c.find(Locator::Css(css)).await.is_ok() {
            return;
        }
        if t0.elapsed() > Duration::from_secs(secs) {
            shot(c, "timeout").await;
            panic!(
                "{css} did not appear in {secs} s; page: {}",
                c.source().await.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Wait for hydration (the app's wasm running): the page's script sets nothing, so wait for
/// the bundle's module to have loaded and run `hydrate`.
async fn settle(_c: &Client) {
    tokio::time::sleep(Duration::from_millis(600)).await;
}

/// GET over a fresh connection: status and body bytes.
fn fetch(addr: &str, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, raw[split + 4..].to_vec())
}

fn row_count(total: &str) -> u64 {
    total
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("{total:?} is not a count"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_uploads_searches_and_carves_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (_server, addr) = serve(&data);
    let (_driver, c) = browser(&dir.path().join("profile")).await;
    let base = format!("http://{addr}");

    // Captures: empty, then an upload that reaches done on the same page (live progress).
    c.goto(&base).await.unwrap();
    assert_eq!(c.title().await.unwrap(), "weir: captures");
    shot(&c, "01-captures-empty").await;
    let capture = shared()
        .join("labeled/attacks/sgr/portScan_1_to_10000.pcapng")
        .canonicalize()
        .unwrap();
    type_in(&c, "#capture-file", capture.to_str().unwrap()).await;
    click(&c, "#upload").await;
    wait(&c, "#uploaded", 30).await;
    let id = text(&c, "#uploaded a").await;
    assert!(id.starts_with("portScan_1_to_10000-"), "{id}");
    settle(&c).await;
    // No reload from here: the page asks again every 2 s until the capture is done (a mark
    // on this document survives only if it is never reloaded).
    c.execute("window.__same_page = 1", vec![]).await.unwrap();
    wait(&c, "tr.state-done", 180).await;
    let same = c
        .execute("return window.__same_page === 1", vec![])
        .await
        .unwrap();
    assert_eq!(same, json!(true), "the captures page was reloaded");
    assert!(
        text(&c, "tr.state-done").await.contains("Port Scan"),
        "{}",
        text(&c, "tr.state-done").await
    );
    shot(&c, "02-captures-uploaded-done").await;

    // A file that is not a capture: refused with a message that names it.
    let not_capture = dir.path().join("notes.txt");
    std::fs::write(&not_capture, "these are not packets, just words".repeat(4)).unwrap();
    type_in(&c, "#capture-file", not_capture.to_str().unwrap()).await;
    click(&c, "#upload").await;
    wait(&c, "#upload-error", 20).await;
    let err = text(&c, "#upload-error").await;
    assert!(err.contains("notes.txt is not a capture"), "{err}");
    shot(&c, "03-upload-refused").await;

    // The dashboard: charts, the classes, who attacked whom.
    c.goto(&base).await.unwrap();
    wait(&c, "a.capture", 20).await;
    click(&c, "a.capture").await;
    wait(&c, "svg.chart.graph", 30).await;
    assert_eq!(text(&c, "h1").await, id);
    let page = c.source().await.unwrap();
    assert!(page.contains("Port Scan"), "no class in the dashboard");
    assert!(c.find_all(Locator::Css("svg.chart")).await.unwrap().len() >= 6);
    // The bars' labels are drawn (SVG links around SVG text, with a width on screen), not
    // only present in the source: an HTML <a> inside an SVG draws nothing.
    let labels = c
        .execute(
            "return [...document.querySelectorAll('svg.chart.bars a text.label')]\
             .filter(t => t.getBBox && t.getBBox().width > 0).map(t => t.textContent)",
            vec![],
        )
        .await
        .unwrap();
    let labels: Vec<String> = serde_json::from_value(labels).unwrap();
    assert!(labels.iter().any(|l| l == "Port Scan"), "{labels:?}");
    assert!(labels.iter().any(|l| l == "192.168.1.7"), "{labels:?}");
    shot(&c, "04-dashboard").await;

    // Search with the query language.
    c.goto(&format!("{base}/search")).await.unwrap();
    type_in(&c, "input[name=q]", "class \"Port Scan\" and dport < 1024").await;
    click(&c, "form.search button").await;
    wait(&c, "table.flows tbody tr", 30).await;
    let total = row_count(&text(&c, "p.summary strong").await);
    assert!(total > 500 && total < 1100, "{total}");
    let (_, all_scans) = fetch(
        &addr,
        &format!("/api/search?capture={id}&q=class%20%22Port%20Scan%22&limit=1"),
    );
    let total_scans: u64 = serde_json::from_slice::<Value>(&all_scans).unwrap()["total"]
        .as_u64()
        .unwrap();
    let classes = c
        .find_all(Locator::Css(
            "table.flows tbody tr td:nth-child(10) a.pivot",
        ))
        .await
        .unwrap();
    assert_eq!(classes.len(), 100, "one page of 100");
    for cell in &classes {
        assert_eq!(cell.text().await.unwrap(), "Port Scan");
    }
    shot(&c, "05-search").await;

    // Paging: the next page is other flows; the URL carries the whole search.
    let first_page = text(&c, "table.flows tbody").await;
    settle(&c).await;
    click(&c, "a[rel=next]").await;
    wait(&c, "a[rel=prev]", 30).await;
    assert!(text(&c, ".pager .pos").await.starts_with("page 2 of"));
    assert_ne!(text(&c, "table.flows tbody").await, first_page);
    assert!(c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .contains("offset=100"));

    // Click a value to filter on it: the destination port of the first row.
    let port = text(&c, "table.flows tbody tr td:nth-child(7) a.pivot").await;
    click(&c, "table.flows tbody tr td:nth-child(7) a.pivot").await;
    wait(&c, &format!("input[name=q][value*='dport {port}']"), 30).await;
    let ports = c
        .find_all(Locator::Css("table.flows tbody tr td:nth-child(7) a.pivot"))
        .await
        .unwrap();
    assert!(!ports.is_empty());
    for p in &ports {
        assert_eq!(p.text().await.unwrap(), port);
    }
    // ... and to exclude it.
    click(&c, "table.flows tbody tr td:nth-child(10) a.exclude").await;
    wait(&c, "input[name=q][value*='not class']", 30).await;
    shot(&c, "06-click-to-filter").await;

    // The filter fields: an address range on one side, a class from the list, a minimum
    // probability; each becomes one more term of the query the page shows.
    c.goto(&format!("{base}/search?capture={id}"))
        .await
        .unwrap();
    wait(&c, "select[name=class] option", 30).await;
    click(&c, "select[name=side] option[value=src]").await;
    type_in(&c, "input[name=addr]", "192.168.1.0/24").await;
    click(&c, "select[name=class] option[value='Port Scan']").await;
    type_in(&c, "input[name=min_p]", "0.9").await;
    click(&c, "form.search button").await;
    wait(
        &c,
        "select[name=class] option[value='Port Scan'][selected]",
        30,
    )
    .await;
    let canonical = text(&c, "code.canonical").await;
    assert_eq!(
        canonical,
        "src 192.168.1.0/24 and p >= 0.9 and class \"Port Scan\""
    );
    let filtered = row_count(&text(&c, "p.summary strong").await);
    assert!(filtered > 0 && filtered < total_scans, "{filtered}");
    for cell in c
        .find_all(Locator::Css("table.flows tbody tr td:nth-child(11)"))
        .await
        .unwrap()
    {
        let p: f64 = cell.text().await.unwrap().parse().unwrap();
        assert!(p >= 0.9, "{p}");
    }
    shot(&c, "07-filters").await;

    // A mistake in the query: an inline message with a caret under it, no 500.
    c.goto(&format!("{base}/search?q=src%2010.0.0/8"))
        .await
        .unwrap();
    wait(&c, "div.error pre.pointed", 30).await;
    assert!(text(&c, "div.error").await.contains("not an IP address"));
    assert!(text(&c, "pre.pointed").await.contains("^"));
    shot(&c, "08-query-error").await;

    // The time histogram: a click on a bar searches its time range.
    c.goto(&format!("{base}/search?capture={id}"))
        .await
        .unwrap();
    wait(&c, "a.hbar", 30).await;
    let all = row_count(&text(&c, "p.summary strong").await);
    settle(&c).await;
    click(&c, "a.hbar").await;
    wait(&c, "input[name=from][value*='T']", 30).await;
    let some = row_count(&text(&c, "p.summary strong").await);
    assert!(some > 0 && some < all, "{some} of {all}");
    shot(&c, "09-histogram-range").await;

    // A flow: why it was flagged, and its packets.
    c.goto(&format!(
        "{base}/search?capture={id}&q=alert%20true&sort=packets_fwd&desc=true"
    ))
    .await
    .unwrap();
    wait(&c, "a.flow", 30).await;
    click(&c, "a.flow").await;
    wait(&c, "table.why", 30).await;
    assert!(
        c.find_all(Locator::Css("table.why tbody tr"))
            .await
            .unwrap()
            .len()
            >= 10
    );
    assert!(text(&c, "section").await.contains("occlusion"));
    shot(&c, "10-flow").await;
    let href = c
        .find(Locator::Css("#pcap"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let (code, pcap) = fetch(&addr, &href);
    assert_eq!(code, 200, "{href}");
    let json_path = href.trim_end_matches("/pcap");
    let (_, row) = fetch(&addr, json_path);
    let row: Value = serde_json::from_slice(&row).unwrap();
    let mut r = weir_capture::CaptureReader::new(std::io::Cursor::new(pcap)).unwrap();
    let mut n = 0;
    while let Some(p) = r.next_packet().unwrap() {
        let weir_capture::Decode::Packet(d) = weir_capture::decode(p.linktype, p.data) else {
            panic!("undecodable packet in {href}");
        };
        let ends = [d.src.to_string(), d.dst.to_string()];
        assert!(
            ends.contains(&row["src_ip"].as_str().unwrap().to_string()),
            "{ends:?}"
        );
        assert!(
            ends.contains(&row["dst_ip"].as_str().unwrap().to_string()),
            "{ends:?}"
        );
        n += 1;
    }
    assert_eq!(
        n,
        row["packets_fwd"].as_u64().unwrap() + row["packets_bwd"].as_u64().unwrap()
    );
    c.close().await.unwrap();
}

/// Script in what the app shows (a URL's query, an upload's name and error, a capture whose
/// payloads carry `<script>` and event handlers): shown as text, never run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_is_shown_and_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The sample's XSS flows carry script in their HTTP requests.
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/loopback.pcapng");
    let st = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["analyze", "-q", sample, "--data-dir"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(st.success());
    let (_server, addr) = serve(&data);
    let (_driver, c) = browser(&dir.path().join("profile")).await;
    let base = format!("http://{addr}");
    let hostile = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>";
    let enc: String = hostile.bytes().map(|b| format!("%{b:02X}")).collect();
    for (url, css) in [
        (format!("{base}/search?q={enc}"), "div.error"),
        (format!("{base}/?upload_error={enc}"), "#upload-error"),
        (
            format!("{base}/search?q=class%20%22Web%20Attack%20-%20XSS%22&capture={enc}"),
            "div.error",
        ),
        (
            format!("{base}/search?q=class%20%22Web%20Attack%20-%20XSS%22"),
            "table.flows",
        ),
    ] {
        c.goto(&url).await.unwrap();
        wait(&c, css, 30).await;
        settle(&c).await;
        let ran = c
            .execute(
                "return window.__xss === undefined ? 0 : window.__xss",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(ran, json!(0), "{url}: script ran");
        assert!(
            c.find_all(Locator::Css("main img, main script"))
                .await
                .unwrap()
                .is_empty(),
            "{url}: markup was made"
        );
    }
    // A link's words are not shown as an upload's refusal (the page shows only what this
    // server kept under the id it gave out).
    c.goto(&format!("{base}/?upload_error={enc}"))
        .await
        .unwrap();
    wait(&c, "#upload-error", 30).await;
    let said = text(&c, "#upload-error").await;
    assert!(
        !said.contains("onerror") && !said.contains("script"),
        "{said}"
    );
    // The hostile query was shown, as text.
    c.goto(&format!("{base}/search?q={enc}")).await.unwrap();
    wait(&c, "div.error", 30).await;
    let v = c
        .find(Locator::Css("input[name=q]"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(v, hostile);
    shot(&c, "11-hostile-query").await;
    // The XSS flows: listed, opened, nothing run.
    c.goto(&format!(
        "{base}/search?q=class%20%22Web%20Attack%20-%20XSS%22"
    ))
    .await
    .unwrap();
    wait(&c, "a.flow", 30).await;
    click(&c, "a.flow").await;
    wait(&c, "table.why", 30).await;
    let ran = c
        .execute(
            "return window.__xss === undefined ? 0 : window.__xss",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(ran, json!(0));
    shot(&c, "12-xss-flow").await;
    c.close().await.unwrap();
}

/// The federation page after a round: the version published, the nodes included, the update
/// refused with its reason, in a real browser (screenshot `federation.png`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_federation_page_shows_versions_rounds_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let weir = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(args)
            .env_remove("WEIR_REGISTRY_PUBKEY")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "weir {args:?}: {err}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let d = data.to_str().unwrap();
    // Before any registry: the page says how to start one.
    std::fs::create_dir_all(&data).unwrap();
    let (server, addr) = serve(&data);
    let (_driver, c) = browser(&dir.path().join("profile")).await;
    c.goto(&format!("http://{addr}/federation")).await.unwrap();
    wait(&c, "#no-registry", 30).await;
    drop(server);

    weir(&["fl", "init", "--registry", d]);
    for (node, registered) in [("edge-1", true), ("edge-9", false)] {
        let w = dir.path().join(node);
        std::fs::create_dir_all(&w).unwrap();
        std::fs::copy(
            shared().join("labeled/attacks/sqlmap/sqlmap.pcap"),
            w.join("sqlmap.pcap"),
        )
        .unwrap();
        std::fs::write(
            w.join("labels.csv"),
            "file,class,rule\nsqlmap.pcap,Web Attack - SQL Injection,all\n",
        )
        .unwrap();
        let key = w.join("node.key");
        let k = key.to_str().unwrap();
        let pk = weir(&["edge", "key", "--node", node, "--key", k]);
        if registered {
            weir(&["fl", "register", node, pk.trim(), "--registry", d]);
        }
        weir(&[
            "edge",
            "run",
            "--node",
            node,
            "--key",
            k,
            "--registry",
            d,
            "--watch",
            w.to_str().unwrap(),
            "--once",
        ]);
    }
    weir(&["fl", "merge", "--registry", d, "--quorum", "1"]);
    let (_server, addr) = serve(&data);
    c.goto(&format!("http://{addr}/federation")).await.unwrap();
    wait(&c, "#versions", 30).await;
    settle(&c).await;
    shot(&c, "federation").await;
    let current = text(&c, "#current").await;
    assert!(current.contains("Serving version 1"), "{current}");
    let versions = text(&c, "#versions").await;
    assert!(
        versions.contains("edge-1") && versions.contains("unknown node"),
        "{versions}"
    );
    let rounds = text(&c, "#rounds").await;
    assert!(
        rounds.contains("published version 1") && rounds.contains("edge-9"),
        "{rounds}"
    );
    assert!(text(&c, "header nav").await.contains("Federation"));
}
