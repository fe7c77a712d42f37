#!/usr/bin/env bash
# The feature-flag figures, side by side in one run on this machine:
#   bench/flags/run.sh [SECONDS_PER_RUN [ROUNDS]]   (default 5 s, 3 rounds)
# 1. the evaluator alone (Google Benchmark) vs posthog-node's local
#    getFeatureFlag on the same definitions and inputs;
# 2. EvaluateFlags for 50 flags over loopback vs the no-op unary ceiling
#    (Health/Check on the same gateway), p50/p99, with 8 callers
#    (throughput) and with one caller (latency: the fair comparison with
#    posthog-node, which evaluates one call at a time), and posthog-node's
#    getAllFlags in-process (in the same rounds) and remote (against the
#    emulator);
#    and the same loads against bench/flags/reply_bound_server, which
#    answers with the gateway's reply pre-encoded (no evaluation at all):
#    the most any evaluator could reach here, measured in turns with the
#    gateway within each load (below);
# 3. the values of the 50 flags for 200 ids, gateway vs posthog-node.
# The gateway runs with `server.access_log: "errors"` ($ACCESS_LOG to
# change it): the no-op ceiling, Health/Check, is never access-logged, so
# both sides of the comparison do the same per-call work but the
# evaluation. (At "all", each EvaluateFlags also writes a log line.)
# Builds with --config=opt. Prints figures; asserts nothing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
seconds="${1:-5}"
access_log="${ACCESS_LOG:-errors}"
rounds="${2:-3}"
# The transport bound's binary, in bench/flags/, and its arguments beyond
# --reply and --port_file (BOUND_ARGS=--gateway_transport=false serves it
# with gRPC's default server options instead of the gateway's).
bound="${BOUND:-reply_bound_server}"
read -r -a bound_args <<<"${BOUND_ARGS:-}"

tools/bazel.sh build --config=opt //bench/flags:all //server:posthog_gateway \
  //emulator:posthog_emulator >/dev/null 2>&1
bin="$root/bazel-out/k8-opt/bin"
work="$(mktemp -d /tmp/flagbench.XXXXXX)"
stack_pid=""
bound_pid=""
cleanup() {
  if [[ -n "$stack_pid" ]]; then kill -TERM "$stack_pid" 2>/dev/null || true; wait "$stack_pid" 2>/dev/null || true; fi
  if [[ -n "$bound_pid" ]]; then kill -TERM "$bound_pid" 2>/dev/null || true; wait "$bound_pid" 2>/dev/null || true; fi
  # KEEP_WORK=1 keeps the raw figures (each load's JSON, with its turns).
  if [[ -n "${KEEP_WORK:-}" ]]; then echo "== raw figures kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

/usr/bin/python3 bench/flags/make_seed.py "$work"

echo "== evaluator (Google Benchmark)" >&2
BENCH_FLAGS_DIR="$work" "$bin/bench/flags/evaluator_benchmark" --benchmark_format=json \
  >"$work/evaluator.json" 2>/dev/null

echo "== starting the emulator and the gateway (opt)" >&2
/usr/bin/python3 tests/harness/stack.py --env_file="$work/stack.env" --seed="$work/seed.json" \
  --bazel_bin="$bin" --extra_config="{\"server\": {\"access_log\": \"$access_log\"}}" 2>"$work/stack.log" &
stack_pid=$!
for _ in $(seq 600); do [[ -f "$work/stack.env" ]] && break; sleep 0.1; done
[[ -f "$work/stack.env" ]] || { cat "$work/stack.log" >&2; exit 1; }
# shellcheck disable=SC1091
source "$work/stack.env"
read -r PHC PHS < <(/usr/bin/python3 -c "
import json,sys; s=json.load(open('$work/seed.json')); p=[p for p in s['projects'] if p['id']==1][0]
print(p['api_token'], p['secret_api_token'])")

# The gateway's pid, for its CPU time per call (the newest one from this bin).
gateway_pid="$(pgrep -n -f "$bin/server/posthog_gateway" || echo 0)"

echo "== the transport bound: the gateway's reply, pre-encoded" >&2
"$bin/bench/flags/grpc_load" --target="$GATEWAY_TARGET" --method=save_reply \
  --inputs="$work/inputs.json" --out="$work/reply.bin"
"$bin/bench/flags/$bound" --reply="$work/reply.bin" --port_file="$work/bound.port" \
  "${bound_args[@]}" 2>"$work/bound.log" &
bound_pid=$!
for _ in $(seq 100); do [[ -f "$work/bound.port" ]] && break; sleep 0.1; done
[[ -f "$work/bound.port" ]] || { cat "$work/bound.log" >&2; exit 1; }
bound_target="127.0.0.1:$(cat "$work/bound.port")"

echo "== posthog-node" >&2
EMULATOR_URL="$EMULATOR_URL" PHC="$PHC" PHS="$PHS" BENCH_FLAGS_DIR="$work" \
  node bench/flags/node_local_eval.js >"$work/node.json"

# Each load measures the gateway and the transport bound in one phase, in
# turns of $SLICE_MS (default 250 ms; A B B A ..., each turn drained before
# the next; grpc_load --paired_target): this VM's speed drifts over seconds,
# and turns that short put both sides of each ratio on the same machine
# state. Both servers are up the whole time; the idle one costs nothing
# (grpc_load prints its CPU). Each side gets $seconds s of its own turns.
# The summary takes each figure's median over the rounds and each ratio's
# median over the rounds' pairs.
slice_ms="${SLICE_MS:-250}"
load() {  # load OUT_NAME METHOD THREADS
  "$bin/bench/flags/grpc_load" --target="$GATEWAY_TARGET" --server_pid="$gateway_pid" \
    --paired_target="$bound_target" --paired_server_pid="$bound_pid" --slice_ms="$slice_ms" \
    --method="$2" --seconds="$seconds" --threads="$3" --inputs="$work/inputs.json" >"$work/$1"
}
for round in $(seq "$rounds"); do
  echo "== round $round of $rounds: ceiling and EvaluateFlags (8 callers, then one)," \
    "each gateway and transport bound in turns, then posthog-node getAllFlags in-process" >&2
  load "health.$round.json" health 8
  load "evaluate.$round.json" evaluate_flags 8
  load "health_one.$round.json" health 1
  load "evaluate_one.$round.json" evaluate_flags 1
  ALL_LOCAL_SECONDS="$seconds" EMULATOR_URL="$EMULATOR_URL" PHC="$PHC" PHS="$PHS" \
    BENCH_FLAGS_DIR="$work" node bench/flags/node_local_eval.js >"$work/node_local.$round.json"
done
"$bin/bench/flags/grpc_load" --target="$GATEWAY_TARGET" --method=values \
  --inputs="$work/inputs.json" >"$work/gateway_values.json"

# Which malloc each side runs on: the comparison is fair only on the same.
allocator() {
  if readelf -d "$1" | grep -q 'NEEDED.*libtcmalloc'; then echo tcmalloc; else echo glibc; fi
}
echo "== $(nproc) cores, $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)," \
  "gateway access log: $access_log, allocator: gateway $(allocator "$bin/server/posthog_gateway")," \
  "transport bound ($bound ${BOUND_ARGS:-with the gateway server options}) $(allocator "$bin/bench/flags/$bound")"
echo "== command: bench/flags/run.sh $seconds $rounds${BOUND:+ (BOUND=$BOUND)}${BOUND_ARGS:+ (BOUND_ARGS=$BOUND_ARGS)}${SLICE_MS:+ (SLICE_MS=$SLICE_MS)}"
/usr/bin/python3 bench/flags/summarize.py "$work"
