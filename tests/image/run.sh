#!/usr/bin/env bash
# The container image suite: makes the Debian 12 base image when no registry
# answers (tests/image/base_image.sh, cached), builds the image with podman
# (deploy/image/build.sh: --config=opt binary, OCI labels), then runs it the
# way the Kubernetes manifests do against the emulator
# (tests/image/test_image.py). Needs root, podman and runc
# (tools/install-deps.sh), and the emulator built
# (bazel build //emulator:posthog_emulator).
#
# podman here: runc, since crun fails on this machine's hybrid cgroups; the
# build and the containers use the host's network (loopback ports).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

start=$SECONDS
base="$(tests/image/base_image.sh)"
echo "image: base $base ($((SECONDS - start)) s)"

tag="localhost/posthog-gateway:test"
start=$SECONDS
DOCKER=podman BASE_IMAGE="$base" IMAGE_BUILD_FLAGS="--network=host --runtime=runc --quiet" \
  deploy/image/build.sh "$tag"
echo "image: built $tag ($((SECONDS - start)) s)"

# The emulator, from the default configuration's outputs.
bazel_bin="${POSTHOG_BAZEL_BIN:-$(tools/bazel.sh info bazel-bin 2>/dev/null)}"
if [[ ! -x "$bazel_bin/emulator/posthog_emulator" ]]; then
  echo "image: $bazel_bin/emulator/posthog_emulator is missing: bazel build //emulator:posthog_emulator" >&2
  exit 2
fi
start=$SECONDS
POSTHOG_BAZEL_BIN="$bazel_bin" POSTHOG_IMAGE="$tag" /usr/bin/python3 -m unittest -v tests/image/test_image.py
echo "image: tests ($((SECONDS - start)) s)"
