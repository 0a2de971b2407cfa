//! `weir synth` through the real binary: files and labels written, the same seed giving the
//! same bytes, `weir flows` reading the result, and a clear error for an unknown scenario.

use std::process::Command;

fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

#[test]
fn writes_captures_with_labels_that_weir_reads() {
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &std::path::Path| {
        let o = weir()
            .args(["synth", "--only", "sqli,port-scan", "--seed", "5", "--out"])
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(dir.path());
    let pcap = dir.path().join("sqli-5.pcap");
    let labels = std::fs::read_to_string(dir.path().join("sqli-5.labels.csv")).unwrap();
    assert!(labels.starts_with("src,sport,dst,dport,proto,class\n"));
    assert!(labels.contains(",Web Attack - SQL Injection\n"));
    assert!(labels.contains(",Normal\n"));
    assert!(dir.path().join("port-scan-5.pcap").is_file());

    let again = tempfile::tempdir().unwrap();
    run(again.path());
    assert_eq!(
        std::fs::read(&pcap).unwrap(),
        std::fs::read(again.path().join("sqli-5.pcap")).unwrap(),
        "same seed, same bytes"
    );

    let o = weir()
        .args(["flows", "-q", "-f", "csv", "-o", "-"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(o.status.success());
    let flows = String::from_utf8_lossy(&o.stdout).lines().count() - 1;
    assert_eq!(
        flows,
        labels.lines().count() - 1,
        "one flow per labelled conversation"
    );
}

#[test]
fn unknown_scenario_is_a_clear_error() {
    let o = weir().args(["synth", "--only", "nope"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unknown scenario \"nope\"") && err.contains("--list"),
        "{err}"
    );
}
