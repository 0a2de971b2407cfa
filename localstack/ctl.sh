#!/usr/bin/env bash
# weir on LocalStack, no Docker: LocalStack as a host process on 127.0.0.1:4566
# (WEIR_LOCALSTACK_PORT: another port, so two stacks on one host do not collide), weir's CDK
# stack (infra/) deployed to it through CloudFormation (localstack/deploy.py: the bucket,
# S3 -> SQS notifications, queues, dead-letter queues, roles, functions with their event
# source mappings disabled, alarms), and the real function binaries under weir-lambda-local
# (the local Lambda service), run as the deployed functions are configured (queue, batch
# size, timeout). Everything started is stopped by PID.
#
#   ctl.sh up                 everything (idempotent: what runs is left running)
#   ctl.sh down               stop the functions, then LocalStack
#   ctl.sh start-localstack | stop-localstack | resources | start-functions | stop-functions
#   ctl.sh env                the variables a shell needs to talk to it (eval "$(ctl.sh env)")
#   ctl.sh status             what runs
#   ctl.sh captures [OPTS]    the captures in the bucket and their state (weir-status:
#                             --watch follows them, --wait ID waits for one, --json)
#
# Settings (environment): WEIR_LOCALSTACK_DIR (state, logs, PID files; default
# ~/.cache/weir/localstack-run), WEIR_BUCKET (weir), WEIR_FUNCTIONS_DIR (where the function
# binaries are; default: scripts/build.sh, the one release build the README's first command
# made), WEIR_CLASSIFIER (lambda | worker),
# WEIR_VISIBILITY (seconds before a failed message is delivered again; default: six times
# the timeout of the function that reads the queue (infra/settings.json), as AWS recommends
# for Lambda event sources: a message is never delivered again while an invocation may still
# work on it; the tests set a few seconds to see redelivery fast),
# WEIR_MAX_RECEIVES (deliveries before the dead-letter queue; 3), WEIR_LOCALSTACK_PERSIST (1: LocalStack's
# S3 and SQS state is saved in $WEIR_LOCALSTACK_DIR/state when it stops and loaded when it
# starts, see persist.py; 0: it starts empty every time, as localstack-core does).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
dir="${WEIR_LOCALSTACK_DIR:-$HOME/.cache/weir/localstack-run}"
bucket="${WEIR_BUCKET:-weir}"
max_receives="${WEIR_MAX_RECEIVES:-3}"
port="${WEIR_LOCALSTACK_PORT:-4566}"
endpoint="http://127.0.0.1:$port"
mkdir -p "$dir"

export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ENDPOINT_URL="$endpoint"

vbin=""
ensure_venv() { [ -n "$vbin" ] || vbin="$(bash "$here/install.sh")"; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pid() { # PIDFILE NAME: TERM, then KILL after 10 s
  local f="$1" name="$2"
  if alive "$f"; then
    local pid; pid="$(cat "$f")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$name (pid $pid) did not stop in 10 s: killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "stopped $name (pid $pid)" >&2
  fi
  rm -f "$f"
}

start_localstack() {
  if alive "$dir/localstack.pid"; then return 0; fi
  ensure_venv
  local bin="$vbin"
  mkdir -p "$dir/localstack-fs"
  # Its S3 and SQS state is saved on a clean stop and loaded on start (persist.py).
  local state=""
  [ "${WEIR_LOCALSTACK_PERSIST:-1}" = 0 ] || state="$dir/state"
  echo "starting LocalStack on $endpoint (log: $dir/localstack.log${state:+; state kept in $state})" >&2
  GATEWAY_LISTEN=127.0.0.1:$port GATEWAY_SERVER=hypercorn DNS_ADDRESS=0 \
  SERVICES=s3,sqs,cloudformation,iam,sts,lambda,logs,cloudwatch,events,sns \
  EAGER_SERVICE_LOADING=1 LOCALSTACK_HOST=127.0.0.1:$port SQS_ENDPOINT_STRATEGY=path \
  FILESYSTEM_ROOT="$dir/localstack-fs" DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
  WEIR_LOCALSTACK_STATE="$state" \
    setsid nohup "$bin/python" "$here/persist.py" > "$dir/localstack.log" 2>&1 < /dev/null &
  echo $! > "$dir/localstack.pid"
  for _ in $(seq 600); do
    if grep -q "^Ready\." "$dir/localstack.log" 2>/dev/null; then return 0; fi
    if ! alive "$dir/localstack.pid"; then
      echo "LocalStack exited while starting; its log:" >&2; tail -30 "$dir/localstack.log" >&2; exit 1
    fi
    sleep 0.1
  done
  echo "LocalStack not ready after 60 s; see $dir/localstack.log" >&2; exit 1
}

# LocalStack saves its state (persist.py) first thing when told to stop, then stops its
# services, which can take minutes while clients hold SQS long polls open: once the state is
# saved (its log says so), or after 120 s (10 s without persistence), it gets 5 s more
# before KILL.
stop_localstack() {
  local f="$dir/localstack.pid"
  if alive "$f"; then
    local pid; pid="$(cat "$f")" saved=0
    local mark; mark="$(grep -c "weir: saved LocalStack state" "$dir/localstack.log" 2>/dev/null || true)"
    local waits=1200; [ "${WEIR_LOCALSTACK_PERSIST:-1}" = 0 ] && waits=100
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq "$waits"); do
      kill -0 "$pid" 2>/dev/null || break
      [ "$(grep -c "weir: saved LocalStack state" "$dir/localstack.log" 2>/dev/null || true)" -gt "${mark:-0}" ] && { saved=1; break; }
      sleep 0.1
    done
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    echo "stopped LocalStack (pid $pid)$([ "$saved" = 1 ] && echo ", state saved in $dir/state")" >&2
  fi
  rm -f "$f"
}

# The stack (infra/, the one AWS gets) deployed through LocalStack's CloudFormation.
resources() {
  ensure_venv
  "$vbin/python" "$here/deploy.py" "$dir/stack" --bucket "$bucket" --max-receives "$max_receives" \
    ${WEIR_VISIBILITY:+--visibility "$WEIR_VISIBILITY"}
  echo "bucket s3://$bucket (uploads/ -> weir-uploads, fl/updates/*.json -> weir-fl), queues weir-uploads, weir-shards, weir-aggregate, weir-fl (+ -dlq, maxReceiveCount $max_receives), from the CDK stack" >&2
}

functions_dir() {
  if [ -n "${WEIR_FUNCTIONS_DIR:-}" ]; then echo "$WEIR_FUNCTIONS_DIR"; return; fi
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
  bash "$repo/scripts/setup-ort.sh" >/dev/null
  (cd "$repo" && bash scripts/build.sh >&2)
  echo "$CARGO_TARGET_DIR/release"
}

start_functions() {
  if alive "$dir/functions.pid"; then return 0; fi
  local bin; bin="$(functions_dir)"
  # Each deployed function (functions.json, written by deploy.py): its binary, its queue,
  # batch size and timeout; the classifier in two execution environments.
  [ -f "$dir/stack/functions.json" ] || { echo "no deployed stack in $dir/stack: run ctl.sh resources first" >&2; exit 1; }
  local fns=()
  mapfile -t fns < <(python3 - "$dir/stack/functions.json" "$repo/infra/settings.json" "$bin" "${WEIR_CLASSIFIER:-lambda}" "${WEIR_VISIBILITY:-}" <<'PY'
import json, sys
fns, settings, bin_, classifier, visibility = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3], sys.argv[4], sys.argv[5]
for f in fns:
    key = f["name"].split("-", 1)[1]
    if key == "classifier" and classifier != "lambda":
        continue
    spec = f"{key}={f['queues'][0]}={bin_}/{settings['functions'][key]['binary']},batch={f['batch']},timeout={f['timeout']}"
    if key == "classifier":
        spec += ",concurrency=2"
    if visibility:
        spec += f",visibility={visibility}"
    print("--function"); print(spec)
PY
)
  export WEIR_BUCKET="$bucket" WEIR_SHARD_QUEUE=weir-shards WEIR_AGGREGATE_QUEUE=weir-aggregate
  export WEIR_MAX_RECEIVES="$max_receives" WEIR_THREADS="${WEIR_THREADS:-1}"
  export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$(bash "$repo/scripts/setup-ort.sh")}"
  echo "starting the functions (log: $dir/functions.log)" >&2
  setsid nohup "$bin/weir-lambda-local" "${fns[@]}" > "$dir/functions.log" 2>&1 < /dev/null &
  echo $! > "$dir/functions.pid"
  if [ "${WEIR_CLASSIFIER:-lambda}" = worker ]; then
    setsid nohup "$bin/weir-worker" --visibility "${WEIR_VISIBILITY:-60}" > "$dir/worker.log" 2>&1 < /dev/null &
    echo $! > "$dir/worker.pid"
  fi
  sleep 0.5
  alive "$dir/functions.pid" || { echo "the functions did not start:" >&2; tail -20 "$dir/functions.log" >&2; exit 1; }
}

stop_functions() {
  stop_pid "$dir/worker.pid" weir-worker
  stop_pid "$dir/functions.pid" weir-lambda-local
}

case "${1:-}" in
  up)
    start_localstack; resources; start_functions
    cat >&2 <<EOT
weir is up on LocalStack. Upload a capture and watch it go to done:
  eval "\$(bash localstack/ctl.sh env)"
  aws s3 cp capture.pcap s3://$bucket/uploads/
  bash localstack/ctl.sh captures --wait uploads/capture.pcap     (or --watch; no option: a table)
Logs: $dir/{localstack,functions}.log.  Stop: just localstack-down
EOT
    ;;
  down) stop_functions; stop_localstack ;;
  start-localstack) start_localstack ;;
  stop-localstack) stop_localstack ;;
  resources) resources ;;
  start-functions) start_functions ;;
  stop-functions) stop_functions ;;
  env)
    echo "export AWS_ENDPOINT_URL=$endpoint AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=$AWS_DEFAULT_REGION AWS_REGION=$AWS_REGION"
    ensure_venv
    echo "export PATH=\"$vbin:\$PATH\""
    ;;
  captures)
    shift
    bin="$(CARGO_QUIET=-q functions_dir)"
    export WEIR_BUCKET="$bucket"
    exec "$bin/weir-status" "$@" ;;
  status)
    for p in localstack functions worker; do
      if alive "$dir/$p.pid"; then echo "$p: running (pid $(cat "$dir/$p.pid"))"; else echo "$p: stopped"; fi
    done ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
