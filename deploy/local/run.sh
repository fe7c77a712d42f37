#!/usr/bin/env bash
# Runs the gateway on this machine against the PostHog emulator (an in-memory
# PostHog seeded with emulator/seed/demo.json), shows a first call from the
# CLI, from Python and from Node, and keeps serving until Ctrl-C.
#
#   deploy/local/run.sh                 gateway on :50051, emulator on :8010
#   GATEWAY_PORT=6000 EMULATOR_PORT=9000 ADMIN_PORT=9191 deploy/local/run.sh
#   deploy/local/run.sh --once          stop after the first calls
#
# Installs what is missing first (tools/install-deps.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

gateway_port="${GATEWAY_PORT:-50051}"
emulator_port="${EMULATOR_PORT:-8010}"
admin_port="${ADMIN_PORT:-9090}"
once=false
[[ "${1:-}" == "--once" ]] && once=true

bash tools/install-deps.sh
tools/bazel.sh build //server:posthog_gateway //emulator:posthog_emulator //client:posthog
bin="$root/bazel-bin"

work="$root/.cache/local"
rm -rf "$work"
mkdir -p "$work/keys" "$work/python"
chmod 700 "$work/keys"

# The emulator's demo keys, written as files the way a Kubernetes Secret is
# mounted: the gateway reads keys from files (or env), never from its config.
/usr/bin/python3 - "$root/emulator/seed/demo.json" "$work/keys" <<'PY'
import json, os, sys
seed = json.load(open(sys.argv[1]))
project = seed["projects"][0]
personal = next(k for k in seed["personal_api_keys"] if "*" in k["scopes"])
keys = {"project_api_key": project["api_token"],
        "personal_api_key": personal["value"],
        "feature_flags_secure_key": project.get("secret_api_token", "")}
for name, value in keys.items():
    if not value:
        continue
    path = os.path.join(sys.argv[2], name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, value.encode())
    os.close(fd)
print(project["id"], end="")
PY
project_id=1
cat > "$work/gateway.json" <<JSON
{
  "projects": [{
    "alias": "demo",
    "project_id": $project_id,
    "ingestion_host": "http://127.0.0.1:$emulator_port",
    "app_host": "http://127.0.0.1:$emulator_port",
    "project_api_key": {"file": "$work/keys/project_api_key"},
    "personal_api_key": {"file": "$work/keys/personal_api_key"},
    "feature_flags_secure_key": {"file": "$work/keys/feature_flags_secure_key"}
  }],
  "capture": {"spool_dir": "$work/spool"},
  "authorization": {"development_mode": true}
}
JSON

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_file() {  # file, process id, log, what
  for _ in $(seq 1 200); do
    [[ -s "$1" ]] && return 0
    if ! kill -0 "$2" 2>/dev/null; then
      echo "$4 exited; its log:" >&2
      cat "$3" >&2
      return 1
    fi
    sleep 0.05
  done
  echo "$4 did not start within 10 s; its log:" >&2
  cat "$3" >&2
  return 1
}

"$bin/emulator/posthog_emulator" --seed="$root/emulator/seed/demo.json" \
  --host=127.0.0.1 --port="$emulator_port" --port_file="$work/emulator.port" \
  2>"$work/emulator.log" &
pids+=($!)
wait_for_file "$work/emulator.port" "${pids[-1]}" "$work/emulator.log" "The emulator"

"$bin/server/posthog_gateway" --config="$work/gateway.json" --port="$gateway_port" \
  --port_file="$work/gateway.port" --admin_port="$admin_port" --drain_delay=0s \
  2>"$work/gateway.log" &
pids+=($!)
wait_for_file "$work/gateway.port" "${pids[-1]}" "$work/gateway.log" "The gateway"

target="localhost:$gateway_port"
echo "PostHog emulator on http://127.0.0.1:$emulator_port, gateway on $target," \
  "metrics on http://127.0.0.1:$admin_port/metrics"
echo
echo "\$ bazel-bin/client/posthog --target=$target user get"
"$bin/client/posthog" --target="$target" user get
echo
/usr/bin/protoc -I proto --python_out="$work/python" --grpc_python_out="$work/python" \
  --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin proto/posthog/v1/*.proto
echo "\$ python3 client/examples/get_current_user.py $target"
PYTHONPATH="$work/python" /usr/bin/python3 client/examples/get_current_user.py "$target"
echo
echo "\$ node client/examples/get_current_user.js $target"
node client/examples/get_current_user.js "$target"
echo

if $once; then
  exit 0
fi
echo "Serving; logs in $work/{gateway,emulator}.log. Ctrl-C to stop."
wait -n "${pids[@]}"
