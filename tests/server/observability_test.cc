#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "posthog/v1/user.grpc.pb.h"
#include "server/common/error_details.h"
#include "server/common/log.h"
#include "server/grpc/observability_interceptor.h"
#include "server/grpc/status_conversion.h"
#include "server/http/observed_http_client.h"
#include "server/observability/admin_server.h"
#include "server/observability/metrics.h"
#include "tests/fakes/fake_http_client.h"
#include "tests/fakes/raw_grpc_call.h"

namespace posthog_gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsRegistryTest, ExposesCountersAndHistogramsInTextFormat) {
  MetricsRegistry registry;
  Counter* calls = registry.AddCounter("calls_total", "Calls.", {"method", "code"});
  Histogram* seconds = registry.AddHistogram("latency_seconds", "Latency.", {"method"}, {0.1, 1});
  calls->Add({"Get", "OK"});
  calls->Add({"Get", "OK"}, 2);
  calls->Add({"Del", "NotFound"});
  seconds->Observe({"Get"}, 0.05);
  seconds->Observe({"Get"}, 0.5);
  seconds->Observe({"Get"}, 7);

  EXPECT_EQ(registry.Expose(),
            "# HELP calls_total Calls.\n"
            "# TYPE calls_total counter\n"
            "calls_total{method=\"Del\",code=\"NotFound\"} 1\n"
            "calls_total{method=\"Get\",code=\"OK\"} 3\n"
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{method=\"Get\",le=\"0.1\"} 1\n"
            "latency_seconds_bucket{method=\"Get\",le=\"1\"} 2\n"
            "latency_seconds_bucket{method=\"Get\",le=\"+Inf\"} 3\n"
            "latency_seconds_sum{method=\"Get\"} 7.55\n"
            "latency_seconds_count{method=\"Get\"} 3\n");
}

TEST(MetricsRegistryTest, ObservedFamiliesAreReadAtEachExposeInOrderOfAddition) {
  MetricsRegistry registry;
  double spool_bytes = 10;
  registry.AddCounter("first_total", "First.", {});
  registry.AddObserved("spool_bytes", "Spool size.", "gauge", {}, [&spool_bytes] {
    return MetricReading{{{}, spool_bytes}};
  });
  registry.AddObserved("paused", "Paused projects.", "gauge", {"project"}, [] {
    return MetricReading{{{"b"}, 0}, {{"a"}, 1}};
  });

  EXPECT_EQ(registry.Expose(),
            "# HELP first_total First.\n"
            "# TYPE first_total counter\n"
            "# HELP spool_bytes Spool size.\n"
            "# TYPE spool_bytes gauge\n"
            "spool_bytes 10\n"
            "# HELP paused Paused projects.\n"
            "# TYPE paused gauge\n"
            "paused{project=\"a\"} 1\n"
            "paused{project=\"b\"} 0\n");
  spool_bytes = 2.5;
  EXPECT_THAT(registry.Expose(), HasSubstr("spool_bytes 2.5\n"));
}

TEST(MetricsRegistryTest, ResolvedSeriesAreTheSeriesOfTheirLabels) {
  MetricsRegistry registry;
  Counter* calls = registry.AddCounter("calls_total", "Calls.", {"code"});
  Histogram* seconds = registry.AddHistogram("latency_seconds", "Latency.", {"code"}, {1});
  Counter::Series* ok = calls->WithLabels({"OK"});
  EXPECT_EQ(calls->WithLabels({"OK"}), ok);
  ok->Add();
  ok->Add(2);
  calls->Add({"OK"});
  seconds->WithLabels({"OK"})->Observe(0.5);
  seconds->Observe({"OK"}, 2);

  const std::string text = registry.Expose();
  EXPECT_THAT(text, HasSubstr("calls_total{code=\"OK\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_bucket{code=\"OK\",le=\"1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_count{code=\"OK\"} 2\n"));
}

TEST(MetricsRegistryTest, EscapesLabelValues) {
  MetricsRegistry registry;
  registry.AddCounter("c", "C.", {"l"})->Add({"a\"b\\c\nd"});

  EXPECT_THAT(registry.Expose(), HasSubstr("c{l=\"a\\\"b\\\\c\\nd\"} 1\n"));
}

TEST(RouteTemplateTest, ReplacesIdsAndDropsHostAndQuery) {
  EXPECT_EQ(RouteTemplate("https://us.posthog.com/api/projects/123/persons/?limit=100"),
            "/api/projects/:id/persons/");
  EXPECT_EQ(RouteTemplate("http://127.0.0.1:8010/api/projects/1/persons/"
                          "01908d6b-0001-7000-8000-000000000001/"),
            "/api/projects/:id/persons/:id/");
  EXPECT_EQ(RouteTemplate("https://us.i.posthog.com/flags/definitions?token=phc_x"),
            "/flags/definitions");
  EXPECT_EQ(RouteTemplate("https://us.posthog.com/api/users/@me/"), "/api/users/@me/");
}

TEST(ObservedHttpClientTest, RecordsStatusOrTransportError) {
  MetricsRegistry registry;
  test_support::FakeHttpClient fake;
  ObservedHttpClient client(&fake, &registry);
  fake.Respond(404, "");
  fake.Script(absl::UnavailableError("refused"));
  HttpRequest request;
  request.url = "https://app.example/api/projects/7/feature_flags/42/";

  ASSERT_TRUE(client.Send(request).ok());
  ASSERT_FALSE(client.Send(request).ok());

  const std::string text = registry.Expose();
  EXPECT_THAT(text, HasSubstr("posthog_upstream_request_duration_seconds_count{method=\"GET\","
                              "route=\"/api/projects/:id/feature_flags/:id/\",status=\"404\"} 1"));
  EXPECT_THAT(text, HasSubstr("route=\"/api/projects/:id/feature_flags/:id/\","
                              "status=\"UNAVAILABLE\"} 1"));
}

// A UserService whose answer the test chooses.
class ScriptedUserService final : public posthog::v1::UserService::Service {
 public:
  // NOT_FOUND, except for the projects "ok"; "down": UNAVAILABLE; and
  // "busy": UNAVAILABLE with a RetryInfo of 30 s. Counts the calls.
  grpc::Status GetCurrentUser(grpc::ServerContext*,
                              const posthog::v1::GetCurrentUserRequest* request,
                              posthog::v1::GetCurrentUserResponse*) override {
    ++calls;
    if (request->project() == "ok") return grpc::Status::OK;
    if (request->project() == "down") return grpc::Status(grpc::StatusCode::UNAVAILABLE, "down");
    if (request->project() == "busy") {
      absl::Status busy = absl::UnavailableError("busy");
      AttachRetryDelay(busy, absl::Seconds(30));
      return ToGrpcStatus(busy);
    }
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "nobody");
  }

  std::atomic<int> calls{0};
};

// A server of `service` behind the observability interceptor, in process
// (and on a TCP port of 127.0.0.1 when `port` is given).
std::unique_ptr<grpc::Server> StartIntercepted(MetricsRegistry* registry,
                                               ScriptedUserService* service,
                                               AccessLog access_log = AccessLog::kAll,
                                               int* port = nullptr) {
  grpc::ServerBuilder builder;
  if (port != nullptr) {
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), port);
  }
  builder.RegisterService(service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<ObservabilityInterceptorFactory>(
      registry, Authorizer::AllowAll(), access_log));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  return builder.BuildAndStart();
}

TEST(ObservabilityInterceptorTest, CountsCallsByMethodAndCodeAndServesThemOnTheAdminPort) {
  MetricsRegistry registry;
  ScriptedUserService service;
  std::unique_ptr<grpc::Server> server = StartIntercepted(&registry, &service);
  auto stub = posthog::v1::UserService::NewStub(server->InProcessChannel({}));

  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext context;
    context.AddMetadata("x-request-id", "req-1");
    posthog::v1::GetCurrentUserResponse response;
    EXPECT_EQ(stub->GetCurrentUser(&context, {}, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  server->Shutdown();
  const std::string access_log = ::testing::internal::GetCapturedStderr();
  // One WARNING line per call (not OK), with the method's logged name.
  const std::string line_fields =
      "\"severity\":\"WARNING\",\"message\":\"call\","
      "\"method\":\"posthog.v1.UserService/GetCurrentUser\",\"code\":\"NotFound\"";
  const size_t first = access_log.find(line_fields);
  ASSERT_NE(first, std::string::npos) << access_log;
  EXPECT_NE(access_log.find(line_fields, first + 1), std::string::npos) << access_log;
  EXPECT_THAT(access_log, HasSubstr("\"request_id\":\"req-1\"}\n"));

  AdminServer admin(&registry);
  absl::StatusOr<int> port = admin.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status();
  httplib::Client http("127.0.0.1", *port);
  httplib::Result result = http.Get("/metrics");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  const std::string labels =
      "grpc_type=\"unary\",grpc_service=\"posthog.v1.UserService\","
      "grpc_method=\"GetCurrentUser\"";
  EXPECT_THAT(result->body, HasSubstr(absl::StrCat("grpc_server_started_total{", labels, "} 2")));
  EXPECT_THAT(result->body, HasSubstr(absl::StrCat("grpc_server_handled_total{", labels,
                                                   ",grpc_code=\"NotFound\"} 2")));
  EXPECT_THAT(result->body,
              HasSubstr(absl::StrCat("grpc_server_handling_seconds_count{", labels, "} 2")));
  httplib::Result health = http.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

// The access log names the call's x-request-id and the trace id of its W3C
// traceparent; a traceparent it cannot read, or an empty x-request-id,
// names nothing.
TEST(ObservabilityInterceptorTest, LogsTheRequestIdAndTheTraceIdOfTheTraceparent) {
  MetricsRegistry registry;
  ScriptedUserService service;
  std::unique_ptr<grpc::Server> server = StartIntercepted(&registry, &service);
  auto stub = posthog::v1::UserService::NewStub(server->InProcessChannel({}));
  FlushLog();
  ::testing::internal::CaptureStderr();
  auto call = [&](const std::string& request_id, const std::string& traceparent) {
    grpc::ClientContext context;
    context.AddMetadata("x-request-id", request_id);
    context.AddMetadata("traceparent", traceparent);
    posthog::v1::GetCurrentUserRequest request;
    request.set_project("ok");
    posthog::v1::GetCurrentUserResponse response;
    EXPECT_TRUE(stub->GetCurrentUser(&context, request, &response).ok());
  };
  call("req-traced", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  call("", "not-a-traceparent");
  server->Shutdown();
  FlushLog();  // OK calls' lines may be held (LogBuffered).
  const std::string access_log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(access_log, HasSubstr("\"request_id\":\"req-traced\","
                                    "\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\"}\n"));
  // Two lines, and only the first names a request or a trace.
  const size_t first = access_log.find("\"message\":\"call\"");
  ASSERT_NE(first, std::string::npos) << access_log;
  ASSERT_NE(access_log.find("\"message\":\"call\"", first + 1), std::string::npos) << access_log;
  EXPECT_EQ(access_log.find("\"request_id\"", access_log.find("req-traced") + 1), std::string::npos)
      << access_log;
  EXPECT_EQ(access_log.find("\"trace_id\"", access_log.find("0af76519") + 1), std::string::npos)
      << access_log;
}

TEST(ObservabilityInterceptorTest, UnknownMethodsShareOneSeries) {
  MetricsRegistry registry;
  ScriptedUserService service;
  std::unique_ptr<grpc::Server> server = StartIntercepted(&registry, &service, AccessLog::kOff);
  std::shared_ptr<grpc::Channel> channel = server->InProcessChannel({});
  EXPECT_EQ(test_support::RawUnaryCall(channel, "/posthog.v1.UserService/GetCurrentUser", "")
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  const size_t before = registry.Expose().size();

  // Names a caller makes up: unknown methods of a known service, unknown
  // services, label-breaking text.
  constexpr int kCalls = 300;
  for (int i = 0; i < kCalls; ++i) {
    const std::string method = i % 3 == 0   ? absl::StrCat("/posthog.v1.UserService/Nope", i)
                               : i % 3 == 1 ? absl::StrCat("/evil.Service", i, "/X")
                                            : absl::StrCat("/a\"b", i, "/", std::string(200, 'x'));
    EXPECT_EQ(test_support::RawUnaryCall(channel, method, "").error_code(),
              grpc::StatusCode::UNIMPLEMENTED)
        << method;
  }
  server->Shutdown();

  const std::string text = registry.Expose();
  EXPECT_THAT(text, Not(HasSubstr("Nope")));
  EXPECT_THAT(text, Not(HasSubstr("evil")));
  EXPECT_THAT(text, Not(HasSubstr("xxxxxxxx")));
  const std::string unknown =
      "grpc_type=\"unknown\",grpc_service=\"unknown\",grpc_method=\"unknown\"";
  EXPECT_THAT(text, HasSubstr(absl::StrCat("grpc_server_started_total{", unknown, "} ", kCalls)));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("grpc_server_handled_total{", unknown,
                                           ",grpc_code=\"Unimplemented\"} ", kCalls)));
  // One started, one handled and one histogram's series more, whatever the
  // number of names: well under 4 KB.
  EXPECT_LT(text.size(), before + 4096) << text;
}

// The access-log lines of one GetCurrentUser call for `project` under
// `policy`.
std::string AccessLogUnder(AccessLog policy, const std::string& project) {
  MetricsRegistry registry;
  ScriptedUserService service;
  std::unique_ptr<grpc::Server> server = StartIntercepted(&registry, &service, policy);
  auto stub = posthog::v1::UserService::NewStub(server->InProcessChannel({}));
  FlushLog();  // Lines held from earlier calls go out before the capture.
  ::testing::internal::CaptureStderr();
  grpc::ClientContext context;
  posthog::v1::GetCurrentUserRequest request;
  request.set_project(project);
  posthog::v1::GetCurrentUserResponse response;
  (void)stub->GetCurrentUser(&context, request, &response);
  server->Shutdown();
  FlushLog();  // An OK call's line may be held (LogBuffered).
  return ::testing::internal::GetCapturedStderr();
}

TEST(ObservabilityInterceptorTest, AccessLogPolicyKeepsFailuresOrNothing) {
  const std::string call = "\"message\":\"call\"";
  EXPECT_THAT(AccessLogUnder(AccessLog::kAll, "ok"), HasSubstr(call));
  EXPECT_THAT(AccessLogUnder(AccessLog::kErrors, "ok"), Not(HasSubstr(call)));
  EXPECT_THAT(AccessLogUnder(AccessLog::kErrors, "missing"), HasSubstr(call));
  EXPECT_THAT(AccessLogUnder(AccessLog::kOff, "missing"), Not(HasSubstr(call)));
}

// RetryInfo becomes the grpc-retry-pushback-ms trailer, which a client's
// retry policy obeys: with a 1 ms backoff of its own, it still waits the 30 s
// the gateway asked for, so its 2 s deadline passes before a second attempt.
// (Without the trailer it retries at once and the service sees two calls.)
TEST(ObservabilityInterceptorTest, RetryInfoBecomesARetryPushbackClientsObey) {
  MetricsRegistry registry;
  ScriptedUserService service;
  int port = 0;
  std::unique_ptr<grpc::Server> server =
      StartIntercepted(&registry, &service, AccessLog::kOff, &port);
  ASSERT_NE(port, 0);
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(R"({"methodConfig": [{
      "name": [{"service": "posthog.v1.UserService"}],
      "retryPolicy": {"maxAttempts": 2, "initialBackoff": "0.001s", "maxBackoff": "0.001s",
                      "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}]})");
  auto stub = posthog::v1::UserService::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials(), args));
  // GetCurrentUser for `project`, within `seconds`; counts the service's calls.
  auto call = [&](const std::string& project, int seconds) {
    service.calls = 0;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
    posthog::v1::GetCurrentUserRequest request;
    request.set_project(project);
    posthog::v1::GetCurrentUserResponse response;
    return stub->GetCurrentUser(&context, request, &response);
  };

  // Control: UNAVAILABLE without RetryInfo is retried at once.
  EXPECT_EQ(call("down", 10).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(service.calls.load(), 2);

  EXPECT_NE(call("busy", 2).error_code(), grpc::StatusCode::OK);
  EXPECT_EQ(service.calls.load(), 1) << "the client did not wait for the pushback";
  server->Shutdown();
}

}  // namespace
}  // namespace posthog_gateway
