#!/usr/bin/env bash
# Builds the gateway (--config=opt) and its container image:
#   deploy/image/build.sh [TAG]        (default posthog-gateway:VERSION)
# with Docker, or podman when there is no docker (DOCKER=podman picks it).
# Needs access to Debian's package archive for the base image's libraries.
#
# The image's OCI labels (version, revision, source) are the values the
# binary's posthog_gateway_build_info metric names: VERSION and
# tools/workspace_status.sh, which Bazel stamps into the binary.
#
# Environment:
#   DOCKER             the CLI (default: docker, else podman)
#   BASE_IMAGE         the base image (default: debian:12-slim; where no
#                      registry answers, tests/image/base_image.sh makes one)
#   IMAGE_BUILD_FLAGS  extra flags for `build`, e.g. "--network=host --runtime=runc"
#   POSTHOG_GATEWAY_SOURCE  the source repository, when git has no origin
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
version="$(head -n 1 VERSION)"
tag="${1:-posthog-gateway:${version}}"
if [[ -z "${DOCKER:-}" ]]; then
  DOCKER=docker
  command -v docker >/dev/null || DOCKER=podman
fi

# --symlink_prefix=/: bazel-bin and friends keep pointing at the default
# configuration's outputs, which the test suites read.
tools/bazel.sh build --config=opt --symlink_prefix=/ //server:posthog_gateway
binary="$(tools/bazel.sh info --config=opt bazel-bin 2>/dev/null)/server/posthog_gateway"
# The values this build stamped (tools/workspace_status.sh ran as it started):
# exactly what the binary's build_info names, even if HEAD moved since.
status="$(tools/bazel.sh info --config=opt output_path 2>/dev/null)/stable-status.txt"
revision="$(awk '$1 == "STABLE_GIT_REVISION" { print $2 }' "$status")"
source="$(awk '$1 == "STABLE_SOURCE_URL" { print $2 }' "$status")"
context="$(mktemp -d /tmp/posthog-gateway-image.XXXXXX)"
trap 'rm -rf "$context"' EXIT
cp deploy/image/Dockerfile "$context/"
cp "$binary" "$context/"
chmod 0755 "$context/posthog_gateway"
args=(--tag "$tag" --build-arg "VERSION=$version" --build-arg "REVISION=$revision"
  --build-arg "SOURCE=$source")
if [[ -n "${BASE_IMAGE:-}" ]]; then
  args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
fi
# shellcheck disable=SC2086  # IMAGE_BUILD_FLAGS is a list of flags.
"$DOCKER" build ${IMAGE_BUILD_FLAGS:-} "${args[@]}" "$context"
echo "built $tag (version $version, revision $revision)"
