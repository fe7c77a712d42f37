#include "server/capture/record_block.h"

#include <zlib.h>

#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace posthog_gateway {
namespace {

uint32_t U32At(const std::string& data, size_t pos) {
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(data[pos + i]);
  return value;
}

// The format, byte by byte (spool.h): what segments written by earlier
// versions hold, so it must not change.
TEST(RecordBlockTest, AddWritesTheSpoolsRecordFormat) {
  RecordBlock block;
  block.Add("demo", true, R"({"a":1})");

  const std::string bytes(block.bytes());
  ASSERT_EQ(bytes.size(), 8u + 3 + 4 + 7);
  EXPECT_EQ(U32At(bytes, 0), 3u + 4 + 7);
  const std::string payload = bytes.substr(8);
  EXPECT_EQ(U32At(bytes, 4),
            crc32(0, reinterpret_cast<const Bytef*>(payload.data()), payload.size()));
  EXPECT_EQ(payload, std::string("\x01\x04\x00", 3) + "demo" + R"({"a":1})");
}

TEST(RecordBlockTest, KeepsEachRecordsFieldsAndWhereItStarts) {
  RecordBlock block;
  block.Reserve(100, 3);
  block.Add("demo", false, R"({"n":0})");
  block.Add("other", true, R"({"n":"one"})");
  block.Add("", false, "{}");

  ASSERT_EQ(block.size(), 3u);
  EXPECT_EQ(block.json(0), R"({"n":0})");
  EXPECT_EQ(block.json(1), R"({"n":"one"})");
  EXPECT_EQ(block.json(2), "{}");
  EXPECT_EQ(block.project(0), "demo");
  EXPECT_EQ(block.project(1), "other");
  EXPECT_EQ(block.project(2), "");
  EXPECT_FALSE(block.historical_migration(0));
  EXPECT_TRUE(block.historical_migration(1));
  EXPECT_EQ(block.offset(0), 0u);
  EXPECT_EQ(block.offset(1), RecordBlock::RecordBytes("demo", R"({"n":0})"));
  EXPECT_EQ(block.offset(2), block.offset(1) + RecordBlock::RecordBytes("other", R"({"n":"one"})"));
  EXPECT_EQ(block.bytes().size(), block.offset(2) + RecordBlock::RecordBytes("", "{}"));
  EXPECT_EQ(block.json_bytes(), 7 + 11 + 2);
}

TEST(RecordBlockTest, ParseReadsBackWhatAddWrote) {
  RecordBlock written;
  written.Add("demo", false, R"({"n":0})");
  written.Add("p2", true, R"({"n":1})");

  std::optional<RecordBlock> read = RecordBlock::Parse(std::string(written.bytes()));

  ASSERT_TRUE(read.has_value());
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ(read->json(0), R"({"n":0})");
  EXPECT_EQ(read->project(1), "p2");
  EXPECT_TRUE(read->historical_migration(1));
  EXPECT_EQ(read->offset(1), written.offset(1));
  EXPECT_EQ(read->json_bytes(), written.json_bytes());
}

TEST(RecordBlockTest, ParseRefusesDamagedOrTruncatedRecords) {
  RecordBlock written;
  written.Add("demo", false, R"({"n":0})");
  written.Add("demo", false, R"({"n":1})");
  const std::string bytes(written.bytes());

  std::string flipped = bytes;
  flipped[written.offset(1) + 12] ^= 0x20;  // In the second record's JSON.
  EXPECT_FALSE(RecordBlock::Parse(flipped).has_value());
  EXPECT_FALSE(RecordBlock::Parse(bytes.substr(0, bytes.size() - 1)).has_value());
  EXPECT_FALSE(RecordBlock::Parse(bytes + std::string(4, '\0')).has_value());
  std::string bad_flags = bytes;
  bad_flags[8] = 2;
  EXPECT_FALSE(RecordBlock::Parse(bad_flags).has_value());
  EXPECT_TRUE(RecordBlock::Parse("").has_value());
}

TEST(RecordBlockTest, RecordSizeAtFindsIntactRecordsOnly) {
  RecordBlock written;
  written.Add("demo", false, R"({"n":0})");
  written.Add("demo", false, R"({"n":1})");
  const std::string bytes(written.bytes());

  EXPECT_EQ(RecordBlock::RecordSizeAt(bytes, 0), written.offset(1));
  EXPECT_EQ(RecordBlock::RecordSizeAt(bytes, written.offset(1)), bytes.size() - written.offset(1));
  EXPECT_EQ(RecordBlock::RecordSizeAt(bytes, 1), 0u);
  EXPECT_EQ(RecordBlock::RecordSizeAt(bytes, bytes.size()), 0u);
  EXPECT_EQ(RecordBlock::RecordSizeAt(bytes.substr(0, written.offset(1) - 1), 0), 0u);
}

}  // namespace
}  // namespace posthog_gateway
