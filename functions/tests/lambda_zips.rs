//! The zips `scripts/lambda-zips.sh` built for AWS Lambda (`$WEIR_LAMBDA_ZIPS`, else
//! `$CARGO_TARGET_DIR/lambda-zips`): each holds an executable `bootstrap` that asks for no
//! newer glibc than Amazon Linux 2023's; the classifier's and the merge's hold ONNX Runtime
//! beside it. The classifier, unpacked and started as Lambda starts it (a Runtime API to talk
//! to, no ONNX Runtime anywhere but in the zip, a fresh HOME), loads the library from its zip
//! and the model, then asks for its first event; the same start without the library in the
//! zip fails, so the check can tell.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ORT_LIB: &str = "libonnxruntime.so.1.31.1";
/// Amazon Linux 2023's glibc, what provided.al2023 runs on.
const AL2023_GLIBC: (u32, u32) = (2, 34);

fn zips() -> PathBuf {
    if let Some(d) = std::env::var_os("WEIR_LAMBDA_ZIPS") {
        return PathBuf::from(d);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/weir/target")
        });
    target.join("lambda-zips")
}

/// (name, unix mode) of each member, read with Python's zipfile (python3 is already needed).
fn members(zip: &Path) -> Vec<(String, u32)> {
    assert!(
        zip.exists(),
        "{} is not there: build the zips first (bash scripts/lambda-zips.sh)",
        zip.display()
    );
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile\nfor i in zipfile.ZipFile(sys.argv[1]).infolist(): print(i.external_attr >> 16, i.filename)",
        ])
        .arg(zip)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (mode, name) = l.split_once(' ').unwrap();
            (name.to_string(), mode.parse::<u32>().unwrap())
        })
        .collect()
}

fn unzip(zip: &Path, into: &Path) {
    let st = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(zip)
        .arg(into)
        .status()
        .unwrap();
    assert!(st.success());
    // zipfile does not restore modes; Lambda does (the zip says 0755)
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        into.join("bootstrap"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
}

/// The newest GLIBC_2.x symbol version an ELF file asks for.
fn newest_glibc(path: &Path) -> (u32, u32) {
    let data = std::fs::read(path).unwrap();
    let mut newest = (0, 0);
    let needle = b"GLIBC_2.";
    let mut i = 0;
    while let Some(p) = data[i..].windows(needle.len()).position(|w| w == needle) {
        let start = i + p + needle.len();
        let digits: String = data[start..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .map(|&c| c as char)
            .collect();
        if let Ok(minor) = digits.parse::<u32>() {
            newest = newest.max((2, minor));
        }
        i = start;
    }
    newest
}

#[test]
fn every_zip_has_an_executable_bootstrap_for_amazon_linux_2023() {
    for name in [
        "weir-splitter",
        "weir-classifier",
        "weir-aggregator",
        "weir-merge",
    ] {
        let zip = zips().join(format!("{name}.zip"));
        let m = members(&zip);
        let boot = m.iter().find(|(n, _)| n == "bootstrap");
        let (_, mode) = boot.unwrap_or_else(|| panic!("{name}.zip has no bootstrap: {m:?}"));
        assert_eq!(
            mode & 0o111,
            0o111,
            "{name}.zip: bootstrap is not executable"
        );
        let with_ort = m.iter().any(|(n, _)| n == ORT_LIB);
        assert_eq!(
            with_ort,
            name == "weir-classifier" || name == "weir-merge",
            "{name}.zip: ONNX Runtime where the model runs, nowhere else: {m:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        unzip(&zip, dir.path());
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let f = f.unwrap().path();
            let need = newest_glibc(&f);
            eprintln!(
                "{name}.zip: {} needs GLIBC_{}.{}",
                f.display(),
                need.0,
                need.1
            );
            assert!(
                need <= AL2023_GLIBC,
                "{name}.zip: {} needs GLIBC_{}.{}, Amazon Linux 2023 has {}.{}",
                f.display(),
                need.0,
                need.1,
                AL2023_GLIBC.0,
                AL2023_GLIBC.1
            );
        }
    }
    let web = members(&zips().join("weir-web.zip"));
    for want in ["run.sh", "weir", ORT_LIB, "site/pkg/weir-web_bg.wasm"] {
        assert!(
            web.iter().any(|(n, _)| n == want),
            "weir-web.zip lacks {want}"
        );
    }
}

/// What the unpacked classifier did first: its first request to the Runtime API, or how it
/// ended, and its log.
fn start_classifier(dir: &Path) -> (Option<String>, String) {
    let api = TcpListener::bind("127.0.0.1:0").unwrap();
    api.set_nonblocking(true).unwrap();
    let home = tempfile::tempdir().unwrap();
    let log = dir.join("stderr.log");
    let mut child: Child = Command::new(dir.join("bootstrap"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home.path())
        .env("LAMBDA_TASK_ROOT", dir)
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            api.local_addr().unwrap().to_string(),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "weir-classifier")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("WEIR_BUCKET", "weir")
        // URLs, so starting needs no SQS call
        .env(
            "WEIR_SHARD_QUEUE",
            "http://127.0.0.1:9/000000000000/weir-shards",
        )
        .env(
            "WEIR_AGGREGATE_QUEUE",
            "http://127.0.0.1:9/000000000000/weir-aggregate",
        )
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let first = loop {
        if let Ok((stream, _)) = api.accept() {
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut line = String::new();
            BufReader::new(stream).read_line(&mut line).unwrap();
            break Some(line.trim().to_string());
        }
        if let Some(st) = child.try_wait().unwrap() {
            break Some(format!("exited: {st}"));
        }
        if t.elapsed() > Duration::from_secs(60) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (first, err)
}

#[test]
fn the_classifier_zip_loads_its_onnx_runtime() {
    let dir = tempfile::tempdir().unwrap();
    unzip(&zips().join("weir-classifier.zip"), dir.path());
    let (first, log) = start_classifier(dir.path());
    eprintln!("first request: {first:?}\nlog:\n{log}");
    assert_eq!(
        first.as_deref(),
        Some("GET /2018-06-01/runtime/invocation/next HTTP/1.1"),
        "the classifier did not get ready: {log}"
    );
    assert!(log.contains("model loaded"), "{log}");
    let from_zip = format!("library={}", dir.path().join(ORT_LIB).display());
    assert!(
        log.contains(&from_zip),
        "not loaded from the zip ({from_zip}): {log}"
    );
    assert!(log.contains("CPUExecutionProvider"), "{log}");

    // Without the library in the zip there is nothing else to load: the start fails.
    std::fs::remove_file(dir.path().join(ORT_LIB)).unwrap();
    let (first, log) = start_classifier(dir.path());
    eprintln!("without the library: {first:?}\nlog:\n{log}");
    assert_ne!(
        first.as_deref(),
        Some("GET /2018-06-01/runtime/invocation/next HTTP/1.1"),
        "the classifier started without the library in its zip: it did not come from the zip"
    );
    assert!(log.contains(ORT_LIB), "the error names the library: {log}");
}
