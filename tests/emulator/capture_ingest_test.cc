// IngestCapture on bodies that take the fast scanner's path and on those it
// hands to the DOM path (escapes, non-string ids, person-affecting events,
// what nlohmann accepts that the scanner does not, and every error): both
// must store and derive exactly the same.

#include <zlib.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "emulator/capture_handler.h"
#include "emulator/http_util.h"
#include "emulator/person_store.h"
#include "emulator/state.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {
namespace {

using nlohmann::json;

class CaptureIngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    json seed = {{"organizations", {{{"id", "org"}, {"name", "Org"}}}},
                 {"projects", {{{"id", 1}, {"api_token", "phc_t"}}}}};
    ASSERT_TRUE(state_.LoadSeed(seed).ok());
  }

  absl::StatusCode Ingest(const std::string& body) {
    return IngestCapture(state_, body).status().code();
  }

  json Event(const std::string& uuid) {
    EventQuery q;
    q.uuid = uuid;
    std::vector<json> found = state_.events().Query(q);
    return found.size() == 1 ? found[0] : json();
  }

  EmulatorState state_;
};

TEST_F(CaptureIngestTest, DistinctIdsAreNormalizedLikeTheDomPath) {
  const std::string body =
      R"({"api_key":"phc_t","batch":[)"
      R"({"event":"a","distinct_id":"u\u00e9","uuid":"d-1"},)"
      R"({"event":"b","distinct_id":42,"uuid":"d-2"},)"
      R"({"event":"c","distinct_id":-0,"uuid":"d-3"},)"
      R"({"event":"d","distinct_id":null,"properties":{"distinct_id":"p1"},"uuid":"d-4"},)"
      R"({"event":"e","distinct_id":1.50,"uuid":"d-5"},)"
      R"({"event":"f","distinct_id":"x","distinct_id":"last","uuid":"d-6"},)"
      R"({"event":"g\"q","distinct_id":"x7","uuid":"d-7"},)"
      R"({"event":"i","distinct_id":"é✓😀","uuid":"d-9","timestamp":null})"
      "]}";
  ASSERT_EQ(Ingest(body), absl::StatusCode::kOk);
  EXPECT_EQ(Event("d-1")["distinct_id"], "u\xc3\xa9");
  EXPECT_EQ(Event("d-2")["distinct_id"], "42");
  EXPECT_EQ(Event("d-3")["distinct_id"], "0");
  EXPECT_EQ(Event("d-4")["distinct_id"], "p1");
  EXPECT_EQ(Event("d-5")["distinct_id"], "1.5");
  EXPECT_EQ(Event("d-6")["distinct_id"], "last");
  EXPECT_EQ(Event("d-7")["event"], "g\"q");
  EXPECT_EQ(Event("d-9")["distinct_id"], "é✓😀");
  EXPECT_TRUE(Event("d-9")["timestamp"].is_null());
  EXPECT_EQ(state_.events().count(), 8u);
  // A surrogate pair (left to nlohmann) is accepted too.
  ASSERT_EQ(Ingest(R"({"api_key":"phc_t","event":"h","distinct_id":"z","uuid":"d-8",)"
                   R"("properties":{"s":"\ud83d\ude00"}})"),
            absl::StatusCode::kOk);
  EXPECT_EQ(Event("d-8")["properties"]["s"], "😀");
  EXPECT_TRUE(state_.persons().GetByDistinctId(1, "42").has_value());
  EXPECT_TRUE(state_.persons().GetByDistinctId(1, "é✓😀").has_value());
}

TEST_F(CaptureIngestTest, StoredTextIsTheRawEventAndTimestampsAreKept) {
  const std::string body =
      "[ {\"event\" : \"a\", \"distinct_id\":\"u\", \"token\":\"phc_t\",\n"
      "   \"uuid\":\"r-1\", \"timestamp\":\"2026-01-02T03:04:05Z\", "
      "\"properties\": {\"n\": [1, 2.5e3, {\"k\": true}], \"m\": null}} ,"
      "{\"event\":\"b\",\"distinct_id\":\"v\",\"uuid\":\"r-2\"} ]";
  ASSERT_EQ(Ingest(body), absl::StatusCode::kOk);
  json a = Event("r-1");
  EXPECT_EQ(a["properties"], json::parse(R"({"n":[1,2500.0,{"k":true}],"m":null})"));
  EXPECT_EQ(a["timestamp"], "2026-01-02T03:04:05Z");
  EXPECT_FALSE(a.contains("token"));
  EXPECT_TRUE(Event("r-2")["timestamp"].is_string());  // generated
  auto p = state_.persons().GetByDistinctId(1, "u");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->created_at, "2026-01-02T03:04:05Z");
}

TEST_F(CaptureIngestTest, TokensComeFromTheEnvelopeOrTheFirstEventWithOne) {
  EXPECT_EQ(Ingest(R"([{"event":"a","distinct_id":"x"},)"
                   R"({"event":"b","distinct_id":"y","properties":{"token":"phc_t"}}])"),
            absl::StatusCode::kOk);
  EXPECT_EQ(Ingest(R"({"api_key":"phc_\u0074","batch":[{"event":"a","distinct_id":"x"}]})"),
            absl::StatusCode::kOk);
  EXPECT_EQ(Ingest(R"({"api_key":"","token":"phc_t","batch":[{"event":"a","distinct_id":"x"}]})"),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Ingest(R"({"batch":[{"event":"a","distinct_id":"x"}]})"),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Ingest(R"({"api_key":"phc_no","event":"a","distinct_id":"x"})"),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(state_.events().count(), 3u);
}

TEST_F(CaptureIngestTest, WhatNlohmannAcceptsOrRejectsIsKept) {
  const std::string ok = R"({"api_key":"phc_t","event":"a","distinct_id":"x"})";
  EXPECT_EQ(Ingest("\xEF\xBB\xBF" + ok), absl::StatusCode::kOk);  // BOM
  EXPECT_EQ(Ingest(R"({"api_key":"phc_t","event":"a","distinct_id":"x","n":1e300})"),
            absl::StatusCode::kOk);
  EXPECT_EQ(Ingest(R"({"api_key":"phc_t","event":"a","distinct_id":"x","n":1e999})"),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ingest(R"({"api_key":"phc_t","event":"a","distinct_id":"x","s":"\ud800"})"),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ingest(R"({"api_key":"phc_t","event":"a","distinct_id":"x","s":"\x"})"),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ingest("{\"api_key\":\"phc_t\",\"event\":\"a\",\"distinct_id\":\"\xC0\xAF\"}"),
            absl::StatusCode::kInvalidArgument);  // overlong UTF-8
  EXPECT_EQ(Ingest("{\"api_key\":\"phc_t\",\"event\":\"a\",\"distinct_id\":\"a\tb\"}"),
            absl::StatusCode::kInvalidArgument);  // raw control character
  EXPECT_EQ(Ingest(ok + " x"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ingest(R"({"api_key":"phc_t","batch":[{"event":"a","distinct_id":"x"},]})"),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ingest(R"({"api_key":"phc_t","batch":[{"event":"a","distinct_id":"x"},1]})"),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ingest(R"({"api_key":"phc_t","batch":{}})"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ingest(R"({"api_key":"phc_t","batch":[]})"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ingest(R"({"api_key":"phc_t","event":"","distinct_id":"x"})"),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ingest(R"({"api_key":"phc_t","event":"a","distinct_id":""})"),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ingest("012"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ingest(""), absl::StatusCode::kInvalidArgument);
  std::string deep = R"({"api_key":"phc_t","event":"a","distinct_id":"x","p":)";
  deep += std::string(1000, '[') + std::string(1000, ']') + "}";
  EXPECT_EQ(Ingest(deep), absl::StatusCode::kOk);
  // A failed batch stores nothing.
  EXPECT_EQ(Ingest(R"({"api_key":"phc_t","batch":[{"event":"a","distinct_id":"y","uuid":"f-1"},)"
                   R"({"event":"b"}]})"),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(state_.events().count(), 3u);
  EXPECT_FALSE(state_.persons().GetByDistinctId(1, "y").has_value());
}

TEST_F(CaptureIngestTest, PersonEventsInABatchApplyInOrder) {
  const std::string body =
      R"({"api_key":"phc_t","batch":[)"
      R"({"event":"view","distinct_id":"anon","timestamp":"2026-01-01T00:00:00Z"},)"
      R"({"event":"view","distinct_id":"anon","properties":{"$set":{"a":1}}},)"
      R"({"event":"$identify","distinct_id":"user","properties":{"$anon_distinct_id":"anon"}},)"
      R"({"event":"view","distinct_id":"user"},)"
      R"({"event":"view","distinct_id":"ghost","properties":{"$process_person_profile":false}},)"
      R"({"event":"view","distinct_id":"top","$set":{"b":2}},)"
      R"({"event":"view","distinct_id":"esc","properties":{"\u0024set":{"c":3}}})"
      "]}";
  ASSERT_EQ(Ingest(body), absl::StatusCode::kOk);
  auto user = state_.persons().GetByDistinctId(1, "user");
  ASSERT_TRUE(user.has_value());
  EXPECT_EQ(user->distinct_ids, (std::vector<std::string>{"anon", "user"}));
  EXPECT_EQ(user->properties, json({{"a", 1}}));
  EXPECT_EQ(user->created_at, "2026-01-01T00:00:00Z");
  EXPECT_TRUE(user->is_identified);
  EXPECT_FALSE(state_.persons().GetByDistinctId(1, "ghost").has_value());
  EXPECT_EQ(state_.persons().GetByDistinctId(1, "top")->properties, json({{"b", 2}}));
  EXPECT_EQ(state_.persons().GetByDistinctId(1, "esc")->properties, json({{"c", 3}}));
  EXPECT_EQ(state_.persons().PersonCount(1), 3u);
}

TEST_F(CaptureIngestTest, DuplicateUuidsAreCounted) {
  const std::string body =
      R"({"api_key":"phc_t","batch":[{"event":"a","distinct_id":"x","uuid":"same"},)"
      R"({"event":"a","distinct_id":"x","uuid":"same"},{"event":"a","distinct_id":"x"}]})";
  auto r = IngestCapture(state_, body);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->accepted, 3u);
  EXPECT_EQ(r->duplicates, 1u);
  EXPECT_EQ(state_.events().count(), 2u);
}

TEST(GzipDecompressTest, EnforcesTheLimitExactlyAndRejectsBadStreams) {
  std::string text;
  for (int i = 0; i < 100000; ++i) text += static_cast<char>('a' + (i * 7919) % 26);
  const std::string gz = GzipCompress(text);
  auto exact = GzipDecompress(gz, text.size());
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(*exact, text);
  EXPECT_EQ(GzipDecompress(gz, text.size() - 1).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GzipDecompress(gz, 10).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GzipDecompress(gz.substr(0, gz.size() / 2), text.size()).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string corrupt = gz;
  corrupt[gz.size() / 2] ^= 0x55;
  corrupt[gz.size() / 2 + 1] ^= 0x55;
  EXPECT_EQ(GzipDecompress(corrupt, 10 * text.size()).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto empty = GzipDecompress(GzipCompress(""), 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
  // Highly compressible: far more than 8x the compressed size.
  const std::string zeros(5 * 1024 * 1024, '0');
  auto big = GzipDecompress(GzipCompress(zeros), zeros.size());
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(*big, zeros);
}

// A whole single member takes libdeflate's path; everything else keeps
// zlib's answers: the first member of several, trailing bytes ignored, a
// trailer whose size lies, a zlib (not gzip) stream.
TEST(GzipDecompressTest, UnusualStreamsKeepZlibsAnswers) {
  const std::string first = "{\"event\":\"a\"}";
  const std::string second = "{\"event\":\"b\"}";
  const std::string gz = GzipCompress(first);
  auto two = GzipDecompress(gz + GzipCompress(second), 1000);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(*two, first);
  auto trailing = GzipDecompress(gz + "garbage", 1000);
  ASSERT_TRUE(trailing.ok());
  EXPECT_EQ(*trailing, first);
  std::string lying = gz;
  lying[lying.size() - 4] = static_cast<char>(first.size() - 1);  // ISIZE one short
  EXPECT_EQ(GzipDecompress(lying, 1000).status().code(), absl::StatusCode::kInvalidArgument);
  std::string bad_crc = gz;
  bad_crc[bad_crc.size() - 8] ^= 0x01;
  EXPECT_EQ(GzipDecompress(bad_crc, 1000).status().code(), absl::StatusCode::kInvalidArgument);
  z_stream zs{};
  ASSERT_EQ(deflateInit(&zs, 6), Z_OK);
  std::string zlib_stream(deflateBound(&zs, first.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(first.data()));
  zs.avail_in = static_cast<uInt>(first.size());
  zs.next_out = reinterpret_cast<Bytef*>(&zlib_stream[0]);
  zs.avail_out = static_cast<uInt>(zlib_stream.size());
  ASSERT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  zlib_stream.resize(zs.total_out);
  deflateEnd(&zs);
  auto inflated = GzipDecompress(zlib_stream, 1000);
  ASSERT_TRUE(inflated.ok());
  EXPECT_EQ(*inflated, first);
}

}  // namespace
}  // namespace posthog_emulator
