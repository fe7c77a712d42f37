#!/usr/bin/env bash
# Makes the base image deploy/image/Dockerfile builds on, for a machine that
# reaches Debian's archive but no image registry, and prints its reference
# pinned by digest (`localhost/posthog-gateway-base@sha256:...`):
#   tests/image/base_image.sh
#
# Debian 12 (bookworm), the release the gateway is built on: pulled as
# debian:12-slim when a registry answers, otherwise made with
# `debootstrap --variant=minbase bookworm` (about what debian:12-slim holds).
# Cached twice, so a later run (CI's included) makes it only once: as a podman
# image (localhost/posthog-gateway-base:12), and as the root filesystem's
# tarball in $POSTHOG_GATEWAY_IMAGE_CACHE (~/.cache/posthog-gateway/image),
# which survives a reset of podman's storage. The digest of each image made is
# recorded in base-image.digest there. Needs root (debootstrap) and podman.
set -euo pipefail
release=bookworm
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache="${POSTHOG_GATEWAY_IMAGE_CACHE:-$HOME/.cache/posthog-gateway/image}"
name=localhost/posthog-gateway-base:12
tarball="$cache/debian-12-${release}-minbase.tar"
mkdir -p "$cache"

digest() {
  podman image inspect --format '{{.Digest}}' "$name"
}

if ! podman image exists "$name"; then
  if [[ -f "$tarball" ]]; then
    echo "base_image: importing the cached $tarball" >&2
    podman import --quiet "$tarball" "$name" >/dev/null
  elif timeout 30 podman pull --quiet docker.io/library/debian:12-slim >/dev/null 2>&1; then
    echo "base_image: pulled debian:12-slim" >&2
    podman tag docker.io/library/debian:12-slim "$name"
  else
    echo "base_image: no registry; debootstrap --variant=minbase $release from $mirror" >&2
    root="$(mktemp -d /tmp/posthog-base.XXXXXX)"
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase "$release" "$root" "$mirror" >&2
    # What debian:12-slim leaves out: package lists, caches, logs.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
      "$root"/var/log/*.log "$root"/tmp/*
    tar --numeric-owner -C "$root" -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
    podman import --quiet "$tarball" "$name" >/dev/null
  fi
  echo "$(date -u +%FT%TZ) $release $(digest)" >> "$cache/base-image.digest"
fi
echo "localhost/posthog-gateway-base@$(digest)"
