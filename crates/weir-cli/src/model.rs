//! `weir train` and `weir eval`: thin adapters over weir-train (data, splits, metrics),
//! weir-model (training, ONNX export) and weir-classify (inference through ONNX Runtime).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use weir_classify::{Classifier, Device, Options};
use weir_train::data::{label_capture, load_flow_csv, load_manifest, LabelledCapture};
use weir_train::eval::Evaluation;
use weir_train::{
    class_index, dataset, folds, par_map, synthetic_suite, Corpus, Decider, Recipe, CLASSES,
    NORMAL, SYNTH_TEST, SYNTH_TRAIN,
};

/// Where the labelled data and the manifest are, and how to train.
#[derive(clap::Args, Debug, Clone)]
pub struct DataArgs {
    /// The shared data folder (holds labeled/ and corpus/). Default: $WEIR_SHARED, else
    /// ../shared.
    #[arg(long, value_name = "DIR")]
    pub(crate) shared: Option<PathBuf>,
    /// Capture labels and per-flow rules.
    #[arg(long, default_value = "models/captures.csv", value_name = "CSV")]
    pub(crate) manifest: PathBuf,
    /// Leave out the CIC-IDS2017 flow rows.
    #[arg(long)]
    pub(crate) no_cic: bool,
    /// Weight of synthetic captures (`weir synth` scenarios) relative to real ones; 0 trains
    /// on real data only.
    #[arg(long, default_value_t = 0.5, value_name = "W")]
    pub(crate) synthetic_weight: f32,
    /// Passes over the training data.
    #[arg(long, default_value_t = 30)]
    pub(crate) epochs: usize,
    /// Seed of the initial weights, shuffling and payload dropout.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Hidden layer widths.
    #[arg(long, default_value = "256,256", value_delimiter = ',')]
    pub(crate) hidden: Vec<usize>,
    /// Total loss weight of Normal flows relative to one attack class.
    #[arg(long, default_value_t = 8.0)]
    pub(crate) normal_weight: f32,
    /// Print nothing but the result.
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

impl DataArgs {
    fn recipe(&self) -> Recipe {
        let mut r = Recipe {
            cic: !self.no_cic,
            normal_weight: self.normal_weight,
            synthetic_weight: self.synthetic_weight,
            ..Recipe::default()
        };
        r.train.epochs = self.epochs;
        r.train.seed = self.seed;
        r.train.hidden = self.hidden.clone();
        r
    }

    fn shared(&self) -> PathBuf {
        self.shared.clone().unwrap_or_else(|| {
            std::env::var_os("WEIR_SHARED")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("../shared"))
        })
    }
}

/// Read every labelled capture (two threads) and the CIC rows.
pub(crate) fn load_corpus(args: &DataArgs) -> Result<Corpus> {
    let shared = args.shared();
    if !shared.join("labeled").is_dir() {
        bail!(
            "labelled data not found in {} (expected labeled/ and corpus/ there): pass --shared DIR or set WEIR_SHARED",
            shared.display()
        );
    }
    let started = Instant::now();
    let entries = load_manifest(&args.manifest, &shared)
        .with_context(|| format!("reading {}", args.manifest.display()))?;
    let loaded = par_map(&entries, 2, |e| label_capture(&shared, e));
    let mut captures = Vec::new();
    for r in loaded {
        let c = r?;
        if let Some(w) = &c.warning {
            eprintln!("note: {}: {w} (flows before it kept)", c.entry.file);
        }
        captures.push(c);
    }
    let cic = if args.no_cic {
        Default::default()
    } else {
        let p = shared.join("labeled/flows/cicids2017_improved_stratified.csv");
        load_flow_csv(&p).with_context(|| format!("reading {}", p.display()))?
    };
    let synthetic = if args.synthetic_weight > 0.0 {
        synthetic_suite(SYNTH_TRAIN, 2)?
    } else {
        Vec::new()
    };
    if !args.quiet {
        let flows: usize = captures.iter().map(|c| c.flows.len()).sum();
        let attack: usize = captures.iter().map(|c| c.attack_flows()).sum();
        let sflows: usize = synthetic.iter().map(|c| c.flows.len()).sum();
        eprintln!(
            "data: {} captures, {flows} flows ({attack} attack), {} CIC-IDS2017 rows ({} weir features not in them: payload and context), {} synthetic captures ({sflows} flows), read in {:.1} s",
            captures.len(),
            cic.y.len(),
            cic.missing.len(),
            synthetic.len(),
            started.elapsed().as_secs_f64()
        );
    }
    for c in &synthetic {
        if let Some(w) = &c.warning {
            eprintln!("note: {}: {w}", c.entry.file);
        }
    }
    Ok(Corpus {
        captures,
        cic,
        synthetic,
    })
}

fn train_one(
    corpus: &Corpus,
    take: impl Fn(usize) -> bool,
    args: &DataArgs,
    what: &str,
) -> weir_model::Mlp {
    let recipe = args.recipe();
    let d = dataset(corpus, take, &recipe);
    let started = Instant::now();
    let quiet = args.quiet;
    let epochs = recipe.train.epochs;
    let m = weir_train::train(&d, &recipe, |r| {
        if !quiet && (r.epoch == 1 || r.epoch == epochs || r.epoch % 10 == 0) {
            eprintln!(
                "  {what}: epoch {:>3}/{epochs}  loss {:.4}  accuracy {:.3}  ({:.0} s)",
                r.epoch,
                r.loss,
                r.accuracy,
                started.elapsed().as_secs_f64()
            );
        }
    });
    if !quiet {
        eprintln!(
            "  {what}: {} rows, {:.1} s",
            d.len(),
            started.elapsed().as_secs_f64()
        );
    }
    m
}

/// `weir train`: train on every labelled capture (and the CIC rows), write the ONNX model.
pub fn train(args: &DataArgs, out: &Path) -> Result<i32> {
    let corpus = load_corpus(args)?;
    let m = train_one(&corpus, |_| true, args, "train");
    let bytes = m.to_onnx();
    std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "wrote {} ({} bytes, {}, {} classes, {} features)",
        out.display(),
        bytes.len(),
        m.info.model_version,
        m.n_classes(),
        m.n_features()
    );
    Ok(0)
}

/// Classify the flows of held-out captures with a model through ONNX Runtime and add them to
/// each evaluation with its decider (the behaviour detectors run over each capture's flows).
fn evaluate(
    model: &weir_model::Mlp,
    captures: &[&LabelledCapture],
    into: &mut [(&mut Evaluation, Decider)],
) -> Result<()> {
    let mut c = Classifier::from_bytes(
        &model.to_onnx(),
        &Options {
            device: Device::Cpu,
            ..Options::default()
        },
    )?;
    for cap in captures {
        let (p, prob, findings) = verdicts(&mut c, &cap.flows)?;
        for (e, d) in into.iter_mut() {
            weir_train::add_capture(
                e,
                cap,
                &p.predicted,
                &prob,
                &p.anomaly,
                &findings,
                &model.info.alert_thresholds,
                *d,
            );
        }
    }
    Ok(())
}

/// The model's output for a capture's flows (through ONNX Runtime), the predicted class's
/// probability per flow, and the behaviour detectors' findings over the same flows.
fn verdicts(
    c: &mut Classifier,
    flows: &[weir_flow::FlowRecord],
) -> Result<(
    weir_classify::Predictions,
    Vec<f32>,
    Vec<Option<weir_flow::Finding>>,
)> {
    let x: Vec<f32> = flows
        .iter()
        .flat_map(weir_train::data::feature_row)
        .collect();
    let p = c.classify(&x)?;
    let prob: Vec<f32> = (0..p.len())
        .map(|i| p.row(i)[p.predicted[i] as usize])
        .collect();
    let findings = weir_flow::BehaviourTracker::new().observe(flows);
    Ok((p, prob, findings))
}

/// How `weir eval` splits the captures.
#[derive(Clone, Copy, Debug)]
pub enum Protocol {
    /// Leave one source out (the figure users get on traffic from elsewhere).
    BySource,
    /// Capture-level k-fold (sources on both sides; the old protocol, for continuity).
    Folds(usize),
}

/// `weir eval`: every capture is classified by a model that never saw it (nor, by source,
/// anything from its source), the behaviour detectors run over it, and the report says what
/// was found; then the robustness corpus and the synthetic test suite with the model trained
/// on everything.
pub fn eval(
    args: &DataArgs,
    protocol: Protocol,
    min_probability: f32,
    markdown: Option<&Path>,
    json: bool,
    withhold: &[String],
) -> Result<i32> {
    let corpus = load_corpus(args)?;
    let (fold, names) = match protocol {
        Protocol::BySource => weir_train::source_folds(&corpus.captures),
        Protocol::Folds(k) => (
            folds(&corpus.captures, k),
            (1..=k.max(1)).map(|i| format!("fold {i}")).collect(),
        ),
    };
    let mut e = Evaluation::at(min_probability);
    let mut e_model = Evaluation::at(min_probability);
    let mut e_behaviour = Evaluation::at(min_probability);
    let started = Instant::now();
    for (k, name) in names.iter().enumerate() {
        let held: Vec<&LabelledCapture> = corpus
            .captures
            .iter()
            .zip(&fold)
            .filter(|(_, f)| **f == k)
            .map(|(c, _)| c)
            .collect();
        if !args.quiet {
            eprintln!(
                "[{}/{}] {name}: {} held-out captures ({:.0} s so far)",
                k + 1,
                names.len(),
                held.len(),
                started.elapsed().as_secs_f64()
            );
        }
        let m = train_one(&corpus, |i| fold[i] != k, args, name);
        evaluate(
            &m,
            &held,
            &mut [
                (&mut e, Decider::Both),
                (&mut e_model, Decider::Model),
                (&mut e_behaviour, Decider::Behaviour),
            ],
        )?;
    }
    let mut report = match protocol {
        Protocol::BySource => format!(
            "## Leave one source out ({} sources: each held out in turn, its captures judged by a model trained on the others)\n\n",
            names.len()
        ),
        Protocol::Folds(k) => format!("## Capture-level {k}-fold cross-validation (sources on both sides)\n\n"),
    };
    report.push_str("Behaviour detectors and model together (what `weir analyze` does):\n\n");
    report.push_str(&e.report());
    for (what, ev) in [
        ("The model alone", &e_model),
        ("The behaviour detectors alone", &e_behaviour),
    ] {
        let (f, n) = ev.found();
        let (bf, bn) = ev.benign_flagged();
        let (bc, bcn) = ev.benign_captures_alerted();
        report.push_str(&format!(
            "\n{what}: attack captures found {f}/{n} ({:.0}%), benign flows flagged {bf}/{bn} ({:.2}%), benign captures with any alert {bc}/{bcn}\n",
            100.0 * f as f64 / n.max(1) as f64,
            100.0 * bf as f64 / bn.max(1) as f64,
        ));
    }
    let all = train_one(&corpus, |_| true, args, "all");
    report.push_str(&robustness(args, &all, min_probability)?);
    // Synthetic captures of other seeds, classified by the model `weir train` ships.
    if args.synthetic_weight > 0.0 {
        let test = synthetic_suite(SYNTH_TEST, 2)?;
        if !args.quiet {
            eprintln!(
                "synthetic test suite: {} captures of seeds never trained on",
                test.len()
            );
        }
        let mut es = Evaluation::at(min_probability);
        evaluate(
            &all,
            &test.iter().collect::<Vec<_>>(),
            &mut [(&mut es, Decider::Both)],
        )?;
        report.push_str(
            "\n## Synthetic test suite\n\nThe model trained on everything (real captures, CIC rows, the synthetic training suite) on synthetic captures of seeds it never saw. For Analysis, Fuzzers, Generic and Shellcode this is the only test there is.\n\n",
        );
        report.push_str(&es.report());
    }
    // anomaly score on attacks of classes withheld from training entirely
    if !withhold.is_empty() {
        let ids: Vec<u16> = withhold
            .iter()
            .map(|w| class_index(w).with_context(|| format!("unknown class {w:?}")))
            .collect::<Result<_>>()?;
        let mut c2 = corpus.clone();
        let normal = class_index(NORMAL).unwrap_or(0);
        c2.synthetic
            .retain(|c| !ids.contains(&class_index(&c.entry.class).unwrap_or(normal)));
        // drop the withheld classes' flows and CIC rows from training; keep fold 1 out too
        let f = weir_flow::N_FEATURES;
        let keep: Vec<usize> = (0..c2.cic.y.len())
            .filter(|i| !ids.contains(&c2.cic.y[*i]))
            .collect();
        c2.cic.x = keep
            .iter()
            .flat_map(|i| c2.cic.x[i * f..(i + 1) * f].to_vec())
            .collect();
        c2.cic.y = keep.iter().map(|i| c2.cic.y[*i]).collect();
        let m = train_one(
            &c2,
            |i| {
                fold[i] != 0
                    && !ids.contains(&class_index(&c2.captures[i].entry.class).unwrap_or(normal))
            },
            args,
            "withheld",
        );
        let test: Vec<&LabelledCapture> = corpus
            .captures
            .iter()
            .zip(&fold)
            .filter(|(c, f)| {
                let y = class_index(&c.entry.class).unwrap_or(normal);
                ids.contains(&y) || (**f == 0 && y == normal)
            })
            .map(|(c, _)| c)
            .collect();
        let mut e2 = Evaluation::new();
        evaluate(&m, &test, &mut [(&mut e2, Decider::Model)])?;
        report.push_str(
            "\nanomaly score (energy) AUROC, classes withheld from training vs held-out Normal flows:\n",
        );
        report.push_str("| withheld class | AUROC |\n|---|---:|\n");
        for id in &ids {
            let a = e2
                .auroc(&[*id])
                .map_or("no flows".into(), |a| format!("{a:.3}"));
            report.push_str(&format!("| {} | {a} |\n", CLASSES[*id as usize]));
        }
        let all = e2
            .auroc(&ids)
            .map_or("no flows".into(), |a| format!("{a:.3}"));
        report.push_str(&format!("| all of them | {all} |\n"));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        println!("{report}");
    }
    if let Some(p) = markdown {
        std::fs::write(p, &report).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(0)
}

/// The robustness corpus (`corpus/robustness/`: broken, truncated and unusual captures, mostly
/// benign) through the model trained on everything and the behaviour detectors: captures
/// and flows alerted, and every capture with most of its flows alerted (Markdown).
fn robustness(args: &DataArgs, model: &weir_model::Mlp, min_probability: f32) -> Result<String> {
    let root = args.shared().join("corpus/robustness");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for ent in rd.flatten() {
            let p = ent.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut c = Classifier::from_bytes(
        &model.to_onnx(),
        &Options {
            device: Device::Cpu,
            min_probability,
            ..Options::default()
        },
    )?;
    let normal = class_index(NORMAL).unwrap_or(0);
    let (mut read, mut alerted, mut flows, mut flagged) = (0usize, 0usize, 0usize, 0usize);
    let mut most = Vec::new();
    for f in &files {
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        let mut recs = Vec::new();
        if weir_flow::extract(
            std::io::Cursor::new(bytes),
            &weir_flow::ExtractOptions::default(),
            |b| recs.extend(b),
            |_| {},
        )
        .is_err()
        {
            continue;
        }
        read += 1;
        if recs.is_empty() {
            continue;
        }
        let (p, prob, findings) = verdicts(&mut c, &recs)?;
        let (v, q) = weir_train::decide_flows(
            &model.info.alert_thresholds,
            &p.predicted,
            &prob,
            &findings,
            &recs,
            min_probability,
        );
        let n = v.iter().zip(&q).filter(|(k, _)| **k != normal).count();
        flows += recs.len();
        flagged += n;
        alerted += usize::from(n > 0);
        if n * 2 > recs.len() {
            let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
            for k in v.iter().filter(|k| **k != normal) {
                *by.entry(CLASSES[*k as usize]).or_default() += 1;
            }
            most.push(format!(
                "| {} | {} | {n} | {:?} |",
                f.strip_prefix(&root).unwrap_or(f).display(),
                recs.len(),
                by
            ));
        }
    }
    let mut s = format!(
        "\n## Robustness corpus\n\n`corpus/robustness/`: {} files, {read} opened as captures (the rest are not captures at all), through the model trained on everything and the behaviour detectors at threshold {min_probability:.2}.\n\ncaptures with any alert: {alerted}/{read} ({:.1}%); flows alerted: {flagged}/{flows} ({:.2}%); captures with most of their flows alerted: {}\n",
        files.len(),
        100.0 * alerted as f64 / read.max(1) as f64,
        100.0 * flagged as f64 / flows.max(1) as f64,
        most.len()
    );
    if !most.is_empty() {
        s.push_str("\n| capture | flows | alerted | as |\n|---|---:|---:|---|\n");
        for m in most {
            s.push_str(&m);
            s.push('\n');
        }
    }
    Ok(s)
}
