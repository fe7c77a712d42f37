#!/usr/bin/env bash
# Runs the polyglot suites against the real gateway and emulator: Python
# (grpcio, stubs generated at test time), the C++ CLI (driven from Python),
# Node.js (@grpc/grpc-js), Go (grpc-go from Debian, tests/polyglot/go) and
# Java (grpc-java from Debian, tests/polyglot/java),
# after the harness's own tests. Exits non-zero if any suite fails.
#
# The binaries must be built first:
#   bazel build //server:posthog_gateway //emulator:posthog_emulator //client:posthog
#
# Usage: tests/polyglot/run.sh [--bazel_bin=DIR]
#   --bazel_bin  where the binaries are (default: $POSTHOG_BAZEL_BIN, else
#                the repository's bazel-bin). bazel-bin follows the last
#                build's configuration, so pass the directory explicitly when
#                another configuration (e.g. --config=opt) was built since.

set -uo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bazel_bin="${POSTHOG_BAZEL_BIN:-${repo_root}/bazel-bin}"

for arg in "$@"; do
  case "${arg}" in
    --bazel_bin=*) bazel_bin="${arg#--bazel_bin=}" ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument ${arg}" >&2; exit 2 ;;
  esac
done
if ! resolved="$(cd "${bazel_bin}" 2>/dev/null && pwd)"; then
  echo "run.sh: no such directory: ${bazel_bin}" >&2
  exit 2
fi
bazel_bin="${resolved}"

missing=0
for binary in server/posthog_gateway emulator/posthog_emulator client/posthog; do
  if [[ ! -x "${bazel_bin}/${binary}" ]]; then
    echo "run.sh: ${bazel_bin}/${binary} is missing; build it first (see --help)" >&2
    missing=1
  fi
done
(( missing == 0 )) || exit 2

export POSTHOG_BAZEL_BIN="${bazel_bin}"
cd "${repo_root}"

failed=()

echo "== The harness, against fake binaries"
/usr/bin/python3 -m unittest discover -s tests/harness -p 'test_*.py' || failed+=(harness)

echo "== Python: UserService, PersonService, GroupService, FlagService, CaptureService (with fault tests), /metrics and the CLI"
/usr/bin/python3 -m unittest discover -s tests/polyglot -p 'test_*.py' -v || failed+=(python)

echo "== Node.js: UserService, FlagService"
node --test tests/polyglot/user.test.js tests/polyglot/flags.test.js || failed+=(node)

echo "== Node.js: local flag evaluation vs posthog-node, and through the flagd provider (generated conformance corpus)"
node --test tests/polyglot/flags_conformance.test.js || failed+=(node-flags-conformance)

echo "== Node.js: OpenFeature (server SDK with the flagd provider)"
node --test tests/polyglot/openfeature.test.js || failed+=(node-openfeature)

echo "== Node.js: PersonService"
node --test tests/polyglot/persons.test.js || failed+=(node-persons)

echo "== Node.js: GroupService (cursor-paginated ListGroups)"
node --test tests/polyglot/groups.test.js || failed+=(node-groups)

echo "== Node.js: CaptureService"
node --test tests/polyglot/capture.test.js || failed+=(node-capture)

echo "== Node.js: wire format, gateway vs posthog-node (docs/geoip.md)"
node --test tests/polyglot/wire_format.test.js || failed+=(node-wire-format)

echo "== Go (grpc-go from Debian, GOPATH mode): UserService, CaptureService, PersonService, FlagService, retries"
tests/polyglot/go/run.sh || failed+=(go)

echo "== Java (grpc-java from Debian, javac): UserService, CaptureService, PersonService, FlagService, retries"
tests/polyglot/java/run.sh || failed+=(java)

if (( ${#failed[@]} > 0 )); then
  echo "polyglot: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "polyglot: all suites passed"
