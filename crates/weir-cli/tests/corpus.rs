//! Every capture of ../shared/corpus (robustness: many broken on purpose; realistic: real
//! traffic) runs through the real `weir flows` binary without a panic, a crash or a hang.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn shared() -> PathBuf {
    std::env::var("WEIR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            captures(&p, out);
        } else if !matches!(
            p.extension().and_then(|s| s.to_str()),
            Some("md" | "txt" | "csv")
        ) {
            out.push(p);
        }
    }
}

/// Per-file limit: a debug build reads these (at most a few MB each) in well under a second.
const LIMIT: Duration = Duration::from_secs(20);

fn run_one(bin: &Path, file: &Path, out_dir: &Path) -> Result<(i32, String), String> {
    let out = out_dir.join("out.parquet");
    let mut child = Command::new(bin)
        .args(["flows", "-q", "--json", "-o"])
        .arg(&out)
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => {
                let o = child.wait_with_output().map_err(|e| e.to_string())?;
                let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
                let Some(code) = status.code() else {
                    return Err(format!("killed by a signal ({status}): {stderr}"));
                };
                if stderr.contains("panicked") {
                    return Err(format!("panicked: {stderr}"));
                }
                return Ok((
                    code,
                    String::from_utf8_lossy(&o.stdout).into_owned() + &stderr,
                ));
            }
            None if start.elapsed() > LIMIT => {
                let _ = child.kill();
                return Err(format!("still running after {LIMIT:?} (hang?)"));
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

#[test]
fn whole_corpus_without_panic_crash_or_hang() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_weir"));
    let mut files = Vec::new();
    for sub in ["corpus/robustness", "corpus/realistic"] {
        captures(&shared().join(sub), &mut files);
    }
    files.sort();
    assert!(
        files.len() > 2000,
        "expected the whole corpus, found {} files",
        files.len()
    );
    let tmp = tempfile::tempdir().unwrap();
    let chunks: Vec<Vec<PathBuf>> = files
        .chunks(files.len().div_ceil(2))
        .map(|c| c.to_vec())
        .collect();
    let results: Vec<(usize, usize, usize, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| {
                let dir = tmp.path().join(i.to_string());
                std::fs::create_dir_all(&dir).unwrap();
                let bin = &bin;
                s.spawn(move || {
                    let (mut ok, mut partial, mut rejected, mut bad) = (0, 0, 0, Vec::new());
                    for f in chunk {
                        match run_one(bin, f, &dir) {
                            Ok((0, out)) if out.contains("\"error\":null") => ok += 1,
                            Ok((0, _)) => partial += 1,
                            // 1: nothing usable; 2: not a capture at all. Both are clear refusals.
                            Ok((1 | 2, out)) if out.contains("error") => rejected += 1,
                            Ok((code, out)) => {
                                bad.push(format!("{}: exit {code}: {out}", f.display()))
                            }
                            Err(e) => bad.push(format!("{}: {e}", f.display())),
                        }
                    }
                    (ok, partial, rejected, bad)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (ok, partial, rejected): (usize, usize, usize) = results
        .iter()
        .fold((0, 0, 0), |a, r| (a.0 + r.0, a.1 + r.1, a.2 + r.2));
    let bad: Vec<&String> = results.iter().flat_map(|r| r.3.iter()).collect();
    eprintln!("corpus: {} files: {ok} clean, {partial} read up to damage, {rejected} refused with a reason, {} bad", files.len(), bad.len());
    assert!(
        bad.is_empty(),
        "{} files failed:\n{}",
        bad.len(),
        bad.iter()
            .take(20)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(ok > 1000, "most of the corpus should read cleanly");
}
