//! `weir analyze`: capture → flows → classification → Parquet results + a summary, in one
//! process. The flow stage runs on this thread; classification and writing on another.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::json;
use weir_classify::{Classifier, Device, Options};
use weir_flow::{extract, ExtractOptions, FlowRecord};
use weir_records::{FlowWriter, OutputFormat, Verdicts, NORMAL_CLASS};

/// The model shipped with this build (models/weir-mlp.onnx, trained by `weir train`).
pub static EMBEDDED_MODEL: &[u8] = weir_classify::SHIPPED_MODEL;

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// The capture to analyze (.pcap or .pcapng).
    capture: PathBuf,
    /// Where results go: DIR/captures/<capture file name>/flows.parquet and summary.json.
    #[arg(long, default_value = "weir-data", value_name = "DIR")]
    data_dir: PathBuf,
    /// An ONNX model written by `weir train` (default: the model built into this binary).
    #[arg(long, value_name = "ONNX")]
    model: Option<PathBuf>,
    /// Where the model runs: auto (CUDA if it loads, else CPU), cpu, or cuda (an error if
    /// CUDA cannot be used).
    #[arg(long, default_value = "auto")]
    device: Device,
    /// Threads ONNX Runtime uses (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Flows per inference call.
    #[arg(long, default_value_t = weir_classify::DEFAULT_BATCH)]
    batch: usize,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress bar and no summary table on stderr.
    #[arg(short, long)]
    quiet: bool,
}

/// What the classifier thread accumulates.
#[derive(Default)]
struct Tally {
    flows: u64,
    classes: BTreeMap<String, u64>,
    nonfinite: usize,
    /// (anomaly, class, probability, flow description) of the alerts, highest probability first.
    top: Vec<(f32, String, f32, String)>,
}

fn describe(f: &FlowRecord) -> String {
    format!(
        "{} {}:{} -> {}:{} ({} pkts)",
        crate::proto_name(f.proto),
        f.src_ip,
        f.src_port,
        f.dst_ip,
        f.dst_port,
        f.packets_fwd + f.packets_bwd
    )
}

pub fn analyze(args: AnalyzeArgs) -> Result<i32> {
    let started = Instant::now();
    let opts = Options {
        device: args.device,
        threads: args.threads,
        batch: args.batch,
        ..Options::default()
    };
    let mut classifier = match &args.model {
        Some(p) => Classifier::load(p, &opts)?,
        None => Classifier::from_bytes(EMBEDDED_MODEL, &opts)?,
    };
    let info = classifier.info().clone();
    let provider = classifier.provider();
    let file = File::open(&args.capture)
        .with_context(|| format!("cannot open {}", args.capture.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let name = args
        .capture
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "capture".into());
    let dir = args.data_dir.join("captures").join(&name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let out_path = dir.join("flows.parquet");
    let tmp_path = dir.join("flows.parquet.part");
    let sink = BufWriter::with_capacity(
        1 << 20,
        File::create(&tmp_path).with_context(|| format!("cannot create {}", tmp_path.display()))?,
    );

    let bar = crate::progress_bar("analyzing", size, !args.quiet && size > 8 << 20);

    let (tx, rx) = crossbeam_channel::bounded::<Vec<FlowRecord>>(8);
    let info2 = info.clone();
    let worker = std::thread::spawn(move || -> Result<Tally> {
        let mut w = FlowWriter::new(sink, OutputFormat::Parquet)
            .classified(&info2.classes, &info2.model_version);
        let mut t = Tally::default();
        let mut x: Vec<f32> = Vec::new();
        for batch in rx {
            x.clear();
            for f in &batch {
                x.extend(f.features.iter().map(|v| *v as f32));
            }
            let p = classifier.classify(&x)?;
            w.write_classified(
                &batch,
                &Verdicts {
                    classes: &info2.classes,
                    model_version: &info2.model_version,
                    predicted: &p.predicted,
                    probabilities: &p.probabilities,
                    anomaly: &p.anomaly,
                },
            )?;
            t.flows += batch.len() as u64;
            t.nonfinite += p.nonfinite_rows;
            for (i, f) in batch.iter().enumerate() {
                let class = &info2.classes[p.predicted[i] as usize];
                *t.classes.entry(class.clone()).or_insert(0) += 1;
                if class != NORMAL_CLASS {
                    let prob = p.row(i)[p.predicted[i] as usize];
                    t.top.push((p.anomaly[i], class.clone(), prob, describe(f)));
                }
            }
            t.top.sort_by(|a, b| b.2.total_cmp(&a.2));
            t.top.truncate(10);
        }
        w.finish()?;
        Ok(t)
    });
    let result = extract(
        file,
        &ExtractOptions::default(),
        |b| {
            let _ = tx.send(b);
        },
        |pos| {
            if let Some(b) = &bar {
                b.set_position(pos);
            }
        },
    );
    drop(tx);
    let tally = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the classifier thread panicked"))?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp_path);
            bail!("{}: {e}", args.capture.display());
        }
    };
    let tally = tally.with_context(|| format!("classifying into {}", out_path.display()))?;
    std::fs::rename(&tmp_path, &out_path)
        .with_context(|| format!("cannot move results to {}", out_path.display()))?;
    let elapsed = started.elapsed().as_secs_f64();
    let alerts: u64 = tally
        .classes
        .iter()
        .filter(|(c, _)| c.as_str() != NORMAL_CLASS)
        .map(|(_, n)| n)
        .sum();
    let status = if summary.error.is_some() {
        "done-with-warnings"
    } else {
        "done"
    };
    let js = json!({
        "capture": args.capture.display().to_string(),
        "status": status,
        "warning": summary.error.as_ref().map(|e| e.to_string()),
        "packets": summary.packets,
        "packets_skipped": summary.skipped_total(),
        "flows": tally.flows,
        "alerts": alerts,
        "classes": tally.classes,
        "nonfinite_feature_flows": tally.nonfinite,
        "top_alerts": tally.top.iter().map(|(a, c, p, d)| json!({"class": c, "probability": p, "anomaly": a, "flow": d})).collect::<Vec<_>>(),
        "model_version": info.model_version,
        "provider": provider.name(),
        "results": out_path.display().to_string(),
        "seconds": elapsed,
        "bytes": size,
    });
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&js)? + "\n",
    )
    .with_context(|| format!("cannot write {}", dir.join("summary.json").display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&js)?);
    }
    if !args.quiet {
        print_table(&args.capture, &js, &tally, elapsed, size);
    }
    Ok(if summary.packets > 0 || summary.error.is_none() {
        0
    } else {
        1
    })
}

fn print_table(capture: &Path, js: &serde_json::Value, t: &Tally, elapsed: f64, size: u64) {
    let mut s = format!(
        "{}: {} flows, {} alerts in {:.2} s ({:.0} MB/s), model {} on {}\n",
        capture.display(),
        t.flows,
        js["alerts"],
        elapsed,
        size as f64 / 1e6 / elapsed.max(1e-9),
        js["model_version"].as_str().unwrap_or_default(),
        js["provider"].as_str().unwrap_or_default()
    );
    let mut classes: Vec<_> = t.classes.iter().collect();
    classes.sort_by(|a, b| b.1.cmp(a.1));
    s.push_str("  class                        flows\n");
    for (c, n) in classes {
        s.push_str(&format!("  {c:<28} {n:>6}\n"));
    }
    if !t.top.is_empty() {
        s.push_str("  top alerts (by probability):\n");
        for (a, c, p, d) in t.top.iter().take(5) {
            s.push_str(&format!("    {c:<24} p={p:.2} anomaly={a:>7.2}  {d}\n"));
        }
    }
    if let Some(w) = js["warning"].as_str() {
        s.push_str(&format!("  warning: {w} (flows before it kept)\n"));
    }
    s.push_str(&format!(
        "  results: {}\n",
        js["results"].as_str().unwrap_or_default()
    ));
    eprint!("{s}");
}
