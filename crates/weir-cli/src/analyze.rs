//! `weir analyze`: the pipeline's stages in one process, the embedded default. The same
//! functions the Lambdas run (weir-pipeline's split, classify_shards, aggregate), with a
//! directory as the object store and a channel as the queue: the splitter on this thread,
//! the classifier on another, so both cores work. DIR ends up with exactly the layout the
//! functions write to S3 (`captures/ID/...`), which `weir serve` and other tools read.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::json;
use weir_classify::{Classifier, Device, Options};
use weir_flow::ExtractOptions;
use weir_pipeline::{LocalStore, PipelineError, ShardMessage, Status, Store};

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// The capture to analyze (.pcap or .pcapng).
    capture: PathBuf,
    /// Where results go: DIR/captures/ID/ (status.json, summary.json, shards/, results/,
    /// flows/day=*/ or month=*/ or year=*/ when sparse), the layout the functions write to S3.
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

/// The data directory as the store, with the capture file standing in for its upload key
/// (read in place, not copied), its reads driving the progress bar.
struct Local {
    store: LocalStore,
    key: String,
    path: PathBuf,
    bar: Option<indicatif::ProgressBar>,
}

struct Counted<R> {
    inner: R,
    bar: Option<indicatif::ProgressBar>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(b) = &self.bar {
            b.inc(n as u64);
        }
        Ok(n)
    }
}

impl Store for Local {
    fn open(&self, key: &str) -> Result<Box<dyn Read + Send + '_>, PipelineError> {
        if key != self.key {
            return self.store.open(key);
        }
        let f = std::fs::File::open(&self.path)
            .map_err(|e| PipelineError::Store(self.path.display().to_string(), e.to_string()))?;
        Ok(Box::new(Counted {
            inner: std::io::BufReader::with_capacity(1 << 20, f),
            bar: self.bar.clone(),
        }))
    }
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), PipelineError> {
        self.store.put(key, bytes)
    }
    fn exists(&self, key: &str) -> Result<bool, PipelineError> {
        Ok(key == self.key || self.store.exists(key)?)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, PipelineError> {
        self.store.list(prefix)
    }
    fn delete(&self, key: &str) -> Result<(), PipelineError> {
        self.store.delete(key)
    }
}

/// Shard messages the classifier thread takes at once (one pass through the model).
const TAKE: usize = 8;

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
        None => Classifier::from_bytes(weir_classify::SHIPPED_MODEL, &opts)?,
    };
    let info = classifier.info().clone();
    let provider = classifier.provider();
    let size = std::fs::metadata(&args.capture)
        .with_context(|| format!("cannot open {}", args.capture.display()))?
        .len();
    let name = args
        .capture
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "capture".into());
    // The key an S3 upload of this file would have: the same capture id, the same layout.
    let key = format!("uploads/{name}");
    let id = weir_pipeline::capture_id(&key);
    let bar = crate::progress_bar("analyzing", size, !args.quiet && size > 8 << 20);
    let store = Local {
        store: LocalStore::new(&args.data_dir),
        key: key.clone(),
        path: args.capture.clone(),
        bar: bar.clone(),
    };

    let (tx, rx) = crossbeam_channel::bounded::<ShardMessage>(2 * TAKE);
    let (split, classified) = std::thread::scope(|s| {
        let store = &store;
        let worker = s.spawn(move || -> Result<u64, PipelineError> {
            let mut flows = 0;
            let mut busy = std::time::Duration::ZERO;
            while let Ok(first) = rx.recv() {
                let mut msgs = vec![first];
                while msgs.len() < TAKE {
                    match rx.try_recv() {
                        Ok(m) => msgs.push(m),
                        Err(_) => break,
                    }
                }
                let t = Instant::now();
                for r in weir_pipeline::classify_shards(store, &mut classifier, &msgs) {
                    flows += r?;
                }
                busy += t.elapsed();
            }
            tracing::debug!(
                "classifier: {flows} flows, busy {:.3} s, done at {:.3} s",
                busy.as_secs_f64(),
                started.elapsed().as_secs_f64()
            );
            Ok(flows)
        });
        let split = weir_pipeline::split(
            store,
            &key,
            weir_pipeline::SHARD_FLOWS,
            &ExtractOptions::default(),
            |m| {
                tx.send(m.clone())
                    .map_err(|_| PipelineError::Message("the classifier stopped".into()))
            },
        );
        drop(tx);
        tracing::debug!("splitter done at {:.3} s", started.elapsed().as_secs_f64());
        let classified = worker.join().unwrap_or_else(|_| {
            Err(PipelineError::Message(
                "the classifier thread panicked".into(),
            ))
        });
        (split, classified)
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    // A classifier failure explains a splitter that could not send: report it first.
    classified.with_context(|| format!("classifying {}", args.capture.display()))?;
    let report = match split {
        Ok(r) => r,
        Err(e @ PipelineError::NotACapture(..)) => bail!("{e}"),
        Err(e) => return Err(e).context(format!("splitting {}", args.capture.display())),
    };
    let summary = weir_pipeline::aggregate(&store, &id)
        .with_context(|| format!("summarizing {}", args.capture.display()))?;
    tracing::debug!("aggregated at {:.3} s", started.elapsed().as_secs_f64());
    let status = Status::load(&store, &id)?;
    let elapsed = started.elapsed().as_secs_f64();
    let dir = args.data_dir.join("captures").join(&id);
    let js = json!({
        "capture": args.capture.display().to_string(),
        "id": id,
        "status": status.state,
        "warning": report.damage,
        "packets": report.packets,
        "flows": summary.flows,
        "shards": report.shards,
        "alerts": summary.alerts,
        "classes": summary.classes,
        "top_alerts": summary.top_alerts,
        "top_talkers": summary.top_talkers,
        "top_ports": summary.top_ports,
        "anomaly_mean": summary.anomaly_mean,
        "anomaly_max": summary.anomaly_max,
        "model_version": info.model_version,
        "provider": provider.name(),
        "results": dir.display().to_string(),
        "seconds": elapsed,
        "bytes": size,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&js)?);
    }
    if !args.quiet {
        print_table(&args.capture, &js, &summary, elapsed, size);
    }
    Ok(if report.packets > 0 || report.damage.is_none() {
        0
    } else {
        1
    })
}

/// `weir status`: every capture of a data directory with its state (or follow them).
pub fn status(dir: &Path, show: &weir_pipeline::ShowOptions) -> Result<i32> {
    if !dir.is_dir() {
        bail!(
            "{} is not a directory: give the --data-dir that `weir analyze` wrote to",
            dir.display()
        );
    }
    let place = dir.display().to_string();
    Ok(weir_pipeline::show_status(
        &LocalStore::new(dir),
        show,
        &place,
    )?)
}

fn print_table(
    capture: &Path,
    js: &serde_json::Value,
    t: &weir_pipeline::CaptureSummary,
    elapsed: f64,
    size: u64,
) {
    let mut s = format!(
        "{}: {} flows, {} alerts in {:.2} s ({:.0} MB/s), model {} on {}\n",
        capture.display(),
        t.flows,
        t.alerts,
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
    if !t.top_alerts.is_empty() {
        s.push_str("  top alerts (by probability):\n");
        for a in t.top_alerts.iter().take(5) {
            s.push_str(&format!(
                "    {:<24} p={:.2} anomaly={:>7.2}  {} ({} pkts)\n",
                a.class, a.probability, a.anomaly, a.flow, a.packets
            ));
        }
    }
    if let Some(w) = js["warning"].as_str() {
        s.push_str(&format!("  warning: {w} (flows before it kept)\n"));
    }
    s.push_str(&format!(
        "  results: {}/ (summary.json, status.json, results/*.parquet, flows/ by day)\n",
        js["results"].as_str().unwrap_or_default()
    ));
    eprint!("{s}");
}
