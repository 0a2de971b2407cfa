# weir tasks. `just` is optional: every recipe is a script you can run directly.
# Install just with: bash scripts/install-just.sh (rust-just from PyPI in a venv, into ~/.local/bin)

# Analyze the shipped sample capture (the README's first command).
run:
    bash scripts/run-sample.sh

# fmt --check, clippy -D warnings, all tests (the README's second command; CI runs it).
test:
    bash scripts/test.sh

# weir flows vs Suricata and tshark on the ~216 MB benchmark capture.
bench-flows:
    bash scripts/bench-flows.sh

# Regenerate docs/FEATURES.md from the feature spec in code.
features-doc:
    bash scripts/weir.sh features --markdown > docs/FEATURES.md

# Fuzz the reader, decoder and flow table (TARGET: capture or packets) or the query language
# (query: parser, canonical text, evaluator), seeded from ../shared and the documented queries.
fuzz target="capture" seconds="600":
    bash scripts/fuzz.sh {{target}} {{seconds}}

# Train the shipped model (models/weir-mlp.onnx) from ../shared; same data and seed, same bytes.
train:
    bash scripts/weir.sh train -o models/weir-mlp.onnx

# Leave-one-source-out evaluation of the model and the behaviour detectors, the robustness
# corpus and the synthetic test suite (the figures of models/MODEL_CARD.md; ~20 min).
eval:
    bash scripts/weir.sh eval --withhold Heartbleed,Worms,Backdoor --markdown models/EVAL.md

# Federated learning, simulated through the real merge: 10 non-IID nodes, 20 rounds, against
# each node alone and centralized training, and under poisoning (models/FL.md; ~20 min).
fl-demo:
    bash scripts/weir.sh fl simulate --markdown models/FL.md

# weir (leave one source out) vs Suricata + ET Open on ../shared/labeled, one table (~25 min).
bench-detect:
    bash scripts/bench-detect.sh

# Flows/s through ONNX Runtime on the CPU at batch 1..65536, 1 and 2 threads, vs the CPU ceiling.
bench-classify:
    bash scripts/setup-ort.sh >/dev/null
    cargo run --release --locked -p weir-classify --example bench_classify -- models/weir-mlp.onnx

# The same on CUDA (needs an NVIDIA GPU; fetches the onnxruntime-gpu provider, see scripts/bench-gpu.sh).
bench-gpu:
    bash scripts/bench-gpu.sh

# Search at scale: 10M generated flow records (WEIR_BENCH_ROWS), four queries through the API,
# cold and warm p50/p95 against issue 16's targets.
bench-search:
    bash scripts/bench-search.sh

# weir serve under a heavy user: a 10,000-address IOC query, 50 searches at once, a 1M-row
# export and a 1 GiB upload, with the server's peak RSS against issue 29's targets.
bench-abuse:
    bash scripts/bench-abuse.sh

# (`just synth` is the CDK synth, below.)
# Labelled synthetic captures into synth/ (one per scenario; `weir synth --help` for more).
synth-captures *ARGS:
    bash scripts/weir.sh synth {{ARGS}}

# The function zips for AWS Lambda (cargo-lambda, x86_64, provided.al2023), sizes and glibc printed.
lambda-zips:
    bash scripts/lambda-zips.sh

# The CDK stack (infra/) synthesized offline and checked by cdk-nag, from the zips (docs/DEPLOY.md).
synth *ARGS: lambda-zips
    bash scripts/infra.sh synth {{ARGS}}

# Deploy the stack to the AWS account of your credentials (after `bash scripts/infra.sh cdk bootstrap`).
deploy *ARGS: lambda-zips
    bash scripts/infra.sh deploy {{ARGS}}

# Remove the stack from AWS (the capture bucket and its data are kept).
destroy *ARGS:
    bash scripts/infra.sh destroy {{ARGS}}

# The template assertions and cdk-nag (infra/test), then cdk synth of the three shapes.
infra-test:
    bash scripts/infra.sh test

# Through LocalStack's CloudFormation: bucket, notifications, queues, DLQs, functions, alarms.
# LocalStack (no Docker) on 127.0.0.1:4566, weir's CDK stack deployed to it, the real functions.
localstack-up:
    bash localstack/ctl.sh up

# The captures in the LocalStack bucket and their state (weir-status; --watch, --wait ID, --json).
localstack-captures *ARGS:
    bash localstack/ctl.sh captures {{ARGS}}

# Stop the functions and LocalStack (by PID).
localstack-down:
    bash localstack/ctl.sh down

# weir analyze MB/s vs suricata --runmode single on the benchmark capture, and the LocalStack
# end-to-end time from upload to done.
bench-pipeline:
    bash scripts/bench-pipeline.sh
