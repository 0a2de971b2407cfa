//! weir on LocalStack, end to end, with the real function binaries under weir-lambda-local:
//! a capture uploaded with the AWS SDK goes to done and its results equal the in-process
//! stages' on the same file; then the faults: a message delivered twice, a truncated capture,
//! a non-capture, a message that always fails (dead-letter queue), a classifier killed
//! mid-batch, LocalStack restarted mid-run. Each asserts nothing lost and nothing duplicated.
//!
//! Starts LocalStack itself (localstack/ctl.sh installs it on first use, ~2 minutes) and
//! stops everything by PID when done, also when an assertion fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use polars::prelude::*;
use weir_aws::S3Store;
use weir_classify::{Classifier, Device, Options};
use weir_flow::ExtractOptions;
use weir_pipeline::*;

/// One LocalStack at a time (port 4566).
static ONE_STACK: Mutex<()> = Mutex::new(());

const BUCKET: &str = "weir-test";
const SHARD_FLOWS: usize = 2000;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn shared() -> PathBuf {
    std::env::var_os("WEIR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"))
}

struct Stack {
    dir: tempfile::TempDir,
    env: Vec<(&'static str, &'static str)>,
    rt: tokio::runtime::Runtime,
    store: S3Store,
    clients: weir_aws::Clients,
}

impl Stack {
    fn ctl(dir: &Path, cmd: &str) {
        Self::ctl_env(dir, cmd, &[]);
    }

    /// `localstack/ctl.sh CMD` with the test's settings and the binaries cargo built.
    fn ctl_command(dir: &Path, cmd: &str, env: &[(&str, &str)]) -> Command {
        let bins = PathBuf::from(env!("CARGO_BIN_EXE_weir-splitter"));
        let mut c = Command::new("bash");
        c.envs(env.iter().copied())
            .arg(repo().join("localstack/ctl.sh"))
            .arg(cmd)
            .env("WEIR_LOCALSTACK_DIR", dir)
            .env("WEIR_BUCKET", BUCKET)
            .env("WEIR_FUNCTIONS_DIR", bins.parent().unwrap())
            .env("WEIR_VISIBILITY", "4")
            .env("WEIR_MAX_RECEIVES", "3")
            .env("WEIR_SHARD_FLOWS", SHARD_FLOWS.to_string());
        c
    }

    fn ctl_env(dir: &Path, cmd: &str, env: &[(&str, &str)]) {
        let st = Self::ctl_command(dir, cmd, env)
            .status()
            .expect("bash runs");
        assert!(st.success(), "localstack/ctl.sh {cmd} failed");
    }

    /// `ctl.sh captures ARGS` (weir-status over the bucket, as a user runs it): exit code
    /// and stdout.
    fn captures_cmd(&self, args: &[&str]) -> (i32, String) {
        let out = Self::ctl_command(self.dir.path(), "captures", &self.env)
            .args(args)
            .output()
            .expect("bash runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        eprintln!(
            "ctl.sh captures {args:?}: {:?}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), stdout)
    }

    fn up() -> Stack {
        Self::up_with(Vec::new())
    }

    fn up_with(env: Vec<(&'static str, &'static str)>) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        Self::ctl_env(dir.path(), "up", &env);
        for (k, v) in [
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ] {
            std::env::set_var(k, v);
        }
        let rt = tokio::runtime::Runtime::new().unwrap();
        let clients = rt.block_on(weir_aws::clients());
        let store = S3Store::new(clients.s3.clone(), BUCKET, rt.handle().clone());
        Stack {
            dir,
            env,
            rt,
            store,
            clients,
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    fn queue(&self, name: &str) -> weir_aws::Queue {
        self.rt
            .block_on(weir_aws::Queue::new(self.clients.sqs.clone(), name))
            .unwrap()
    }

    /// Upload with the AWS SDK, as a user would.
    fn upload(&self, key: &str, bytes: &[u8]) -> String {
        self.store.put(key, bytes).unwrap();
        capture_id(key)
    }

    /// Wait until the capture's status is final; panics with the logs after `secs`.
    /// The capture's first status (the splitter has started), within 60 s of its upload.
    fn wait_started(&self, id: &str) -> Status {
        let t = Instant::now();
        loop {
            if let Ok(st) = Status::load(&self.store, id) {
                return st;
            }
            assert!(t.elapsed().as_secs() < 60, "{id} never started");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_final(&self, id: &str, secs: u64) -> Status {
        let t = Instant::now();
        loop {
            if let Ok(st) = Status::load(&self.store, id) {
                if st.state.is_final() {
                    return st;
                }
            }
            if t.elapsed() > Duration::from_secs(secs) {
                let ls = self.log("localstack.log");
                let ls: Vec<&str> = ls
                    .lines()
                    .filter(|l| l.contains("weir") || l.contains("ERROR") || l.contains("Ready"))
                    .collect();
                panic!(
                    "capture {id} not finished after {secs} s: {:?}\nfunctions log:\n{}\nLocalStack log (weir, errors):\n{}",
                    Status::load(&self.store, id),
                    self.log("functions.log"),
                    ls.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        Self::ctl_env(self.dir.path(), "down", &self.env);
    }
}

fn classifier() -> Classifier {
    Classifier::from_bytes(
        weir_classify::SHIPPED_MODEL,
        &Options {
            device: Device::Cpu,
            threads: 1,
            ..Options::default()
        },
    )
    .expect("model and ONNX Runtime (scripts/setup-ort.sh) load")
}

/// The same stages in process, on a directory: what `weir analyze` runs.
fn in_process(key: &str, bytes: &[u8]) -> (tempfile::TempDir, LocalStore, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    store.put(key, bytes).unwrap();
    let mut msgs = Vec::new();
    let _ = split(&store, key, SHARD_FLOWS, &ExtractOptions::default(), |m| {
        msgs.push(m.clone());
        Ok(())
    });
    let mut c = classifier();
    for r in classify_shards(&store, &mut c, &msgs) {
        r.unwrap();
    }
    let id = capture_id(key);
    if !msgs.is_empty() {
        aggregate(&store, &id).unwrap();
    }
    (dir, store, id)
}

/// All result rows of a capture, in shard order.
fn results(store: &dyn Store, id: &str) -> DataFrame {
    let keys = store.list(&format!("captures/{id}/results/")).unwrap();
    let mut all: Option<DataFrame> = None;
    for k in keys {
        let df = weir_records::parquet_to_frame(&store.get(&k).unwrap()).unwrap();
        all = Some(match all {
            None => df,
            Some(mut a) => {
                a.vstack_mut(&df).unwrap();
                a
            }
        });
    }
    all.unwrap_or_default()
}

fn column_f64(df: &DataFrame, name: &str) -> Vec<f64> {
    let c = df.column(name).unwrap();
    // Timestamps (first_ts) through their ns count.
    let c = match c.dtype() {
        DataType::Datetime(..) => c.cast(&DataType::Int64).unwrap(),
        _ => c.clone(),
    };
    c.cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .downcast_iter()
        .flat_map(|a| a.iter())
        .map(|v| v.copied().unwrap_or(f64::NAN))
        .collect()
}

fn column_str(df: &DataFrame, name: &str) -> Vec<String> {
    let c = df.column(name).unwrap().str().unwrap();
    c.downcast_iter()
        .flat_map(|a| a.iter())
        .map(|s| s.unwrap_or_default().to_string())
        .collect()
}

/// Same flows, same classes, same scores (to float rounding of a different batch layout).
fn assert_same_results(aws: &DataFrame, local: &DataFrame) {
    assert_eq!(aws.height(), local.height(), "flow count");
    assert_eq!(aws.get_column_names(), local.get_column_names());
    for c in ["community_id", "src_ip", "dst_ip", "class", "model_version"] {
        assert_eq!(column_str(aws, c), column_str(local, c), "column {c}");
    }
    for c in [
        "first_ts",
        "packets_fwd",
        "bytes_fwd",
        "class_probability",
        "anomaly",
    ] {
        let (a, b) = (column_f64(aws, c), column_f64(local, c));
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{c} row {i}: {x} vs {y}"
            );
        }
    }
}

fn summary(store: &dyn Store, id: &str) -> serde_json::Value {
    serde_json::from_slice(&store.get(&summary_key(id)).unwrap()).unwrap()
}

#[test]
fn localstack_end_to_end_and_faults() {
    let _one = ONE_STACK.lock().unwrap_or_else(|p| p.into_inner());
    let stack = Stack::up();
    let flood = std::fs::read(shared().join("labeled/attacks/doup123/udp__flood.pcap")).unwrap();

    // 1. Upload -> done; results equal the in-process stages'. 10,000 flows: 5 shards.
    let t = Instant::now();
    let key = "uploads/udp flood.pcap";
    let id = stack.upload(key, &flood);
    let st = stack.wait_final(&id, 300);
    eprintln!(
        "udp flood: upload to done in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(st.state, State::Done, "{st:?}");
    assert_eq!(st.shards, Some(5));
    assert_eq!(st.flows, 10_000);
    let (_tmp, local, lid) = in_process(key, &flood);
    assert_eq!(lid, id);
    let aws_rows = results(&stack.store, &id);
    assert_same_results(&aws_rows, &results(&local, &id));
    let sum = summary(&stack.store, &id);
    assert_eq!(sum["flows"], 10_000);
    assert_eq!(sum["classes"], summary(&local, &id)["classes"]);
    // The search layout has the same parts as in process, and the bucket's listing of
    // captures (a delimiter listing) says done.
    let parts = |s: &dyn Store| s.list(&format!("captures/{id}/flows/")).unwrap();
    assert_eq!(parts(&stack.store), parts(&local));
    let listed = captures(&stack.store).unwrap();
    assert!(
        listed
            .iter()
            .any(|s| s.capture == id && s.state == State::Done),
        "{listed:?}"
    );
    // What a user runs to watch it: `ctl.sh captures` (weir-status) says the same.
    let (code, out) = stack.captures_cmd(&["--wait", key, "--json", "--timeout", "60"]);
    assert_eq!(code, 0, "{out}");
    let last: Status = serde_json::from_str(out.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(
        (last.capture.as_str(), last.state, last.flows),
        (id.as_str(), State::Done, 10_000)
    );
    let (code, out) = stack.captures_cmd(&[]);
    assert_eq!(code, 0);
    assert!(
        out.lines().any(|l| l.starts_with(&format!("{id} "))
            && l.contains(" done ")
            && l.contains(" 5/5 ")),
        "{out}"
    );

    // 2. The same shard message delivered twice more: same objects, flows counted once.
    let before: Vec<Vec<u8>> = (0..5)
        .map(|n| stack.store.get(&result_key(&id, n)).unwrap())
        .collect();
    let shards = stack.queue("weir-shards");
    let msg = ShardMessage {
        capture: id.clone(),
        shard: 2,
        key: shard_key(&id, 2),
        flows: SHARD_FLOWS as u64,
    };
    stack.rt.block_on(async {
        shards.send(&msg.to_json()).await.unwrap();
        shards.send(&msg.to_json()).await.unwrap();
    });
    let t = Instant::now();
    while stack.log("functions.log").matches("shard=2 ").count() < 3 && t.elapsed().as_secs() < 60 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let st = stack.wait_final(&id, 120);
    assert_eq!(st.state, State::Done);
    for n in 0..5 {
        assert_eq!(
            stack.store.get(&result_key(&id, n)).unwrap(),
            before[n as usize]
        );
    }
    assert_eq!(
        stack
            .store
            .list(&format!("captures/{id}/results/"))
            .unwrap()
            .len(),
        5
    );
    assert_eq!(summary(&stack.store, &id)["flows"], 10_000);

    // 3. A truncated capture: done-with-warnings, the flows before the damage kept.
    let cut = &flood[..flood.len() * 3 / 5];
    let tkey = "uploads/truncated.pcap";
    let tid = stack.upload(tkey, cut);
    let st = stack.wait_final(&tid, 300);
    assert_eq!(st.state, State::DoneWithWarnings, "{st:?}");
    assert!(!st.warnings.is_empty());
    let (_tmp2, tlocal, _) = in_process(tkey, cut);
    assert_same_results(&results(&stack.store, &tid), &results(&tlocal, &tid));
    assert!(results(&stack.store, &tid).height() > 5000);

    // 4. Not a capture: failed, with a reason that says so.
    let nid = stack.upload("uploads/notes.txt", b"these are my notes, not a capture\n");
    let st = stack.wait_final(&nid, 120);
    assert_eq!(st.state, State::Failed);
    let reason = st.reason.unwrap_or_default();
    assert!(reason.contains("not a readable capture"), "{reason}");
    let (code, out) = stack.captures_cmd(&["--wait", &nid]);
    assert_eq!(code, 1, "a failed capture makes --wait exit 1: {out}");
    assert!(
        out.contains(" failed ") && out.contains("not a readable capture"),
        "{out}"
    );

    // 5. A message that always fails (its shard does not exist): 3 deliveries, then the
    //    dead-letter queue; the capture is failed with the reason.
    let pid = "ghost-00000000";
    let poison = ShardMessage {
        capture: pid.into(),
        shard: 0,
        key: shard_key(pid, 0),
        flows: 1,
    };
    stack.rt.block_on(shards.send(&poison.to_json())).unwrap();
    let dlq = stack.queue("weir-shards-dlq");
    let t = Instant::now();
    let dead = loop {
        let got = stack.rt.block_on(dlq.receive(10, 2, 30)).unwrap();
        if !got.is_empty() {
            break got;
        }
        assert!(
            t.elapsed().as_secs() < 90,
            "poison message not in the DLQ after 90 s"
        );
    };
    assert_eq!(dead.len(), 1);
    assert_eq!(ShardMessage::from_json(&dead[0].body).unwrap(), poison);
    let st = Status::load(&stack.store, pid).unwrap();
    assert_eq!(st.state, State::Failed);
    assert!(st
        .reason
        .unwrap_or_default()
        .contains("ghost-00000000/shards/00000.parquet"));

    // 6. The classifier killed mid-batch: its messages come back after the visibility
    //    timeout and the capture still ends with every flow exactly once.
    let kkey = "uploads/killed.pcap";
    let kid = stack.upload(kkey, &flood);
    let t = Instant::now();
    loop {
        let st = Status::load(&stack.store, &kid).ok();
        if st
            .as_ref()
            .is_some_and(|s| s.state == State::Classifying || s.shards_done > 0)
        {
            break;
        }
        assert!(t.elapsed().as_secs() < 120, "never started classifying");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("pkill")
        .args(["-KILL", "-x", "weir-classifier"])
        .status()
        .unwrap();
    assert!(killed.success(), "no classifier process to kill");
    let st = stack.wait_final(&kid, 300);
    assert_eq!(st.state, State::Done);
    assert!(
        stack
            .log("functions.log")
            .contains("starting a new execution environment")
            || stack
                .log("functions.log")
                .contains("messages stay for redelivery")
    );
    assert_same_results(&results(&stack.store, &kid), &results(&local, &id));
    assert_eq!(summary(&stack.store, &kid)["flows"], 10_000);
}

fn signal_localstack(stack: &Stack, sig: &str) {
    let pid = std::fs::read_to_string(stack.dir.path().join("localstack.pid")).unwrap();
    let st = Command::new("kill")
        .args([sig, pid.trim()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig} LocalStack");
}

fn functions_alive(stack: &Stack) -> bool {
    let pid = std::fs::read_to_string(stack.dir.path().join("functions.pid")).unwrap_or_default();
    Command::new("kill")
        .args(["-0", pid.trim()])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn localstack_outage_mid_run() {
    let _one = ONE_STACK.lock().unwrap_or_else(|p| p.into_inner());
    let stack = Stack::up();
    let flood = std::fs::read(shared().join("labeled/attacks/doup123/udp__flood.pcap")).unwrap();

    // 1. LocalStack frozen for 8 s while the capture is being split and classified (every
    //    call hangs, then completes or times out and is retried): nothing lost, nothing twice.
    let key = "uploads/frozen.pcap";
    let id = stack.upload(key, &flood);
    let t = Instant::now();
    stack.wait_started(&id);
    signal_localstack(&stack, "-STOP");
    std::thread::sleep(Duration::from_secs(8));
    signal_localstack(&stack, "-CONT");
    let st = stack.wait_final(&id, 300);
    eprintln!("frozen capture {:?} at {:?}", st.state, t.elapsed());
    assert_eq!(st.state, State::Done, "{st:?}");
    let (_tmp, local, _) = in_process(key, &flood);
    assert_same_results(&results(&stack.store, &id), &results(&local, &id));
    assert_eq!(summary(&stack.store, &id)["flows"], 10_000);

    // 2. LocalStack stopped (SIGTERM) and started again while a capture is being split and
    //    classified. localstack-core forgets everything on a restart; localstack/persist.py
    //    (how ctl.sh runs it) saves its S3 and SQS state on the way down and loads it on the
    //    way up, so the upload, the shards, the messages (in flight ones with their
    //    visibility deadline) survive, and the functions, retrying through the outage,
    //    finish the capture: nothing lost, nothing twice.
    let key = "uploads/restarted.pcap";
    let id = stack.upload(key, &flood);
    let before = stack.wait_started(&id);
    assert!(
        matches!(before.state, State::Splitting | State::Classifying),
        "not mid-run at the restart: {before:?}"
    );
    let t = Instant::now();
    Stack::ctl(stack.dir.path(), "stop-localstack");
    eprintln!(
        "LocalStack stopped ({:?}) in {:?}",
        before.state,
        t.elapsed()
    );
    assert!(
        stack
            .log("localstack.log")
            .contains("saved LocalStack state"),
        "{}",
        stack.log("localstack.log")
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        functions_alive(&stack),
        "the functions died with LocalStack"
    );
    Stack::ctl(stack.dir.path(), "start-localstack");
    assert!(stack
        .log("localstack.log")
        .contains("loaded LocalStack state"));
    eprintln!("LocalStack up again at {:?}", t.elapsed());
    let st = stack.wait_final(&id, 300);
    eprintln!("restarted capture {:?} at {:?}", st.state, t.elapsed());
    assert_eq!(st.state, State::Done, "{st:?}");
    let (_tmp, local, _) = in_process(key, &flood);
    assert_same_results(&results(&stack.store, &id), &results(&local, &id));
    assert_eq!(summary(&stack.store, &id)["flows"], 10_000);
    // The capture frozen in 1. is still there, and a new upload goes through.
    assert_eq!(
        Status::load(&stack.store, &capture_id("uploads/frozen.pcap"))
            .unwrap()
            .state,
        State::Done
    );
    let sample = std::fs::read(repo().join("samples/loopback.pcapng")).unwrap();
    let id = stack.upload("uploads/after-restart.pcapng", &sample);
    let st = stack.wait_final(&id, 180);
    assert_eq!(st.state, State::Done, "{st:?}");
    assert_eq!(st.flows, 53);
    assert!(functions_alive(&stack));
}

#[test]
fn the_gpu_worker_polls_and_stops_cleanly_on_sigterm() {
    let _one = ONE_STACK.lock().unwrap_or_else(|p| p.into_inner());
    // The long-running poller instead of the classifier Lambda (CPU here: auto falls back).
    let stack = Stack::up_with(vec![("WEIR_CLASSIFIER", "worker")]);
    let flood = std::fs::read(shared().join("labeled/attacks/doup123/udp__flood.pcap")).unwrap();
    let key = "uploads/worker.pcap";
    let id = stack.upload(key, &flood);
    let st = stack.wait_final(&id, 300);
    assert_eq!(st.state, State::Done, "{st:?}");
    let (_tmp, local, _) = in_process(key, &flood);
    assert_same_results(&results(&stack.store, &id), &results(&local, &id));
    let log = stack.log("worker.log");
    assert!(log.contains("classified"), "{log}");
    assert!(!stack
        .log("functions.log")
        .contains("function=\"classifier\""));

    let pid = std::fs::read_to_string(stack.dir.path().join("worker.pid")).unwrap();
    let pid = pid.trim().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let t = Instant::now();
    while Command::new("kill")
        .args(["-0", &pid])
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(
            t.elapsed().as_secs() < 30,
            "worker still running 30 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = stack.log("worker.log");
    assert!(
        log.contains("stopping: finishing the batch in hand") && log.contains("stopped"),
        "{log}"
    );
}
