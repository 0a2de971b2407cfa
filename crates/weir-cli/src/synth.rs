//! `weir synth`: write labelled synthetic captures (a thin adapter over weir-synth).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// Arguments of `weir synth`.
#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    /// Folder to write the captures and their labels to (created if missing).
    #[arg(short, long, default_value = "synth", value_name = "DIR")]
    out: PathBuf,
    /// Seed of the first capture of each scenario; the next ones use seed+1, seed+2, ...
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Captures per scenario.
    #[arg(long, default_value_t = 1, value_name = "N")]
    count: u64,
    /// Only these scenarios (default: all; `weir synth --list` shows them).
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    only: Vec<String>,
    /// List the scenarios and their classes, write nothing.
    #[arg(long)]
    list: bool,
}

/// Write the captures; print one line per file.
pub fn synth(args: SynthArgs) -> Result<i32> {
    if args.list {
        for s in weir_synth::SCENARIOS {
            println!("{:<16} {}", s.name, s.class);
        }
        return Ok(0);
    }
    let mut chosen = Vec::new();
    for name in &args.only {
        match weir_synth::scenario(name) {
            Some(s) => chosen.push(s),
            None => bail!("unknown scenario {name:?}: `weir synth --list` shows the scenarios"),
        }
    }
    if chosen.is_empty() {
        chosen = weir_synth::SCENARIOS.to_vec();
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    for s in chosen {
        for i in 0..args.count.max(1) {
            let g = weir_synth::generate(s, args.seed + i);
            let pcap = args.out.join(g.file_name());
            let labels = pcap.with_extension("labels.csv");
            std::fs::write(&pcap, &g.pcap)
                .with_context(|| format!("writing {}", pcap.display()))?;
            std::fs::write(&labels, g.labels_csv())
                .with_context(|| format!("writing {}", labels.display()))?;
            let attack = g.labels.iter().filter(|l| l.class == s.class).count();
            println!(
                "{}  {:>8} bytes  {:>6} labelled flows ({attack} {})",
                pcap.display(),
                g.pcap.len(),
                g.labels.len(),
                s.class
            );
        }
    }
    Ok(0)
}
