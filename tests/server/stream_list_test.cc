#include "server/service/stream_list.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "posthog/v1/flag.pb.h"
#include "server/flags/flag_json.h"
#include "server/posthog/project_registry.h"
#include "tests/fakes/demo_project.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_list_endpoint.h"
#include "tests/fakes/grpc_status_details.h"

namespace posthog_gateway {
namespace {

using posthog::v1::Flag;
using posthog::v1::ListFlagsResponse;
using test_support::ErrorReason;
using test_support::FakeClock;
using test_support::FakeListEndpoint;
using test_support::ViolatedFields;

constexpr char kPath[] = "/api/projects/7/feature_flags/";
constexpr char kBase[] = "https://app.example/api/projects/7/feature_flags/";

// RecordingWriter is the gRPC writer of a call: it keeps every message and
// fails (the caller went away) after `fail_after` writes when set.
class RecordingWriter final : public grpc::ServerWriterInterface<ListFlagsResponse> {
 public:
  explicit RecordingWriter(int fail_after = -1) : fail_after_(fail_after) {}

  void SendInitialMetadata() override {}
  bool Write(const ListFlagsResponse& message, grpc::WriteOptions /*options*/) override {
    if (fail_after_ >= 0 && static_cast<int>(messages.size()) >= fail_after_) return false;
    messages.push_back(message);
    return true;
  }

  std::vector<ListFlagsResponse> messages;

 private:
  const int fail_after_;
};

HttpResponse Answer(int code, std::string body) {
  HttpResponse response;
  response.status_code = code;
  response.body = std::move(body);
  return response;
}

class StreamListTest : public ::testing::Test {
 protected:
  void Serve(int total) {
    config_ = test_support::DemoProjectConfig();
    http_ = std::make_unique<FakeListEndpoint>(kBase, total, &clock_);
    keys_ = std::make_unique<KeyStore>(config_);
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), http_.get());
  }

  const PostHogClient* client() { return *registry_->Resolve(""); }

  ListCall Call(int page_size = 0, int64_t limit = 0, std::string resume_token = "") {
    ListCall call;
    call.client = client();
    call.path = kPath;
    call.scope = ListScope("flags", *client(), "");
    call.page_size = page_size;
    call.limit = limit;
    call.resume_token = std::move(resume_token);
    call.look_ahead = 2;
    call.item_name = "flag";
    return call;
  }

  grpc::Status Run(ListCall call, RecordingWriter& writer) {
    ListEnv env;
    env.pacer = &pacer_;
    env.tokens = &tokens_;
    env.clock = &clock_;
    return StreamList<ListFlagsResponse, Flag>(
        std::move(call), std::move(env), flags::FlagFromJson,
        [](ListFlagsResponse& response) { return response.add_flags(); }, &writer);
  }

  static std::vector<int64_t> Ids(const std::vector<ListFlagsResponse>& messages) {
    std::vector<int64_t> ids;
    for (const ListFlagsResponse& message : messages) {
      for (const Flag& flag : message.flags()) ids.push_back(flag.id());
    }
    return ids;
  }

  static std::vector<int64_t> Range(int64_t from, int64_t to) {
    std::vector<int64_t> ids;
    for (int64_t k = from; k < to; ++k) ids.push_back(k);
    return ids;
  }

  FakeClock clock_;
  GatewayConfig config_;
  std::unique_ptr<FakeListEndpoint> http_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
  RequestPacer pacer_{{}, &clock_};
  ResumeTokenCodec tokens_{"stream-list-test-secret", absl::Hours(24)};
};

TEST_F(StreamListTest, StreamsEveryItemAcrossPagesWithTokenAndProgress) {
  Serve(250);
  RecordingWriter writer;
  const grpc::Status status = Run(Call(), writer);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Ids(writer.messages), Range(0, 250));
  // One message per page: the items of a page travel together.
  ASSERT_EQ(writer.messages.size(), 3u);
  const int64_t streamed[] = {100, 200, 250};
  for (size_t i = 0; i < writer.messages.size(); ++i) {
    const ListFlagsResponse& message = writer.messages[i];
    EXPECT_EQ(message.progress().page(), static_cast<int>(i + 1)) << i;
    EXPECT_EQ(message.progress().items_streamed(), streamed[i]) << i;
    EXPECT_FALSE(message.resume_token().empty()) << i;
  }
  // PostHog's default page size, from the start.
  ASSERT_FALSE(http_->requests().empty());
  EXPECT_EQ(http_->requests()[0].url, absl::StrCat(kBase, "?limit=100&offset=0"));
}

TEST_F(StreamListTest, ResumeTokenContinuesWithoutGapOrDuplicate) {
  Serve(250);
  RecordingWriter full;
  // Pages of one item: a message, so a token, after every item.
  ASSERT_TRUE(Run(Call(1), full).ok());
  ASSERT_EQ(full.messages.size(), 250u);
  for (size_t position : {0u, 99u, 100u, 137u, 248u}) {
    RecordingWriter resumed;
    // Another page size on resumption still continues at the same item.
    const grpc::Status status = Run(Call(30, 0, full.messages[position].resume_token()), resumed);
    ASSERT_TRUE(status.ok()) << position << ": " << status.error_message();
    EXPECT_EQ(Ids(resumed.messages), Range(position + 1, 250)) << position;
    // The first message holds the rest of the first page (30 items).
    EXPECT_EQ(resumed.messages.front().progress().items_streamed(),
              std::min<int64_t>(position + 1 + 30, 250));
  }
  RecordingWriter after_last;
  EXPECT_TRUE(Run(Call(0, 0, full.messages.back().resume_token()), after_last).ok());
  EXPECT_TRUE(after_last.messages.empty());
}

TEST_F(StreamListTest, ForgedTokenIsInvalidArgumentAndFetchesNothing) {
  Serve(50);
  RecordingWriter first;
  ASSERT_TRUE(Run(Call(10, 3), first).ok());
  std::string forged = first.messages.back().resume_token();
  forged[forged.size() / 3] = forged[forged.size() / 3] == 'A' ? 'B' : 'A';
  const size_t requests_before = http_->requests().size();
  for (const std::string& token : {forged, std::string("not-a-token")}) {
    RecordingWriter writer;
    const grpc::Status status = Run(Call(10, 0, token), writer);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << token;
    EXPECT_EQ(ErrorReason(status), "INVALID_RESUME_TOKEN");
    EXPECT_EQ(ViolatedFields(status), std::vector<std::string>{"resume_token"});
    EXPECT_TRUE(writer.messages.empty());
  }
  EXPECT_EQ(http_->requests().size(), requests_before);
}

TEST_F(StreamListTest, ATokenOfAnotherListIsInvalidArgument) {
  Serve(50);
  // What ListPersons hands out for the same project, unfiltered.
  const std::string persons_token =
      tokens_.Encode(ListScope("persons", *client(), ""), {10, 10}, clock_.Now());
  RecordingWriter writer;
  const grpc::Status status = Run(Call(0, 0, persons_token), writer);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorReason(status), "INVALID_RESUME_TOKEN");
  EXPECT_TRUE(writer.messages.empty());
  EXPECT_TRUE(http_->requests().empty());
}

TEST_F(StreamListTest, ScopesDifferByKindProjectAndFilters) {
  Serve(1);
  EXPECT_EQ(ListScope("flags", *client(), ""), "flags|demo|7|");
  EXPECT_NE(ListScope("flags", *client(), ""), ListScope("persons", *client(), ""));
  EXPECT_NE(ListScope("persons", *client(), "email=a"), ListScope("persons", *client(), ""));
}

TEST_F(StreamListTest, LimitCountsTheItemsOfResumedCalls) {
  Serve(250);
  RecordingWriter first;
  ASSERT_TRUE(Run(Call(10, 30), first).ok());
  EXPECT_EQ(Ids(first.messages), Range(0, 30));
  EXPECT_EQ(http_->requests().size(), 3u);  // Nothing fetched beyond the limit.

  RecordingWriter resumed;
  ASSERT_TRUE(Run(Call(10, 30, first.messages[0].resume_token()), resumed).ok());
  EXPECT_EQ(Ids(resumed.messages), Range(10, 30));
  EXPECT_EQ(resumed.messages.back().progress().items_streamed(), 30);

  const size_t requests_before = http_->requests().size();
  RecordingWriter at_limit;
  EXPECT_TRUE(Run(Call(10, 30, first.messages.back().resume_token()), at_limit).ok());
  EXPECT_TRUE(at_limit.messages.empty());
  EXPECT_EQ(http_->requests().size(), requests_before);
}

TEST_F(StreamListTest, ALimitNearTwoToTheSixtyThreeStreamsTheWholeList) {
  Serve(250);
  http_->UseDrfPagination();  // The count ends the look-ahead: exactly 3 pages.
  RecordingWriter writer;
  ASSERT_TRUE(Run(Call(100, std::numeric_limits<int64_t>::max()), writer).ok());
  EXPECT_EQ(Ids(writer.messages), Range(0, 250));
  EXPECT_EQ(http_->requests().size(), 3u);
}

TEST_F(StreamListTest, AnItemThatIsNotAFlagIsUnavailableAfterTheItemsBeforeIt) {
  Serve(250);
  http_->Override(100, Answer(200, R"({"results": [{"id": 100}, 42, {"id": 102}],
                                       "next": null, "previous": null})"));
  RecordingWriter writer;
  const grpc::Status status = Run(Call(), writer);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ErrorReason(status), "UPSTREAM_MALFORMED_RESPONSE");
  EXPECT_NE(status.error_message().find("flag"), std::string::npos) << status.error_message();
  EXPECT_NE(status.error_message().find("offset 101"), std::string::npos) << status.error_message();
  EXPECT_EQ(Ids(writer.messages), Range(0, 101));
  // Its token resumes right at the bad item.
  RecordingWriter resumed;
  EXPECT_TRUE(Run(Call(0, 0, writer.messages.back().resume_token()), resumed).ok());
  EXPECT_EQ(Ids(resumed.messages), Range(101, 250));
}

TEST_F(StreamListTest, AFailedWriteIsCancelledAndStopsFetching) {
  Serve(10'000);
  RecordingWriter writer(/*fail_after=*/1);
  const grpc::Status status = Run(Call(10), writer);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(writer.messages.size(), 1u);
  // The two pages read and the few the look-ahead (2) may claim past them,
  // not the 1,000 pages of the list.
  EXPECT_LE(http_->requests().size(), 5u);
}

TEST_F(StreamListTest, AMessageStopsTakingItemsPastItsByteBound) {
  Serve(3);
  // Three flags of 600 KB each on one page: two fill a message past 1 MiB.
  const std::string name(600 * 1024, 'n');
  std::string page = R"({"results": [)";
  for (int id = 0; id < 3; ++id) {
    absl::StrAppend(&page, id == 0 ? "" : ",", R"({"id": )", id, R"(, "key": "k)", id,
                    R"(", "name": ")", name, R"("})");
  }
  absl::StrAppend(&page, R"(], "next": null, "previous": null})");
  http_->Override(0, Answer(200, page));
  RecordingWriter writer;
  ASSERT_TRUE(Run(Call(), writer).ok());
  ASSERT_EQ(writer.messages.size(), 2u);
  EXPECT_EQ(writer.messages[0].flags_size(), 2);
  EXPECT_EQ(writer.messages[1].flags_size(), 1);
  EXPECT_EQ(Ids(writer.messages), Range(0, 3));
  EXPECT_EQ(writer.messages[0].progress().items_streamed(), 2);
}

TEST_F(StreamListTest, UpstreamErrorsKeepTheirStatus) {
  Serve(250);
  http_->Override(0, Answer(403, R"({"type": "authentication_error", "code": "permission_denied",
                                     "detail": "API key missing required scope", "attr": null})"));
  RecordingWriter writer;
  const grpc::Status status = Run(Call(), writer);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ErrorReason(status), "UPSTREAM_CREDENTIALS_REJECTED");
  EXPECT_TRUE(writer.messages.empty());
}

TEST(CheckListBoundsTest, NamesEveryBadField) {
  EXPECT_TRUE(CheckListBounds("ListFlags", 0, 0).ok());
  EXPECT_TRUE(CheckListBounds("ListFlags", kMaxListPageSize, 5).ok());
  const absl::Status status = CheckListBounds("ListFlags", kMaxListPageSize + 1, -1);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("ListFlags"), absl::string_view::npos);
  const grpc::Status converted = ToGrpcStatus(status);
  EXPECT_EQ(ViolatedFields(converted), (std::vector<std::string>{"page_size", "limit"}));
  EXPECT_EQ(CheckListBounds("ListPersons", -1, 0).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace posthog_gateway
