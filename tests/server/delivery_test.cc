#include "server/capture/delivery.h"

#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/posthog/project_registry.h"
#include "tests/fakes/fake_http_client.h"
#include "tests/fakes/scratch_dir.h"

namespace posthog_gateway {
namespace {

using ::nlohmann::json;
using test_support::FakeHttpClient;

constexpr char kProjectKey[] = "phc_project_key_value";

std::string Gunzip(const std::string& data) {
  z_stream stream{};
  inflateInit2(&stream, 15 + 16);
  std::string out(data.size() * 20 + 1024, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  inflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  inflateEnd(&stream);
  return out;
}

struct BackoffCase {
  int attempt;
  double random;
  absl::Duration retry_after;
  absl::Duration expected;
};

class BackoffDelayTest : public ::testing::TestWithParam<BackoffCase> {};

TEST_P(BackoffDelayTest, DoublesWithJitterUpToTheCapAndHonoursRetryAfter) {
  const BackoffCase& c = GetParam();
  EXPECT_EQ(
      BackoffDelay(c.attempt, absl::Milliseconds(100), absl::Seconds(30), c.random, c.retry_after),
      c.expected);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BackoffDelayTest,
    ::testing::Values(BackoffCase{0, 0.0, absl::ZeroDuration(), absl::Milliseconds(50)},
                      BackoffCase{0, 0.5, absl::ZeroDuration(), absl::Milliseconds(75)},
                      BackoffCase{3, 0.0, absl::ZeroDuration(), absl::Milliseconds(400)},
                      BackoffCase{3, 1.0, absl::ZeroDuration(), absl::Milliseconds(800)},
                      BackoffCase{20, 0.0, absl::ZeroDuration(), absl::Seconds(15)},
                      BackoffCase{20, 1.0, absl::ZeroDuration(), absl::Seconds(30)},
                      BackoffCase{0, 0.0, absl::Seconds(7), absl::Seconds(7)},
                      BackoffCase{20, 1.0, absl::Seconds(7), absl::Seconds(30)}));

// The clock of these tests: a fixed time (the envelopes' sent_at) and waits
// that return at once, handing their length to `on_sleep`, whose answer says
// whether to go on.
class SleepRecordingClock final : public Clock {
 public:
  explicit SleepRecordingClock(std::function<bool(absl::Duration)> on_sleep)
      : on_sleep_(std::move(on_sleep)) {}

  absl::Time Now() const override { return absl::FromUnixSeconds(1767323045); }

  bool SleepUntil(absl::Time until, const std::function<bool()>& cancelled) override {
    if (cancelled && cancelled()) return false;
    return on_sleep_(until - Now());
  }

 private:
  std::function<bool(absl::Duration)> on_sleep_;
};

class BatchSenderTest : public ::testing::Test {
 protected:
  BatchSenderTest() {
    const std::filesystem::path dir = ::testing::TempDir();
    key_path_ = (dir / "project_api_key").string();
    dead_letter_path_ = (dir / "dead-letter.jsonl").string();
    std::filesystem::remove(dead_letter_path_);
    std::ofstream(key_path_) << kProjectKey;
    ProjectConfig project;
    project.alias = "demo";
    project.project_id = 7;
    project.ingestion_host = "https://ingest.example";
    project.app_host = "https://app.example";
    project.project_api_key.file = key_path_;
    config_.projects.push_back(project);
    config_.default_project = "demo";
    keys_ = std::make_unique<KeyStore>(config_);
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), &http_);
    dead_letters_ = std::make_unique<DeadLetterFile>(dead_letter_path_, int64_t{1} << 20);
    DeliveryEnv env;
    env.clock = &clock_;
    env.random = [] { return 0.0; };
    sender_ = std::make_unique<BatchSender>(*registry_->Resolve(""), keys_.get(),
                                            dead_letters_.get(), DeliveryOptions{}, env);
  }

  std::vector<const QueuedEvent*> Batch(int count) {
    for (int i = 0; i < count; ++i) {
      auto block = std::make_shared<RecordBlock>();
      block->Add("demo", false, absl::StrCat(R"({"event":"e","distinct_id":"d)", i, R"("})"));
      events_.push_back(std::make_unique<QueuedEvent>());
      events_.back()->json = block->json(0);
      events_.back()->block = std::move(block);
    }
    std::vector<const QueuedEvent*> batch;
    for (const auto& event : events_) batch.push_back(event.get());
    return batch;
  }

  // The distinct_ids of each request's batch, in order.
  std::vector<std::vector<std::string>> SentBatches() {
    std::vector<std::vector<std::string>> out;
    for (const HttpRequest& request : http_.requests()) {
      json body = json::parse(Gunzip(request.body));
      std::vector<std::string> ids;
      for (const json& event : body["batch"]) ids.push_back(event["distinct_id"]);
      out.push_back(ids);
    }
    return out;
  }

  std::string key_path_;
  std::string dead_letter_path_;
  GatewayConfig config_;
  FakeHttpClient http_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
  std::unique_ptr<DeadLetterFile> dead_letters_;
  std::vector<absl::Duration> sleeps_;
  std::function<void()> on_sleep_;
  SleepRecordingClock clock_{[this](absl::Duration d) {
    sleeps_.push_back(d);
    if (on_sleep_) on_sleep_();
    return sleeps_.size() < 100;
  }};
  std::vector<std::unique_ptr<QueuedEvent>> events_;
  std::unique_ptr<BatchSender> sender_;
};

TEST_F(BatchSenderTest, PostsTheGzippedEnvelopeToBatch) {
  http_.Respond(200, R"({"status":"Ok"})");

  std::vector<absl::Status> outcomes = sender_->Send(Batch(2));

  EXPECT_THAT(outcomes, ::testing::Each(absl::OkStatus()));
  ASSERT_EQ(http_.requests().size(), 1u);
  const HttpRequest request = http_.requests()[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.url, "https://ingest.example/batch/");
  EXPECT_THAT(request.headers, ::testing::Contains(std::make_pair(std::string("Content-Encoding"),
                                                                  std::string("gzip"))));
  EXPECT_EQ(json::parse(Gunzip(request.body)), json::parse(R"({
      "api_key": "phc_project_key_value", "historical_migration": false,
      "sent_at": "2026-01-02T03:04:05.000Z",
      "batch": [{"event": "e", "distinct_id": "d0"}, {"event": "e", "distinct_id": "d1"}]})"));
}

TEST_F(BatchSenderTest, RetriesTransportErrors408429And5xxHonouringRetryAfter) {
  http_.Script(absl::UnavailableError("connection refused"));
  http_.Respond(503, "{}");
  http_.Respond(429, "{}", {{"retry-after", "7"}});
  http_.Respond(408, "{}");
  http_.Respond(200, "{}");

  std::vector<absl::Status> outcomes = sender_->Send(Batch(1));

  EXPECT_TRUE(outcomes[0].ok());
  EXPECT_EQ(http_.requests().size(), 5u);
  EXPECT_THAT(sleeps_, ::testing::ElementsAre(absl::Milliseconds(50), absl::Milliseconds(100),
                                              absl::Seconds(7), absl::Milliseconds(400)));
}

TEST_F(BatchSenderTest, A413SplitsTheBatchInHalves) {
  http_.Respond(413, R"({"code":"payload_too_large"})");
  http_.Respond(200, "{}");
  http_.Respond(200, "{}");

  std::vector<absl::Status> outcomes = sender_->Send(Batch(4));

  EXPECT_THAT(outcomes, ::testing::Each(absl::OkStatus()));
  EXPECT_EQ(SentBatches(), (std::vector<std::vector<std::string>>{
                               {"d0", "d1", "d2", "d3"}, {"d0", "d1"}, {"d2", "d3"}}));
}

TEST_F(BatchSenderTest, A400IsolatesTheBadEventDeliversTheRestAndDeadLettersIt) {
  http_.Respond(400, "bad");                              // d0..d3
  http_.Respond(200, "{}");                               // d0 d1
  http_.Respond(400, "bad");                              // d2 d3
  http_.Respond(400, R"({"code":"invalid_timestamp"})");  // d2
  http_.Respond(200, "{}");                               // d3

  std::vector<absl::Status> outcomes = sender_->Send(Batch(4));

  EXPECT_TRUE(outcomes[0].ok());
  EXPECT_TRUE(outcomes[1].ok());
  EXPECT_EQ(outcomes[2].code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(outcomes[3].ok());
  EXPECT_EQ(dead_letters_->count(), 1);
  std::ifstream file(dead_letter_path_);
  std::string line;
  std::getline(file, line);
  json dead = json::parse(line);
  EXPECT_EQ(dead["project"], "demo");
  EXPECT_EQ(dead["http_status"], 400);
  EXPECT_EQ(dead["reason"], R"({"code":"invalid_timestamp"})");
  EXPECT_EQ(dead["event"], json::parse(R"({"event":"e","distinct_id":"d2"})"));
}

TEST_F(BatchSenderTest, A404Or405IsRetriedAsAnOutageNotDeadLettered) {
  http_.Respond(404, "<html>Not Found</html>");
  http_.Respond(405, "<html>Method Not Allowed</html>");
  http_.Respond(200, "{}");

  std::vector<absl::Status> outcomes = sender_->Send(Batch(2));

  EXPECT_THAT(outcomes, ::testing::Each(absl::OkStatus()));
  EXPECT_EQ(dead_letters_->count(), 0);
  EXPECT_EQ(SentBatches(), (std::vector<std::vector<std::string>>{
                               {"d0", "d1"}, {"d0", "d1"}, {"d0", "d1"}}));  // Never split.
  EXPECT_EQ(sleeps_.size(), 2u);                                             // With backoff.
}

TEST_F(BatchSenderTest, A401PausesTheProjectUntilTheKeyChanges) {
  http_.Respond(401, "{}");
  http_.Respond(200, "{}");
  bool paused_seen = false;
  on_sleep_ = [&] {
    paused_seen = paused_seen || sender_->paused();
    if (sleeps_.size() == 3) {  // The operator fixes the key.
      std::ofstream(key_path_) << "phc_new_key";
      keys_->Reload();
    }
  };

  std::vector<absl::Status> outcomes = sender_->Send(Batch(1));

  EXPECT_TRUE(outcomes[0].ok());
  EXPECT_TRUE(paused_seen);
  EXPECT_FALSE(sender_->paused());
  ASSERT_EQ(http_.requests().size(), 2u);
  EXPECT_EQ(json::parse(Gunzip(http_.requests()[1].body))["api_key"], "phc_new_key");
  EXPECT_EQ(sleeps_.size(), 3u);
}

TEST_F(BatchSenderTest, StoppingLeavesTheEventsCancelled) {
  for (int i = 0; i < 200; ++i) http_.Respond(503, "{}");

  std::vector<absl::Status> outcomes = sender_->Send(Batch(2));

  EXPECT_EQ(outcomes[0].code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(outcomes[1].code(), absl::StatusCode::kCancelled);
}

TEST(DeadLetterFileTest, IsReadableByItsOwnerOnly) {
  const std::filesystem::path dir = ::testing::TempDir();
  const std::filesystem::path path = dir / "private-dead-letter.jsonl";
  std::filesystem::remove(path);
  DeadLetterFile dead_letters(path.string(), 1 << 20);
  dead_letters.Write("demo", 400, "bad", R"({"event":"e"})");
  EXPECT_EQ(std::filesystem::status(path).permissions(),
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

  // A file left world-readable by an older version is narrowed.
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                std::filesystem::perms::group_read | std::filesystem::perms::others_read);
  dead_letters.Write("demo", 400, "bad", R"({"event":"e"})");
  EXPECT_EQ(std::filesystem::status(path).permissions(),
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST(DeadLetterFileTest, RotatesBeforeGrowingPastItsBound) {
  const std::filesystem::path dir = ::testing::TempDir();
  const std::string path = (dir / "rotating-dead-letter.jsonl").string();
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".1");
  const std::string event = R"({"event":"e","distinct_id":"d"})";
  const int64_t line_bytes = [&] {
    DeadLetterFile probe((dir / "probe.jsonl").string(), 1 << 20);
    probe.Write("demo", 400, "bad", event);
    return static_cast<int64_t>(std::filesystem::file_size(dir / "probe.jsonl"));
  }();
  // Room for two lines, not three.
  DeadLetterFile dead_letters(path, 2 * line_bytes + line_bytes / 2);
  for (int i = 0; i < 5; ++i) dead_letters.Write("demo", 400, "bad", event);

  auto lines = [](const std::string& file) {
    std::ifstream in(file);
    int count = 0;
    for (std::string line; std::getline(in, line);) ++count;
    return count;
  };
  // 5 lines: two rotated away (the oldest two lost), two in .1, one current.
  EXPECT_EQ(lines(path + ".1"), 2);
  EXPECT_EQ(lines(path), 1);
  EXPECT_EQ(dead_letters.count(), 5);
  EXPECT_EQ(dead_letters.lost(), 2);  // The loss is counted.
}

// ProjectQueue against a real spool: what it delivers of the blocks it is
// given, from memory or read back from disk.
class ProjectQueueTest : public BatchSenderTest {
 protected:
  ProjectQueueTest() {
    SpoolOptions spool_options;
    spool_options.dir = test_support::ScratchDir("spool");
    absl::StatusOr<Spool::Opened> opened = Spool::Open(spool_options);
    EXPECT_TRUE(opened.ok()) << opened.status();
    spool_ = std::move(opened->spool);
  }

  // Starts the queue: one worker, so that batches go out in order. PostHog
  // answers `first` (HTTP statuses, in order), then 200s.
  void StartQueue(int64_t max_queued_bytes, const std::vector<int>& first = {},
                  int64_t batch_max_events = 1000) {
    for (int status : first) http_.Respond(status, status == 200 ? "{}" : R"({"code":"bad"})");
    for (int i = 0; i < 20; ++i) http_.Respond(200, R"({"status":"Ok"})");
    DeliveryOptions options;
    options.max_in_flight = 1;
    options.flush_interval = absl::Milliseconds(1);
    options.max_queued_bytes = max_queued_bytes;
    options.batch_max_events = batch_max_events;
    DeliveryEnv env;  // The real clock: the worker waits for it.
    env.random = [] { return 0.0; };
    queue_ = std::make_unique<ProjectQueue>(*registry_->Resolve(""), keys_.get(), spool_.get(),
                                            dead_letters_.get(), options, env);
  }

  // Spools `count` events named `<prefix><i>` as one block and queues it.
  std::shared_ptr<const RecordBlock> SpoolAndQueue(const std::string& prefix, int count) {
    auto block = std::make_shared<RecordBlock>();
    for (int i = 0; i < count; ++i) {
      block->Add("demo", false,
                 absl::StrCat(R"({"event":"e","distinct_id":")", prefix, i, R"("})"));
    }
    absl::StatusOr<SpoolLocation> location = spool_->Append(block);
    EXPECT_TRUE(location.ok()) << location.status();
    queue_->Enqueue(block, *location);
    return block;
  }

  // Waits (bounded) until the spool has nothing left to deliver.
  void WaitUntilDelivered() {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (spool_->Outstanding() > 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    ASSERT_EQ(spool_->Outstanding(), 0);
  }

  std::vector<std::string> SentIds() {
    std::vector<std::string> ids;
    for (const std::vector<std::string>& batch : SentBatches()) {
      ids.insert(ids.end(), batch.begin(), batch.end());
    }
    return ids;
  }

  std::unique_ptr<Spool> spool_;
  std::unique_ptr<ProjectQueue> queue_;
};

TEST_F(ProjectQueueTest, DeliversABlockFromMemoryAndReleasesItsRecords) {
  StartQueue(int64_t{1} << 20);
  SpoolAndQueue("m", 3);

  WaitUntilDelivered();

  EXPECT_EQ(SentIds(), (std::vector<std::string>{"m0", "m1", "m2"}));
}

TEST_F(ProjectQueueTest, ABlockOverTheMemoryBudgetIsReadBackFromTheSpool) {
  StartQueue(/*max_queued_bytes=*/1);
  std::shared_ptr<const RecordBlock> block = SpoolAndQueue("d", 3);
  // Kept on disk only: the queue holds no reference to the block.
  EXPECT_EQ(block.use_count(), 1);
  block.reset();

  WaitUntilDelivered();

  EXPECT_EQ(SentIds(), (std::vector<std::string>{"d0", "d1", "d2"}));
}

TEST_F(ProjectQueueTest, BlocksAfterABacklogOnDiskJoinItInOrder) {
  // Room for the first block only; the third would fit again, but follows
  // the second on disk.
  const int64_t one_block = static_cast<int64_t>(
      RecordBlock::RecordBytes("demo", R"({"event":"e","distinct_id":"a0"})") * 2);
  StartQueue(one_block);
  SpoolAndQueue("a", 2);
  SpoolAndQueue("b", 4);
  SpoolAndQueue("c", 1);

  WaitUntilDelivered();

  EXPECT_EQ(SentIds(), (std::vector<std::string>{"a0", "a1", "b0", "b1", "b2", "b3", "c0"}));
}

// A 400 split over the events of one block read back from disk: the good
// ones delivered, the refused one dead-lettered with its own JSON (a view
// into the block, which must outlive the split), every record released.
TEST_F(ProjectQueueTest, A400SplitsABlockReadBackFromDiskAndDeadLettersTheRefusedEvent) {
  StartQueue(/*max_queued_bytes=*/1, {400, 200, 400, 400, 200});  // x0..x3, x0 x1, x2 x3, x2, x3
  SpoolAndQueue("x", 4);

  WaitUntilDelivered();

  EXPECT_EQ(SentBatches(),
            (std::vector<std::vector<std::string>>{
                {"x0", "x1", "x2", "x3"}, {"x0", "x1"}, {"x2", "x3"}, {"x2"}, {"x3"}}));
  EXPECT_EQ(dead_letters_->count(), 1);
  std::ifstream file(dead_letter_path_);
  std::string line;
  std::getline(file, line);
  EXPECT_EQ(json::parse(line)["event"], json::parse(R"({"event":"e","distinct_id":"x2"})"));
}

// A block larger than a batch goes out in several, in order; the block is
// freed with its last event.
TEST_F(ProjectQueueTest, ABlockLargerThanABatchIsSentInOrderAndFreedAfterItsLastEvent) {
  StartQueue(int64_t{1} << 20, {}, /*batch_max_events=*/2);
  std::weak_ptr<const RecordBlock> block = SpoolAndQueue("b", 5);

  WaitUntilDelivered();

  EXPECT_EQ(SentBatches(),
            (std::vector<std::vector<std::string>>{{"b0", "b1"}, {"b2", "b3"}, {"b4"}}));
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!block.expired() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(2));
  EXPECT_TRUE(block.expired());
}

// Events of both kinds in one block: each batch holds one kind.
TEST_F(ProjectQueueTest, ABlockOfBothHistoricalKindsIsSentAsOneBatchPerKind) {
  StartQueue(int64_t{1} << 20);
  auto block = std::make_shared<RecordBlock>();
  block->Add("demo", false, R"({"event":"e","distinct_id":"h0"})");
  block->Add("demo", true, R"({"event":"e","distinct_id":"h1"})");
  block->Add("demo", false, R"({"event":"e","distinct_id":"h2"})");
  absl::StatusOr<SpoolLocation> location = spool_->Append(block);
  ASSERT_TRUE(location.ok()) << location.status();
  queue_->Enqueue(std::move(block), *location);

  WaitUntilDelivered();

  EXPECT_EQ(SentBatches(), (std::vector<std::vector<std::string>>{{"h0"}, {"h1"}, {"h2"}}));
  std::vector<bool> historical;
  for (const HttpRequest& request : http_.requests()) {
    historical.push_back(json::parse(Gunzip(request.body))["historical_migration"]);
  }
  EXPECT_EQ(historical, (std::vector<bool>{false, true, false}));
}

}  // namespace
}  // namespace posthog_gateway
