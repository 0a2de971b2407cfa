//! `weir edge`: an edge node of federated learning. A thin adapter: the registry, updates and
//! signatures are weir-fl's, labelling and training weir-train's and weir-model's, detection
//! the pipeline's stages (as `weir analyze` runs them).
//!
//! One pass: pull the current model from the registry (checked), detect on every capture in
//! the watched folder not seen before and push only its alerts, then, once per round, train
//! from the global weights on the captures an operator labelled (`labels.csv`) and upload the
//! clipped, signed update. Traffic and features never leave the node.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use weir_classify::{Classifier, Options};
use weir_fl::params::Gauss;
use weir_fl::registry::Registry;
use weir_fl::round;
use weir_fl::update::{self, Provenance, SigningKey, UpdateOptions};
use weir_pipeline::{LocalStore, SplitOptions, Store};
use weir_train::data::{label_capture, split_csv, CaptureEntry};

use crate::fl::{key_file, StoreArgs};

/// `weir edge …`
#[derive(clap::Subcommand, Debug)]
pub enum EdgeCommand {
    /// Make this node's Ed25519 key (kept in a file only this user can read) if it has none,
    /// and print its public key: what `weir fl register NODE KEY` takes.
    Key {
        /// The node id (letters, digits, - and _).
        #[arg(long)]
        node: String,
        /// The key file. Default: ~/.config/weir/edge/NODE.key.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// Run the node: detect on new captures and push alerts; train and push an update once
    /// per round.
    ///
    /// Captures (.pcap, .pcapng) dropped into --watch are analyzed with the current global
    /// model; only their alerts go to the registry's store (edge/NODE/alerts/). Captures an
    /// operator labelled in WATCH/labels.csv (columns file,class,rule as models/captures.csv:
    /// the rule says which flows are the attack, e.g. `src=10.0.0.5`, `pair=A-B`, `all`; the
    /// rest is Normal) are what the node learns from; the model's own guesses never are.
    ///
    /// Examples:
    ///   weir edge run --node edge-1 --registry reg --watch captures/ --once
    ///   weir edge run --node edge-1 --bucket weir-captures --watch /var/spool/pcap --interval 300
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
}

/// `weir edge run`'s options.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The node id, as registered.
    #[arg(long)]
    node: String,
    /// The key file. Default: ~/.config/weir/edge/NODE.key (made if missing).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
    /// The folder of captures (and labels.csv).
    #[arg(long, value_name = "DIR")]
    watch: PathBuf,
    /// Labels of the captures to learn from. Default: WATCH/labels.csv.
    #[arg(long, value_name = "CSV")]
    labels: Option<PathBuf>,
    /// Local epochs per round.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Local learning rate (as `weir fl simulate`).
    #[arg(long, default_value_t = 2e-3)]
    learning_rate: f32,
    /// L2 bound the update is clipped to.
    #[arg(long, default_value_t = update::DEFAULT_CLIP)]
    clip: f32,
    /// Local differential privacy: Gaussian noise of this many times the clip (0: none). The
    /// ε it gives per update (δ = 1e-5) is printed and goes in the manifest.
    #[arg(long, default_value_t = 0.0)]
    dp_noise: f32,
    /// Alert threshold for local detection (as `weir analyze --min-probability`).
    #[arg(long, default_value_t = weir_classify::DEFAULT_MIN_PROBABILITY,
          value_parser = weir_classify::parse_probability)]
    min_probability: f32,
    /// Seconds between passes.
    #[arg(long, default_value_t = 60)]
    interval: u64,
    /// One pass, then exit.
    #[arg(long)]
    once: bool,
    /// Also capture live on this interface (needs CAP_NET_RAW): packets go into --watch as
    /// one PCAP file per --interval, analyzed like dropped captures (and learnt from once an
    /// operator labels them). With --once: capture for one interval, then one pass.
    #[cfg(feature = "live")]
    #[arg(long, value_name = "IFACE")]
    interface: Option<String>,
}

fn default_key(node: &str) -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("weir/edge").join(format!("{node}.key"))
}

/// What a node remembers between passes (WATCH/.weir-edge/state.json).
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Rounds answered.
    answered: BTreeSet<u64>,
    /// Captures (content ids) whose alerts were pushed, with the model version that judged them.
    alerted: BTreeSet<String>,
}

/// Run a `weir edge` command.
pub fn run(cmd: EdgeCommand) -> Result<i32> {
    match cmd {
        EdgeCommand::Key { node, key } => {
            if !round::valid_node_id(&node) {
                bail!("node id {node:?}: use 1-64 letters, digits, '-' or '_'");
            }
            let path = key.unwrap_or_else(|| default_key(&node));
            let k = key_file(&path, &node, true)?;
            println!("{}", k.public_hex());
            Ok(0)
        }
        EdgeCommand::Run(a) => {
            if !round::valid_node_id(&a.node) {
                bail!("node id {:?}: use 1-64 letters, digits, '-' or '_'", a.node);
            }
            if !a.watch.is_dir() {
                bail!("--watch {}: no such folder", a.watch.display());
            }
            let key = key_file(
                &a.key.clone().unwrap_or_else(|| default_key(&a.node)),
                &a.node,
                true,
            )?;
            let (store, _rt) = a.store.open()?;
            #[cfg(feature = "live")]
            let mut live = a
                .interface
                .clone()
                .map(|i| crate::live::spawn(i, a.watch.clone(), Duration::from_secs(a.interval)));
            loop {
                #[cfg(feature = "live")]
                if let Some((stop, t)) = live.take() {
                    if a.once {
                        std::thread::sleep(Duration::from_secs(a.interval));
                        stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    if a.once || t.is_finished() {
                        let c = t
                            .join()
                            .map_err(|_| anyhow::anyhow!("the capture thread panicked"))??;
                        eprintln!(
                            "edge {}: captured {} packets into {} files",
                            a.node, c.packets, c.files
                        );
                    } else {
                        live = Some((stop, t));
                    }
                }
                if let Err(e) = pass(&a, &key, store.as_ref()) {
                    if a.once {
                        return Err(e);
                    }
                    eprintln!("edge {}: {e:#}; trying again in {} s", a.node, a.interval);
                }
                if a.once {
                    return Ok(0);
                }
                std::thread::sleep(Duration::from_secs(a.interval));
            }
        }
    }
}

fn captures_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("pcap" | "pcapng" | "cap")
                )
        })
        .collect();
    v.sort();
    Ok(v)
}

fn pass(a: &RunArgs, key: &SigningKey, store: &dyn Store) -> Result<()> {
    let trust = std::env::var("WEIR_REGISTRY_PUBKEY")
        .ok()
        .filter(|k| !k.is_empty());
    let global = Registry::new(store, trust)
        .current(None)
        .context("pulling the global model")?;
    let p = &global.pointer;
    let state_dir = a.watch.join(".weir-edge");
    std::fs::create_dir_all(&state_dir)?;
    let state_path = state_dir.join("state.json");
    let mut state: State = std::fs::read(&state_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    // Detect: new captures, with the current model; push alerts only.
    let opts = Options {
        device: weir_classify::Device::Cpu,
        threads: 1,
        min_probability: a.min_probability,
        ..Options::default()
    };
    let mut classifier = Classifier::from_bytes(&global.bytes, &opts)?;
    let local = LocalStore::new(state_dir.join("data"));
    for path in captures_in(&a.watch)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = weir_pipeline::content_id(&name, &weir_pipeline::file_hash(&path)?);
        if state.alerted.contains(&id) {
            continue;
        }
        match detect(&local, &mut classifier, &path, &id) {
            Ok(summary) => {
                let doc = serde_json::json!({
                    "node": a.node,
                    "capture": name,
                    "id": id,
                    "model_version": classifier.info().model_version,
                    "registry_version": p.version,
                    "flows": summary.flows,
                    "alerts": summary.alerts,
                    "alert_groups": summary.alert_groups,
                    "top_alerts": summary.top_alerts,
                    "first": summary.first,
                    "last": summary.last,
                    "pushed_unix": update::now_unix(),
                });
                let k = format!("edge/{}/alerts/{id}.json", a.node);
                store.put(&k, &serde_json::to_vec_pretty(&doc)?)?;
                eprintln!(
                    "edge {}: {name}: {} flows, {} alerts (pushed {k})",
                    a.node, summary.flows, summary.alerts
                );
                state.alerted.insert(id);
            }
            Err(e) => eprintln!("edge {}: {name}: not analyzed: {e:#}", a.node),
        }
    }
    // Learn: once per round, from the labelled captures.
    if !state.answered.contains(&p.round) {
        let labels = a
            .labels
            .clone()
            .unwrap_or_else(|| a.watch.join("labels.csv"));
        match train_update(a, key, &global, &labels)? {
            Some(s) => {
                let k = round::upload(store, &s)?;
                eprintln!(
                    "edge {}: round {} (from version {}): update of {} flows, norm {:.3}{} -> {k}",
                    a.node,
                    p.round,
                    p.version,
                    s.manifest.samples,
                    s.manifest.norm,
                    s.manifest
                        .privacy
                        .as_ref()
                        .map_or(String::new(), |d| format!(
                            ", local DP ε = {:.2} (δ = {})",
                            d.epsilon, d.delta
                        ))
                );
                state.answered.insert(p.round);
            }
            None => eprintln!(
                "edge {}: nothing labelled to learn from ({} lists no capture here)",
                a.node,
                labels.display()
            ),
        }
    }
    std::fs::write(&state_path, serde_json::to_vec_pretty(&state)?)?;
    Ok(())
}

/// The pipeline's stages over one capture, in a scratch store: its summary.
fn detect(
    local: &LocalStore,
    classifier: &mut Classifier,
    path: &Path,
    id: &str,
) -> Result<weir_pipeline::CaptureSummary> {
    let key = format!("uploads/{id}");
    let dest = local.path_of(&key);
    if let Some(d) = dest.parent() {
        std::fs::create_dir_all(d)?;
    }
    let _ = std::fs::remove_file(&dest);
    if std::fs::hard_link(path, &dest).is_err() {
        std::fs::copy(path, &dest).with_context(|| format!("copying {}", path.display()))?;
    }
    let mut msgs = Vec::new();
    let opts = SplitOptions {
        rerun: true,
        ..SplitOptions::default()
    };
    weir_pipeline::split_as(local, &key, id, &opts, |m| {
        msgs.push(m.clone());
        Ok(())
    })?;
    for r in weir_pipeline::classify_shards(local, classifier, &msgs) {
        r?;
    }
    let s = weir_pipeline::aggregate(local, id)?;
    let _ = std::fs::remove_file(&dest);
    Ok(s)
}

/// The flows of labelled captures as training rows (no CIC-IDS2017, no synthetic traffic).
pub(crate) fn labelled_dataset(corpus: &weir_train::Corpus) -> weir_model::train::Dataset {
    let recipe = weir_train::Recipe {
        cic: false,
        synthetic_weight: 0.0,
        ..weir_train::Recipe::default()
    };
    weir_train::dataset(corpus, |_| true, &recipe)
}

/// The captures a labels CSV lists (files relative to the CSV's folder), labelled.
pub(crate) fn labelled_corpus(labels: &Path) -> Result<weir_train::Corpus> {
    if !labels.is_file() {
        bail!("{}: no such labels file", labels.display());
    }
    let dir = labels.parent().unwrap_or(Path::new("."));
    labelled_corpus_in(labels, dir)
}

/// The captures a labels CSV lists (files relative to `dir`), labelled; none when the CSV
/// is missing.
fn labelled_corpus_in(labels: &Path, dir: &Path) -> Result<weir_train::Corpus> {
    let mut captures = Vec::new();
    for e in &read_labels(labels)? {
        captures.push(label_capture(dir, e).with_context(|| format!("labelling {}", e.file))?);
    }
    Ok(weir_train::Corpus {
        captures,
        ..Default::default()
    })
}

/// Read labels.csv: file (relative to the watched folder), class, rule.
fn read_labels(path: &Path) -> Result<Vec<CaptureEntry>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let cols = split_csv(line);
        if cols.len() < 3 {
            bail!("{}:{}: expected file,class,rule", path.display(), n + 1);
        }
        if weir_train::class_index(&cols[1]).is_none() {
            bail!(
                "{}:{}: unknown class {:?} (the classes: {})",
                path.display(),
                n + 1,
                cols[1],
                weir_train::CLASSES.join(", ")
            );
        }
        let rule = cols[2]
            .parse()
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1))?;
        out.push(CaptureEntry {
            file: cols[0].clone(),
            class: cols[1].clone(),
            rule,
            synthetic: false,
        });
    }
    Ok(out)
}

fn train_update(
    a: &RunArgs,
    key: &SigningKey,
    global: &weir_fl::registry::Loaded,
    labels: &Path,
) -> Result<Option<update::Signed>> {
    let corpus = labelled_corpus_in(labels, &a.watch)?;
    if corpus.captures.is_empty() {
        return Ok(None);
    }
    let d = labelled_dataset(&corpus);
    if d.is_empty() {
        return Ok(None);
    }
    let mut counts = vec![0u64; global.model.n_classes()];
    for y in &d.y {
        counts[*y as usize] += 1;
    }
    let mut local = global.model.clone();
    let cfg = weir_model::train::TrainConfig {
        hidden: global
            .model
            .layers
            .iter()
            .skip(1)
            .map(|l| l.inputs)
            .collect(),
        epochs: a.epochs,
        learning_rate: a.learning_rate,
        seed: global.pointer.round,
        ..Default::default()
    };
    weir_model::train::fit(&mut local, &d, &cfg, |_| {});
    let prov = Provenance {
        base_version: global.pointer.version,
        round: global.pointer.round,
        samples: d.len() as u64,
        class_counts: counts,
    };
    let opts = UpdateOptions {
        clip: a.clip,
        noise_multiplier: a.dp_noise,
        delta: 1e-5,
    };
    Ok(Some(update::make(
        key,
        &global.model,
        &local,
        &prov,
        &opts,
        &mut Gauss::from_os(),
    )))
}
