#!/usr/bin/env bash
# Removes the Bazel output bases under the given output roots whose
# workspace no longer exists:
#   tools/prune-output-bases.sh ROOT...
# The sanitizer and fuzzer suites build in output roots of their own
# (tests/asan/run.sh, tests/fuzz/run.sh), and Bazel keeps one output base per
# workspace path there (1.5-2 GB for the ASan build). A test run from a new
# temporary clone each time, as CI runs it, leaves one behind per run and
# nothing else removes them: on a long-lived machine they fill the disk. An
# output base names its workspace in DO_NOT_BUILD_HERE; only those whose
# workspace directory is gone are removed, so a live checkout keeps its
# incremental build. Never fails: a base it cannot remove is left.
set -uo pipefail
for output_root in "$@"; do
  [[ -d "$output_root" ]] || continue
  for marker in "$output_root"/*/DO_NOT_BUILD_HERE; do
    [[ -f "$marker" ]] || continue
    workspace="$(head -c 4096 "$marker")"
    [[ -n "$workspace" && ! -e "$workspace" ]] || continue
    base="$(dirname "$marker")"
    echo "removing the output base of a removed workspace: $base ($workspace)"
    chmod -R u+w "$base" 2>/dev/null
    rm -rf "$base" 2>/dev/null || true
  done
done
exit 0
