//! `weir analyze`: the pipeline's stages in one process, the embedded default. The same
//! functions the Lambdas run (weir-pipeline's split, classify_shards, aggregate), with a
//! directory as the object store and a channel as the queue: the splitter on this thread,
//! the classifier on another, so both cores work. DIR ends up with exactly the layout the
//! functions write to S3 (`captures/ID/...`), which other tools (DuckDB, polars) read.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::json;
use weir_classify::{Classifier, Device, Options};
use weir_pipeline::{
    Condition, LocalStore, PipelineError, ShardMessage, SplitOptions, Store, StoreError, StoreFault,
};

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// The capture to analyze (.pcap or .pcapng).
    capture: PathBuf,
    /// Where results go: DIR/captures/ID/ (status.json, summary.json, shards/, results/,
    /// flows/day=*/ or month=*/ or year=*/ when sparse), the layout the functions write to S3.
    #[arg(long, default_value = "weir-data", value_name = "DIR")]
    data_dir: PathBuf,
    /// An ONNX model written by `weir train` (default: the model built into this binary).
    #[arg(long, value_name = "ONNX", conflicts_with = "registry")]
    model: Option<PathBuf>,
    /// Use the current model of a federated-learning registry directory (`weir fl init`),
    /// checked (SHA-256; the pointer's signature when WEIR_REGISTRY_PUBKEY is set); a newer
    /// version published while the capture is analyzed is picked up between batches.
    #[arg(long, value_name = "DIR")]
    registry: Option<PathBuf>,
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
    /// The model's verdict on a flow alerts when its class is not Normal and has at least this
    /// probability (0 to 1) and the model's own threshold for that class; behaviour detectors
    /// alert whatever it is. The default is the model card's choice.
    #[arg(long, default_value_t = weir_classify::DEFAULT_MIN_PROBABILITY, value_name = "P",
          value_parser = weir_classify::parse_probability)]
    min_probability: f32,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress bar and no summary table on stderr.
    #[arg(short, long)]
    quiet: bool,
}

/// The data directory as the store, with the capture file standing in for its upload key
/// (read in place, not copied), its reads driving the progress bar; its version is the
/// content hash.
struct Local {
    store: LocalStore,
    key: String,
    path: PathBuf,
    digest: String,
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
    fn open(&self, key: &str) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        if key != self.key {
            return self.store.open(key);
        }
        let f = std::fs::File::open(&self.path).map_err(|e| {
            StoreError::new(self.path.display().to_string(), StoreFault::Permanent, e)
        })?;
        Ok(Box::new(Counted {
            inner: std::io::BufReader::with_capacity(1 << 20, f),
            bar: self.bar.clone(),
        }))
    }
    fn version(&self, key: &str) -> Result<Option<String>, StoreError> {
        if key != self.key {
            return self.store.version(key);
        }
        Ok(Some(self.digest.clone()))
    }
    fn open_version(
        &self,
        key: &str,
        version: &str,
    ) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        if key != self.key {
            return self.store.open_version(key, version);
        }
        self.open(key)
    }
    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        self.store.get_versioned(key)
    }
    fn put_if(&self, key: &str, bytes: &[u8], cond: &Condition) -> Result<bool, StoreError> {
        self.store.put_if(key, bytes, cond)
    }
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.store.put(key, bytes)
    }
    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(key == self.key || self.store.exists(key)?)
    }
    fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        if key != self.key {
            return self.store.size(key);
        }
        Ok(std::fs::metadata(&self.path).ok().map(|m| m.len()))
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.store.list(prefix)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.store.delete(key)
    }
}

/// Shard messages the classifier thread takes at once (one pass through the model).
const TAKE: usize = 8;

/// Why a path cannot be analyzed, in the user's words (the path as typed).
fn check_input(path: &Path) -> Result<u64> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{shown}: no such file")
        }
        Err(e) => bail!("{shown}: cannot read it: {e}"),
    };
    if meta.is_dir() {
        bail!("{shown} is a directory: give one capture file (.pcap or .pcapng) inside it");
    }
    if meta.len() == 0 {
        bail!("{shown} is empty (0 bytes): not a capture");
    }
    Ok(meta.len())
}

pub fn analyze(args: AnalyzeArgs) -> Result<i32> {
    let started = Instant::now();
    let size = check_input(&args.capture)?;
    let shown = args.capture.display().to_string();
    let opts = Options {
        device: args.device,
        threads: args.threads,
        batch: args.batch,
        min_probability: args.min_probability,
        ..Options::default()
    };
    let mut classifier = match &args.model {
        Some(p) => Classifier::load(p, &opts)?,
        None => Classifier::from_bytes(weir_classify::SHIPPED_MODEL, &opts)?,
    };
    let mut reloader = match &args.registry {
        Some(dir) => {
            let mut r = registry_reloader(dir, weir_classify::loader(opts.clone()))?;
            if let weir_fl::reload::Reload::Refused(why) = r.check(&mut classifier) {
                bail!(
                    "--registry {}: its current model was refused: {why}",
                    dir.display()
                );
            }
            Some(r)
        }
        None => None,
    };
    let info = classifier.info().clone();
    let provider = classifier.provider();
    let name = args
        .capture
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "capture".into());
    let digest = weir_pipeline::file_hash(&args.capture)
        .with_context(|| format!("{shown}: cannot read it"))?;
    tracing::debug!("hashed at {:.3} s", started.elapsed().as_secs_f64());
    // Named by content: another file that shares the name never takes this one's results.
    let id = weir_pipeline::content_id(&name, &digest);
    // The key is the path as typed: what status.json's `source` and every message name.
    let key = shown.clone();
    let bar = crate::progress_bar("analyzing", size, !args.quiet && size > 8 << 20);
    let store = Local {
        store: LocalStore::new(&args.data_dir),
        key: key.clone(),
        path: args.capture.clone(),
        digest: digest.clone(),
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
                if let Some(r) = reloader.as_mut() {
                    match r.check(&mut classifier) {
                        weir_fl::reload::Reload::Swapped { to, .. } => {
                            eprintln!("model: switched to {to} (published to the registry)")
                        }
                        weir_fl::reload::Reload::Refused(why) => {
                            eprintln!("model: the registry's new version was refused, keeping the one running: {why}")
                        }
                        weir_fl::reload::Reload::Unchanged => {}
                    }
                }
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
        let opts = SplitOptions {
            rerun: true,
            ..SplitOptions::default()
        };
        let split = weir_pipeline::split_as(store, &key, &id, &opts, |m| {
            tx.send(m.clone())
                .map_err(|_| PipelineError::Stopped("the classifier thread"))
        });
        drop(tx);
        tracing::debug!("splitter done at {:.3} s", started.elapsed().as_secs_f64());
        let classified = worker
            .join()
            .unwrap_or(Err(PipelineError::Stopped("the classifier thread")));
        (split, classified)
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    // A classifier failure explains a splitter that could not send: report it first.
    classified.with_context(|| format!("classifying {shown}"))?;
    let report = match split {
        Ok(Some(r)) => r,
        Ok(None) => {
            bail!("{shown}: the splitter found it finished already (a bug: analyze reruns)")
        }
        Err(PipelineError::NotACapture { error, .. }) => bail!("{shown} is not a capture: {error}"),
        Err(e) => return Err(e).context(format!("splitting {shown}")),
    };
    let summary =
        weir_pipeline::aggregate(&store, &id).with_context(|| format!("summarizing {shown}"))?;
    tracing::debug!("aggregated at {:.3} s", started.elapsed().as_secs_f64());
    let status = weir_pipeline::load_status(&store, &id)?;
    let elapsed = started.elapsed().as_secs_f64();
    let dir = args.data_dir.join("captures").join(&id);
    let mut js = json!({
        "capture": shown,
        "id": id,
        "blake3": digest,
        "status": status.state,
        "warning": report.damage,
        "packets": report.packets,
        "shards": report.shards,
        // f32 -> f64 without the binary tail (0.9, not 0.8999999761581421).
        "min_probability": (f64::from(args.min_probability) * 1e6).round() / 1e6,
        "model_version": info.model_version,
        "provider": provider.name(),
        "results": dir.display().to_string(),
        "seconds": elapsed,
        "bytes": size,
    });
    // Every field of summary.json, as stored (flows, alerts, alert groups, top sources,
    // destinations, services, timeline, ...).
    if let (Some(o), Ok(serde_json::Value::Object(sum))) =
        (js.as_object_mut(), serde_json::to_value(&summary))
    {
        for (k, v) in sum {
            if k != "capture" {
                o.insert(k, v);
            }
        }
    }
    if args.json {
        // A reader that stopped early (`| head`) is not an error worth a panic.
        let text = serde_json::to_string_pretty(&js)?;
        if let Err(e) = writeln!(std::io::stdout(), "{text}") {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(e).context("writing the summary to stdout");
            }
        }
    }
    if report.packets == 0 {
        let why = match &report.damage {
            Some(d) => format!("damaged before its first packet: {d}"),
            None => "a capture file header and no packets".into(),
        };
        eprintln!("{shown}: nothing to analyze: {why}");
        return Ok(1);
    }
    if !args.quiet {
        eprint!("{}", summary_table(&shown, &js, &summary, elapsed, size));
    }
    Ok(0)
}

/// `weir status`: every capture of a data directory with its state (or follow them).
pub fn status(dir: &Path, show: &weir_cli::status::ShowOptions) -> Result<i32> {
    if !dir.is_dir() {
        bail!(
            "{} is not a directory: give the --data-dir that `weir analyze` wrote to",
            dir.display()
        );
    }
    let place = dir.display().to_string();
    let (mut out, mut note) = (std::io::stdout(), std::io::stderr());
    let shown =
        weir_cli::status::show_status(&LocalStore::new(dir), show, &place, &mut out, &mut note)?;
    // With --wait: exit 1 when the capture failed.
    Ok(i32::from(shown.failed()))
}

/// The summary as an analyst reads it first: who attacked whom, how, when; then where the
/// traffic went.
fn summary_table(
    capture: &str,
    js: &serde_json::Value,
    t: &weir_pipeline::CaptureSummary,
    elapsed: f64,
    size: u64,
) -> String {
    use weir_pipeline::{flows_text, thousands};
    let mut s = format!(
        "{capture}: {} flows, {} alerts (p >= {}), {} to {}\n  analyzed in {:.2} s ({:.0} MB/s), model {} on {}\n",
        thousands(t.flows),
        thousands(t.alerts),
        js["min_probability"],
        t.first,
        t.last,
        elapsed,
        size as f64 / 1e6 / elapsed.max(1e-9),
        js["model_version"].as_str().unwrap_or_default(),
        js["provider"].as_str().unwrap_or_default()
    );
    if t.alert_groups.is_empty() {
        s.push_str("  no alerts\n");
    } else {
        s.push_str("  incidents (class: attacker -> victim, service, flows, time; evidence):\n");
        for g in &t.alert_groups {
            s.push_str(&format!("    {}\n", g.line));
        }
    }
    let mut classes: Vec<_> = t.classes.iter().collect();
    classes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    s.push_str("  flows per class: ");
    s.push_str(
        &classes
            .iter()
            .map(|(c, n)| format!("{c} {}", thousands(**n)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    s.push('\n');
    let hosts = |title: &str, v: &[weir_pipeline::Tally]| {
        let items: Vec<String> = v
            .iter()
            .take(5)
            .map(|h| format!("{} ({})", h.key, flows_text(h.flows)))
            .collect();
        format!("  {title}: {}\n", items.join(", "))
    };
    s.push_str(&hosts("top sources", &t.top_sources));
    s.push_str(&hosts("top destinations", &t.top_destinations));
    let services: Vec<String> = t
        .top_services
        .iter()
        .take(5)
        .map(|v| match (v.flows_to, v.flows_from) {
            (to, 0) => format!("{} ({} to)", v.service, flows_text(to)),
            (0, from) => format!("{} ({} from)", v.service, flows_text(from)),
            (to, from) => format!(
                "{} ({} to, {} from)",
                v.service,
                thousands(to),
                thousands(from)
            ),
        })
        .collect();
    s.push_str(&format!("  top services: {}\n", services.join(", ")));
    if t.unusual_flows > 0 {
        s.push_str(&format!(
            "  unusual: {} with an anomaly score above 99% of benign training flows (column anomaly_percentile)\n",
            flows_text(t.unusual_flows)
        ));
    }
    if let Some(w) = js["warning"].as_str() {
        s.push_str(&format!("  warning: {w} (flows before it kept)\n"));
    }
    s.push_str(&format!(
        "  results: {}/ (summary.json, results/*.parquet, flows/ for search)\n",
        js["results"].as_str().unwrap_or_default()
    ));
    s
}

/// A reloader over the registry directory `dir` (`--registry`), looking every 2 s, trusting
/// $WEIR_REGISTRY_PUBKEY when set; an error that says how to start one when there is none.
pub(crate) fn registry_reloader<M: weir_model::FlowModel>(
    dir: &std::path::Path,
    load: weir_fl::reload::Loader<M>,
) -> Result<weir_fl::reload::Reloader<M>> {
    if !dir.join(weir_fl::registry::LATEST).is_file() {
        bail!(
            "--registry {}: no registry there (no {}; start one with `weir fl init --registry {}`)",
            dir.display(),
            weir_fl::registry::LATEST,
            dir.display()
        );
    }
    let trust = std::env::var("WEIR_REGISTRY_PUBKEY")
        .ok()
        .filter(|k| !k.is_empty());
    Ok(weir_fl::reload::Reloader::new(
        std::sync::Arc::new(LocalStore::new(dir)),
        load,
        std::time::Duration::from_secs(2),
        trust,
    ))
}
