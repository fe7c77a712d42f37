#!/usr/bin/env bash
# Installs every Debian and npm package this project needs. Idempotent: a
# second run installs nothing and takes about a second. Both README commands
# (deploy/local/run.sh and tests/run.sh) call it first, so a fresh Debian 12
# machine needs nothing else.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

debian_packages=(
  bazel-bootstrap
  bazel-rules-java
  build-essential
  clang
  # tools/format.sh (the C++ format check in tests/run.sh).
  clang-format
  curl
  # The image suite (tests/image): podman with runc (crun fails on hybrid
  # cgroups here), and debootstrap for a base image without a registry.
  debootstrap
  golang-github-gogo-googleapis-dev
  # The Go caller (tests/polyglot/go, client/examples/get_current_user.go):
  # grpc-go 1.33 and protobuf-go, GOPATH mode, offline.
  golang-github-golang-protobuf-1-5-dev
  golang-go
  golang-google-genproto-dev
  golang-google-grpc-dev
  grpc-proto
  # The Java caller (tests/polyglot/java, client/examples/GetCurrentUser.java):
  # grpc-java 1.41 and what it needs at run time, javac, no Maven.
  default-jdk-headless
  libgeronimo-annotation-1.3-spec-java
  libgoogle-gson-java
  libgrpc-java
  libguava-java
  libnetty-java
  libperfmark-java
  libprotobuf-java
  libabsl-dev
  libbenchmark-dev
  libclang-rt-14-dev
  libcpp-httplib-dev
  libcurl4-openssl-dev
  libdeflate-dev
  libgmock-dev
  libgrpc++-dev
  libgtest-dev
  libhiredis-dev
  libprotobuf-dev
  libre2-dev
  libssl-dev
  lld
  nghttp2-client
  nginx-light
  nlohmann-json3-dev
  openssl
  pkg-config
  podman
  # promtool: lints /metrics and checks and unit-tests the PrometheusRule.
  prometheus
  protobuf-compiler
  protobuf-compiler-grpc
  protobuf-compiler-grpc-java-plugin
  protoc-gen-go
  protoc-gen-go-grpc
  python3-grpcio
  python3-protobuf
  redis-server
  runc
  zlib1g-dev
)

missing=()
# The machine image ships Node.js 20 with its own npm (nodesource); Debian's
# npm package conflicts with it, so Debian's Node is only a fallback.
if ! command -v npm >/dev/null; then
  debian_packages+=(nodejs npm)
fi
for p in "${debian_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "install-deps: installing Debian packages: ${missing[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: run as root (apt-get needs it)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm tools (buf, the Node gRPC client, the official SDK used for comparison),
# pinned in tools/package.json and installed into tools/node_modules.
if [[ ! -x "$root/tools/node_modules/.bin/buf" || "$root/tools/package.json" -nt "$root/tools/node_modules/.stamp" ]]; then
  echo "install-deps: installing npm packages" >&2
  (cd "$root/tools" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$root/tools/node_modules/.stamp"
fi

# npm packages of the Kubernetes manifests' tests (tests/deploy/package.json).
if [[ -f "$root/tests/deploy/package.json" ]] &&
  [[ ! -d "$root/tests/deploy/node_modules/kubernetes-models" || "$root/tests/deploy/package.json" -nt "$root/tests/deploy/node_modules/.stamp" ]]; then
  echo "install-deps: installing the deploy tests' npm packages" >&2
  (cd "$root/tests/deploy" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$root/tests/deploy/node_modules/.stamp"
fi
