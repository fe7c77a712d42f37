#!/usr/bin/env bash
# Runs the offline tests of deploy/: renders every Kubernetes overlay with
# `kubectl kustomize`, validates the objects against their schemas, checks
# the policy points schema validation cannot, runs the sample client service
# config in a grpc-js client, and checks the image's package list against the
# gateway binary (built first). Installs nothing: tools/install-deps.sh (or
# `npm --prefix tests/deploy install`) must have run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v kubectl >/dev/null; then
  echo "tests/deploy: kubectl is not installed (it renders the manifests)" >&2
  exit 1
fi
if [[ ! -d "$here/node_modules/kubernetes-models" ]]; then
  echo "tests/deploy: run 'npm --prefix tests/deploy install' first" >&2
  exit 1
fi
cd "$here"
exec node --test
