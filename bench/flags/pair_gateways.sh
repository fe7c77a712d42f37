#!/usr/bin/env bash
# Two gateway binaries (an old and a new build, or one binary under two
# environments) against each other, in turns within each load:
#   bench/flags/pair_gateways.sh OLD_GATEWAY NEW_GATEWAY [SECONDS [ROUNDS]]
# (default 5 s, 3 rounds). OLD_ENV / NEW_ENV (e.g. "FOO=1") set a variable
# for one side only. Copy a build's bazel-out/k8-opt/bin/server/posthog_gateway
# aside before building the other. Each side runs its own stack
# (tests/harness/stack.py, the emulator from this checkout's opt build,
# access log "errors" as in run.sh); each load (Health/Check and
# EvaluateFlags, 8 callers then one) runs grpc_load --paired_target, so the
# two sides take 250 ms turns (A B B A ...) and share the VM's drift.
# Prints per round and the median over rounds: calls/s old/new, server CPU
# per call old - new (from /proc), p50 old/new. Asserts nothing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
[[ $# -ge 2 ]] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
old="$(realpath "$1")"
new="$(realpath "$2")"
seconds="${3:-5}"
rounds="${4:-3}"

tools/bazel.sh build --config=opt //bench/flags:grpc_load //emulator:posthog_emulator \
  >/dev/null 2>&1
bin="$root/bazel-out/k8-opt/bin"
work="$(mktemp -d /tmp/pairgw.XXXXXX)"
stacks=()
cleanup() {
  for pid in "${stacks[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
/usr/bin/python3 bench/flags/make_seed.py "$work" >/dev/null

# One bazel-bin-like directory per side, so that stack.py starts that
# side's gateway and each side's pid is found by its path.
declare -A target pid
for side in old new; do
  mkdir -p "$work/$side/server" "$work/$side/emulator"
  binary="$old" side_env="${OLD_ENV:-}"
  if [[ $side == new ]]; then binary="$new" side_env="${NEW_ENV:-}"; fi
  ln -s "$binary" "$work/$side/server/posthog_gateway"
  ln -s "$bin/emulator/posthog_emulator" "$work/$side/emulator/posthog_emulator"
  # shellcheck disable=SC2086
  env $side_env /usr/bin/python3 tests/harness/stack.py --env_file="$work/$side.env" \
    --seed="$work/seed.json" --bazel_bin="$work/$side" \
    --extra_config='{"server": {"access_log": "errors"}}' 2>"$work/$side.log" &
  stacks+=($!)
  for _ in $(seq 600); do [[ -f "$work/$side.env" ]] && break; sleep 0.1; done
  [[ -f "$work/$side.env" ]] || { cat "$work/$side.log" >&2; exit 1; }
  target[$side]="$(sed -n 's/^GATEWAY_TARGET=//p' "$work/$side.env")"
  pid[$side]="$(pgrep -n -f "$work/$side/server/posthog_gateway")"
done

for round in $(seq "$rounds"); do
  echo "== round $round of $rounds" >&2
  for load in "health 8" "evaluate_flags 8" "health 1" "evaluate_flags 1"; do
    read -r method threads <<<"$load"
    "$bin/bench/flags/grpc_load" --target="${target[old]}" --server_pid="${pid[old]}" \
      --paired_target="${target[new]}" --paired_server_pid="${pid[new]}" --slice_ms=250 \
      --method="$method" --seconds="$seconds" --threads="$threads" \
      --inputs="$work/inputs.json" >"$work/$method.$threads.$round.json"
  done
done

echo "== $(nproc) cores, $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== command: bench/flags/pair_gateways.sh $1 $2 $seconds $rounds" \
  "${OLD_ENV:+(OLD_ENV=$OLD_ENV)} ${NEW_ENV:+(NEW_ENV=$NEW_ENV)}"
/usr/bin/python3 - "$work" <<'EOF'
import collections, glob, json, os, statistics, sys

loads = collections.defaultdict(list)
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    name = os.path.basename(path)
    if name.count(".") != 3:
        continue  # Not a load (inputs.json, seed.json).
    method, threads, _, _ = name.split(".")
    with open(path, encoding="utf-8") as f:
        old, new = json.load(f)["sides"]
    loads[f"{method}, {threads} caller(s)"].append((old, new))
for load, rounds in loads.items():
    rps = [o["rps"] / n["rps"] for o, n in rounds]
    cpu = [o["server_cpu_us_per_call"] - n["server_cpu_us_per_call"] for o, n in rounds]
    p50 = [o["p50_us"] / n["p50_us"] for o, n in rounds]
    print(f"{load}: calls/s old/new {statistics.median(rps):.3f} "
          f"({', '.join(f'{r:.3f}' for r in rps)}); "
          f"server CPU per call old - new {statistics.median(cpu):+.2f} us "
          f"({', '.join(f'{c:+.1f}' for c in cpu)}); "
          f"p50 old/new {statistics.median(p50):.3f} ({', '.join(f'{p:.3f}' for p in p50)})")
EOF
