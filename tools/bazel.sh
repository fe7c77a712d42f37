#!/usr/bin/env bash
# Runs Bazel the way the project's scripts do: offline, with a disk cache
# shared by every checkout on this machine (so a fresh clone rebuilds only
# what changed), and quiet.
#   tools/bazel.sh build //server:posthog_gateway
# Bazel start-up options (e.g. --output_user_root, for a build that must not
# share the default output base) go before the command:
#   tools/bazel.sh --output_user_root=DIR build --config=fuzz //tests/fuzz:fuzzers
set -euo pipefail
cache="${POSTHOG_GATEWAY_BAZEL_CACHE:-$HOME/.cache/posthog-gateway/bazel-disk}"
mkdir -p "$cache"
startup=()
while [[ $# -gt 0 && "$1" == --* ]]; do
  startup+=("$1")
  shift
done
cmd="$1"
shift
case "$cmd" in
  build | test | run | coverage | cquery | aquery | fetch)
    exec bazel "${startup[@]}" "$cmd" --disk_cache="$cache" --noshow_progress "$@"
    ;;
  *)
    exec bazel "${startup[@]}" "$cmd" "$@"
    ;;
esac
