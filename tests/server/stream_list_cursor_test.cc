// StreamList over a cursor-paginated list (ListGroups): resume tokens carry
// PostHog's cursor inside the MAC, bound to the list, filters and project.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/group.pb.h"
#include "server/posthog/project_registry.h"
#include "server/service/stream_list.h"
#include "tests/fakes/demo_project.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_cursor_endpoint.h"
#include "tests/fakes/grpc_status_details.h"

namespace posthog_gateway {
namespace {

using posthog::v1::Group;
using posthog::v1::ListGroupsResponse;
using test_support::ErrorReason;
using test_support::FakeClock;
using test_support::FakeCursorEndpoint;

constexpr char kPath[] = "/api/projects/7/groups/";
constexpr char kBase[] = "https://app.example/api/projects/7/groups/";
constexpr char kQuery[] = "group_type_index=0";

class RecordingWriter final : public grpc::ServerWriterInterface<ListGroupsResponse> {
 public:
  void SendInitialMetadata() override {}
  bool Write(const ListGroupsResponse& message, grpc::WriteOptions /*options*/) override {
    messages.push_back(message);
    return true;
  }
  std::vector<ListGroupsResponse> messages;
};

absl::StatusOr<Group> Convert(const nlohmann::json& item) {
  Group group;
  group.set_group_key(item["group_key"].get<std::string>());
  return group;
}

std::string KeyOf(const nlohmann::json& item) { return item["group_key"].get<std::string>(); }

class StreamListCursorTest : public ::testing::Test {
 protected:
  void Serve(int total) {
    config_ = test_support::DemoProjectConfig();
    http_ = std::make_unique<FakeCursorEndpoint>(kBase, total);
    keys_ = std::make_unique<KeyStore>(config_);
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), http_.get());
  }

  const PostHogClient* client() { return *registry_->Resolve(""); }

  ListCall Call(int64_t limit = 0, std::string resume_token = "", std::string query = kQuery) {
    ListCall call;
    call.client = client();
    call.path = kPath;
    call.query = query;
    call.scope = ListScope("groups", *client(), query);
    call.limit = limit;
    call.resume_token = std::move(resume_token);
    call.look_ahead = 3;
    call.item_name = "group";
    call.pagination = Pagination::kCursor;
    call.item_id = KeyOf;
    return call;
  }

  ListEnv Env() {
    ListEnv env;
    env.pacer = &pacer_;
    env.tokens = &tokens_;
    env.clock = &clock_;
    return env;
  }

  grpc::Status Run(ListCall call, RecordingWriter& writer) {
    return StreamList<ListGroupsResponse, Group>(
        std::move(call), Env(), Convert,
        [](ListGroupsResponse& response) { return response.add_groups(); }, &writer);
  }

  static std::vector<std::string> Keys(const std::vector<ListGroupsResponse>& messages) {
    std::vector<std::string> keys;
    for (const ListGroupsResponse& message : messages) {
      for (const Group& group : message.groups()) keys.push_back(group.group_key());
    }
    return keys;
  }

  static std::vector<std::string> Range(int from, int to) {
    std::vector<std::string> keys;
    for (int k = from; k < to; ++k) keys.push_back(absl::StrCat("g", k));
    return keys;
  }

  FakeClock clock_;
  GatewayConfig config_;
  std::unique_ptr<FakeCursorEndpoint> http_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
  RequestPacer pacer_{{}, &clock_};
  ResumeTokenCodec tokens_{"stream-list-cursor-test-secret", absl::Hours(24)};
};

TEST_F(StreamListCursorTest, StreamsEveryPageAsOneMessageWithTokenAndProgress) {
  Serve(250);
  RecordingWriter writer;
  const grpc::Status status = Run(Call(), writer);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Keys(writer.messages), Range(0, 250));
  ASSERT_EQ(writer.messages.size(), 3u);
  const int64_t streamed[] = {100, 200, 250};
  for (size_t i = 0; i < writer.messages.size(); ++i) {
    EXPECT_EQ(writer.messages[i].progress().page(), static_cast<int>(i + 1));
    EXPECT_EQ(writer.messages[i].progress().items_streamed(), streamed[i]);
  }
}

TEST_F(StreamListCursorTest, ATokenAfterEachMessageResumesAtTheNextPageItself) {
  Serve(250);
  RecordingWriter full;
  ASSERT_TRUE(Run(Call(), full).ok());
  for (size_t i = 0; i < full.messages.size(); ++i) {
    const size_t before = http_->requests().size();
    RecordingWriter resumed;
    ASSERT_TRUE(Run(Call(0, full.messages[i].resume_token()), resumed).ok()) << i;
    const int done = static_cast<int>(full.messages[i].progress().items_streamed());
    EXPECT_EQ(Keys(resumed.messages), Range(done, 250)) << i;
    const std::vector<HttpRequest> requests = http_->requests();
    if (i + 1 < full.messages.size()) {
      // The page after the message, by its own cursor: nothing re-fetched.
      ASSERT_GT(requests.size(), before);
      EXPECT_EQ(
          requests[before].url,
          absl::StrCat(kBase, "?", kQuery, "&cursor=",
                       FakeCursorEndpoint::Encode(FakeCursorEndpoint::CursorAfter(done - 1))));
    }
  }
}

TEST_F(StreamListCursorTest, ATokenAtEveryPositionOfAPageResumesRightAfterIt) {
  Serve(250);
  std::vector<std::string> tokens;
  {
    paging_internal::ListCursor cursor(Call(), Env());
    ASSERT_TRUE(cursor.Open().ok());
    while (true) {
      absl::StatusOr<std::optional<paging_internal::ListCursor::Entry>> entry = cursor.Next();
      ASSERT_TRUE(entry.ok()) << entry.status();
      if (!entry->has_value()) break;
      tokens.push_back(cursor.TokenAfter(**entry));
    }
  }
  ASSERT_EQ(tokens.size(), 250u);
  for (int position = 0; position < 250; ++position) {
    RecordingWriter resumed;
    const grpc::Status status = Run(Call(0, tokens[position]), resumed);
    ASSERT_TRUE(status.ok()) << position << ": " << status.error_message();
    EXPECT_EQ(Keys(resumed.messages), Range(position + 1, 250)) << position;
    if (!resumed.messages.empty()) {
      EXPECT_EQ(resumed.messages.back().progress().items_streamed(), 250) << position;
    }
  }
}

TEST_F(StreamListCursorTest, AFirstPageTokenSurvivesGroupsCreatedBeforeTheResume) {
  Serve(250);
  std::string token;
  {
    paging_internal::ListCursor cursor(Call(), Env());
    ASSERT_TRUE(cursor.Open().ok());
    for (int k = 0; k < 40; ++k) {
      absl::StatusOr<std::optional<paging_internal::ListCursor::Entry>> entry = cursor.Next();
      ASSERT_TRUE(entry.ok() && entry->has_value());
      token = cursor.TokenAfter(**entry);
    }
  }
  http_->Insert(5);  // Newer groups: the first page now starts with them.
  RecordingWriter resumed;
  ASSERT_TRUE(Run(Call(0, token), resumed).ok());
  EXPECT_EQ(Keys(resumed.messages), Range(40, 250));
}

TEST_F(StreamListCursorTest, AForgedCursorInsideATokenIsInvalidArgumentAndFetchesNothing) {
  Serve(250);
  RecordingWriter full;
  ASSERT_TRUE(Run(Call(), full).ok());
  const std::string token = full.messages[0].resume_token();
  const size_t dot = token.find('.');
  std::string payload;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(token.substr(0, dot), &payload));
  nlohmann::json json = nlohmann::json::parse(payload);
  ASSERT_TRUE(json.contains("c")) << payload;
  json["c"] = FakeCursorEndpoint::CursorAfter(199);  // Skip a page.
  const std::string forged =
      absl::StrCat(absl::WebSafeBase64Escape(json.dump()), token.substr(dot));
  const size_t before = http_->requests().size();
  RecordingWriter writer;
  const grpc::Status status = Run(Call(0, forged), writer);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorReason(status), "INVALID_RESUME_TOKEN");
  EXPECT_TRUE(writer.messages.empty());
  EXPECT_EQ(http_->requests().size(), before);
}

TEST_F(StreamListCursorTest, ATokenOfAnotherListFilterOrProjectIsInvalidArgument) {
  Serve(250);
  RecordingWriter full;
  ASSERT_TRUE(Run(Call(), full).ok());
  const std::string token = full.messages[0].resume_token();
  const size_t before = http_->requests().size();
  // Another group type, another filter.
  for (const std::string query : {"group_type_index=1", "group_type_index=0&search=acme"}) {
    RecordingWriter writer;
    const grpc::Status status = Run(Call(0, token, query), writer);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << query;
    EXPECT_TRUE(writer.messages.empty());
  }
  // Another project (same query), and an offset list's token for this scope.
  ResumePosition cursor_position;
  cursor_position.cursor = "";
  const std::string other_project =
      tokens_.Encode(absl::StrCat("groups|other|8|", kQuery), cursor_position, clock_.Now());
  const std::string offset_token =
      tokens_.Encode(ListScope("groups", *client(), kQuery), {10, 10}, clock_.Now());
  for (const std::string& bad : {other_project, offset_token}) {
    RecordingWriter writer;
    const grpc::Status status = Run(Call(0, bad), writer);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(writer.messages.empty());
  }
  EXPECT_EQ(http_->requests().size(), before);
}

TEST_F(StreamListCursorTest, LimitCountsTheItemsOfResumedCalls) {
  Serve(250);
  RecordingWriter first;
  ASSERT_TRUE(Run(Call(130), first).ok());
  EXPECT_EQ(Keys(first.messages), Range(0, 130));
  RecordingWriter second;
  ASSERT_TRUE(Run(Call(170, first.messages.back().resume_token()), second).ok());
  EXPECT_EQ(Keys(second.messages), Range(130, 170));
}

}  // namespace
}  // namespace posthog_gateway
