#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/BUILD with clang and runs each
# one for a bounded time from its corpus in the repository:
#   tests/fuzz/run.sh                 # every fuzzer, FUZZ_SECONDS (20) each
#   FUZZ_SECONDS=600 tests/fuzz/run.sh evaluator   # a longer run of one
# Bazel's toolchain is gcc; the clang build has its own output root
# (POSTHOG_GATEWAY_FUZZ_ROOT), so the gcc build's outputs and analysis cache
# are untouched, and its own Bazel server, shut down at the end (set
# FUZZ_KEEP_SERVER=1 to keep it for repeated runs). New inputs libFuzzer
# finds go to a temporary directory, not to the corpus; a crash leaves its
# input in FUZZ_ARTIFACTS (default: a temporary directory) and fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

seconds="${FUZZ_SECONDS:-20}"
fuzz_root="${POSTHOG_GATEWAY_FUZZ_ROOT:-$HOME/.cache/posthog-gateway/bazel-fuzz}"
startup=("--output_user_root=$fuzz_root" "--host_jvm_args=-Xmx2g")
work="$(mktemp -d)"
artifacts="${FUZZ_ARTIFACTS:-$work/artifacts}"
mkdir -p "$artifacts"

cleanup() {
  if [[ -z "${FUZZ_KEEP_SERVER:-}" ]]; then
    tools/bazel.sh "${startup[@]}" shutdown >/dev/null 2>&1 || true
  fi
  rm -rf "$work/new"
}
trap cleanup EXIT

if (($#)); then
  names=("$@")
else
  # The fuzzers are the folders of tests/fuzz/corpus (cc_fuzzer requires one).
  names=()
  for dir in tests/fuzz/corpus/*/; do
    names+=("$(basename "$dir")")
  done
fi

targets=()
for name in "${names[@]}"; do
  targets+=("//tests/fuzz:${name}_fuzzer")
done
tools/bazel.sh "${startup[@]}" build --config=fuzz "${targets[@]}"
bin="$(tools/bazel.sh "${startup[@]}" info --config=fuzz bazel-bin 2>/dev/null)"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
for name in "${names[@]}"; do
  mkdir -p "$work/new/$name"
  echo "fuzz: $name for ${seconds}s"
  if ! "$bin/tests/fuzz/${name}_fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$name-" \
    "$work/new/$name" "tests/fuzz/corpus/$name" >"$work/$name.log" 2>&1; then
    tail -n 60 "$work/$name.log"
    echo "fuzz: $name FAILED; the input is in $artifacts/ (add it to tests/fuzz/corpus/$name/ with the fix)"
    # The artifacts directory of a CI run is gone with its machine: print
    # small inputs too, so that the log alone reproduces the failure
    # (base64 -d > input; the fuzzer binary with the input as its argument).
    for input in "$artifacts/$name"-*; do
      [[ -f "$input" ]] || continue
      if (($(stat -c %s "$input") <= 8192)); then
        echo "fuzz: $(basename "$input") in base64:"
        base64 -w 100 "$input"
      fi
    done
    failed+=("$name")
  else
    grep -E "^(stat::number_of_executed_units|stat::new_units_added|Done)" "$work/$name.log" | tr '\n' ' '
    echo
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: failed: ${failed[*]}"
  exit 1
fi
rm -rf "$work"
