//! Every capture of ../shared/corpus (robustness: many broken on purpose; realistic: real
//! traffic) runs through the real binary without a panic, a crash or a hang: `weir flows`
//! (the flow stage) and `weir analyze` (the whole pipeline in process: split, classify, search
//! layout, summary), and the pipeline's summary counts exactly the flows the flow stage found.

use std::io::Read;
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

/// Run `weir ARGS`: exit code, stdout and stderr; an error for a signal, a panic or a hang.
fn run(bin: &Path, args: &[&std::ffi::OsStr]) -> Result<(i32, String, String), String> {
    let mut child = Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    // Drain both pipes while it runs: a child whose output outgrows the pipe buffer (64 KiB)
    // would otherwise block on its write and look hung.
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as _));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as _));
    let start = Instant::now();
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => {
                let o = std::process::Output {
                    status,
                    stdout: out.join().unwrap_or_default(),
                    stderr: err.join().unwrap_or_default(),
                };
                let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
                let Some(code) = status.code() else {
                    return Err(format!("killed by a signal ({status}): {stderr}"));
                };
                if stderr.contains("panicked") {
                    return Err(format!("panicked: {stderr}"));
                }
                return Ok((
                    code,
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                    stderr,
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

/// How one file went.
enum Outcome {
    Clean,
    Partial,
    Refused,
}

/// `weir flows` then `weir analyze` on one file.
fn run_one(bin: &Path, file: &Path, out_dir: &Path) -> Result<Outcome, String> {
    let out = out_dir.join("out.parquet");
    let (code, stdout, stderr) = run(
        bin,
        &[
            "flows".as_ref(),
            "-q".as_ref(),
            "--json".as_ref(),
            "-o".as_ref(),
            out.as_ref(),
            file.as_ref(),
        ],
    )?;
    let outcome = match code {
        0 if stdout.contains("\"error\":null") => Outcome::Clean,
        0 => Outcome::Partial,
        // 1: nothing usable; 2: not a capture at all. Both are clear refusals.
        1 | 2 if stdout.contains("error") || stderr.contains("error") => Outcome::Refused,
        _ => return Err(format!("weir flows: exit {code}: {stdout}{stderr}")),
    };
    let flows = serde_json::from_str::<serde_json::Value>(&stdout)
        .ok()
        .and_then(|v| v["flows"].as_u64());
    let data = out_dir.join("data");
    let (code, stdout, stderr) = run(
        bin,
        &[
            "analyze".as_ref(),
            "-q".as_ref(),
            "--json".as_ref(),
            "--device".as_ref(),
            "cpu".as_ref(),
            "--threads".as_ref(),
            "1".as_ref(),
            "--data-dir".as_ref(),
            data.as_ref(),
            file.as_ref(),
        ],
    )?;
    let _ = std::fs::remove_dir_all(&data);
    let summary: Option<serde_json::Value> = serde_json::from_str(&stdout).ok();
    match (code, &summary) {
        (0 | 1, Some(s)) => {
            let state = s["status"].as_str().unwrap_or_default();
            if !matches!(state, "done" | "done-with-warnings" | "failed") {
                return Err(format!(
                    "weir analyze: exit {code}, status {state:?}: {stdout}"
                ));
            }
            if state != "done" && s["warning"].as_str().unwrap_or_default().is_empty() {
                return Err(format!("weir analyze: {state} without a reason: {stdout}"));
            }
            if flows.is_some() && s["flows"].as_u64() != flows {
                return Err(format!(
                    "weir analyze counted {} flows, weir flows {flows:?}",
                    s["flows"]
                ));
            }
        }
        // Refused before any summary: it must say why.
        (1 | 2, None) if stderr.contains("error") => {}
        _ => return Err(format!("weir analyze: exit {code}: {stdout}{stderr}")),
    }
    Ok(outcome)
}

#[test]
fn whole_corpus_through_flows_and_analyze_without_panic_crash_or_hang() {
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
                            Ok(Outcome::Clean) => ok += 1,
                            Ok(Outcome::Partial) => partial += 1,
                            Ok(Outcome::Refused) => rejected += 1,
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
