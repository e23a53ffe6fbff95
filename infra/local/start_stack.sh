#!/usr/bin/env bash
# A local stack for trying judgeflow's deployments by hand, all on 127.0.0.1:
#   Prefect server (+ UI)  :PREFECT_PORT (4200)
#   provider simulator     :SIM_PORT     (8090)  OpenAI- and Anthropic-compatible, fake judge
#   moto S3 server         :S3_PORT      (9000)  bucket judgeflow-datasets
#   a process worker on the judgeflow-local pool, and every deployment deployed.
#
#   infra/local/start_stack.sh          # start (idempotent: running parts are left alone)
#   infra/local/start_stack.sh status
#   infra/local/start_stack.sh stop     # stops only the processes this script started
#
# State (PIDs, logs, Prefect home, outputs) lives in $JUDGEFLOW_STACK_DIR (.judgeflow/stack).
# Only fake credentials are used: the simulator and moto accept any key.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${JUDGEFLOW_STACK_DIR:-$ROOT/.judgeflow/stack}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
BIN="$(dirname "$PY")"
PREFECT_PORT="${PREFECT_PORT:-4200}"
SIM_PORT="${SIM_PORT:-8090}"
S3_PORT="${S3_PORT:-9000}"
BUCKET="${JUDGEFLOW_BUCKET:-judgeflow-datasets}"

export PREFECT_HOME="$STATE/prefect-home"
export PREFECT_API_URL="http://127.0.0.1:${PREFECT_PORT}/api"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# Fake credentials for the simulator and moto only (never real keys in this script).
FAKE_ENV=(OPENAI_API_KEY=sim-key ANTHROPIC_API_KEY=sim-key
          AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1)

running() { [[ -f "$STATE/$1.pid" ]] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

start_bg() {  # name, command...: start in the background unless already running
  local name="$1"; shift
  if running "$name"; then echo "$name already running (pid $(cat "$STATE/$name.pid"))"; return; fi
  nohup "$@" >"$STATE/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
  echo "started $name (pid $!, log $STATE/$name.log)"
}

wait_http() {  # url, what, seconds
  "$PY" - "$1" "$2" "$3" <<'EOF'
import sys, time, urllib.request
url, what, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline = time.monotonic() + limit
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(url, timeout=2)
        sys.exit(0)
    except Exception as exc:  # noqa: BLE001 - any answer other than success means "not yet"
        if getattr(exc, "code", None):  # an HTTP error status still means the server is up
            sys.exit(0)
        time.sleep(0.5)
sys.exit(f"{what} not reachable at {url} after {limit:.0f}s")
EOF
}

start() {
  mkdir -p "$STATE" "$PREFECT_HOME" "$STATE/out"
  cd "$ROOT"

  start_bg server "$BIN/prefect" server start --host 127.0.0.1 --port "$PREFECT_PORT"
  start_bg s3 "$BIN/moto_server" -H 127.0.0.1 -p "$S3_PORT"
  start_bg simulator "$PY" -c '
import signal, sys
from judgeflow.simulator import Simulator, SimulatorConfig
sim = Simulator(SimulatorConfig(host="127.0.0.1", port=int(sys.argv[1]))).start()
print("simulator on", sim.url, flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
sim.stop()
' "$SIM_PORT"

  wait_http "$PREFECT_API_URL/health" "Prefect server" 90
  wait_http "http://127.0.0.1:$S3_PORT/" "moto S3" 30
  wait_http "http://127.0.0.1:$SIM_PORT/" "simulator" 30

  env "${FAKE_ENV[@]}" "$PY" -c '
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
if sys.argv[2] not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
    s3.create_bucket(Bucket=sys.argv[2])
print("bucket", sys.argv[2], "ready")
' "http://127.0.0.1:$S3_PORT" "$BUCKET"

  "$PY" "$ROOT/infra/setup_pools.py"
  # JUDGEFLOW_PROJECT_DIR must NOT be set while deploying: the build-local pull step keeps the
  # placeholder and the worker fills it in from its own environment when a run starts.
  env -u JUDGEFLOW_PROJECT_DIR "$BIN/prefect" --no-prompt deploy --all \
    --prefect-file deployments/prefect.yaml >"$STATE/deploy.log" 2>&1 \
    || { tail -40 "$STATE/deploy.log"; exit 1; }
  echo "deployed (log $STATE/deploy.log)"

  start_bg worker env JUDGEFLOW_PROJECT_DIR="$ROOT" "${FAKE_ENV[@]}" \
    "$BIN/prefect" worker start --pool judgeflow-local --type process

  "$PY" -m infra.local.params --simulator "http://127.0.0.1:$SIM_PORT" \
    --s3 "http://127.0.0.1:$S3_PORT" --bucket "$BUCKET" --out-dir "$STATE/out" >"$STATE/params.json"

  cat <<EOF

Local stack is up.
  UI:        http://127.0.0.1:$PREFECT_PORT   (Deployments > build-local > Run > Custom run)
  API:       export PREFECT_API_URL=$PREFECT_API_URL PREFECT_HOME=$PREFECT_HOME
  Run once with judges on the simulator and publishing to moto:
    $BIN/prefect deployment run 'build-preference-dataset/build-local' --params "\$(cat $STATE/params.json)" --watch
  (the flow name in the deployment name is the build flow's name: see 'prefect deployment ls')
  Published objects:
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws --endpoint-url http://127.0.0.1:$S3_PORT s3 ls --recursive s3://$BUCKET/
  Stop: $0 stop
EOF
}

stop() {  # worker first, server last, each one gone before the next (the worker needs the API)
  local name pid i
  for name in worker simulator s3 server; do
    if running "$name"; then
      pid="$(cat "$STATE/$name.pid")"
      kill "$pid"
      for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; echo "stopped $name (forced: it did not exit within 15 s of SIGTERM)"; else echo "stopped $name"; fi
    fi
    rm -f "$STATE/$name.pid"
  done
}

status() {
  local name
  for name in server s3 simulator worker; do
    if running "$name"; then echo "$name: running (pid $(cat "$STATE/$name.pid"))"; else echo "$name: stopped"; fi
  done
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
