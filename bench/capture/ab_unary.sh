#!/usr/bin/env bash
# A/B of gateway builds on durable unary CaptureEvent. Each round, each build
# (the order reversed every other round) gets a fresh stack
# (tests/harness/stack.py: gateway and emulator) and `capture_load
# --mode=unary` at 16 and 128 callers for SECONDS each; it prints calls/s,
# the gateway's CPU per call (utime + stime from /proc, as run.sh) and its
# mallocs per call (`perf stat -e probe_libc:malloc` over a separate 2 s load
# of the same callers; needs `perf probe -x libc.so.6 malloc` once, as root,
# else 0). Figures only: nothing is asserted. Take QUIET first (TEAM.md).
#
# Each DIR is a tree like bazel-bin holding server/posthog_gateway,
# emulator/posthog_emulator and bench/capture/capture_load of one build
# (`tools/bazel.sh build --config=opt //server:posthog_gateway
# //bench/capture:all //emulator:posthog_emulator`, copied aside).
# Usage: bench/capture/ab_unary.sh ROUNDS SECONDS DIR_A DIR_B [DIR...]
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
(( $# >= 3 )) || { sed -n 2,15p "$0"; exit 2; }
rounds=$1; seconds=$2; shift 2
dirs=("$@")
hz=$(getconf CLK_TCK)
cpu() { awk -v hz="$hz" '{printf "%.3f\n", ($14 + $15) / hz}' "/proc/$1/stat"; }
fig() { grep -o "$1=[0-9.]*" | head -1 | cut -d= -f2; }
for round in $(seq 1 "$rounds"); do
  order=("${dirs[@]}")
  if (( round % 2 == 0 )); then order=(); for ((i=${#dirs[@]}-1; i>=0; i--)); do order+=("${dirs[$i]}"); done; fi
  for dir in "${order[@]}"; do
    work=$(mktemp -d)
    POSTHOG_BAZEL_BIN="$dir" /usr/bin/python3 "$repo/tests/harness/stack.py" --env_file="$work/stack.env" 2>"$work/harness.log" &
    hp=$!
    for _ in $(seq 1 600); do [[ -s "$work/stack.env" ]] && break; sleep 0.1; done
    [[ -s "$work/stack.env" ]] || { cat "$work/harness.log" >&2; exit 1; }
    # shellcheck disable=SC1091
    source "$work/stack.env"
    gp="$(pgrep -f -- "--config=${STACK_DIR}/gateway.json" | head -1)"
    load="$dir/bench/capture/capture_load"
    # Warm-up (channels, the spool's first segment).
    "$load" --target="$GATEWAY_TARGET" --mode=unary --threads=16 --seconds=1 >/dev/null 2>&1
    for callers in 16 128; do
      c0=$(cpu "$gp")
      out=$("$load" --target="$GATEWAY_TARGET" --mode=unary --threads=$callers --seconds="$seconds" 2>&1)
      c1=$(cpu "$gp")
      calls=$(echo "$out" | fig calls); rate=$(echo "$out" | fig calls_per_second)
      us=$(python3 -c "print(f'{($c1-$c0)*1e6/max($calls,1):.1f}')")
      m=$(perf stat -x, -e probe_libc:malloc -p "$gp" -- "$load" --target="$GATEWAY_TARGET" --mode=unary --threads=$callers --seconds=2 2>&1 >"$work/m.txt" | grep probe_libc | cut -d, -f1)
      mcalls=$(fig calls < "$work/m.txt")
      mpc=$(python3 -c "print(f'{${m:-0}/max(${mcalls:-1},1):.1f}')")
      echo "round=$round build=$(basename "$dir") callers=$callers calls_per_second=$rate cpu_us_per_call=$us mallocs_per_call=$mpc load=$(cut -d' ' -f1 /proc/loadavg)"
    done
    kill -TERM "$hp"; wait "$hp" 2>/dev/null
    rm -rf "$work"
  done
done
