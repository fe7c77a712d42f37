#!/usr/bin/env bash
# Runs the fleet tests: redis-server, the emulator and three gateways on
# loopback (tests/fleet/test_fleet.py), about two and a half minutes.
#
# The binaries must be built first:
#   bazel build //server:posthog_gateway //emulator:posthog_emulator
#
# Usage: tests/fleet/run.sh [--bazel_bin=DIR]   (default: $POSTHOG_BAZEL_BIN, else bazel-bin)
set -uo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bazel_bin="${POSTHOG_BAZEL_BIN:-${repo_root}/bazel-bin}"
for arg in "$@"; do
  case "${arg}" in
    --bazel_bin=*) bazel_bin="${arg#--bazel_bin=}" ;;
    *) echo "run.sh: unknown argument ${arg}" >&2; exit 2 ;;
  esac
done
if ! command -v redis-server >/dev/null; then
  echo "run.sh: redis-server is missing (tools/install-deps.sh installs it)" >&2
  exit 2
fi
export POSTHOG_BAZEL_BIN="$(cd "${bazel_bin}" && pwd)"
cd "${repo_root}"
/usr/bin/python3 -m unittest discover -s tests/fleet -p 'test_*.py' -v
