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
use weir_classify::Classifier;
use weir_pipeline::*;

/// One LocalStack at a time in this test binary (each on a free port of its own, so stacks
/// of other runs on the host do not collide; one at a time because two would halve the CPU
/// each gets).
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

/// A TCP port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Stack {
    dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
    rt: tokio::runtime::Runtime,
    store: S3Store,
    clients: weir_aws::Clients,
}

impl Stack {
    fn ctl(&self, cmd: &str) {
        Self::ctl_env(self.dir.path(), cmd, &self.env);
    }

    /// `localstack/ctl.sh CMD` with the test's settings and the binaries cargo built.
    fn ctl_command(dir: &Path, cmd: &str, env: &[(&'static str, String)]) -> Command {
        let bins = PathBuf::from(env!("CARGO_BIN_EXE_weir-splitter"));
        let mut c = Command::new("bash");
        c.envs(env.iter().map(|(k, v)| (*k, v.as_str())))
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

    fn ctl_env(dir: &Path, cmd: &str, env: &[(&'static str, String)]) {
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

    fn up_with(mut env: Vec<(&'static str, String)>) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        env.push(("WEIR_LOCALSTACK_PORT", port.to_string()));
        Self::ctl_env(dir.path(), "up", &env);
        let endpoint = format!("http://127.0.0.1:{port}");
        for (k, v) in [
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
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
            if let Ok(st) = weir_pipeline::load_status(&self.store, id) {
                return st;
            }
            assert!(t.elapsed().as_secs() < 60, "{id} never started");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_final(&self, id: &str, secs: u64) -> Status {
        let t = Instant::now();
        loop {
            if let Ok(st) = weir_pipeline::load_status(&self.store, id) {
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
                    weir_pipeline::load_status(&self.store, id),
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
        // By PID (ctl.sh's PID files), never by name: other stacks on the host live on.
        Self::ctl_env(self.dir.path(), "down", &self.env);
    }
}

fn classifier() -> Classifier {
    Classifier::shipped_cpu().expect("model and ONNX Runtime (scripts/setup-ort.sh) load")
}

/// The same stages in process, on a directory: what `weir analyze` runs.
fn in_process(key: &str, bytes: &[u8]) -> (tempfile::TempDir, LocalStore, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    store.put(key, bytes).unwrap();
    let mut msgs = Vec::new();
    let opts = SplitOptions {
        shard_flows: SHARD_FLOWS,
        ..SplitOptions::default()
    };
    let _ = split(&store, key, &opts, |m| {
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

    // 0. The S3 semantics the pipeline's guarantees rest on, against LocalStack's S3: a
    //    streamed read is pinned to the ETag it started on (an overwrite mid-read fails it,
    //    never stitches two files), and conditional writes are compare-and-swap.
    {
        use std::io::Read;
        let big: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
        stack.store.put("pins/a.bin", &big).unwrap();
        let v = stack.store.version("pins/a.bin").unwrap().unwrap();
        let mut r = stack.store.open_version("pins/a.bin", &v).unwrap();
        let mut head = vec![0u8; 1 << 20];
        r.read_exact(&mut head).unwrap();
        assert_eq!(head[..], big[..1 << 20]);
        stack.store.put("pins/a.bin", &vec![1u8; 20 << 20]).unwrap();
        let e = std::io::copy(&mut r, &mut std::io::sink()).unwrap_err();
        let inner = e.get_ref().and_then(|i| i.downcast_ref::<StoreIoError>());
        assert_eq!(inner.map(|i| i.fault), Some(StoreFault::Changed), "{e}");
        assert_eq!(
            stack
                .store
                .open_version("pins/a.bin", &v)
                .err()
                .map(|e| e.fault()),
            Some(StoreFault::Changed)
        );
        let s = &stack.store;
        assert!(s.put_if("pins/s.json", b"1", &Condition::Absent).unwrap());
        assert!(!s.put_if("pins/s.json", b"2", &Condition::Absent).unwrap());
        let (b, tag) = s.get_versioned("pins/s.json").unwrap().unwrap();
        assert_eq!(b, b"1");
        assert!(s
            .put_if("pins/s.json", b"2", &Condition::Version(tag.clone()))
            .unwrap());
        assert!(!s
            .put_if("pins/s.json", b"3", &Condition::Version(tag))
            .unwrap());
        assert_eq!(s.get("pins/s.json").unwrap(), b"2");
        assert_eq!(
            s.get("pins/none").unwrap_err().fault(),
            StoreFault::NotFound
        );
    }

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
        v: WIRE_VERSION,
        capture: id.clone(),
        shard: 2,
        key: shard_key(&id, 2),
        flows: SHARD_FLOWS as u64,
        source_version: weir_pipeline::load_status(&stack.store, &id)
            .unwrap()
            .source_version,
    };
    let classified = |s: &Stack| s.log("functions.log").matches("shard=2 flows=").count();
    let handled_before = classified(&stack);
    assert!(
        handled_before >= 1,
        "shard 2 was classified before the duplicates"
    );
    stack.rt.block_on(async {
        shards.send(&msg.to_json()).await.unwrap();
        shards.send(&msg.to_json()).await.unwrap();
    });
    let t = Instant::now();
    while classified(&stack) < handled_before + 2 && t.elapsed().as_secs() < 60 {
        std::thread::sleep(Duration::from_millis(200));
    }
    // Both duplicates were handled (classified again, not dropped unseen)...
    assert!(
        classified(&stack) >= handled_before + 2,
        "{}",
        stack.log("functions.log")
    );
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

    // 5. A message whose shard does not exist (no retry can bring it back): the capture is
    //    failed at once with the reason, the message consumed.
    let pid = "ghost-00000000";
    let ghost = ShardMessage {
        v: WIRE_VERSION,
        capture: pid.into(),
        shard: 0,
        key: shard_key(pid, 0),
        flows: 1,
        source_version: None,
    };
    stack.rt.block_on(shards.send(&ghost.to_json())).unwrap();
    let st = stack.wait_final(pid, 60);
    assert_eq!(st.state, State::Failed);
    assert!(st
        .reason
        .unwrap_or_default()
        .contains("ghost-00000000/shards/00000.parquet"));
    // A message nobody can read (not weir's): 3 deliveries, then the dead-letter queue,
    // where it is kept for a person.
    let poison = "{\"hello\": \"not a shard message\"}";
    stack.rt.block_on(shards.send(poison)).unwrap();
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
    assert_eq!(dead[0].body, poison);
    assert!(dead[0].receive_count >= 3, "{}", dead[0].receive_count);
}

/// The classifier killed inside a batch (a test hook makes the first batch stop after its
/// messages were received, before anything is written, and names its PID): the batch's
/// messages come back after the visibility timeout and the capture ends with every flow
/// exactly once.
#[test]
fn localstack_classifier_killed_mid_batch() {
    let _one = ONE_STACK.lock().unwrap_or_else(|p| p.into_inner());
    let pause = tempfile::tempdir().unwrap();
    let stack = Stack::up_with(vec![(
        "WEIR_TEST_PAUSE_DIR",
        pause.path().display().to_string(),
    )]);
    let flood = std::fs::read(shared().join("labeled/attacks/doup123/udp__flood.pcap")).unwrap();
    let kkey = "uploads/killed.pcap";
    let kid = stack.upload(kkey, &flood);
    let marker = pause.path().join("paused");
    let t = Instant::now();
    let pid = loop {
        if let Some(p) = std::fs::read_to_string(&marker)
            .ok()
            .filter(|p| p.ends_with('\n'))
        {
            break p.trim().to_string();
        }
        assert!(t.elapsed().as_secs() < 120, "no classifier batch started");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Paused inside its batch: nothing of that batch is written yet.
    std::thread::sleep(Duration::from_millis(300));
    let st = weir_pipeline::load_status(&stack.store, &kid).unwrap();
    assert!(st.shards_done < 5, "{st:?}");
    let killed = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    assert!(killed.success(), "kill -KILL {pid}");
    let st = stack.wait_final(&kid, 300);
    assert_eq!(st.state, State::Done);
    let log = stack.log("functions.log");
    assert!(log.contains("test hook: paused inside a batch"), "{log}");
    assert!(
        log.contains("starting a new execution environment")
            || log.contains("messages stay for redelivery"),
        "{log}"
    );
    let (_tmp, local, id) = in_process(kkey, &flood);
    assert_same_results(&results(&stack.store, &kid), &results(&local, &id));
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
    stack.ctl("stop-localstack");
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
    stack.ctl("start-localstack");
    assert!(stack
        .log("localstack.log")
        .contains("loaded LocalStack state"));
    // What `just localstack-up` does after a down: the CDK stack deployed again (LocalStack
    // keeps S3 and SQS, not CloudFormation), over the bucket and queues that were kept, their
    // objects and messages included.
    stack.ctl("resources");
    eprintln!("LocalStack up again, stack deployed, at {:?}", t.elapsed());
    let st = stack.wait_final(&id, 300);
    eprintln!("restarted capture {:?} at {:?}", st.state, t.elapsed());
    assert_eq!(st.state, State::Done, "{st:?}");
    let (_tmp, local, _) = in_process(key, &flood);
    assert_same_results(&results(&stack.store, &id), &results(&local, &id));
    assert_eq!(summary(&stack.store, &id)["flows"], 10_000);
    // The capture frozen in 1. is still there, and a new upload goes through.
    assert_eq!(
        weir_pipeline::load_status(&stack.store, &capture_id("uploads/frozen.pcap"))
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
    let stack = Stack::up_with(vec![("WEIR_CLASSIFIER", "worker".to_string())]);
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

/// The app over the bucket (`weir serve --bucket`: the same router over an S3Store): an
/// upload through the API goes to `uploads/` and the functions take it to done; then its
/// status, a search and a flow's packets carved from the upload by ranged reads of the
/// version analyzed, all through HTTP requests to the router.
#[test]
fn the_app_serves_the_bucket() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use std::sync::Arc;
    use tower::ServiceExt;

    let _one = ONE_STACK.lock().unwrap_or_else(|p| p.into_inner());
    let stack = Stack::up();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store: Arc<dyn Store> = Arc::new(S3Store::new(
        stack.clients.s3.clone(),
        BUCKET,
        stack.rt.handle().clone(),
    ));
    let flows = Arc::new(weir_api::Flows::new(
        store.clone(),
        None,
        std::sync::Arc::new(weir_classify::shipped_cpu_model),
    ));
    let up = Arc::new(weir_api::Uploads::to_pipeline(flows.clone(), 64 << 20));
    let app = weir_api::router_with(flows).merge(weir_api::uploads_router(up));
    let call = |req: Request<Body>| -> (StatusCode, Vec<u8>) {
        rt.block_on(async {
            let res = app.clone().oneshot(req).await.unwrap();
            let s = res.status();
            (
                s,
                res.into_body().collect().await.unwrap().to_bytes().to_vec(),
            )
        })
    };
    let get = |uri: &str| call(Request::get(uri).body(Body::empty()).unwrap());
    let json = |b: &[u8]| -> serde_json::Value { serde_json::from_slice(b).unwrap() };

    let sample = std::fs::read(repo().join("samples/loopback.pcapng")).unwrap();
    let key = weir_api::content_key("loopback.pcapng", &weir_api::content_digest(&sample)).unwrap();
    let (s, body) = call(
        Request::post("/api/uploads?name=loopback.pcapng")
            .body(Body::from(sample))
            .unwrap(),
    );
    assert_eq!(
        s,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let id = json(&body)["capture"].as_str().unwrap().to_string();
    assert_eq!(id, capture_id(&key), "the key carries the content's hash");
    let st = stack.wait_final(&id, 180);
    assert_eq!(st.state, State::Done, "{st:?}");

    let (s, body) = get(&format!("/api/captures/{id}"));
    assert_eq!(
        (s, json(&body)["flows"].as_u64()),
        (StatusCode::OK, Some(53))
    );
    let (s, body) = get(&format!(
        "/api/search?capture={id}&q=proto%20tcp&sort=packets_fwd&desc=true&limit=1"
    ));
    assert_eq!(s, StatusCode::OK);
    let row = json(&body)["rows"][0].clone();
    let (s, pcap) = get(&format!(
        "/api/flows/{id}/{}/{}/pcap",
        row["shard"], row["row"]
    ));
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&pcap));
    let mut r = weir_capture::CaptureReader::new(std::io::Cursor::new(pcap)).unwrap();
    let mut n = 0;
    while r.next_packet().unwrap().is_some() {
        n += 1;
    }
    let want = row["packets_fwd"].as_u64().unwrap() + row["packets_bwd"].as_u64().unwrap();
    assert_eq!(n, want);
    // A non-capture is refused before anything reaches the bucket.
    let (s, _) = call(
        Request::post("/api/uploads?name=notes.txt")
            .body(Body::from("just words, not packets at all"))
            .unwrap(),
    );
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(!store.exists("uploads/notes.txt").unwrap());

    // The web app's Lambda zip, unpacked and started as the Lambda Web Adapter starts it
    // (run.sh, LAMBDA_TASK_ROOT, the port in AWS_LWA_PORT), serves the same bucket: the token
    // is required, the capture is there, the browser bundle comes from the zip.
    #[cfg(feature = "lambda-zips-tests")]
    web_zip_serves(&id);
}

/// `weir-web.zip` (scripts/lambda-zips.sh) over the stack's bucket.
#[cfg(feature = "lambda-zips-tests")]
fn web_zip_serves(id: &str) {
    use std::io::{Read, Write};
    let zips = std::env::var_os("WEIR_LAMBDA_ZIPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/weir/target")
                })
                .join("lambda-zips")
        });
    let dir = tempfile::tempdir().unwrap();
    let zip = zips.join("weir-web.zip");
    assert!(
        Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&zip)
            .arg(dir.path())
            .status()
            .unwrap()
            .success(),
        "{} (bash scripts/lambda-zips.sh)",
        zip.display()
    );
    for f in ["run.sh", "weir"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path().join(f), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    let port = free_port();
    let token = "a-token-for-the-test-0123456789";
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(dir.path().join("run.sh"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home.path())
        .env("LAMBDA_TASK_ROOT", dir.path())
        .env("AWS_LWA_PORT", port.to_string())
        .env("WEIR_BUCKET", BUCKET)
        .env("WEIR_TOKEN", token)
        .env(
            "AWS_ENDPOINT_URL",
            std::env::var("AWS_ENDPOINT_URL").unwrap(),
        )
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    let get = |path: &str, auth: bool| -> Option<(u16, Vec<u8>)> {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        let auth = if auth {
            format!("Authorization: Bearer {token}\r\n")
        } else {
            String::new()
        };
        write!(c, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{auth}\r\n").ok()?;
        let mut res = Vec::new();
        c.read_to_end(&mut res).ok()?;
        let head_end = res.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let status = std::str::from_utf8(&res[9..12]).ok()?.parse().ok()?;
        Some((status, res[head_end..].to_vec()))
    };
    let t = Instant::now();
    let first = loop {
        if let Some(r) = get("/", false) {
            break r;
        }
        let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
        assert!(child.try_wait().unwrap().is_none(), "run.sh exited: {log}");
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "not listening: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let api = get(&format!("/api/captures/{id}"), true);
    let wasm = get("/pkg/weir-web_bg.wasm", true);
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    assert_eq!(first.0, 401, "without the token: {log}");
    let (s, body) = api.unwrap();
    assert_eq!(s, 200, "{}\n{log}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["flows"].as_u64(), Some(53));
    let (s, body) = wasm.unwrap();
    assert_eq!(s, 200, "{log}");
    assert_eq!(&body[..4], b"\0asm", "the browser bundle from the zip");
}

/// Federated learning on LocalStack, end to end: a registry in the bucket (version 0: the
/// shipped model, the pointer signed by the registry key), three `weir edge` processes that
/// push alerts and signed updates, the merge function (weir-merge under weir-lambda-local,
/// fed by the bucket's notification of each update) publishing version 1, and the GPU worker
/// (CPU here) following the registry: captures uploaded in a stream the whole time all land,
/// each exactly once, their rows naming the model that classified them, v0 first and v1 after
/// the switch, with no restart. Then a tampered model file under a properly signed pointer is
/// refused and version 1 keeps serving.
#[test]
fn localstack_federated_round_and_hot_reload() {
    use weir_fl::registry::{Pointer, Registry};
    use weir_fl::update::SigningKey;

    let _one = ONE_STACK.lock().unwrap_or_else(|p| p.into_inner());
    let work = tempfile::tempdir().unwrap();
    let registry_key = SigningKey::from_seed("registry", [11; 32]).unwrap();
    let key_path = work.path().join("registry.key");
    std::fs::write(&key_path, registry_key.to_bytes()).unwrap();
    let stack = Stack::up_with(vec![
        ("WEIR_CLASSIFIER", "worker".to_string()),
        ("WEIR_MODEL_REGISTRY", "bucket".to_string()),
        ("WEIR_MODEL_POLL_S", "0".to_string()),
        ("WEIR_REGISTRY_PUBKEY", registry_key.public_hex()),
        ("WEIR_REGISTRY_KEY", key_path.display().to_string()),
        ("WEIR_FL_QUORUM", "3".to_string()),
    ]);
    let weir = PathBuf::from(env!("CARGO_BIN_EXE_weir-splitter"))
        .parent()
        .unwrap()
        .join("weir");
    assert!(
        weir.exists(),
        "{} missing: `cargo test --workspace` builds weir-cli's binary",
        weir.display()
    );
    let run = |args: &[&str]| -> String {
        let out = Command::new(&weir)
            .args(args)
            .env("WEIR_REGISTRY_PUBKEY", registry_key.public_hex())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "weir {args:?} failed:\n{err}");
        String::from_utf8_lossy(&out.stdout).into_owned() + &err
    };
    // The registry: version 0 is the shipped model.
    run(&[
        "fl",
        "init",
        "--bucket",
        BUCKET,
        "--registry-key",
        key_path.to_str().unwrap(),
    ]);

    // A stream of captures the whole time.
    let flood = std::fs::read(shared().join("labeled/attacks/doup123/udp__flood.pcap")).unwrap();
    let (_tmp, local, local_id) = in_process("uploads/stream.pcap", &flood);
    let expected_rows = results(&local, &local_id).height();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let ids: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || i < 2 {
                let key = format!("uploads/stream-{i:03}.pcap");
                ids.lock().unwrap().push(stack.upload(&key, &flood));
                i += 1;
                std::thread::sleep(Duration::from_millis(700));
            }
        });
        // Let a few captures go through with version 0.
        std::thread::sleep(Duration::from_secs(6));
        // Three edge nodes, each with its own labelled capture, registered, run at once.
        let nodes = [
            (
                "edge-1",
                "labeled/attacks/doup123/slowloris.pcap",
                "DoS SlowHTTPTest",
            ),
            (
                "edge-2",
                "labeled/attacks/sqlmap/sqlmap.pcap",
                "Web Attack - SQL Injection",
            ),
            (
                "edge-3",
                "labeled/attacks/stratosphere/malicious-ssh-bruteforce.pcap",
                "SSH Patator",
            ),
        ];
        let mut dirs = Vec::new();
        for (node, file, class) in nodes {
            let d = work.path().join(node);
            std::fs::create_dir_all(&d).unwrap();
            let name = Path::new(file).file_name().unwrap().to_str().unwrap();
            std::fs::copy(shared().join(file), d.join(name)).unwrap();
            std::fs::write(
                d.join("labels.csv"),
                format!("file,class,rule\n{name},{class},all\n"),
            )
            .unwrap();
            let k = d.join("node.key");
            let pk = run(&["edge", "key", "--node", node, "--key", k.to_str().unwrap()]);
            let pk = pk.lines().next().unwrap().trim().to_string();
            run(&["fl", "register", node, &pk, "--bucket", BUCKET]);
            dirs.push((node, d, k));
        }
        let children: Vec<_> = dirs
            .iter()
            .map(|(node, d, k)| {
                Command::new(&weir)
                    .args(["edge", "run", "--node", node, "--key", k.to_str().unwrap()])
                    .args(["--bucket", BUCKET, "--watch", d.to_str().unwrap(), "--once"])
                    .env("WEIR_REGISTRY_PUBKEY", registry_key.public_hex())
                    .output_async()
            })
            .collect();
        for (c, (node, _, _)) in children.into_iter().zip(&dirs) {
            let out = c.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{node}: {err}");
            assert!(err.contains("update of"), "{node}: {err}");
            // Only alerts left the node, no traffic.
            let alerts = stack.store.list(&format!("edge/{node}/alerts/")).unwrap();
            assert_eq!(alerts.len(), 1, "{node}: {alerts:?}");
        }
        // The merge function publishes version 1 once the third update is in.
        let reg = Registry::new(&stack.store, Some(registry_key.public_hex()));
        let t = Instant::now();
        let v1 = loop {
            if let Ok(l) = reg.current(None) {
                if l.pointer.version == 1 {
                    break l;
                }
            }
            assert!(
                t.elapsed().as_secs() < 120,
                "no version 1 after 120 s\nfunctions log:\n{}",
                stack.log("functions.log")
            );
            std::thread::sleep(Duration::from_millis(250));
        };
        let card = reg.card(1).unwrap();
        assert_eq!(card.included.len(), 3, "{card:?}");
        assert!(v1.model.info.model_version.ends_with("+fl.v1"));
        // Let captures go through with version 1, then stop the stream.
        std::thread::sleep(Duration::from_secs(8));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let ids = ids.into_inner().unwrap();
    let mut versions_seen = std::collections::BTreeSet::new();
    let mut order = Vec::new();
    for id in &ids {
        let st = stack.wait_final(id, 180);
        assert_eq!(st.state, State::Done, "{id}: {st:?}");
        let df = results(&stack.store, id);
        // Nothing dropped, nothing duplicated: each capture has exactly the in-process rows.
        assert_eq!(df.height(), expected_rows, "{id}");
        let v: std::collections::BTreeSet<String> =
            column_str(&df, "model_version").into_iter().collect();
        order.push(v.clone());
        versions_seen.extend(v);
    }
    let v0 = weir_model::read_info(weir_classify::SHIPPED_MODEL)
        .unwrap()
        .model_version;
    let v1_name = format!("{v0}+fl.v1");
    assert_eq!(
        versions_seen,
        [v0.clone(), v1_name.clone()].into_iter().collect(),
        "{order:?}\n{}",
        stack.log("worker.log")
    );
    // Once a capture was classified by version 1, none after it went back to version 0.
    let first_v1 = order.iter().position(|v| v.contains(&v1_name)).unwrap();
    assert!(
        order[first_v1 + 1..].iter().all(|v| !v.contains(&v0)),
        "{order:?}"
    );
    let log = stack.log("worker.log");
    assert!(log.contains("model reloaded from the registry"), "{log}");

    // A tampered model: version 2's pointer properly signed, its file changed after.
    let good =
        weir_model::read_model(&stack.store.get("registry/v000001/model.onnx").unwrap()).unwrap();
    let mut m2 = good.clone();
    m2.info.model_version = format!("{v0}+fl.v2");
    let bytes = m2.to_onnx();
    let mut tampered = bytes.clone();
    let n = tampered.len();
    tampered[n / 2] ^= 0x10;
    stack
        .store
        .put("registry/v000002/model.onnx", &tampered)
        .unwrap();
    let (_, etag) = stack
        .store
        .get_versioned(weir_fl::registry::LATEST)
        .unwrap()
        .unwrap();
    let mut p = Pointer {
        version: 2,
        round: 3,
        model_key: "registry/v000002/model.onnx".into(),
        sha256: weir_fl::update::sha256_hex(&bytes),
        opened_unix: weir_fl::update::now_unix(),
        reason: "test: tampered".into(),
        signature: String::new(),
    };
    Registry::new(&stack.store, None)
        .move_pointer(Some(&etag), &mut p, Some(&registry_key))
        .unwrap();
    let id = stack.upload("uploads/after-tamper.pcap", &flood);
    let st = stack.wait_final(&id, 180);
    assert_eq!(st.state, State::Done);
    let v: std::collections::BTreeSet<String> =
        column_str(&results(&stack.store, &id), "model_version")
            .into_iter()
            .collect();
    assert_eq!(
        v,
        [v1_name].into_iter().collect(),
        "the old model keeps serving"
    );
    let log = stack.log("worker.log");
    assert!(
        log.contains("registry model refused") && log.contains("SHA-256"),
        "{log}"
    );
}

trait OutputAsync {
    fn output_async(&mut self) -> std::process::Child;
}

impl OutputAsync for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}
