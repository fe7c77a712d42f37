#!/usr/bin/env bash
# The Go caller's tests (tests/polyglot/go/gateway_test.go) and the Go example
# (client/examples/get_current_user.go), built from Debian's packages only:
# golang-go, golang-google-grpc-dev (grpc-go 1.33), protoc-gen-go,
# protoc-gen-go-grpc and golang-github-golang-protobuf-1-5-dev, in GOPATH mode
# and offline. Stubs are generated into a temporary GOPATH; the test starts
# the gateway and emulator itself (tests/harness/stack.py).
#
# The binaries must be built first (see tests/polyglot/run.sh).
# Usage: tests/polyglot/go/run.sh [go test flags, e.g. -run=TestListPersons]
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$repo_root"

work="$(mktemp -d /tmp/posthog-go.XXXXXX)"
trap 'rm -rf "$work"' EXIT
gopath="$work/gopath"
package_dir="$gopath/src/example.com/posthog/v1"
mkdir -p "$package_dir" "$gopath/src/example.com/gatewaytest" "$gopath/src/example.com/examples"

# The .proto files carry no go_package: map each onto one Go package.
mappings=()
for proto in proto/posthog/v1/*.proto; do
  relative="${proto#proto/}"
  mappings+=("--go_opt=M${relative}=example.com/posthog/v1" "--go-grpc_opt=M${relative}=example.com/posthog/v1")
done
protoc -I proto --go_out="$gopath/src" --go-grpc_out="$gopath/src" "${mappings[@]}" proto/posthog/v1/*.proto

cp tests/polyglot/go/gateway_test.go "$gopath/src/example.com/gatewaytest/"
cp client/examples/get_current_user.go "$gopath/src/example.com/examples/"

export GO111MODULE=off
export GOPATH="$gopath:/usr/share/gocode"
# A build cache that outlives the run: grpc-go compiles once per machine.
export GOCACHE="${GOCACHE:-$HOME/.cache/posthog-gateway/go-build}"
# grpc-go 1.33 applies a service config's retryPolicy only with this set.
export GRPC_GO_RETRY=on
export POSTHOG_REPO_ROOT="$repo_root"

(cd "$gopath/src/example.com" && go vet ./gatewaytest ./examples)
go build -o "$work/get_current_user" example.com/examples
export GO_EXAMPLE_BINARY="$work/get_current_user"
(cd "$gopath/src/example.com/gatewaytest" && go test -count=1 -v -timeout=300s "$@" .)
