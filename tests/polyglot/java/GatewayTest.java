// The gateway called from Java (grpc-java 1.41, Debian's packages), with the
// client service config of deploy/kubernetes/client-service-config.json and
// enableRetry(): error details decoded, the retry policy honoured,
// GetCurrentUser, a capture batch counted at the emulator, ListPersons read to
// the end and resumed from a token, EvaluateFlags, health, and the example
// client.
//
// Run by tests/polyglot/java/run.sh. main starts the emulator and the gateway
// with tests/harness/stack.py, runs the tests in the order listed in main
// (the error and retry test first, before GetCurrentUser's short cache holds
// the user), prints `ok NAME` or `FAIL NAME` for each and exits 1 if any
// failed.

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.protobuf.Any;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.protobuf.StatusProto;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import posthog.v1.Capture.AckMode;
import posthog.v1.Capture.BatchCaptureEventsRequest;
import posthog.v1.Capture.BatchCaptureEventsResponse;
import posthog.v1.Capture.Event;
import posthog.v1.CaptureServiceGrpc;
import posthog.v1.FlagOuterClass.EvaluateFlagsRequest;
import posthog.v1.FlagOuterClass.EvaluateFlagsResponse;
import posthog.v1.FlagOuterClass.EvaluationContext;
import posthog.v1.FlagOuterClass.FlagDecisionSource;
import posthog.v1.FlagOuterClass.FlagReasonCode;
import posthog.v1.FlagOuterClass.FlagResult;
import posthog.v1.FlagServiceGrpc;
import posthog.v1.PersonOuterClass.ListPersonsRequest;
import posthog.v1.PersonOuterClass.ListPersonsResponse;
import posthog.v1.PersonOuterClass.Person;
import posthog.v1.PersonServiceGrpc;
import posthog.v1.UserOuterClass.GetCurrentUserRequest;
import posthog.v1.UserOuterClass.User;
import posthog.v1.UserServiceGrpc;

public final class GatewayTest {
  private static final long CALL_TIMEOUT_S = 30;
  private static final Gson GSON = new Gson();
  private static final HttpClient HTTP = HttpClient.newHttpClient();

  private static Path repoRoot;
  private static String target;
  private static String emulatorUrl;
  private static Map<String, ?> serviceConfig;
  private static final List<ManagedChannel> channels = new ArrayList<>();

  interface TestCase {
    void run() throws Exception;
  }

  public static void main(String[] args) throws Exception {
    repoRoot = Path.of(System.getenv("POSTHOG_REPO_ROOT"));
    @SuppressWarnings("unchecked")
    Map<String, ?> config = GSON.fromJson(
        Files.readString(repoRoot.resolve("deploy/kubernetes/client-service-config.json")), Map.class);
    serviceConfig = config;

    Map<String, TestCase> tests = new LinkedHashMap<>();
    tests.put("errorDetailsAndTheServiceConfigRetryPolicy", GatewayTest::errorDetailsAndRetryPolicy);
    tests.put("pushbackIsFollowedEvenForResourceExhausted", GatewayTest::pushbackIsFollowedEvenForResourceExhausted);
    tests.put("getCurrentUserReturnsTheSeedUser", GatewayTest::getCurrentUserReturnsTheSeedUser);
    tests.put("healthReadinessIsServing", GatewayTest::healthReadinessIsServing);
    tests.put("batchCaptureIsDeliveredToPostHog", GatewayTest::batchCaptureIsDeliveredToPostHog);
    tests.put("listPersonsToTheEndAndResumedFromAToken", GatewayTest::listPersonsToTheEndAndResumed);
    tests.put("evaluateFlagsLocally", GatewayTest::evaluateFlagsLocally);
    tests.put("theExampleClientPrintsTheUser", GatewayTest::theExampleClientPrintsTheUser);

    Process harness = startStack();
    int failed = 0;
    try {
      for (Map.Entry<String, TestCase> test : tests.entrySet()) {
        if (args.length > 0 && !test.getKey().contains(args[0])) continue;
        try {
          test.getValue().run();
          System.out.println("ok " + test.getKey());
        } catch (Throwable error) {
          failed++;
          System.out.println("FAIL " + test.getKey() + ": " + error);
          error.printStackTrace(System.out);
        } finally {
          for (ManagedChannel channel : channels) channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
          channels.clear();
        }
      }
    } finally {
      stopStack(harness);
    }
    System.out.println(failed == 0 ? "java: all tests passed" : "java: " + failed + " tests FAILED");
    System.exit(failed == 0 ? 0 : 1);
  }

  // -- the stack --------------------------------------------------------------

  private static Process startStack() throws Exception {
    Path dir = Files.createTempDirectory("java-stack-");
    Path envFile = dir.resolve("stack.env");
    Process harness = new ProcessBuilder("/usr/bin/python3",
        repoRoot.resolve("tests/harness/stack.py").toString(), "--env_file=" + envFile)
        .directory(repoRoot.toFile())
        .redirectOutput(ProcessBuilder.Redirect.INHERIT)
        .redirectError(ProcessBuilder.Redirect.INHERIT)
        .start();
    Instant deadline = Instant.now().plusSeconds(60);
    while (!Files.exists(envFile)) {
      if (!harness.isAlive()) throw new IllegalStateException("harness exited before serving");
      if (Instant.now().isAfter(deadline)) {
        harness.destroyForcibly();
        throw new IllegalStateException("harness did not serve within 60 s");
      }
      harness.waitFor(50, TimeUnit.MILLISECONDS);  // Exits early if the harness does.
    }
    for (String line : Files.readAllLines(envFile)) {
      int equals = line.indexOf('=');
      if (equals < 0) continue;
      String key = line.substring(0, equals);
      if (key.equals("GATEWAY_TARGET")) target = line.substring(equals + 1);
      if (key.equals("EMULATOR_URL")) emulatorUrl = line.substring(equals + 1);
    }
    check(target != null && emulatorUrl != null, "environment file without the targets");
    return harness;
  }

  private static void stopStack(Process harness) throws InterruptedException {
    harness.destroy();  // SIGTERM.
    if (!harness.waitFor(30, TimeUnit.SECONDS)) harness.destroyForcibly();
  }

  // -- helpers ----------------------------------------------------------------

  private static void check(boolean condition, String message) {
    if (!condition) throw new AssertionError(message);
  }

  private static void checkEqual(Object got, Object want, String what) {
    if (!got.equals(want)) throw new AssertionError(what + ": got " + got + ", want " + want);
  }

  /** A channel with the deployment's service config; retries on or off. */
  private static ManagedChannel channel(boolean retry) {
    ManagedChannelBuilder<?> builder =
        ManagedChannelBuilder.forTarget(target).usePlaintext().defaultServiceConfig(serviceConfig);
    builder = retry ? builder.enableRetry() : builder.disableRetry();
    ManagedChannel channel = builder.build();
    channels.add(channel);
    return channel;
  }

  /** GETs (body null) or POSTs JSON to one of the emulator's admin routes. */
  private static JsonElement emulator(String path, Object body) throws IOException, InterruptedException {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(emulatorUrl + path))
        .timeout(Duration.ofSeconds(CALL_TIMEOUT_S));
    if (body != null) {
      request.header("Content-Type", "application/json")
          .POST(HttpRequest.BodyPublishers.ofString(GSON.toJson(body)));
    }
    HttpResponse<String> response = HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
    checkEqual(response.statusCode(), 200, path);
    return response.body().isEmpty() ? null : GSON.fromJson(response.body(), JsonElement.class);
  }

  private static void fault(Map<String, Object> rule) throws Exception {
    emulator("/_emulator/faults", List.of(rule));
  }

  /** The emulator's counts of GET /api/users/@me/: total, then by status. */
  private static Map<String, Integer> usersRequests() throws Exception {
    JsonObject routes = emulator("/_emulator/requests?route=users", null).getAsJsonObject()
        .getAsJsonObject("routes");
    Map<String, Integer> counts = new HashMap<>();
    counts.put("count", 0);
    if (routes.has("users")) {
      JsonObject users = routes.getAsJsonObject("users");
      counts.put("count", users.get("count").getAsInt());
      for (Map.Entry<String, JsonElement> status : users.getAsJsonObject("status").entrySet()) {
        counts.put(status.getKey(), status.getValue().getAsInt());
      }
    }
    return counts;
  }

  private static int delta(Map<String, Integer> before, Map<String, Integer> after, String key) {
    return after.getOrDefault(key, 0) - before.getOrDefault(key, 0);
  }

  private static <T extends com.google.protobuf.Message> T detail(StatusRuntimeException error, Class<T> type)
      throws Exception {
    com.google.rpc.Status status = StatusProto.fromThrowable(error);
    check(status != null, "no google.rpc.Status in " + error);
    for (Any any : status.getDetailsList()) {
      if (any.is(type)) return any.unpack(type);
    }
    throw new AssertionError("no " + type.getSimpleName() + " in " + status.getDetailsList());
  }

  private static StatusRuntimeException getCurrentUserFails(ManagedChannel channel) {
    try {
      UserServiceGrpc.newBlockingStub(channel).withDeadlineAfter(CALL_TIMEOUT_S, TimeUnit.SECONDS)
          .getCurrentUser(GetCurrentUserRequest.getDefaultInstance());
    } catch (StatusRuntimeException error) {
      return error;
    }
    throw new AssertionError("GetCurrentUser succeeded");
  }

  // -- the tests --------------------------------------------------------------

  static void errorDetailsAndRetryPolicy() throws Exception {
    // PostHog answers 503 once. Without retries: UNAVAILABLE with ErrorInfo.
    fault(Map.of("route", "users", "status", 503, "error_rate", 1, "count", 1));
    Map<String, Integer> before = usersRequests();
    StatusRuntimeException error = getCurrentUserFails(channel(false));
    checkEqual(error.getStatus().getCode(), Status.Code.UNAVAILABLE, "code");
    ErrorInfo info = detail(error, ErrorInfo.class);
    checkEqual(info.getReason(), "UPSTREAM_UNAVAILABLE", "reason");
    checkEqual(info.getDomain(), "posthog-gateway", "domain");
    checkEqual(info.getMetadataMap().get("http_status"), "503", "http_status");
    checkEqual(delta(before, usersRequests(), "count"), 1, "PostHog requests");

    // 429 with Retry-After, without retries: RESOURCE_EXHAUSTED with
    // RetryInfo, ErrorInfo and the pushback trailer.
    fault(Map.of("route", "users", "status", 429, "error_rate", 1, "retry_after_s", 3, "count", 1));
    before = usersRequests();
    error = getCurrentUserFails(channel(false));
    checkEqual(error.getStatus().getCode(), Status.Code.RESOURCE_EXHAUSTED, "code");
    RetryInfo retry = detail(error, RetryInfo.class);
    checkEqual(retry.getRetryDelay().getSeconds(), 3L, "retry delay");
    checkEqual(detail(error, ErrorInfo.class).getReason(), "UPSTREAM_RATE_LIMITED", "reason");
    Metadata trailers = error.getTrailers();
    checkEqual(String.valueOf(trailers.get(Metadata.Key.of("grpc-retry-pushback-ms",
        Metadata.ASCII_STRING_MARSHALLER))), "3000", "grpc-retry-pushback-ms");
    checkEqual(delta(before, usersRequests(), "count"), 1, "PostHog requests");

    // 503 once again, now with enableRetry(): the caller gets the user, and
    // PostHog saw the failed attempt and the retried one.
    fault(Map.of("route", "users", "status", 503, "error_rate", 1, "count", 1));
    before = usersRequests();
    User user = UserServiceGrpc.newBlockingStub(channel(true)).withDeadlineAfter(CALL_TIMEOUT_S, TimeUnit.SECONDS)
        .getCurrentUser(GetCurrentUserRequest.getDefaultInstance()).getUser();
    check(!user.getEmail().isEmpty(), "no user");
    Map<String, Integer> after = usersRequests();
    checkEqual(delta(before, after, "count"), 2, "PostHog requests");
    checkEqual(delta(before, after, "503"), 1, "503 answers");
    checkEqual(delta(before, after, "200"), 1, "200 answers");
  }

  // With enableRetry(), grpc-java 1.41 follows the server's pushback even
  // though RESOURCE_EXHAUSTED is not among the policy's retryable codes
  // (grpc-go 1.33 does not retry it): the call is tried again after the
  // pushback and succeeds. A stack of its own, since GetCurrentUser's cache
  // holds the user the other tests fetched.
  static void pushbackIsFollowedEvenForResourceExhausted() throws Exception {
    String sharedTarget = target;
    String sharedEmulator = emulatorUrl;
    Process own = startStack();
    try {
      fault(Map.of("route", "users", "status", 429, "error_rate", 1, "retry_after_s", 1, "count", 1));
      Map<String, Integer> before = usersRequests();
      User user = UserServiceGrpc.newBlockingStub(channel(true))
          .withDeadlineAfter(CALL_TIMEOUT_S, TimeUnit.SECONDS)
          .getCurrentUser(GetCurrentUserRequest.getDefaultInstance()).getUser();
      check(!user.getEmail().isEmpty(), "no user");
      Map<String, Integer> after = usersRequests();
      checkEqual(delta(before, after, "429"), 1, "429 answers");
      checkEqual(delta(before, after, "200"), 1, "200 answers");
    } finally {
      stopStack(own);
      target = sharedTarget;
      emulatorUrl = sharedEmulator;
    }
  }

  /** The seed's user, as stack.keys_from_seed picks its personal key: {email, uuid, team name}. */
  private static List<String> expectedUser() throws IOException {
    JsonObject seed = GSON.fromJson(Files.readString(repoRoot.resolve("emulator/seed/demo.json")), JsonObject.class);
    JsonObject project = seed.getAsJsonArray("projects").get(0).getAsJsonObject();
    String organization = project.get("organization_id").getAsString();
    for (JsonElement k : seed.getAsJsonArray("personal_api_keys")) {
      JsonObject key = k.getAsJsonObject();
      if (!key.getAsJsonArray("scopes").toString().contains("\"*\"")) continue;
      for (JsonElement u : seed.getAsJsonArray("users")) {
        JsonObject user = u.getAsJsonObject();
        if (user.get("id").getAsLong() != key.get("user_id").getAsLong()) continue;
        if (!user.getAsJsonArray("organization_ids").toString().contains("\"" + organization + "\"")) continue;
        for (JsonElement p : seed.getAsJsonArray("projects")) {
          if (p.getAsJsonObject().get("id").getAsLong() == user.get("current_project_id").getAsLong()) {
            return List.of(user.get("email").getAsString(), user.get("uuid").getAsString(),
                p.getAsJsonObject().get("name").getAsString());
          }
        }
      }
    }
    throw new AssertionError("no all-access personal key in the seed");
  }

  static void getCurrentUserReturnsTheSeedUser() throws Exception {
    User user = UserServiceGrpc.newBlockingStub(channel(true)).withDeadlineAfter(CALL_TIMEOUT_S, TimeUnit.SECONDS)
        .getCurrentUser(GetCurrentUserRequest.newBuilder().setProject("demo").build()).getUser();
    checkEqual(List.of(user.getEmail(), user.getUuid(), user.getTeam().getName()), expectedUser(), "user");
  }

  static void healthReadinessIsServing() {
    HealthCheckResponse response = HealthGrpc.newBlockingStub(channel(true))
        .withDeadlineAfter(CALL_TIMEOUT_S, TimeUnit.SECONDS)
        .check(HealthCheckRequest.newBuilder().setService("readiness").build());
    checkEqual(response.getStatus(), HealthCheckResponse.ServingStatus.SERVING, "readiness");
  }

  static void batchCaptureIsDeliveredToPostHog() throws Exception {
    String distinctId = "java-batch-" + System.nanoTime();
    BatchCaptureEventsRequest.Builder request =
        BatchCaptureEventsRequest.newBuilder().setAckMode(AckMode.ACK_MODE_DURABLE);
    for (int i = 0; i < 25; i++) {
      request.addEvents(Event.newBuilder().setEvent("java batch").setDistinctId(distinctId)
          .setProperties(Struct.newBuilder()
              .putFields("index", Value.newBuilder().setNumberValue(i).build())
              .putFields("language", Value.newBuilder().setStringValue("java").build())));
    }
    BatchCaptureEventsResponse response = CaptureServiceGrpc.newBlockingStub(channel(true))
        .withDeadlineAfter(CALL_TIMEOUT_S, TimeUnit.SECONDS).batchCaptureEvents(request.build());
    checkEqual(response.getUuidsCount(), 25, "uuids");
    // Durable means spooled: delivery follows. Poll the emulator, bounded.
    Instant deadline = Instant.now().plusSeconds(CALL_TIMEOUT_S);
    JsonObject stored;
    do {
      stored = emulator("/_emulator/events?distinct_id=" + distinctId, null).getAsJsonObject();
      if (stored.get("count").getAsInt() >= 25) break;
      Thread.sleep(50);  // Polling interval, bounded by the deadline.
    } while (Instant.now().isBefore(deadline));
    Set<String> got = new TreeSet<>();
    for (JsonElement event : stored.getAsJsonArray("events")) {
      JsonObject object = event.getAsJsonObject();
      got.add(object.get("uuid").getAsString());
      checkEqual(object.getAsJsonObject("properties").get("language").getAsString(), "java", "language");
    }
    checkEqual(got, new TreeSet<>(response.getUuidsList()), "events at PostHog");
  }

  private static List<ListPersonsResponse> readPersons(ListPersonsRequest request) {
    List<ListPersonsResponse> messages = new ArrayList<>();
    Iterator<ListPersonsResponse> stream = PersonServiceGrpc.newBlockingStub(channel(true))
        .withDeadlineAfter(CALL_TIMEOUT_S, TimeUnit.SECONDS).listPersons(request);
    stream.forEachRemaining(messages::add);
    return messages;
  }

  private static List<String> uuids(List<ListPersonsResponse> messages) {
    List<String> all = new ArrayList<>();
    for (ListPersonsResponse message : messages) {
      for (Person person : message.getPersonsList()) all.add(person.getUuid());
    }
    return all;
  }

  static void listPersonsToTheEndAndResumed() throws Exception {
    emulator("/_emulator/seed", Map.of("generate_persons", 250, "project_id", 1));
    List<ListPersonsResponse> messages = readPersons(ListPersonsRequest.newBuilder().setPageSize(100).build());
    List<String> all = uuids(messages);
    check(all.size() >= 250 && messages.size() >= 3, all.size() + " persons in " + messages.size() + " messages");
    checkEqual(new HashSet<>(all).size(), all.size(), "distinct persons");
    checkEqual(messages.get(messages.size() - 1).getProgress().getItemsStreamed(), (long) all.size(), "progress");

    // Resume right after the first message: the rest, no gap, no repeat.
    int first = messages.get(0).getPersonsCount();
    List<ListPersonsResponse> resumed = readPersons(ListPersonsRequest.newBuilder().setPageSize(100)
        .setResumeToken(messages.get(0).getResumeToken()).build());
    checkEqual(uuids(resumed), all.subList(first, all.size()), "resumed persons");
    checkEqual(resumed.get(resumed.size() - 1).getProgress().getItemsStreamed(), (long) all.size(),
        "resumed progress");
  }

  static void evaluateFlagsLocally() throws Exception {
    // Local evaluation needs the definitions; the gateway waits for their
    // first load at start only a bounded while, and FlagService's health
    // entry turns SERVING once they are loaded.
    HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(channel(true));
    Instant deadline = Instant.now().plusSeconds(CALL_TIMEOUT_S);
    while (health.withDeadlineAfter(CALL_TIMEOUT_S, TimeUnit.SECONDS)
               .check(HealthCheckRequest.newBuilder().setService("posthog.v1.FlagService").build())
               .getStatus() != HealthCheckResponse.ServingStatus.SERVING) {
      check(Instant.now().isBefore(deadline), "FlagService never SERVING");
      Thread.sleep(50);  // Polling interval, bounded by the deadline.
    }
    EvaluateFlagsResponse response = FlagServiceGrpc.newBlockingStub(channel(true))
        .withDeadlineAfter(CALL_TIMEOUT_S, TimeUnit.SECONDS)
        .evaluateFlags(EvaluateFlagsRequest.newBuilder()
            .addKeys("pro-users").addKeys("disabled-flag").addKeys("checkout-experiment")
            .setContext(EvaluationContext.newBuilder().setDistinctId("java-user")
                .setPersonProperties(Struct.newBuilder()
                    .putFields("plan", Value.newBuilder().setStringValue("pro").build())))
            .build());
    FlagResult pro = response.getResultsOrThrow("pro-users");
    check(pro.getEnabled(), "pro-users is off");
    checkEqual(pro.getReason().getCode(), FlagReasonCode.FLAG_REASON_CODE_CONDITION_MATCH, "pro-users reason");
    checkEqual(pro.getSource(), FlagDecisionSource.FLAG_DECISION_SOURCE_LOCAL, "pro-users source");
    FlagResult disabled = response.getResultsOrThrow("disabled-flag");
    check(!disabled.getEnabled(), "disabled-flag is on");
    checkEqual(disabled.getReason().getCode(), FlagReasonCode.FLAG_REASON_CODE_FLAG_DISABLED, "disabled reason");
    String variant = response.getResultsOrThrow("checkout-experiment").getVariant();
    check(variant.equals("control") || variant.equals("test"), "variant " + variant);
    checkEqual(response.getResultsCount(), 3, "results");
    check(!response.getRequestId().isEmpty(), "no request id");
  }

  static void theExampleClientPrintsTheUser() throws Exception {
    Process example = new ProcessBuilder("java", "-cp", System.getenv("JAVA_CLASSPATH"), "GetCurrentUser",
        target, repoRoot.resolve("deploy/kubernetes/client-service-config.json").toString())
        .redirectErrorStream(true).start();
    String output = new String(example.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    check(example.waitFor(CALL_TIMEOUT_S, TimeUnit.SECONDS), "the example did not exit");
    checkEqual(example.exitValue(), 0, "exit status (" + output + ")");
    check(output.contains("<" + expectedUser().get(0) + ">"), "output " + output);
  }
}
