// Unary CaptureEvent through the real CaptureService behind a GatewayServer
// on loopback, its methods served raw as the gateway serves them: an
// ordinary durable request takes the wire path (its event's JSON written
// from the request's bytes), anything unusual the parsed path. Both must
// answer and deliver the same: the event's JSON, its uuid in the response,
// the errors and their details, a malformed request's INVALID_ARGUMENT.

#include <zlib.h>

#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/capture.grpc.pb.h"
#include "server/capture/capture_pipeline.h"
#include "server/config/key_store.h"
#include "server/grpc/gateway_server.h"
#include "server/grpc/malformed_request_interceptor.h"
#include "server/http/http_client.h"
#include "server/posthog/project_registry.h"
#include "server/service/capture_service.h"
#include "tests/fakes/demo_project.h"
#include "tests/fakes/grpc_status_details.h"
#include "tests/fakes/raw_grpc_call.h"
#include "tests/fakes/scratch_dir.h"

namespace posthog_gateway {
namespace {

namespace v1 = ::posthog::v1;
using ::nlohmann::json;

std::string Gunzip(const std::string& data) {
  z_stream stream{};
  inflateInit2(&stream, 15 + 16);
  std::string out;
  char buffer[1 << 16];
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  int result = Z_OK;
  while (result == Z_OK) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer);
    stream.avail_out = sizeof(buffer);
    result = inflate(&stream, Z_NO_FLUSH);
    out.append(buffer, sizeof(buffer) - stream.avail_out);
  }
  inflateEnd(&stream);
  return out;
}

// A PostHog that accepts every batch and keeps its events.
class RecordingPostHog final : public HttpClient {
 public:
  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    json body = json::parse(Gunzip(request.body));
    absl::MutexLock lock(&mu_);
    for (json& event : body["batch"]) events_.push_back(std::move(event));
    HttpResponse response;
    response.status_code = 200;
    response.body = R"({"status": 1})";
    return response;
  }

  std::vector<json> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<json> events_ ABSL_GUARDED_BY(mu_);
};

class CaptureEventPathsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = test_support::DemoProjectConfig();
    config_.projects[0].project_api_key.env = "PHC";
    // Each test its own: a spool left by another would be replayed into it.
    config_.capture.spool_dir = test_support::ScratchDir("spool");
    config_.capture.flush_interval = absl::Milliseconds(5);
    keys_ = std::make_unique<KeyStore>(config_, [](const std::string& name) {
      return std::optional<std::string>(name == "PHC" ? "phc_token" : "phx_secret");
    });
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), &posthog_);
    absl::StatusOr<std::unique_ptr<CapturePipeline>> pipeline =
        CapturePipeline::Create(config_, registry_.get(), keys_.get(), "test");
    ASSERT_TRUE(pipeline.ok()) << pipeline.status();
    pipeline_ = *std::move(pipeline);
    capture_ = std::make_unique<CaptureServiceImpl>(pipeline_.get(), Authorizer::AllowAll(),
                                                    StreamLimits::Unlimited(), 4);
    // Raw methods named as the gateway names them (gateway.cc).
    server_ = std::make_unique<GatewayServer>(
        ServerConfig{}, std::vector<NamedService>{{v1::CaptureService::service_full_name(),
                                                   capture_.get(),
                                                   {std::begin(CaptureServiceImpl::kRawMethods),
                                                    std::end(CaptureServiceImpl::kRawMethods)}}});
    absl::StatusOr<int> port = server_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status();
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials());
    stub_ = v1::CaptureService::NewStub(channel_);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration(), absl::Seconds(5));
  }

  grpc::Status Capture(const v1::CaptureEventRequest& request, v1::CaptureEventResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return stub_->CaptureEvent(&context, request, response);
  }

  // The events PostHog received, once it has `count` (at most 10 s).
  std::vector<json> Delivered(size_t count) {
    for (int i = 0; i < 1000 && posthog_.events().size() < count; ++i) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return posthog_.events();
  }

  static v1::CaptureEventRequest OrdinaryRequest() {
    v1::CaptureEventRequest request;
    request.set_ack_mode(v1::ACK_MODE_DURABLE);
    v1::Event& event = *request.mutable_event();
    event.set_event("order completed");
    event.set_distinct_id("user-42");
    event.set_uuid("0190A1B2-C3D4-7E5F-8A6B-7C8D9E0F1A2B");
    event.mutable_timestamp()->set_seconds(1767323000);
    event.mutable_timestamp()->set_nanos(5000000);
    (*event.mutable_groups())["company"] = "acme";
    auto& fields = *event.mutable_properties()->mutable_fields();
    fields["plan"].set_string_value("pro \"quoted\" \xC3\xA9");
    fields["amount"].set_number_value(42.5);
    (*fields["nested"].mutable_struct_value()->mutable_fields())["b"].set_bool_value(true);
    (*event.mutable_set()->mutable_fields())["email"].set_string_value("a@example.com");
    return request;
  }

  // The same request with a field the wire path does not know: protobuf
  // keeps it as unknown, the scan declines it, so the parsed path takes it.
  static v1::CaptureEventRequest ParsedPathRequest(v1::CaptureEventRequest request) {
    request.GetReflection()->MutableUnknownFields(&request)->AddVarint(99, 1);
    return request;
  }

  GatewayConfig config_;
  RecordingPostHog posthog_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
  std::unique_ptr<CapturePipeline> pipeline_;
  std::unique_ptr<CaptureServiceImpl> capture_;
  std::unique_ptr<GatewayServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::CaptureService::Stub> stub_;
};

TEST_F(CaptureEventPathsTest, BothPathsDeliverTheSameEventAndAnswerItsUuid) {
  v1::CaptureEventResponse wire;
  ASSERT_TRUE(Capture(OrdinaryRequest(), &wire).ok());
  v1::CaptureEventResponse parsed;
  ASSERT_TRUE(Capture(ParsedPathRequest(OrdinaryRequest()), &parsed).ok());

  EXPECT_EQ(wire.uuid(), "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b");
  EXPECT_EQ(parsed.uuid(), wire.uuid());
  const std::vector<json> events = Delivered(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].dump(), events[1].dump());
  EXPECT_EQ(events[0]["uuid"], wire.uuid());
  EXPECT_EQ(events[0]["properties"]["plan"], "pro \"quoted\" \xC3\xA9");
}

TEST_F(CaptureEventPathsTest, AGatewayUuidIsTheOneDeliveredOnBothPaths) {
  v1::CaptureEventRequest request = OrdinaryRequest();
  request.mutable_event()->clear_uuid();
  v1::CaptureEventResponse wire;
  ASSERT_TRUE(Capture(request, &wire).ok());
  v1::CaptureEventResponse parsed;
  ASSERT_TRUE(Capture(ParsedPathRequest(request), &parsed).ok());

  const std::vector<json> events = Delivered(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(wire.uuid().size(), 36u);
  EXPECT_NE(wire.uuid(), parsed.uuid());
  std::vector<std::string> delivered = {events[0]["uuid"], events[1]["uuid"]};
  std::sort(delivered.begin(), delivered.end());
  std::vector<std::string> answered = {wire.uuid(), parsed.uuid()};
  std::sort(answered.begin(), answered.end());
  EXPECT_EQ(delivered, answered);
}

// A request large enough to arrive in several slices is joined and taken.
TEST_F(CaptureEventPathsTest, ALargeRequestIsCapturedWhole) {
  v1::CaptureEventRequest request = OrdinaryRequest();
  const std::string large(300 << 10, 'x');
  (*request.mutable_event()->mutable_properties()->mutable_fields())["large"].set_string_value(
      large);
  v1::CaptureEventResponse response;
  ASSERT_TRUE(Capture(request, &response).ok());

  const std::vector<json> events = Delivered(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["properties"]["large"], large);
}

TEST_F(CaptureEventPathsTest, AnInvalidEventGetsTheSameViolationsOnBothPaths) {
  v1::CaptureEventRequest request = OrdinaryRequest();
  request.mutable_event()->clear_distinct_id();
  v1::CaptureEventResponse response;
  const grpc::Status wire = Capture(request, &response);
  const grpc::Status parsed = Capture(ParsedPathRequest(request), &response);

  EXPECT_EQ(wire.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(test_support::ViolatedFields(wire), std::vector<std::string>{"event.distinct_id"});
  EXPECT_EQ(parsed.error_code(), wire.error_code());
  EXPECT_EQ(parsed.error_message(), wire.error_message());
  EXPECT_EQ(parsed.error_details(), wire.error_details());
}

TEST_F(CaptureEventPathsTest, AnEventOverTheSizeLimitIsRefusedOnBothPaths) {
  v1::CaptureEventRequest request = OrdinaryRequest();
  (*request.mutable_event()->mutable_properties()->mutable_fields())["large"].set_string_value(
      std::string(config_.capture.max_event_bytes, 'x'));
  v1::CaptureEventResponse response;
  const grpc::Status wire = Capture(request, &response);
  const grpc::Status parsed = Capture(ParsedPathRequest(request), &response);

  EXPECT_EQ(wire.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(test_support::ViolatedFields(wire), std::vector<std::string>{"event.properties"});
  EXPECT_EQ(parsed.error_details(), wire.error_details());
}

TEST_F(CaptureEventPathsTest, MalformedProtobufIsInvalidArgument) {
  const std::string method = "/posthog.v1.CaptureService/CaptureEvent";
  const std::string event = OrdinaryRequest().event().SerializeAsString();
  const std::string malformed[] = {
      std::string("\x12\x05"
                  "ab",
                  4),  // Truncated event.
      std::string("\x0a\x01\xff", 3) + "\x12" + std::string(1, static_cast<char>(event.size())) +
          event,                                   // Project not UTF-8.
      std::string("\xff\xff\xff\xff\xff\xff", 6),  // No valid tag.
  };
  for (const std::string& bytes : malformed) {
    const grpc::Status status = test_support::RawUnaryCall(channel_, method, bytes);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(), kMalformedRequestMessage);
  }
  EXPECT_TRUE(Delivered(0).empty());
}

// BatchCaptureEvents has the same two paths (its request the stream
// message's layout).
class BatchCaptureEventsPathsTest : public CaptureEventPathsTest {
 protected:
  grpc::Status Batch(const v1::BatchCaptureEventsRequest& request,
                     v1::BatchCaptureEventsResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return stub_->BatchCaptureEvents(&context, request, response);
  }

  static v1::BatchCaptureEventsRequest OrdinaryBatch(int count) {
    v1::BatchCaptureEventsRequest request;
    request.set_ack_mode(v1::ACK_MODE_DURABLE);
    for (int i = 0; i < count; ++i) {
      v1::Event& event = *request.add_events();
      event = OrdinaryRequest().event();
      event.set_distinct_id(absl::StrCat("user-", i));
      event.set_uuid(absl::StrFormat("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f%04x", i));
      event.set_historical_migration(i % 2 == 1);
    }
    return request;
  }

  static v1::BatchCaptureEventsRequest ParsedPath(v1::BatchCaptureEventsRequest request) {
    request.GetReflection()->MutableUnknownFields(&request)->AddVarint(99, 1);
    return request;
  }
};

TEST_F(BatchCaptureEventsPathsTest, BothPathsDeliverTheSameEventsAndAnswerTheirUuids) {
  v1::BatchCaptureEventsResponse wire;
  ASSERT_TRUE(Batch(OrdinaryBatch(3), &wire).ok());
  v1::BatchCaptureEventsResponse parsed;
  ASSERT_TRUE(Batch(ParsedPath(OrdinaryBatch(3)), &parsed).ok());

  ASSERT_EQ(wire.uuids_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(wire.uuids(i), absl::StrFormat("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f%04x", i));
    EXPECT_EQ(parsed.uuids(i), wire.uuids(i));
  }
  std::vector<json> events = Delivered(6);
  ASSERT_EQ(events.size(), 6u);
  std::map<std::string, std::vector<std::string>> by_uuid;
  for (const json& event : events) by_uuid[event["uuid"]].push_back(event.dump());
  ASSERT_EQ(by_uuid.size(), 3u);
  for (const auto& [uuid, dumps] : by_uuid) {
    ASSERT_EQ(dumps.size(), 2u) << uuid;
    EXPECT_EQ(dumps[0], dumps[1]) << uuid;
  }
}

TEST_F(BatchCaptureEventsPathsTest, InvalidEventsGetTheSameViolationsOnBothPaths) {
  v1::BatchCaptureEventsRequest request = OrdinaryBatch(3);
  request.mutable_events(1)->clear_distinct_id();
  request.mutable_events(2)->set_uuid("not a uuid");
  v1::BatchCaptureEventsResponse response;
  const grpc::Status wire = Batch(request, &response);
  const grpc::Status parsed = Batch(ParsedPath(request), &response);

  EXPECT_EQ(wire.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(test_support::ViolatedFields(wire),
            (std::vector<std::string>{"events[1].distinct_id", "events[2].uuid"}));
  EXPECT_EQ(parsed.error_code(), wire.error_code());
  EXPECT_EQ(parsed.error_message(), wire.error_message());
  EXPECT_EQ(parsed.error_details(), wire.error_details());
}

TEST_F(BatchCaptureEventsPathsTest, EmptyAndOversizedBatchesGetTheSameErrorsOnBothPaths) {
  for (int count : {0, 1001}) {
    v1::BatchCaptureEventsRequest request = OrdinaryBatch(count);
    v1::BatchCaptureEventsResponse response;
    const grpc::Status wire = Batch(request, &response);
    const grpc::Status parsed = Batch(ParsedPath(request), &response);

    EXPECT_FALSE(wire.ok()) << count;
    EXPECT_EQ(parsed.error_code(), wire.error_code()) << count;
    EXPECT_EQ(parsed.error_message(), wire.error_message()) << count;
    EXPECT_EQ(parsed.error_details(), wire.error_details()) << count;
  }
  EXPECT_TRUE(Delivered(0).empty());
}

TEST_F(BatchCaptureEventsPathsTest, MalformedProtobufIsInvalidArgument) {
  const grpc::Status status =
      test_support::RawUnaryCall(channel_, "/posthog.v1.CaptureService/BatchCaptureEvents",
                                 std::string("\x12\x05"
                                             "ab",
                                             4));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), kMalformedRequestMessage);
}

}  // namespace
}  // namespace posthog_gateway
