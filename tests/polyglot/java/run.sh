#!/usr/bin/env bash
# The Java caller's tests (tests/polyglot/java/GatewayTest.java) and the Java
# example (client/examples/GetCurrentUser.java), built with javac from
# Debian's packages only, no Maven: libgrpc-java (grpc-java 1.41),
# protobuf-compiler-grpc-java-plugin, libprotobuf-java, libnetty-java and
# what they need (guava, gson, the javax.annotation API). Stubs are generated
# into a temporary folder, the google.rpc messages (Status, ErrorInfo,
# RetryInfo) and grpc.health.v1 from their .proto files too, since Debian
# packages neither proto-google-common-protos nor grpc-services. The test
# starts the gateway and emulator itself (tests/harness/stack.py).
#
# The binaries must be built first (see tests/polyglot/run.sh).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$repo_root"

work="$(mktemp -d /tmp/posthog-java.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/classes" "$work/health"

googleapis=/usr/share/gocode/src/github.com/gogo/googleapis
# health.proto from Debian's grpc-proto, copied flat (its option java_package
# is io.grpc.health.v1).
cp /usr/share/grpc-proto/grpc/health/v1/health.proto "$work/health/"
protoc -I proto -I "$googleapis" -I "$work/health" -I /usr/include \
  --java_out="$work/src" --grpc-java_out="$work/src" \
  --plugin=protoc-gen-grpc-java=/usr/bin/grpc_java_plugin \
  proto/posthog/v1/*.proto "$googleapis/google/rpc/status.proto" \
  "$googleapis/google/rpc/error_details.proto" "$work/health/health.proto"

jars=(grpc-api grpc-context grpc-core grpc-netty grpc-protobuf grpc-protobuf-lite grpc-stub
  protobuf guava gson geronimo-annotation-1.3-spec error-prone-annotations jsr305
  netty-buffer netty-codec netty-codec-http netty-codec-http2 netty-codec-socks netty-common
  netty-handler netty-handler-proxy netty-resolver netty-transport perfmark-api)
classpath=""
for jar in "${jars[@]}"; do
  classpath+="/usr/share/java/${jar}.jar:"
done
classpath+="$work/classes"

find "$work/src" -name '*.java' > "$work/sources"
javac -nowarn -encoding UTF-8 -d "$work/classes" -cp "$classpath" @"$work/sources" \
  client/examples/GetCurrentUser.java tests/polyglot/java/GatewayTest.java

export POSTHOG_REPO_ROOT="$repo_root"
export JAVA_CLASSPATH="$classpath"
exec java -cp "$classpath" GatewayTest "$@"
