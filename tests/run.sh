#!/usr/bin/env bash
# Runs every test of the project. The README's test command:
#   tests/run.sh
# Installs what is missing first (tools/install-deps.sh), then runs each suite
# and ends with one line counting the suites that passed and failed.
#
# Suites: the API checks (buf lint, format and breaking), the C++ format check
# (tools/format.sh --check), the C++ unit and integration tests (Bazel), the
# fuzzers and the C++ tests under ASan + UBSan, the
# PostHog emulator's conformance with the official posthog-node SDK, the
# polyglot clients (CLI, Python, Node, Go, Java, behind an nginx sidecar)
# against the real gateway, the
# deployment tests (the Kubernetes manifests' policies, the image's packages)
# and the container image, built and run under podman.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash tools/install-deps.sh || { echo "install-deps failed" >&2; exit 1; }

export POSTHOG_GATEWAY_BAZEL_BIN="$root/bazel-bin"

# Output bases of earlier runs from clones that are gone (the suites' own
# output roots; tools/prune-output-bases.sh says why).
tools/prune-output-bases.sh \
  "${POSTHOG_GATEWAY_ASAN_ROOT:-$HOME/.cache/posthog-gateway/bazel-asan}" \
  "${POSTHOG_GATEWAY_FUZZ_ROOT:-$HOME/.cache/posthog-gateway/bazel-fuzz}"

passed=0
failed=0
failed_names=()
# Each suite's output is also kept in a file, so that the end of the run can
# repeat the last lines of every failed suite: a CI log cut down to its end
# still shows why a suite failed.
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
failed_logs=()
suite() {
  local name="$1"
  shift
  local log="$logs/$((passed + failed)).log"
  echo
  echo "=== $name"
  local start=$SECONDS
  "$@" 2>&1 | tee "$log"
  if ((PIPESTATUS[0] == 0)); then
    passed=$((passed + 1))
    echo "=== $name: passed ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    failed_logs+=("$log")
    echo "=== $name: FAILED ($((SECONDS - start)) s)"
  fi
}

api_lint() {
  (cd proto && "$root/tools/node_modules/.bin/buf" lint &&
    "$root/tools/node_modules/.bin/buf" format --diff --exit-code &&
    "$root/tools/node_modules/.bin/buf" breaking --against api-baseline.json)
}

bazel_tests() {
  tools/bazel.sh build //... &&
    tools/bazel.sh test //...
}

# libFuzzer targets (tests/fuzz/BUILD), built with clang in their own Bazel
# output root, each run FUZZ_SECONDS (default 20) from its corpus.
fuzzers() {
  tests/fuzz/run.sh
}

# The C++ tests built with AddressSanitizer + UndefinedBehaviorSanitizer
# (tests/asan/run.sh: --config=asan in its own Bazel output root; ASAN_TARGETS
# narrows it).
asan() {
  tests/asan/run.sh
}

# The repository stands alone: a clone of HEAD in an empty temporary
# directory (no sibling folders such as ../shared), with its own Bazel server
# (bounded heap and time, shut down afterwards) and the shared disk cache,
# passes `bazel test //...` with no extra flags. The test results of this
# suite are cached apart from the others (POSTHOG_GATEWAY_CLEAN_CLONE), so
# every test really runs in a clone at least once.
clean_clone() {
  local dir out status=0 startup
  dir="$(mktemp -d)"
  out="$(mktemp -d)"
  startup=(--output_user_root="$out" --host_jvm_args=-Xmx3g)
  git clone --quiet --no-hardlinks "$root" "$dir/posthog-gateway" &&
    git -C "$dir/posthog-gateway" checkout --quiet "$(git rev-parse HEAD)" || status=1
  if ((status == 0)); then
    (cd "$dir/posthog-gateway" &&
      env -u POSTHOG_VECTORS_DIR timeout --kill-after=60 2400 \
        tools/bazel.sh "${startup[@]}" test //... --test_env=POSTHOG_GATEWAY_CLEAN_CLONE=1) || status=1
    (cd "$dir/posthog-gateway" && tools/bazel.sh "${startup[@]}" shutdown) || true
  fi
  chmod -R u+w "$out" 2>/dev/null
  rm -rf "$dir" "$out"
  return "$status"
}

suite "API lint (buf lint, buf format, buf breaking)" api_lint
suite "C++ format (clang-format, .clang-format)" tools/format.sh --check
suite "C++ unit and integration tests (bazel test //...)" bazel_tests
suite "Fuzzers (libFuzzer, clang, ${FUZZ_SECONDS:-20} s each)" fuzzers
suite "C++ tests under AddressSanitizer + UBSan (${ASAN_TARGETS:-tests of server/})" asan
suite "Clean clone (bazel test //... in a clone with no sibling folders)" clean_clone
if [[ -d tests/emulator/node ]]; then
  suite "Emulator conformance with posthog-node" node --test tests/emulator/node/
fi
if [[ -x tests/polyglot/run.sh ]]; then
  suite "Polyglot clients against the gateway (CLI, Python, Node, Go, Java, nginx sidecar)" tests/polyglot/run.sh
fi
if [[ -x tests/fleet/run.sh ]]; then
  suite "Fleet: three gateways and Redis on loopback" tests/fleet/run.sh
fi
if [[ -x tests/deploy/run.sh ]]; then
  suite "Deployment (Kubernetes manifests, container image)" tests/deploy/run.sh
fi
if [[ -x tests/image/run.sh ]]; then
  suite "Container image under podman (built, run as the manifests do)" tests/image/run.sh
fi

echo
for i in "${!failed_logs[@]}"; do
  echo "=== The last 60 lines of the failed suite \"${failed_names[$i]}\":"
  tail -n 60 "${failed_logs[$i]}"
  echo
done
if ((failed)); then
  echo "Failed suites: ${failed_names[*]}"
fi
echo "suites: $passed passed, $failed failed"
((failed == 0))
