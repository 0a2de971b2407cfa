//! `weir fl …` and `weir model …`: thin adapters over weir-fl (registry, merge) and
//! weir-train's simulation.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use weir_fl::registry::Registry;
use weir_fl::round::{self, MergeConfig, Merger, Mode};
use weir_fl::update::SigningKey;
use weir_fl::{Aggregation, Rule};
use weir_pipeline::Store;

use crate::model::{load_corpus, DataArgs};

/// Where the registry is: a directory, or a bucket.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// The registry as a directory (a laptop, tests).
    #[arg(long, value_name = "DIR", conflicts_with = "bucket")]
    pub registry: Option<PathBuf>,
    /// The registry in a bucket (S3 or LocalStack, with the AWS variables set): the bucket the
    /// functions use.
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
}

impl StoreArgs {
    /// Open the store (and the runtime an S3 store blocks on, kept alive with it).
    pub fn open(&self) -> Result<(Arc<dyn Store>, Option<tokio::runtime::Runtime>)> {
        match (&self.registry, &self.bucket) {
            (Some(dir), _) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the registry directory {}", dir.display()))?;
                Ok((Arc::new(weir_pipeline::LocalStore::new(dir)), None))
            }
            (None, Some(bucket)) => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()?;
                let clients = rt.block_on(weir_aws::clients());
                let store = weir_aws::S3Store::new(clients.s3, bucket, rt.handle().clone());
                Ok((Arc::new(store), Some(rt)))
            }
            (None, None) => bail!(
                "say where the registry is: --registry DIR (a directory) or --bucket NAME (S3; on LocalStack first eval \"$(bash localstack/ctl.sh env)\")"
            ),
        }
    }
}

/// A signing key file: read it, or make it (mode 0600) when `create`.
pub fn key_file(path: &Path, id: &str, create: bool) -> Result<SigningKey> {
    match SigningKey::read_file(id, path) {
        Ok(k) => Ok(k),
        Err(_) if create && !path.exists() => {
            let k = SigningKey::generate(id).map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Some(d) = path.parent() {
                std::fs::create_dir_all(d)?;
            }
            write_secret(path, k.to_bytes())?;
            eprintln!(
                "made a new key for {id} in {} (public key {})",
                path.display(),
                k.public_hex()
            );
            Ok(k)
        }
        Err(e) => Err(anyhow::anyhow!("reading the key {e}")),
    }
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

/// `weir fl simulate`'s options.
#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Edge nodes.
    #[arg(long, default_value_t = 10)]
    pub nodes: usize,
    /// Rounds.
    #[arg(long, default_value_t = 20)]
    pub rounds: usize,
    /// Local epochs per round.
    #[arg(long, default_value_t = 2)]
    pub local_epochs: usize,
    /// Dirichlet concentration of the class split (smaller = more skewed).
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f64,
    /// Local learning rate.
    #[arg(long, default_value_t = 2e-3)]
    pub learning_rate: f32,
    /// The robust setting's L2 clip (0: twice the median norm of the honest updates in the
    /// clean run's first round).
    #[arg(long, default_value_t = 0.0)]
    pub clip: f32,
    /// Share of malicious nodes in the poisoning runs.
    #[arg(long, default_value_t = 0.2)]
    pub malicious: f32,
    /// Local DP noise multiplier of honest nodes in the robust runs (0: none).
    #[arg(long, default_value_t = 0.0)]
    pub dp_noise: f32,
    /// The poisoning runs, each against FedAvg and the robust setting: absent (the
    /// attackers send nothing: the honest nodes alone, the best a defence can reach),
    /// sign-flip, label-flip, noise, backdoor.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "absent,sign-flip,label-flip,noise,backdoor",
        value_name = "ATTACKS"
    )]
    pub attacks: Vec<weir_train::federated::Attack>,
    /// The robust setting's server momentum (0: none).
    #[arg(long, default_value_t = 0.0)]
    pub momentum: f32,
    /// Lower the nodes' learning rate over the rounds (a half cosine down to a tenth).
    #[arg(long)]
    pub lr_decay: bool,
    /// The robust setting's rule after the screen and clipping: fedavg, median or
    /// trimmed[:SHARE].
    #[arg(long, default_value = "trimmed:0.2")]
    pub aggregation: Rule,
    /// The robust setting's gate on the server's evaluation set: a new version may fall at
    /// most this far below the current one (macro-F1, 0-1; negative: no gate).
    #[arg(long, default_value_t = -1.0, allow_negative_numbers = true)]
    pub gate_margin: f64,
    /// Skip the poisoning runs.
    #[arg(long)]
    pub no_attacks: bool,
    /// Write the report as Markdown here.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Print the whole report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `weir fl simulate`.
pub fn simulate(a: &SimulateArgs) -> Result<i32> {
    let corpus = load_corpus(&a.data)?;
    let cfg = weir_train::federated::SimConfig {
        nodes: a.nodes,
        rounds: a.rounds,
        local_epochs: a.local_epochs,
        alpha: a.alpha,
        hidden: a.data.hidden.clone(),
        learning_rate: a.learning_rate,
        central_epochs: a.data.epochs,
        malicious: a.malicious,
        clip: a.clip,
        dp_noise: a.dp_noise,
        momentum: a.momentum,
        lr_decay: a.lr_decay,
        rule: a.aggregation,
        gate_margin: a.gate_margin,
        attacks: if a.no_attacks {
            Vec::new()
        } else {
            a.attacks.clone()
        },
        clip_used: 0.0,
        seed: a.data.seed,
        threads: 2,
    };
    let started = std::time::Instant::now();
    let setup = weir_train::federated::Setup::new(&corpus, cfg);
    let quiet = a.data.quiet;
    let report = weir_train::federated::simulate(&setup, |m| {
        if !quiet {
            eprintln!("  {m}  [{:.0} s]", started.elapsed().as_secs_f64());
        }
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    let md = report.markdown();
    if let Some(p) = &a.markdown {
        std::fs::write(p, &md).with_context(|| format!("writing {}", p.display()))?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{md}");
    }
    Ok(0)
}

/// The merge's options, shared by `weir fl merge` and the merge function.
#[derive(clap::Args, Debug, Clone)]
pub struct MergeArgs {
    /// How updates are combined: fedavg, median or trimmed[:SHARE].
    #[arg(long, default_value = "trimmed:0.2")]
    pub aggregation: Rule,
    /// Clip each update to this L2 norm before combining (0: no server clipping).
    #[arg(long, default_value_t = weir_fl::update::DEFAULT_CLIP)]
    pub server_clip: f32,
    /// Do not also clip each update to the round's median update norm.
    #[arg(long)]
    pub no_median_clip: bool,
    /// Gaussian noise on the combined update, times server-clip / updates.
    #[arg(long, default_value_t = 0.01)]
    pub noise: f32,
    /// Server momentum (0: none).
    #[arg(long, default_value_t = 0.0)]
    pub momentum: f32,
    /// A node's sample count counts at most this much (FedAvg).
    #[arg(long, default_value_t = 20_000)]
    pub sample_cap: u64,
    /// Largest accepted update norm.
    #[arg(long, default_value_t = weir_fl::update::DEFAULT_CLIP * 1.5)]
    pub bound: f32,
    /// Accepted updates that close a round.
    #[arg(long, default_value_t = 3)]
    pub quorum: usize,
    /// Seconds after a round opened when it closes with what it has.
    #[arg(long, default_value_t = 3600)]
    pub deadline: u64,
    /// Asynchronous rounds: fold in whatever arrived, from up to this many versions back.
    #[arg(long, value_name = "VERSIONS")]
    pub async_staleness: Option<u64>,
    /// The candidate may fall at most this far below the current model's macro-F1 (0-1).
    #[arg(long, default_value_t = 0.02)]
    pub gate_margin: f64,
    /// Leave out updates whose cosine with the server's reference update (the current model
    /// trained on the evaluation set) is below this; needs an evaluation set in the registry.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub screen_cosine: f32,
    /// Do not screen updates against the server's reference update.
    #[arg(long)]
    pub no_screen: bool,
}

impl MergeArgs {
    /// As the library's configuration.
    pub fn config(&self) -> MergeConfig {
        MergeConfig {
            aggregation: Aggregation {
                rule: self.aggregation,
                sample_cap: self.sample_cap,
                server_clip: (self.server_clip > 0.0).then_some(self.server_clip),
                clip_to_median: !self.no_median_clip,
                noise_multiplier: self.noise,
                momentum: self.momentum,
                server_lr: 1.0,
                screen: (!self.no_screen).then_some(weir_fl::screen::Screen {
                    min_cosine: self.screen_cosine,
                    ..weir_fl::screen::Screen::default()
                }),
            },
            bound: self.bound,
            quorum: self.quorum,
            deadline_s: self.deadline,
            min_updates: 1,
            gate_margin: self.gate_margin,
            mode: self
                .async_staleness
                .map_or(Mode::Sync, |max_staleness| Mode::Async { max_staleness }),
        }
    }
}

/// The registry key: `--registry-key FILE`, else $WEIR_REGISTRY_KEY (a file), else the one
/// the registry keeps in its store (`fl/keys/registry.key`; `create`: made there when missing).
fn registry_key(
    path: Option<&Path>,
    store: &dyn weir_pipeline::Store,
    create: bool,
) -> Result<Option<SigningKey>> {
    let p = path
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("WEIR_REGISTRY_KEY").map(PathBuf::from));
    match p {
        Some(p) => key_file(&p, "registry", create).map(Some),
        None => Ok(weir_fl::registry::stored_key(store, create)?),
    }
}

/// `weir fl …`
#[derive(clap::Subcommand, Debug)]
pub enum FlCommand {
    /// Simulate federated learning over the labelled data: K non-IID nodes, rounds through
    /// the real merge, against each node alone and centralized training, and under attack.
    ///
    /// Example:
    ///   weir fl simulate --markdown models/FL.md      # about 15 min on 2 cores
    ///   weir fl simulate --nodes 10 --rounds 5 --no-attacks --hidden 64,64
    #[command(verbatim_doc_comment)]
    Simulate(SimulateArgs),
    /// Start a registry: publish a model as version 0 (the shipped model by default).
    ///
    /// Example:
    ///   weir fl init --registry reg --registry-key reg.key
    ///   weir fl init --bucket weir-captures
    #[command(verbatim_doc_comment)]
    Init {
        #[command(flatten)]
        store: StoreArgs,
        /// The model (default: the shipped one).
        #[arg(long, value_name = "ONNX")]
        model: Option<PathBuf>,
        /// Sign pointers with this key (made if missing); workers that trust its public key
        /// refuse pointers without its signature. Default: $WEIR_REGISTRY_KEY, else a key the
        /// registry keeps in its store (fl/keys/registry.key, made here; on AWS only the
        /// merge function may read it).
        #[arg(long, value_name = "FILE")]
        registry_key: Option<PathBuf>,
    },
    /// Give the merge its own labelled evaluation set: the gate compares each candidate with
    /// the current model on it, and the screen leaves out updates that point away from what
    /// the current model learns on it. Without one, neither runs.
    ///
    /// LABELS is a CSV as an edge node's labels.csv (file,class,rule; files relative to
    /// the CSV's folder). Use captures no node trains on.
    ///
    /// Example:
    ///   weir fl eval-set server-captures/labels.csv --registry reg
    #[command(verbatim_doc_comment)]
    EvalSet {
        /// The labels CSV.
        labels: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Register an edge node's public key: only registered nodes' updates are merged.
    ///
    /// Example:
    ///   weir fl register edge-1 $(weir edge key --node edge-1)  --registry reg
    #[command(verbatim_doc_comment)]
    Register {
        /// Node id (letters, digits, - and _).
        node: String,
        /// Its Ed25519 public key, hex (`weir edge key` prints it).
        public_key: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Run one merge step: judge the updates that arrived, close the round at its quorum or
    /// deadline, gate and publish. (The merge function runs the same step per SQS message.)
    Merge {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        merge: MergeArgs,
        /// Sign the pointer with this key. Default: $WEIR_REGISTRY_KEY, else the registry's
        /// own (fl/keys/registry.key in the store).
        #[arg(long, value_name = "FILE")]
        registry_key: Option<PathBuf>,
    },
    /// Show the registry: versions, the open round, each round's verdicts.
    Status {
        #[command(flatten)]
        store: StoreArgs,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Point the registry back at an earlier version (its updates' round is abandoned).
    ///
    /// Example:
    ///   weir fl rollback 2 --registry reg
    #[command(verbatim_doc_comment)]
    Rollback {
        /// The version to serve again.
        version: u64,
        #[command(flatten)]
        store: StoreArgs,
        /// Sign the pointer with this key. Default: $WEIR_REGISTRY_KEY, else the registry's
        /// own (fl/keys/registry.key in the store).
        #[arg(long, value_name = "FILE")]
        registry_key: Option<PathBuf>,
    },
}

/// Run a `weir fl` command.
pub fn run(cmd: FlCommand) -> Result<i32> {
    match cmd {
        FlCommand::Simulate(a) => simulate(&a),
        FlCommand::Init {
            store,
            model,
            registry_key: rk,
        } => {
            let (s, _rt) = store.open()?;
            let bytes = match &model {
                Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
                None => weir_classify::SHIPPED_MODEL.to_vec(),
            };
            let m = weir_model::read_model(&bytes)
                .map_err(|e| anyhow::anyhow!("the model is not one weir can federate: {e}"))?;
            let key = registry_key(rk.as_deref(), s.as_ref(), true)?;
            let p = Registry::new(s.as_ref(), key.as_ref().map(|k| k.public_hex()))
                .init(&m, key.as_ref())?;
            eprintln!(
                "registry at version {} (round {} open), model {}",
                p.version, p.round, p.model_key
            );
            if let Some(k) = &key {
                eprintln!(
                    "workers trust it with WEIR_REGISTRY_PUBKEY={}",
                    k.public_hex()
                );
            }
            Ok(0)
        }
        FlCommand::Register {
            node,
            public_key,
            store,
        } => {
            let (s, _rt) = store.open()?;
            round::register_node(s.as_ref(), &node, &public_key).map_err(|e| anyhow::anyhow!(e))?;
            eprintln!("registered {node}");
            Ok(0)
        }
        FlCommand::Merge {
            store,
            merge,
            registry_key: rk,
        } => {
            let (s, _rt) = store.open()?;
            let key = registry_key(rk.as_deref(), s.as_ref(), false)?;
            let r = Merger::new(s.as_ref(), key.as_ref(), merge.config())
                .step(weir_fl::update::now_unix())?;
            for v in &r.judged {
                match &v.rejection {
                    None => eprintln!(
                        "accepted {} ({} samples, norm {:.3})",
                        v.node, v.samples, v.norm
                    ),
                    Some(why) => eprintln!("refused  {}: {why}", v.node),
                }
            }
            for e in r.closed.iter().flat_map(|c| &c.screened) {
                eprintln!("screened {}: {}", e.node, e.reason);
            }
            if let Some(m) = r.closed.as_ref().and_then(|c| c.metrics.as_ref()) {
                eprintln!(
                    "gate: macro-F1 {:.3} against {:.3} now on {} evaluation rows ({})",
                    m.macro_f1,
                    m.base_macro_f1,
                    m.rows,
                    if m.passed { "passed" } else { "refused" }
                );
            }
            match &r.closed {
                Some(c) => eprintln!(
                    "round {} closed ({}): {}{}",
                    c.round,
                    c.closed_by,
                    c.outcome,
                    c.version
                        .map_or(String::new(), |v| format!(", version {v}"))
                ),
                None => eprintln!(
                    "round {} open: {} accepted, quorum {}",
                    r.round, r.accepted, merge.quorum
                ),
            }
            Ok(0)
        }
        FlCommand::Status { store, json } => status(store, json),
        FlCommand::EvalSet { labels, store } => eval_set(&labels, &store),
        FlCommand::Rollback {
            version,
            store,
            registry_key: rk,
        } => {
            let (s, _rt) = store.open()?;
            let key = registry_key(rk.as_deref(), s.as_ref(), false)?;
            let p = Registry::new(s.as_ref(), None).rollback(version, key.as_ref())?;
            eprintln!(
                "serving version {} again; round {} open",
                p.version, p.round
            );
            Ok(0)
        }
    }
}

fn status(store: StoreArgs, json: bool) -> Result<i32> {
    let (s, _rt) = store.open()?;
    let view = weir_fl::status::federation(s.as_ref())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(0);
    }
    print!("{}", view.text());
    Ok(0)
}

/// `weir fl eval-set`: label the captures LABELS lists and store them as the merge's
/// evaluation set.
fn eval_set(labels: &Path, store: &StoreArgs) -> Result<i32> {
    let corpus = crate::edge::labelled_corpus(labels)?;
    if corpus.captures.is_empty() {
        bail!(
            "{}: no captures listed (columns: file,class,rule)",
            labels.display()
        );
    }
    let d = crate::edge::labelled_dataset(&corpus);
    if d.is_empty() {
        bail!("{}: the captures it lists hold no flows", labels.display());
    }
    let mut counts = std::collections::BTreeMap::new();
    for y in &d.y {
        *counts
            .entry(weir_train::CLASSES.get(*y as usize).copied().unwrap_or("?"))
            .or_insert(0usize) += 1;
    }
    let (s, _rt) = store.open()?;
    s.put(round::EVAL_KEY, &round::encode_eval(&d))
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", round::EVAL_KEY))?;
    let classes: Vec<String> = counts.iter().map(|(c, n)| format!("{c} {n}")).collect();
    println!(
        "evaluation set: {} flows from {} captures ({}) in {}",
        d.len(),
        corpus.captures.len(),
        classes.join(", "),
        round::EVAL_KEY
    );
    Ok(0)
}
