//! Poisoning, as CI can afford it: `weir fl simulate` on the labelled data at a reduced size
//! (10 nodes, a 128×128 network, 8 rounds: 90 s on 2 cores), every attack against plain
//! FedAvg and the robust setting, through the real merge. It fails when plain FedAvg stops
//! visibly degrading (the attacks would be too weak to show anything), when the robust
//! setting loses more than its margin to an attack, or when the screen stops refusing the
//! reversed and flipped updates (or starts refusing honest ones).
//!
//! Not checked here: the backdoor's success rate. At this size the target class's share
//! called Normal swings between 1% and 15% across runs the attack does not touch, and the
//! backdoor reaches 32% against the robust setting; models/FL.md gives the full-size figure.

use std::path::PathBuf;
use std::process::Command;

fn shared() -> PathBuf {
    std::env::var_os("WEIR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

#[derive(Debug)]
struct Run {
    name: String,
    attack: String,
    f1: f64,
    backdoor: f64,
    refused: usize,
}

#[test]
fn poisoning_degrades_fedavg_and_the_robust_setting_holds() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/captures.csv");
    let shared = shared();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "fl",
            "simulate",
            "--json",
            "--quiet",
            "--synthetic-weight",
            "0",
        ])
        .args(["--rounds", "8", "--hidden", "128,128", "--epochs", "5"])
        .arg("--shared")
        .arg(&shared)
        .arg("--manifest")
        .arg(&manifest)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "weir fl simulate failed:\n{err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs: Vec<Run> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let last = r["rounds"].as_array().unwrap().last().unwrap();
            Run {
                name: r["name"].as_str().unwrap().to_string(),
                attack: r["attack"].as_str().unwrap().to_string(),
                f1: last["macro_f1"].as_f64().unwrap(),
                backdoor: last["backdoor"].as_f64().unwrap(),
                refused: r["refused"].as_array().unwrap().len(),
            }
        })
        .collect();
    let table: String = runs
        .iter()
        .map(|r| {
            format!(
                "{:7} {:38} F1 {:5.1}  backdoor {:5.1}%  refused {}\n",
                r.name,
                r.attack,
                100.0 * r.f1,
                100.0 * r.backdoor,
                r.refused
            )
        })
        .collect();
    eprintln!("{table}");
    let get = |name: &str, attack: &str| {
        runs.iter()
            .find(|r| r.name == name && r.attack.starts_with(attack))
            .unwrap_or_else(|| panic!("no {name} / {attack} run in:\n{table}"))
    };
    let (plain, robust) = (get("fedavg", "none"), get("robust", "none"));
    assert!(
        plain.f1 > 0.15 && robust.f1 > 0.15,
        "the clean runs learn nothing:\n{table}"
    );
    for attack in ["sign flip", "label flip", "Gaussian noise", "backdoor"] {
        let (p, r) = (get("fedavg", attack), get("robust", attack));
        // Plain FedAvg visibly degrades: otherwise the attack is too weak to show anything.
        assert!(
            p.f1 <= plain.f1 - 0.05,
            "plain FedAvg should lose at least 5 points to {attack}:\n{table}"
        );
        // The robust setting holds. At this size the same clean run moves by about 3
        // points between runs that differ only in which updates went in (the attackers'
        // data is missing from the attacked runs), so the margin here is 5; models/FL.md has
        // the 3-point comparison at full size.
        assert!(
            r.f1 >= robust.f1 - 0.05,
            "the robust setting loses more than 5 points to {attack}:\n{table}"
        );
    }
    // The screen is what stops the reversed and the flipped updates: it must refuse them.
    let rounds = report["config"]["rounds"].as_u64().unwrap() as usize;
    assert!(
        get("robust", "sign flip").refused >= rounds,
        "the screen let sign-flipped updates in:\n{table}"
    );
    assert!(
        get("robust", "label flip").refused > 0,
        "the screen refused no label-flipped update:\n{table}"
    );
    assert_eq!(
        robust.refused, 0,
        "the screen refused honest updates in the clean run:\n{table}"
    );
}
