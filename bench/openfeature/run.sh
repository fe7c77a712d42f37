#!/usr/bin/env bash
# One caller's p50/p99 through OpenFeature (flagd provider, ResolveAll) next
# to EvaluateFlag(s) and posthog-node's in-process evaluation, on the flags
# of bench/flags/make_seed.py, in one run on this machine:
#   bench/openfeature/run.sh [CALLS [ROUNDS]]   (default 2000 calls, 3 rounds)
# Builds the gateway and emulator with --config=opt. Prints figures; asserts
# nothing. Bounded: CALLS x ROUNDS sequential calls per measure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
calls="${1:-2000}"
rounds="${2:-3}"

tools/bazel.sh build --config=opt //server:posthog_gateway //emulator:posthog_emulator \
  >/dev/null 2>&1
bin="$root/bazel-out/k8-opt/bin"
work="$(mktemp -d /tmp/ofbench.XXXXXX)"
stack_pid=""
cleanup() {
  if [[ -n "$stack_pid" ]]; then kill -TERM "$stack_pid" 2>/dev/null || true; wait "$stack_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

/usr/bin/python3 bench/flags/make_seed.py "$work"
# Access log on errors only, as bench/flags/run.sh: the figures are the
# evaluation paths, not a log line per call.
/usr/bin/python3 tests/harness/stack.py --env_file="$work/stack.env" --seed="$work/seed.json" \
  --bazel_bin="$bin" --extra_config='{"server": {"access_log": "errors"}}' 2>"$work/stack.log" &
stack_pid=$!
for _ in $(seq 600); do [[ -f "$work/stack.env" ]] && break; sleep 0.1; done
[[ -f "$work/stack.env" ]] || { cat "$work/stack.log" >&2; exit 1; }
# shellcheck disable=SC1091
source "$work/stack.env"
read -r PHC PHS < <(/usr/bin/python3 -c "
import json,sys; s=json.load(open('$work/seed.json')); p=[p for p in s['projects'] if p['id']==1][0]
print(p['api_token'], p['secret_api_token'])")

echo "== $(nproc) cores, $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
GATEWAY_TARGET="$GATEWAY_TARGET" EMULATOR_URL="$EMULATOR_URL" PHC="$PHC" PHS="$PHS" \
  BENCH_FLAGS_DIR="$work" CALLS="$calls" ROUNDS="$rounds" node bench/openfeature/bench.js
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
