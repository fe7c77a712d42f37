#!/usr/bin/env bash
# Bazel's --workspace_status_command (.bazelrc): the stable keys that
# //server/observability:build_info_stamp writes into the gateway, for its build_info
# metric, and that deploy/image/build.sh also puts in the image's labels.
# Outside a git checkout both are "unknown"; POSTHOG_GATEWAY_SOURCE names
# the source repository when the checkout has no `origin` remote. STABLE_ keys rebuild only the
# stamp (a header) and relink the gateway when they change.
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
source="${POSTHOG_GATEWAY_SOURCE:-$(git config --get remote.origin.url 2>/dev/null || echo unknown)}"
echo "STABLE_GIT_REVISION ${revision}"
echo "STABLE_SOURCE_URL ${source}"
