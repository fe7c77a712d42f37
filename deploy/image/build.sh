#!/usr/bin/env bash
# Builds the gateway (--config=opt) and its container image:
#   deploy/image/build.sh [TAG]        (default posthog-gateway:0.1.0)
# Needs Docker (or a docker-compatible CLI such as podman's) and access to
# Debian's package archive for the base image's libraries.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
tag="${1:-posthog-gateway:0.1.0}"

tools/bazel.sh build --config=opt //server:posthog_gateway
context="$(mktemp -d /tmp/posthog-gateway-image.XXXXXX)"
trap 'rm -rf "$context"' EXIT
cp deploy/image/Dockerfile "$context/"
cp bazel-out/k8-opt/bin/server/posthog_gateway "$context/"
chmod 0755 "$context/posthog_gateway"
"${DOCKER:-docker}" build --tag "$tag" "$context"
echo "built $tag"
