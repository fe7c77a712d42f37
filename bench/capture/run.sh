#!/usr/bin/env bash
# Capture figures, side by side in one run on this machine, against the
# PostHog emulator (both processes and the load generators on the same cores):
#   1. client-streaming capture, durable spool on: events/s accepted by the
#      emulator, end to end (first event sent → last event stored);
#   2. the official posthog-node SDK sending the same events to the same
#      emulator;
#   3. unary CaptureEvent vs the no-op ceiling (grpc.health.v1.Health/Check
#      on the same gateway): calls/s, p50, p99, at 16 callers and at
#      --saturation_callers (128) where durable calls reach their capacity;
#      and the same loads on the durable transport bound,
#      bench/capture/deferred_bound_server --mode=deferred: CaptureEvent
#      over the gateway's transport, acknowledged from a committer thread
#      after the group's write and fdatasync in the spool's directory, with
#      nothing else done (no event, authorization, log or metric): the most
#      a durable call can reach here through gRPC 1.51 (bench/README.md);
#   4. the floor under a durable call: this disk's fdatasync latency
#      (p50/p90/p99/max) as the spool syncs, in the spool's directory, one
#      sync at a time, two and four at once (the overlapped group commit);
#   5. peak RSS of the gateway while the emulator refuses every batch
#      (connection reset) under streaming load;
# and, for 1 and 3, the gateway's (and the bound's) CPU per event or call (for 3 also its
# context switches per call, and both by kind of thread: gRPC's callback
# threads, the spool's committers, gRPC's executor, the rest), with the load
# average: when other work shares the machine, throughput drops but CPU and
# switches per call stay comparable between runs.
#
# Before/after comparisons: point POSTHOG_BAZEL_BIN at a directory holding
# the other build's server/, emulator/ and bench/capture/ binaries.
#
# Build first:
#   tools/bazel.sh build --config=opt //bench/capture:all \
#       //server:posthog_gateway //emulator:posthog_emulator
# Usage: bench/capture/run.sh [--events=N] [--sdk_events=N] [--seconds=N] [--outage_seconds=N]
#                             [--saturation_callers=N] [--fsyncs=N] [--stream_only]
# --stream_only runs 1 alone (about 10 s instead of minutes): the A/B of a
# change to the streaming path, alternating builds through POSTHOG_BAZEL_BIN.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${POSTHOG_BAZEL_BIN:-${repo_root}/bazel-out/k8-opt/bin}"
events=1000000
sdk_events=100000
seconds=10
outage_seconds=60
saturation_callers=128
fsync_count=1000
stream_only=0
for arg in "$@"; do
  case "${arg}" in
    --events=*) events="${arg#*=}" ;;
    --sdk_events=*) sdk_events="${arg#*=}" ;;
    --seconds=*) seconds="${arg#*=}" ;;
    --outage_seconds=*) outage_seconds="${arg#*=}" ;;
    --saturation_callers=*) saturation_callers="${arg#*=}" ;;
    --fsyncs=*) fsync_count="${arg#*=}" ;;
    --stream_only) stream_only=1 ;;
    *) echo "run.sh: unknown argument ${arg}" >&2; exit 2 ;;
  esac
done
load="${bin}/bench/capture/capture_load"
bound="${bin}/bench/capture/deferred_bound_server"
for binary in "${load}" "${bound}" "${bin}/server/posthog_gateway" "${bin}/emulator/posthog_emulator"; do
  [[ -x "${binary}" ]] || { echo "run.sh: ${binary} missing; build it (see the header)" >&2; exit 2; }
done

work="$(mktemp -d)"
harness_pid=""
bound_pid=""
cleanup() {
  local status=$?
  # A failed run keeps the gateway's and emulator's logs (the stack's
  # directory goes with the harness): they name the codes of failed calls.
  if (( status != 0 )) && [[ -n "${STACK_DIR:-}" && -d "${STACK_DIR}" ]]; then
    local kept
    kept="$(mktemp -d /tmp/capture-bench-logs.XXXXXX)"
    cp "${STACK_DIR}"/*.log "${kept}/" 2>/dev/null || true
    echo "run.sh: failed (exit ${status}); logs kept in ${kept}" >&2
  fi
  if [[ -n "${bound_pid}" ]]; then
    kill -TERM "${bound_pid}" 2>/dev/null || true
    wait "${bound_pid}" 2>/dev/null || true
  fi
  if [[ -n "${harness_pid}" ]]; then
    kill -TERM "${harness_pid}" 2>/dev/null || true
    wait "${harness_pid}" 2>/dev/null || true
  fi
  rm -rf "${work}"
}
trap cleanup EXIT

# The harness keeps a 256 KiB memory queue so that tests exercise backlogs
# read back from disk; the benchmark runs the shipped default (64 MiB,
# deploy/gateway.example.json), so a stream's messages are delivered from
# memory as in production unless delivery falls behind.
POSTHOG_BAZEL_BIN="${bin}" /usr/bin/python3 "${repo_root}/tests/harness/stack.py" \
    --extra_config='{"capture": {"memory_queue_bytes": 67108864}}' \
    --env_file="${work}/stack.env" 2>"${work}/harness.log" &
harness_pid=$!
for _ in $(seq 1 600); do [[ -s "${work}/stack.env" ]] && break; sleep 0.1; done
[[ -s "${work}/stack.env" ]] || { cat "${work}/harness.log" >&2; exit 1; }
# shellcheck disable=SC1091
source "${work}/stack.env"
token="$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["projects"][0]["api_token"])' \
    "${repo_root}/emulator/seed/demo.json")"
gateway_pid="$(pgrep -f -- "--config=${STACK_DIR}/gateway.json" | head -1)"
# The emulator is the streaming benchmark's sink and shares the cores: its CPU
# per event tells how much of the machine the sink takes.
emulator_pid="$(pgrep -f -- "--port_file=${STACK_DIR}/emulator.port" | head -1)"

# CPU seconds the gateway has used so far (utime + stime): per-event and
# per-call CPU stay comparable when other work shares the machine and
# throughput does not.
gateway_cpu() {  # [pid]: the gateway's, or another server's
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f\n", ($14 + $15) / hz}' "/proc/${1:-${gateway_pid}}/stat"
}
# Context switches of all the gateway's threads so far (voluntary and not):
# what a durable call costs beyond a no-op is mostly threads waking (see
# bench/README.md), and the count per call holds up when other work shares
# the machine. Threads that exited in between are not counted (the
# gateway's threads live as long as it does).
gateway_switches() {
  cat /proc/"${gateway_pid}"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s}'
}
# The same, and CPU ticks, by kind of thread, one line each: gRPC's callback
# threads, the spool's committers, gRPC's executor and the rest (where a
# durable call's switches and CPU go beyond a no-op's: bench/README.md).
gateway_threads() {  # file to write [pid]
  local task comm kind
  for task in /proc/"${2:-${gateway_pid}}"/task/*; do
    comm="$(cat "${task}/comm" 2>/dev/null)" || continue
    case "${comm}" in
      nexting_thread*) kind=callback ;;
      spool-commit) kind=spool ;;
      default-executo*) kind=executor ;;
      *) kind=other ;;
    esac
    echo "${kind} $(awk '/ctxt_switches/ {s += $2} END {print s + 0}' "${task}/status" 2>/dev/null)" \
      "$(sed 's/.*) //' "${task}/stat" 2>/dev/null | awk '{print $12 + $13}')"
  done | awk 'NF == 3 {s[$1] += $2; c[$1] += $3} END {for (k in s) print k, s[k], c[k]}' >"$1"
}
# Per call, by kind of thread: "callback 1.40 / 48 us, spool ..." (switches / CPU).
threads_per_call() {  # before_file after_file count
  /usr/bin/python3 - "$1" "$2" "$3" "$(getconf CLK_TCK)" <<'PY'
import sys
def load(path):
    return {k: (int(s), int(c)) for k, s, c in (line.split() for line in open(path))}
before, after = load(sys.argv[1]), load(sys.argv[2])
calls, hz = max(int(sys.argv[3]), 1), int(sys.argv[4])
parts = []
for kind in ("callback", "spool", "executor", "other"):
    s, c = after.get(kind, (0, 0))
    s0, c0 = before.get(kind, (0, 0))
    parts.append(f"{kind} {(s - s0) / calls:.2f} / {(c - c0) * 1e6 / hz / calls:.0f} us")
print(", ".join(parts))
PY
}
per_call() {  # before after count
  /usr/bin/python3 -c "print(f'{(${2} - ${1}) / max(${3}, 1):.2f}')"
}
cpu_us_per() {  # cpu_before cpu_after count
  /usr/bin/python3 -c "print(round((${2} - ${1}) * 1e6 / max(${3}, 1)))"
}
# The same to 0.01 us, for streamed events (a few us each).
cpu_us_per_event() {  # cpu_before cpu_after count
  /usr/bin/python3 -c "print(f'{(${2} - ${1}) * 1e6 / max(${3}, 1):.2f}')"
}
load_average() { cut -d' ' -f1-3 /proc/loadavg; }
load_at_start="$(load_average)"

stored() {
  curl -s "${EMULATOR_URL}/_emulator/health" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])'
}
now() { date +%s.%N; }
wait_stored() {  # target count; prints the time it was reached
  while (( $(stored) < $1 )); do sleep 0.02; done
  now
}
figure() { grep "^$1=" | cut -d= -f2; }

echo "== 1. client-streaming capture, durable spool (${events} events)"
before=$(stored)
cpu_before=$(gateway_cpu)
emulator_cpu_before=$(gateway_cpu "${emulator_pid}")
start=$(now)
"${load}" --target="${GATEWAY_TARGET}" --mode=stream --events="${events}" | tee "${work}/stream.txt"
sent=$(figure acknowledged_events < "${work}/stream.txt")
end=$(wait_stored $((before + sent)))
stream_rate=$(/usr/bin/python3 -c "print(round(${sent}/(${end}-${start})))")
stream_cpu=$(cpu_us_per_event "${cpu_before}" "$(gateway_cpu)" "${sent}")
stream_emulator_cpu=$(cpu_us_per_event "${emulator_cpu_before}" "$(gateway_cpu "${emulator_pid}")" "${sent}")
echo "stream_end_to_end_events_per_second=${stream_rate}"
echo "stream_gateway_cpu_us_per_event=${stream_cpu}"
echo "stream_emulator_cpu_us_per_event=${stream_emulator_cpu}"
if (( stream_only )); then
  echo "load_average_start_end=${load_at_start} / $(load_average)"
  exit 0
fi

echo "== 2. posthog-node, ${sdk_events} events to the same emulator"
node "${repo_root}/bench/capture/posthog_node_load.js" "${EMULATOR_URL}" "${token}" "${sdk_events}" |
  tee "${work}/sdk.txt"
sdk_rate=$(figure sdk_events_per_second < "${work}/sdk.txt")

echo "== 3. unary CaptureEvent vs no-op unary ceiling, and the durable transport bound (${seconds} s each)"
cpu_before=$(gateway_cpu)
switches_before=$(gateway_switches)
gateway_threads "${work}/threads0.txt"
"${load}" --target="${GATEWAY_TARGET}" --mode=noop --seconds="${seconds}" | tee "${work}/noop.txt"
cpu_after=$(gateway_cpu)
switches_after=$(gateway_switches)
gateway_threads "${work}/threads1.txt"
noop_cpu=$(cpu_us_per "${cpu_before}" "${cpu_after}" "$(figure calls < "${work}/noop.txt")")
noop_switches=$(per_call "${switches_before}" "${switches_after}" "$(figure calls < "${work}/noop.txt")")
"${load}" --target="${GATEWAY_TARGET}" --mode=unary --seconds="${seconds}" | tee "${work}/unary.txt"
unary_cpu=$(cpu_us_per "${cpu_after}" "$(gateway_cpu)" "$(figure calls < "${work}/unary.txt")")
unary_switches=$(per_call "${switches_after}" "$(gateway_switches)" "$(figure calls < "${work}/unary.txt")")
gateway_threads "${work}/threads2.txt"
noop_threads=$(threads_per_call "${work}/threads0.txt" "${work}/threads1.txt" \
  "$(figure calls < "${work}/noop.txt")")
unary_threads=$(threads_per_call "${work}/threads1.txt" "${work}/threads2.txt" \
  "$(figure calls < "${work}/unary.txt")")
# The durable transport bound, in the same directory (the same disk) as the
# spool; its group file is unlinked at once. Its committer thread is named
# as the spool's are, so its rows split the same way.
"${bound}" --mode=deferred --dir="${STACK_DIR}" --port_file="${work}/bound.port" \
    2>"${work}/bound.log" &
bound_pid=$!
for _ in $(seq 1 100); do [[ -s "${work}/bound.port" ]] && break; sleep 0.1; done
[[ -s "${work}/bound.port" ]] || { cat "${work}/bound.log" >&2; exit 1; }
bound_target="127.0.0.1:$(cat "${work}/bound.port")"
bound_cpu_before=$(gateway_cpu "${bound_pid}")
gateway_threads "${work}/bound_threads0.txt" "${bound_pid}"
"${load}" --target="${bound_target}" --mode=unary --seconds="${seconds}" | tee "${work}/bound.txt"
bound_cpu=$(cpu_us_per "${bound_cpu_before}" "$(gateway_cpu "${bound_pid}")" \
  "$(figure calls < "${work}/bound.txt")")
gateway_threads "${work}/bound_threads1.txt" "${bound_pid}"
bound_threads=$(threads_per_call "${work}/bound_threads0.txt" "${work}/bound_threads1.txt" \
  "$(figure calls < "${work}/bound.txt")")
# Throughput as capacity: each at enough callers to saturate it. Durable
# calls wait for a group commit, so they need more callers in flight than a
# no-op does to reach their ceiling (the no-op saturates the CPU by 16).
echo "== 3b. the same at ${saturation_callers} callers, and on the durable transport bound"
cpu_before=$(gateway_cpu)
"${load}" --target="${GATEWAY_TARGET}" --mode=noop --threads="${saturation_callers}" \
    --seconds="${seconds}" | tee "${work}/noop_sat.txt"
cpu_after=$(gateway_cpu)
noop_sat_cpu=$(cpu_us_per "${cpu_before}" "${cpu_after}" "$(figure calls < "${work}/noop_sat.txt")")
"${load}" --target="${GATEWAY_TARGET}" --mode=unary --threads="${saturation_callers}" \
    --seconds="${seconds}" | tee "${work}/unary_sat.txt"
unary_sat_cpu=$(cpu_us_per "${cpu_after}" "$(gateway_cpu)" "$(figure calls < "${work}/unary_sat.txt")")
bound_cpu_before=$(gateway_cpu "${bound_pid}")
"${load}" --target="${bound_target}" --mode=unary --threads="${saturation_callers}" \
    --seconds="${seconds}" | tee "${work}/bound_sat.txt"
bound_sat_cpu=$(cpu_us_per "${bound_cpu_before}" "$(gateway_cpu "${bound_pid}")" \
  "$(figure calls < "${work}/bound_sat.txt")")
kill -TERM "${bound_pid}" 2>/dev/null || true
wait "${bound_pid}" 2>/dev/null || true
bound_pid=""

echo "== 4. fdatasync latency of the spool's disk (${fsync_count} syncs, 1, 2 and 4 at once)"
"${load}" --mode=fsync --dir="${STACK_DIR}" --syncs="${fsync_count}" --sync_threads=1 |
  tee "${work}/fsync1.txt"
"${load}" --mode=fsync --dir="${STACK_DIR}" --syncs="${fsync_count}" --sync_threads=2 |
  tee "${work}/fsync2.txt"
"${load}" --mode=fsync --dir="${STACK_DIR}" --syncs="${fsync_count}" --sync_threads=4 |
  tee "${work}/fsync4.txt"

echo "== 5. peak RSS during a ${outage_seconds} s emulator outage under streaming load"
curl -s -X POST -d '[{"route": "batch", "reset_rate": 1}]' "${EMULATOR_URL}/_emulator/faults" >/dev/null
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/${gateway_pid}/status")
outage_end=$(( $(date +%s) + outage_seconds ))
outage_events=0
spool_full=0
while (( $(date +%s) < outage_end )); do
  "${load}" --target="${GATEWAY_TARGET}" --mode=stream --events=200000 > "${work}/outage.txt" 2>/dev/null || true
  acknowledged=$(figure acknowledged_events < "${work}/outage.txt" || true)
  full=$(figure spool_full_streams < "${work}/outage.txt" || true)
  outage_events=$(( outage_events + ${acknowledged:-0} ))
  spool_full=$(( spool_full + ${full:-0} ))
  # Once the spool is full, only RESOURCE_EXHAUSTED comes back: pace retries.
  (( ${full:-0} == 0 )) || sleep 1
done
peak_rss=$(awk '/VmHWM/ {print $2}' "/proc/${gateway_pid}/status")
rss_outage=$(awk '/VmRSS/ {print $2}' "/proc/${gateway_pid}/status")
spool_bytes=$(du -sb "${STACK_DIR}/spool" | cut -f1)
curl -s -X POST -d '[]' "${EMULATOR_URL}/_emulator/faults" >/dev/null
echo "outage_acknowledged_events=${outage_events} spool_bytes=${spool_bytes} streams_refused_spool_full=${spool_full}"
echo "rss_kib_before=${rss_before} rss_kib_end_of_outage=${rss_outage} peak_rss_kib=${peak_rss}"

unary_rate=$(figure calls_per_second < "${work}/unary.txt")
noop_rate=$(figure calls_per_second < "${work}/noop.txt")
echo
echo "== Figures"
row() { printf '%-62s %s\n' "$1" "$2"; }
row "load average at start / end (1, 5, 15 min)" "${load_at_start} / $(load_average)"
row "client-streaming capture, durable, end to end (events/s)" "${stream_rate}"
row "  gateway CPU per streamed event (us)" "${stream_cpu}"
row "  emulator (the sink) CPU per streamed event (us)" "${stream_emulator_cpu}"
row "posthog-node SDK, same events, same emulator (events/s)" "${sdk_rate}"
row "gateway / SDK" "$(/usr/bin/python3 -c "print(f'{${stream_rate}/${sdk_rate}:.1f}x')")"
row "unary CaptureEvent (calls/s, p50 us, p99 us)" \
  "${unary_rate}, $(figure p50_us < "${work}/unary.txt"), $(figure p99_us < "${work}/unary.txt")"
row "no-op unary Health/Check ceiling (calls/s, p50 us, p99 us)" \
  "${noop_rate}, $(figure p50_us < "${work}/noop.txt"), $(figure p99_us < "${work}/noop.txt")"
row "unary / ceiling" "$(/usr/bin/python3 -c "print(f'{${unary_rate}/${noop_rate}:.0%}')")"
row "  gateway CPU per call, unary / no-op (us)" "${unary_cpu} / ${noop_cpu}"
row "  gateway context switches per call, unary / no-op" "${unary_switches} / ${noop_switches}"
row "  by thread, unary (switches / CPU per call)" "${unary_threads}"
row "  by thread, no-op (switches / CPU per call)" "${noop_threads}"
bound_rate=$(figure calls_per_second < "${work}/bound.txt")
row "durable transport bound, 16 callers (calls/s, p50 us, p99 us)" \
  "${bound_rate}, $(figure p50_us < "${work}/bound.txt"), $(figure p99_us < "${work}/bound.txt")"
row "  bound / ceiling; unary / bound" \
  "$(/usr/bin/python3 -c "print(f'{${bound_rate}/${noop_rate}:.0%}; {${unary_rate}/${bound_rate}:.0%}')")"
row "  CPU per call, bound / no-op (us)" \
  "${bound_cpu} / ${noop_cpu} ($(/usr/bin/python3 -c "print(f'{${bound_cpu}/max(${noop_cpu},1):.2f}x')"); unary $(/usr/bin/python3 -c "print(f'{${unary_cpu}/max(${noop_cpu},1):.2f}x')"))"
row "  by thread, bound (switches / CPU per call)" "${bound_threads}"
unary_sat=$(figure calls_per_second < "${work}/unary_sat.txt")
noop_sat=$(figure calls_per_second < "${work}/noop_sat.txt")
best_noop=$(( noop_sat > noop_rate ? noop_sat : noop_rate ))
row "unary at ${saturation_callers} callers (calls/s, p50 us, p99 us)" \
  "${unary_sat}, $(figure p50_us < "${work}/unary_sat.txt"), $(figure p99_us < "${work}/unary_sat.txt")"
row "no-op at ${saturation_callers} callers (calls/s, p50 us, p99 us)" \
  "${noop_sat}, $(figure p50_us < "${work}/noop_sat.txt"), $(figure p99_us < "${work}/noop_sat.txt")"
row "unary / ceiling at capacity (best no-op of both runs)" \
  "$(/usr/bin/python3 -c "print(f'{${unary_sat}/${best_noop}:.0%}')")"
bound_sat=$(figure calls_per_second < "${work}/bound_sat.txt")
row "durable transport bound, ${saturation_callers} callers (calls/s, p50 us, p99 us)" \
  "${bound_sat}, $(figure p50_us < "${work}/bound_sat.txt"), $(figure p99_us < "${work}/bound_sat.txt")"
row "  bound / ceiling at capacity; unary / bound" \
  "$(/usr/bin/python3 -c "print(f'{${bound_sat}/${best_noop}:.0%}; {${unary_sat}/${bound_sat}:.0%}')")"
row "  CPU per call at ${saturation_callers} callers, unary / bound / no-op (us)" \
  "${unary_sat_cpu} / ${bound_sat_cpu} / ${noop_sat_cpu}"
fsync_row() {  # file
  echo "$(figure fsync_p50_us < "$1") / $(figure fsync_p90_us < "$1") / $(figure fsync_p99_us < "$1") / $(figure fsync_max_us < "$1"), $(figure fsyncs_per_second < "$1")"
}
row "fdatasync, one at a time (p50/p90/p99/max us, syncs/s)" "$(fsync_row "${work}/fsync1.txt")"
row "fdatasync, two at once (p50/p90/p99/max us, syncs/s)" "$(fsync_row "${work}/fsync2.txt")"
row "fdatasync, four at once (p50/p90/p99/max us, syncs/s)" "$(fsync_row "${work}/fsync4.txt")"
row "peak RSS over the run incl. ${outage_seconds} s outage under load (MiB)" "$(( peak_rss / 1024 ))"
