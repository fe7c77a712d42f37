#!/usr/bin/env bash
# Builds the C++ tests with AddressSanitizer + UndefinedBehaviorSanitizer
# (--config=asan in .bazelrc) and runs them:
#   tests/asan/run.sh                                  # ASAN_TARGETS (default below)
#   tests/asan/run.sh //tests/server:page_stream_test  # some of them
# The build has its own Bazel output root (POSTHOG_GATEWAY_ASAN_ROOT) and its
# own Bazel server, shut down at the end (ASAN_KEEP_SERVER=1 keeps it for
# repeated runs): switching configurations in the normal output base would
# drop its analysis cache, and the workspace's bazel-bin links stay those of
# the gcc build (--config=asan sets no symlinks). The shared disk cache keeps
# the sanitized objects, so a second run rebuilds only what changed.
# A report (heap overflow, use after free, leak, signed overflow, a bad enum
# or shift, ...) fails its test; the log shows the stack.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

asan_root="${POSTHOG_GATEWAY_ASAN_ROOT:-$HOME/.cache/posthog-gateway/bazel-asan}"
startup=("--output_user_root=$asan_root" "--host_jvm_args=-Xmx2g")

cleanup() {
  if [[ -z "${ASAN_KEEP_SERVER:-}" ]]; then
    tools/bazel.sh "${startup[@]}" shutdown >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

if (($#)); then
  targets=("$@")
else
  # The gateway's own code (server/): the tests of it verified clean under
  # ASan + UBSan when the suite was added (the first run over //tests/...
  # on the shared 2-core machine took longer than the session had; the
  # other server tests are to join as they are verified). Left out for
  # CI's time: the CLI's (tests/client), the PostHog emulator's
  # (tests/emulator, a test double) and the fuzz corpus tests
  # (tests/fuzz/run.sh runs those inputs under ASan + UBSan with clang).
  # ASAN_TARGETS=//tests/... runs them all.
  default=(
    //tests/authz:audit_log_test
    //tests/authz:authorizer_test
    //tests/authz:bearer_tokens_test
    //tests/authz:xfcc_test
    //tests/flags:definitions_store_test
    //tests/flags:evaluate_flags_test
    //tests/flags:flag_json_test
    //tests/flags:flag_management_test
    //tests/flags:flags_api_test
    //tests/flags:openfeature_resolution_test
    //tests/flags:watch_definitions_test
    //tests/server:channelz_server_test
    //tests/server:config_test
    //tests/server:delivered_waits_test
    //tests/server:delivery_test
    //tests/server:flag_called_sink_test
    //tests/server:gateway_server_test
    //tests/server:groups_test
    //tests/server:json_conversion_test
    //tests/server:key_store_test
    //tests/server:malformed_request_test
    //tests/server:page_stream_cursor_test
    //tests/server:persons_test
    //tests/server:redact_test
    //tests/server:request_pacer_test
    //tests/server:resume_token_test
    //tests/server:single_flight_cache_test
    //tests/server:spool_test
    //tests/server:status_conversion_test
    //tests/server:stream_list_cursor_test
    //tests/server:tls_test
  )
  read -r -a targets <<<"${ASAN_TARGETS:-${default[*]}}"
fi
start=$SECONDS
status=0
tools/bazel.sh "${startup[@]}" test --config=asan --keep_going "${targets[@]}" || status=$?
echo "asan: ${targets[*]} in $((SECONDS - start)) s (status $status)"
exit "$status"
