//! `just bench-classify` / `just bench-gpu`: flows/s through ONNX Runtime for a weir model at
//! batch sizes 1, 256, 4096 and 65536, on 1 and 2 threads (CPU) or on CUDA, next to the
//! model's FLOP count and this CPU's ceiling.
//!
//! cargo run --release -p weir-classify --example bench_classify -- [MODEL] [--device cpu|cuda] [--seconds S]

use std::time::Instant;

use weir_classify::{Classifier, Device, Options};

fn cpu_ghz() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: Vec<f64> = info
        .lines()
        .filter(|l| l.starts_with("cpu MHz"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse().ok())
        .collect();
    (!mhz.is_empty()).then(|| mhz.iter().sum::<f64>() / mhz.len() as f64 / 1000.0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut model = "models/weir-mlp.onnx".to_string();
    let mut device = Device::Cpu;
    let mut seconds = 1.5f64;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--device" => {
                device = args
                    .next()
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(Device::Cpu)
            }
            "--seconds" => seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(1.5),
            m => model = m.to_string(),
        }
    }
    let bytes = std::fs::read(&model).unwrap_or_else(|e| panic!("{model}: {e}"));
    let info = weir_model::read_info(&bytes).expect("a weir model");
    let f = info.features.len();
    // FLOPs per flow: 2·in·out per dense layer (weights read from the model's layer shapes)
    let m = weir_model::onnx_dense_shapes(&bytes).expect("dense layers");
    let flops: usize = m.iter().map(|(o, i)| 2 * o * i).sum::<usize>() + 8 * f;
    let ghz = cpu_ghz();
    println!(
        "model {model}: {} ({} features -> {} classes), {:.1} kFLOP per flow",
        info.model_version,
        f,
        info.classes.len(),
        flops as f64 / 1e3
    );
    if device == Device::Cpu {
        if let Some(g) = ghz {
            // AVX2: two 8-wide f32 FMA units = 32 FLOP per cycle
            let peak = g * 1e9 * 32.0;
            println!(
                "CPU ceiling per core: {g:.2} GHz x 32 FLOP/cycle (AVX2 2xFMA) = {:.0} GFLOP/s = {:.2} M flows/s",
                peak / 1e9,
                peak / flops as f64 / 1e6
            );
        }
    }
    let threads: &[usize] = if device == Device::Cpu { &[1, 2] } else { &[0] };
    let rows = 65536;
    let x: Vec<f32> = (0..rows * f)
        .map(|i| ((i * 7919) % 1000) as f32 * 0.37 - 50.0)
        .collect();
    println!(
        "{:>8} {:>8} {:>14} {:>12}",
        "threads", "batch", "flows/s", "µs/call"
    );
    for &t in threads {
        for &batch in &[1usize, 256, 1024, 4096, 65536] {
            let mut c = Classifier::from_bytes(
                &bytes,
                &Options {
                    device,
                    threads: t,
                    batch,
                    feature_version: info.feature_version.clone(),
                    features: f,
                    ..Options::default()
                },
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let chunk = &x[..batch.min(rows) * f];
            // warm up, then run for the time budget
            for _ in 0..3 {
                c.classify(chunk).expect("classify");
            }
            let start = Instant::now();
            let (mut calls, mut flows) = (0u64, 0u64);
            while start.elapsed().as_secs_f64() < seconds {
                let p = c.classify(chunk).expect("classify");
                flows += p.len() as u64;
                calls += 1;
            }
            let el = start.elapsed().as_secs_f64();
            println!(
                "{:>8} {:>8} {:>14.0} {:>12.1}   ({})",
                if t == 0 {
                    "default".to_string()
                } else {
                    t.to_string()
                },
                batch,
                flows as f64 / el,
                el * 1e6 / calls as f64,
                c.provider().name()
            );
        }
    }
}
