//! `weir`: find attacks in packet captures. This binary is a thin adapter over the library
//! crates: argument parsing, files, progress and the printed summary live here; everything
//! else is a library call. Owns: the command line. Must not own: logic another binary or the
//! web app would need (that goes in a library crate).

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use weir_flow::{extract, ExtractOptions, FlowConfig, FlowRecord, Summary};
use weir_pipeline::thousands;
use weir_records::{FlowWriter, OutputFormat};

mod analyze;
mod edge;
mod fl;
#[cfg(feature = "live")]
mod live;
mod model;
mod serve;
mod synth;

/// weir finds attacks in packet captures.
///
/// The data path is: capture -> flows -> features -> classification -> Parquet -> search.
/// `weir analyze` runs it all in one process; `weir flows` stops after the features;
/// `weir train` and `weir eval` build and check the model.
#[derive(Parser, Debug)]
#[command(name = "weir", version, about, long_about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Read a capture and write one record per flow, with its features.
    ///
    /// Reads PCAP (both byte orders, µs/ns timestamps) and PCAPNG (several sections and
    /// interfaces); link types Ethernet, Linux SLL/SLL2, raw IPv4/IPv6 and BSD loopback; VLAN,
    /// QinQ, MPLS, PPPoE; IP-in-IP, GRE, VXLAN and Geneve tunnels are decapsulated.
    /// Malformed packets are counted and skipped; a damaged file keeps every flow read up to
    /// the damage (the summary says what was wrong and where) and exits 0 unless nothing at
    /// all could be read.
    ///
    /// Examples:
    ///   weir flows capture.pcap                      # writes capture.flows.parquet
    ///   weir flows capture.pcapng -f csv -o -        # CSV on stdout
    ///   weir flows big.pcap -o flows.parquet --json  # machine-readable summary on stdout
    #[command(verbatim_doc_comment)]
    Flows(FlowsArgs),
    /// Analyze a capture: flows, classification, Parquet results and a summary.
    ///
    /// Every flow gets a predicted class (24 classes: Normal and 23 attack types), the
    /// probability of every class and an anomaly score (high = unlike the training data). A
    /// flow raises an alert when a host-behaviour detector fired on it (scan, sweep, brute
    /// force, flood, slow DoS, beacon, C2 session, tunnel, an attack in its bytes: the
    /// evidence is in the summary), or when the model's class is not Normal with at least
    /// --min-probability and the model's own threshold for that class (a lone packet never
    /// alerts on the model's word alone; docs/DETECTION.md).
    /// The summary groups alerts by attacker (or victim, for floods from many sources) and
    /// names the top sources, destinations and services.
    ///
    /// Results go to DIR/captures/ID/, the layout the serverless pipeline writes to S3:
    /// status.json, summary.json, results/*.parquet (every flow with its features, class,
    /// probabilities and anomaly score) and flows/day=*/ (the search layout; month=*/ or
    /// year=*/ for traffic spread thin over many days). ID is the file's stem and the first
    /// 12 hex digits of its BLAKE3 hash: another file with the same name gets its own ID, the
    /// same file analyzed again rewrites its own results.
    ///
    /// Exit status: 0 analyzed (also when part of the file was damaged: the flows before the
    /// damage are kept and the summary says where); 1 nothing to analyze (a capture with no
    /// packets, or damaged before its first packet); 2 not analyzed (not a capture, a
    /// directory, unreadable, or the model could not load).
    ///
    /// Examples:
    ///   weir analyze capture.pcap                        # summary table on stderr
    ///   weir analyze capture.pcap --json                 # summary as JSON on stdout
    ///   weir analyze capture.pcap --min-probability 0.9  # only confident alerts
    ///   weir analyze big.pcap --data-dir /data --device cuda
    #[command(verbatim_doc_comment)]
    Analyze(analyze::AnalyzeArgs),
    /// List the captures of a data directory and where each one is; follow them.
    ///
    /// States: queued (uploaded, not started), splitting, classifying (k of n shards),
    /// aggregating, done, done-with-warnings (part of the file was damaged; the flows before
    /// the damage are kept), failed (with the reason). The directory is the one `weir analyze`
    /// writes, or a copy of the S3 bucket (`aws s3 sync s3://BUCKET/captures DIR/captures`).
    /// For the bucket itself use `weir-status` (built beside `weir`; `bash localstack/ctl.sh captures`
    /// on LocalStack), which takes the same options.
    ///
    /// Examples:
    ///   weir status                      # captures in ./weir-data
    ///   weir status --data-dir /data --json
    ///   weir status --watch              # a line per change, until Ctrl-C
    ///   weir status --wait big-1a2b3c4d  # until that capture is final; exit 1 if it failed
    #[command(verbatim_doc_comment)]
    Status {
        /// The data directory.
        #[arg(long, default_value = "weir-data", value_name = "DIR")]
        data_dir: PathBuf,
        #[command(flatten)]
        show: weir_cli::status::ShowOptions,
    },
    /// Serve a data directory's results as a JSON API (captures, summaries, search).
    ///
    /// GET /api/captures, /api/captures/ID, /api/captures/ID/summary and
    /// /api/search?q=QUERY&capture=ID,...&from=TIME&to=TIME&sort=COLUMN&desc=true&offset=N&limit=N.
    /// QUERY is weir's query language, for example
    ///   src 10.0.0.0/8 and class "Port Scan" and anomaly > 5
    ///   ip 2001:db8::/32 and not dport 443
    ///   (class DDoS or class "DoS Hulk") and p >= 0.9
    /// (fields: src dst ip sport dport port proto class p anomaly percentile alert cid model);
    /// a mistake is a 400 whose `pointed` shows where it is. Times are RFC 3339 or ns.
    ///
    /// Examples:
    ///   weir serve                                   # ./weir-data on 127.0.0.1:8080
    ///   weir serve --data-dir /data --addr 127.0.0.1:9000
    ///   curl -s 'http://127.0.0.1:8080/api/search?q=alert%20true&limit=5'
    #[command(verbatim_doc_comment)]
    Serve(serve::ServeArgs),
    /// Train the model on the labelled data and write it as ONNX.
    ///
    /// Reads the captures of models/captures.csv and NORMAL_FROM_CORPUS.txt from the shared
    /// data folder, labels their flows, adds the CIC-IDS2017 flow rows, and trains the MLP
    /// (same data, seed and settings give the same model).
    ///
    /// Example:
    ///   weir train --shared ../shared -o models/weir-mlp.onnx
    #[command(verbatim_doc_comment)]
    Train {
        #[command(flatten)]
        data: model::DataArgs,
        /// Where to write the model.
        #[arg(short, long, default_value = "models/weir-mlp.onnx")]
        output: PathBuf,
    },
    /// Evaluate the training recipe by capture-level cross-validation.
    ///
    /// Every labelled capture is classified by a model trained without it (k folds of whole
    /// captures); prints per-class precision/recall/F1, the confusion matrix, whether each
    /// attack capture's class was found, and the share of benign flows flagged.
    ///
    /// Example:
    ///   weir eval --folds 5 --withhold Heartbleed,Worms --markdown eval.md
    #[command(verbatim_doc_comment)]
    Eval {
        #[command(flatten)]
        data: model::DataArgs,
        /// Capture-level k-fold instead of leaving one source out (the old protocol: a
        /// source's captures on both sides, so its figures overstate what users get).
        #[arg(long, value_name = "K")]
        folds: Option<usize>,
        /// Alert threshold the figures are reported at (the model's verdicts; behaviour
        /// detections always alert).
        #[arg(long, default_value_t = weir_classify::DEFAULT_MIN_PROBABILITY, value_name = "P",
              value_parser = weir_classify::parse_probability)]
        min_probability: f32,
        /// Also train without these classes and report the anomaly score's AUROC on them.
        #[arg(long, value_delimiter = ',', value_name = "CLASS,...")]
        withhold: Vec<String>,
        /// Write the report as Markdown to this file too.
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
        /// Print the evaluation as JSON instead of the report.
        #[arg(long)]
        json: bool,
    },
    /// Write labelled synthetic captures: normal traffic and attacks.
    ///
    /// Each capture is a few minutes of benign traffic from a handful of LAN hosts (DNS,
    /// HTTP, TLS, SSH, NTP, ping) with, for an attack scenario, the attack inside it; rates,
    /// sizes, counts, timing and addresses are drawn from the seed. Beside every NAME-SEED.pcap
    /// goes NAME-SEED.labels.csv: one line per flow (src,sport,dst,dport,proto,class).
    /// The same seed always gives the same bytes. `weir train` uses these scenarios too.
    ///
    /// Examples:
    ///   weir synth --list
    ///   weir synth --only port-scan,ddos --count 3 --out /tmp/synth
    #[command(verbatim_doc_comment)]
    Synth(synth::SynthArgs),
    /// Federated learning: simulate it, start a registry, register nodes, merge, roll back.
    ///
    /// Edge nodes (`weir edge`) fine-tune the current model on their own traffic and upload
    /// only a clipped, signed parameter difference; the merge (`weir fl merge`, or the merge
    /// function on AWS) checks each update, screens it against what the current model learns
    /// on a server-held evaluation set (`weir fl eval-set`), combines them robustly, gates the
    /// result on that set and publishes the next version to the registry, which `weir analyze
    /// --registry`, `weir serve --registry`, the classifier Lambda and the GPU worker pick up
    /// without a restart. docs/FEDERATED.md says how it fits together.
    ///
    /// Examples:
    ///   weir fl simulate --markdown models/FL.md
    ///   weir fl init --registry reg && weir fl status --registry reg
    #[command(subcommand, verbatim_doc_comment)]
    Fl(fl::FlCommand),
    /// An edge node of federated learning: detect locally, push alerts, learn, push updates.
    ///
    /// The node pulls the current model from the registry, analyzes the captures dropped into
    /// its folder and pushes only their alerts; once per round it fine-tunes the model on the
    /// captures an operator labelled and uploads the clipped parameter difference, signed with
    /// its Ed25519 key. No traffic and no features leave the node.
    ///
    /// Examples:
    ///   weir edge key --node edge-1            # prints the public key to register
    ///   weir edge run --node edge-1 --registry reg --watch captures/ --once
    #[command(subcommand, verbatim_doc_comment)]
    Edge(edge::EdgeCommand),
    /// Print the feature spec (name, unit, meaning) of this build.
    Features {
        /// Print the spec as the Markdown table of docs/FEATURES.md.
        #[arg(long)]
        markdown: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Parquet,
    Csv,
    Jsonl,
}

#[derive(clap::Args, Debug)]
struct FlowsArgs {
    /// The capture to read (.pcap or .pcapng; the format is detected from its first bytes).
    capture: PathBuf,
    /// Where to write the flows; `-` for stdout. Default: CAPTURE's name with `.flows.<ext>`, in the current directory.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Parquet)]
    format: Format,
    /// End a flow after this many seconds without a packet.
    #[arg(long, default_value_t = 120.0, value_name = "SECONDS")]
    idle_timeout: f64,
    /// End a non-TCP flow that never got an answer (one direction only) after this many
    /// seconds without a packet: one-way beacons and scans become a flow per burst.
    /// Capped at --idle-timeout.
    #[arg(long, default_value_t = 45.0, value_name = "SECONDS")]
    unanswered_timeout: f64,
    /// The same for TCP flows that never got an answer (SYN retries back off up to 32 s).
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    unanswered_tcp_timeout: f64,
    /// Cut a flow that lasts longer than this many seconds (it continues as a new flow).
    #[arg(long, default_value_t = 1800.0, value_name = "SECONDS")]
    active_timeout: f64,
    /// Flow-table threads (default: cores - 2 from 4 cores up, else 1). Flows are sharded by
    /// address pair; the output is the same whatever the count. Writing has a thread of its
    /// own, and so has reading when N > 1.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Do not end TCP flows on FIN/RST (only timeouts end flows).
    #[arg(long)]
    no_tcp_close: bool,
    /// Print the summary as JSON on stdout (not allowed with `-o -`).
    #[arg(long)]
    json: bool,
    /// No progress bar and no summary on stderr.
    #[arg(short, long)]
    quiet: bool,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            // Warnings, and the model's lifecycle (target `weir::model`: a registry version
            // swapped in), which an operator of `weir serve --registry` wants to see.
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
                .unwrap_or_else(|_| "warn,weir::model=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Flows(args) => flows(args),
        Command::Analyze(args) => analyze::analyze(args),
        Command::Status { data_dir, show } => analyze::status(&data_dir, &show),
        Command::Serve(args) => serve::serve(args),
        Command::Synth(args) => synth::synth(args),
        Command::Train { data, output } => model::train(&data, &output),
        Command::Eval {
            data,
            folds,
            min_probability,
            withhold,
            markdown,
            json,
        } => model::eval(
            &data,
            folds.map_or(model::Protocol::BySource, model::Protocol::Folds),
            min_probability,
            markdown.as_deref(),
            json,
            &withhold,
        ),
        Command::Fl(cmd) => fl::run(cmd),
        Command::Edge(cmd) => edge::run(cmd),
        Command::Features { markdown } => {
            if markdown {
                print!("{}", weir_records::columns_markdown());
            } else {
                println!(
                    "{}  ({} features)",
                    weir_flow::FEATURE_VERSION,
                    weir_flow::N_FEATURES
                );
                for (i, (f, c)) in weir_flow::FEATURES
                    .iter()
                    .zip(weir_flow::feature_columns())
                    .enumerate()
                {
                    println!("{i:>3}  {c:<32} {:<11} {}", f.unit, f.description);
                }
            }
            Ok(0)
        }
    }
}

fn secs_to_ns(s: f64, what: &str) -> Result<i64> {
    if !(s.is_finite() && s > 0.0) {
        bail!("--{what} must be a positive number of seconds, got {s}");
    }
    Ok((s * 1e9) as i64)
}

fn flows(args: FlowsArgs) -> Result<i32> {
    let format = match args.format {
        Format::Parquet => OutputFormat::Parquet,
        Format::Csv => OutputFormat::Csv,
        Format::Jsonl => OutputFormat::Jsonl,
    };
    let ext = match format {
        OutputFormat::Parquet => "parquet",
        OutputFormat::Csv => "csv",
        OutputFormat::Jsonl => "jsonl",
    };
    let to_stdout = args.output.as_deref() == Some(Path::new("-"));
    if to_stdout && args.json {
        bail!("--json prints the summary on stdout, so it cannot be combined with `-o -`; write the flows to a file instead");
    }
    let out_path = match &args.output {
        Some(p) => p.clone(),
        None => {
            let stem = args
                .capture
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "capture".into());
            PathBuf::from(format!("{stem}.flows.{ext}"))
        }
    };
    let file = File::open(&args.capture)
        .with_context(|| format!("cannot open {}", args.capture.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let opts = ExtractOptions {
        flow: FlowConfig {
            idle_timeout_ns: secs_to_ns(args.idle_timeout, "idle-timeout")?,
            unanswered_timeout_ns: secs_to_ns(args.unanswered_timeout, "unanswered-timeout")?,
            unanswered_tcp_timeout_ns: secs_to_ns(
                args.unanswered_tcp_timeout,
                "unanswered-tcp-timeout",
            )?,
            active_timeout_ns: secs_to_ns(args.active_timeout, "active-timeout")?,
            tcp_close: !args.no_tcp_close,
            ..FlowConfig::default()
        },
        shards: args.threads.unwrap_or_else(default_shards),
        ..ExtractOptions::default()
    };
    let sink: Box<dyn Write + Send> = if to_stdout {
        Box::new(BufWriter::with_capacity(1 << 20, std::io::stdout()))
    } else {
        Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(&out_path)
                .with_context(|| format!("cannot create {}", out_path.display()))?,
        ))
    };

    let bar = progress_bar("reading", size, !args.quiet && size > 16 << 20);

    let started = Instant::now();
    // Two threads: this one reads, decodes and assembles flows; the writer thread turns batches
    // of finished flows into columns and encodes/compresses them.
    let (tx, rx) = crossbeam_channel::bounded::<Vec<FlowRecord>>(8);
    let writer = std::thread::spawn(move || -> Result<u64> {
        let mut w = FlowWriter::new(sink, format);
        for batch in rx {
            w.write(&batch)?;
        }
        Ok(w.finish()?)
    });
    // No BufReader: the capture reader reads in 1 MiB blocks into its own buffer.
    let result = extract(
        file,
        &opts,
        |batch| {
            // A send error means the writer died; its error is reported below.
            let _ = tx.send(batch);
        },
        |pos| {
            if let Some(b) = &bar {
                b.set_position(pos);
            }
        },
    );
    drop(tx);
    let written = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the output writer thread panicked"))?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            if !to_stdout {
                let _ = std::fs::remove_file(&out_path);
            }
            bail!("{}: {e}", args.capture.display());
        }
    };
    let rows = written.with_context(|| format!("writing {}", out_path.display()))?;
    let usable = summary.packets > 0 || summary.error.is_none();
    if args.json {
        println!(
            "{}",
            summary_json(&args.capture, &summary, &out_path, rows, elapsed)
        );
    }
    if !args.quiet {
        print_summary(
            &args.capture,
            &summary,
            if to_stdout { None } else { Some(&out_path) },
            ext,
            rows,
            elapsed,
            size,
        );
    }
    Ok(if usable { 0 } else { 1 })
}

fn summary_json(
    capture: &Path,
    s: &Summary,
    out: &Path,
    rows: u64,
    secs: f64,
) -> serde_json::Value {
    serde_json::json!({
        "capture": capture.display().to_string(),
        "format": s.format.map(|f| format!("{f:?}").to_lowercase()),
        "packets": s.packets,
        "packets_in_flows": s.packets_in_flows,
        "captured_bytes": s.captured_bytes,
        "file_bytes": s.file_bytes,
        "flows": s.flows,
        "flows_by_proto": s.flows_by_proto.iter().map(|(p, n)| (proto_name(*p), serde_json::json!(n))).collect::<serde_json::Map<_, _>>(),
        "rows_written": rows,
        "skipped": s.skipped,
        "tunneled": s.tunneled,
        "fragments_attributed": s.fragments_attributed,
        "fragment_chains_evicted": s.fragment_chains_evicted,
        "peak_open_flows": s.peak_open_flows,
        "bad_blocks": s.bad_blocks,
        "error": s.error.as_ref().map(|e| e.to_string()),
        "output": out.display().to_string(),
        "seconds": secs,
        "feature_version": weir_flow::FEATURE_VERSION,
    })
}

/// Flow-table threads when `--threads` is not given. Sharding adds a reader thread and decodes
/// every packet once per shard; with the writer thread that only pays off from 4 cores (on 2
/// cores, 216 MB bench capture: 1 shard 0.33 s, 2 shards 0.42 s).
fn default_shards() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores >= 4 {
        (cores - 2).min(8)
    } else {
        1
    }
}

/// The usual name of an IP protocol number (IANA), or the number.
/// A byte progress bar on stderr, only when `wanted` and stderr is a terminal.
fn progress_bar(verb: &str, size: u64, wanted: bool) -> Option<indicatif::ProgressBar> {
    (wanted && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(size);
        b.set_style(
            indicatif::ProgressStyle::with_template(&format!(
                "{{spinner}} {verb} {{bytes}}/{{total_bytes}} [{{bar:30}}] {{bytes_per_sec}}, {{eta}} left"
            ))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    })
}

use weir_flow::proto_name;

fn print_summary(
    capture: &Path,
    s: &Summary,
    out: Option<&Path>,
    ext: &str,
    rows: u64,
    secs: f64,
    size: u64,
) {
    let mb = s.file_bytes as f64 / 1e6;
    let fmt = s
        .format
        .map(|f| format!("{f:?}").to_lowercase())
        .unwrap_or_default();
    let mut e = std::io::stderr().lock();
    let _ = writeln!(
        e,
        "weir flows: {} ({fmt}, {:.1} MB)",
        capture.display(),
        size as f64 / 1e6
    );
    let skipped = if s.skipped.is_empty() {
        String::new()
    } else {
        let parts: Vec<String> = s
            .skipped
            .iter()
            .map(|(k, v)| format!("{k} {}", thousands(*v)))
            .collect();
        format!(
            ", {} skipped ({})",
            thousands(s.skipped_total()),
            parts.join(", ")
        )
    };
    let _ = writeln!(
        e,
        "  packets  {} read, {} in flows{skipped}",
        thousands(s.packets),
        thousands(s.packets_in_flows)
    );
    let mut by_proto: Vec<(u8, u64)> = s.flows_by_proto.iter().map(|(p, n)| (*p, *n)).collect();
    by_proto.sort_by_key(|p| std::cmp::Reverse(p.1));
    let parts: Vec<String> = by_proto
        .iter()
        .map(|(p, n)| format!("{} {}", proto_name(*p), thousands(*n)))
        .collect();
    let _ = writeln!(
        e,
        "  flows    {} ({}; at most {} open at once)",
        thousands(s.flows),
        parts.join(", "),
        thousands(s.peak_open_flows)
    );
    if s.tunneled > 0 || s.fragments_attributed > 0 {
        let _ = writeln!(
            e,
            "  decap    {} packets from tunnels, {} later IP fragments joined their flow",
            thousands(s.tunneled),
            thousands(s.fragments_attributed)
        );
    }
    if s.fragment_chains_evicted > 0 {
        let _ = writeln!(
            e,
            "  frags    {} fragment chains forgotten, oldest first (too many open at once: a fragment flood?)",
            thousands(s.fragment_chains_evicted)
        );
    }
    match out {
        Some(p) => {
            let _ = writeln!(
                e,
                "  output   {} ({ext}, {} rows)",
                p.display(),
                thousands(rows)
            );
        }
        None => {
            let _ = writeln!(e, "  output   stdout ({ext}, {} rows)", thousands(rows));
        }
    }
    let _ = writeln!(
        e,
        "  time     {secs:.2} s, {:.0} MB/s, {:.0} packets/s",
        mb / secs.max(1e-9),
        s.packets as f64 / secs.max(1e-9)
    );
    if let Some(err) = &s.error {
        let _ = writeln!(e, "  warning  {err}");
    }
}
