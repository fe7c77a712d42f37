#!/usr/bin/env bash
# Runs Bazel the way the project's scripts do: offline, with a disk cache
# shared by every checkout on this machine (so a fresh clone rebuilds only
# what changed), and quiet.
#   tools/bazel.sh build //server:posthog_gateway
set -euo pipefail
cache="${POSTHOG_GATEWAY_BAZEL_CACHE:-$HOME/.cache/posthog-gateway/bazel-disk}"
mkdir -p "$cache"
cmd="$1"
shift
exec bazel "$cmd" --disk_cache="$cache" --noshow_progress "$@"
