// Calls the gateway's UserService.GetCurrentUser from Java (grpc-java), with
// the client service config the Kubernetes deployment recommends
// (round_robin, a 10 s timeout and retries of UNAVAILABLE). grpc-java applies
// a service config's retryPolicy only with enableRetry().
//
// Built with javac from Debian's packages, no Maven (tests/polyglot/java/run.sh
// does exactly this): generate the stubs and the google.rpc messages,
//   protoc -I proto -I /usr/share/gocode/src/github.com/gogo/googleapis \
//     --java_out=OUT --grpc-java_out=OUT --plugin=protoc-gen-grpc-java=/usr/bin/grpc_java_plugin \
//     proto/posthog/v1/*.proto google/rpc/status.proto google/rpc/error_details.proto
// then compile OUT and this file against /usr/share/java's grpc-api, grpc-context,
// grpc-core, grpc-netty, grpc-protobuf, grpc-protobuf-lite, grpc-stub, protobuf,
// guava, gson, netty-all and geronimo-annotation-1.3-spec jars, and run
//   java -cp ... GetCurrentUser localhost:50051 deploy/kubernetes/client-service-config.json [project]

import com.google.gson.Gson;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import posthog.v1.UserOuterClass.GetCurrentUserRequest;
import posthog.v1.UserOuterClass.User;
import posthog.v1.UserServiceGrpc;

public final class GetCurrentUser {
  public static void main(String[] args) throws Exception {
    String target = args.length > 0 ? args[0] : "localhost:50051";
    String configFile = args.length > 1 ? args[1] : "deploy/kubernetes/client-service-config.json";
    String project = args.length > 2 ? args[2] : "";
    // The service config as grpc-java wants it: JSON as maps, lists, strings and doubles.
    @SuppressWarnings("unchecked")
    Map<String, ?> serviceConfig =
        new Gson().fromJson(Files.readString(Path.of(configFile), StandardCharsets.UTF_8), Map.class);
    ManagedChannel channel = ManagedChannelBuilder.forTarget(target)
        .usePlaintext()
        .defaultServiceConfig(serviceConfig)
        .enableRetry()
        .build();
    try {
      User user = UserServiceGrpc.newBlockingStub(channel)
          .withDeadlineAfter(10, TimeUnit.SECONDS)
          .getCurrentUser(GetCurrentUserRequest.newBuilder().setProject(project).build())
          .getUser();
      System.out.printf("%s %s <%s>, project %d \"%s\", organization \"%s\"%n", user.getFirstName(),
          user.getLastName(), user.getEmail(), user.getTeam().getId(), user.getTeam().getName(),
          user.getOrganization().getName());
    } catch (StatusRuntimeException error) {
      System.err.printf("error: %s: %s%n", error.getStatus().getCode(), error.getStatus().getDescription());
      com.google.rpc.Status status = StatusProto.fromThrowable(error);
      if (status != null) {
        for (com.google.protobuf.Any detail : status.getDetailsList()) {
          if (detail.is(ErrorInfo.class)) {
            ErrorInfo info = detail.unpack(ErrorInfo.class);
            System.err.printf("  reason %s (%s) %s%n", info.getReason(), info.getDomain(), info.getMetadataMap());
          } else if (detail.is(RetryInfo.class)) {
            System.err.printf("  retry after %d s%n", detail.unpack(RetryInfo.class).getRetryDelay().getSeconds());
          }
        }
      }
      System.exit(1);
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
