// Differential fuzzer of capture's wire path (server/capture/event_json.h,
// "The wire path"): EventBuilder::BuildWire writes an event's JSON straight
// from untrusted bytes, and must give, for every input it takes, exactly
// what protobuf's parser and EventBuilder::Build give (JSON bytes, uuid,
// historical_migration), and decline everything else. Declining is always
// allowed; taking bytes protobuf refuses, or an event Build refuses or
// writes differently, is a bug (abort), as is any sanitizer report.
//
// Input: byte 0 picks the options, the rest is one posthog.v1.Event's
// bytes (the seeds in corpus/wire_event/ are real serialized events with
// that byte in front).
//   bit 0: the project's disable_geoip;
//   bits 1-2: max_properties_depth 32 (the default), 2, 4 or 200 (past the
//     wire path's nesting margin, so that protobuf's recursion limit decides);
//   bit 3: the event is built twice in one call (two events, two uuids);
//   bits 4-5: 0, the rest is one Event; 1, a whole
//     posthog.v1.StreamCaptureEventsRequest instead, scanned by
//     ScanCaptureRequest (what it takes protobuf must parse to the same
//     project, ack_mode and events) and its events built both ways; 2, a
//     unary CaptureEventRequest, scanned by ScanCaptureEventRequest and its
//     one event built both ways (as `event`, not indexed, as CaptureEvent's
//     parsed path builds it); 3, a BatchCaptureEventsRequest, as 1.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "google/protobuf/stubs/logging.h"
#include "posthog/v1/capture.pb.h"
#include "server/capture/event_builder.h"
#include "server/capture/event_json.h"
#include "server/capture/record_block.h"
#include "tests/fakes/fake_clock.h"

namespace {

using posthog_gateway::BuiltEvent;
using posthog_gateway::EventBuilder;
using posthog_gateway::EventLimits;

posthog_gateway::Clock* FixedClock() {
  static posthog_gateway::Clock* const clock =
      new posthog_gateway::test_support::FakeClock(absl::FromUnixMillis(1767323045678));
  return clock;
}

// Builders with the same randomness give the same uuids.
EventBuilder MakeBuilder(const EventLimits& limits) {
  auto state = std::make_shared<uint64_t>(0x0123456789ABCDEFULL);
  return EventBuilder(limits, "1.2.3", FixedClock(), [state] {
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return *state;
  });
}

[[noreturn]] void Fail(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "wire_event_fuzzer: %s\n%s\n", what, detail.c_str());
  std::abort();
}

// Builds `wire_events` with BuildWire and `events` (the same events, parsed)
// with Build; when BuildWire takes them, Build must give the same.
void CompareBuilds(const EventLimits& limits, bool disable_geoip,
                   const std::vector<absl::string_view>& wire_events,
                   const std::vector<const posthog::v1::Event*>* events,
                   absl::string_view field = "events", bool indexed = true) {
  const EventBuilder wire_builder = MakeBuilder(limits);
  const std::optional<std::vector<BuiltEvent>> wire =
      wire_builder.BuildWire(wire_events, disable_geoip, /*with_uuids=*/true);
  // The reference runs on every input it can (it must not crash either).
  std::optional<absl::StatusOr<std::vector<BuiltEvent>>> reference;
  if (events != nullptr) {
    const EventBuilder reference_builder = MakeBuilder(limits);
    reference = reference_builder.Build(*events, field, indexed, disable_geoip);
  }
  // BuildWireRecords (what the service calls) writes BuildWire's events
  // straight into a block: the same decision, JSON, uuids and flags, a block
  // that reads back as written, and not much more memory than its records.
  {
    const EventBuilder records_builder = MakeBuilder(limits);
    posthog_gateway::RecordBlock block;
    std::vector<std::string> uuids;
    const bool took =
        records_builder.BuildWireRecords(wire_events, disable_geoip, "demo", &block, &uuids);
    if (took != wire.has_value()) Fail("BuildWireRecords and BuildWire decide differently");
    if (took) {
      if (block.size() != wire->size() || uuids.size() != wire->size()) {
        Fail("BuildWireRecords' event count differs");
      }
      for (size_t i = 0; i < block.size(); ++i) {
        if (block.json(i) != (*wire)[i].json) Fail("BuildWireRecords' JSON differs");
        if (uuids[i] != (*wire)[i].uuid) Fail("BuildWireRecords' uuid differs");
        if (block.historical_migration(i) != (*wire)[i].historical_migration ||
            block.project(i) != "demo") {
          Fail("BuildWireRecords' record fields differ");
        }
      }
      const std::optional<posthog_gateway::RecordBlock> read =
          posthog_gateway::RecordBlock::Parse(std::string(block.bytes()));
      if (!read.has_value() || read->size() != block.size()) Fail("the block does not read back");
      const size_t used = block.bytes().size();
      if (block.allocated_bytes() > used + used / 2 + 512) {
        Fail("the block holds far more memory than its records");
      }
    }
  }
  if (!wire.has_value()) return;
  if (events == nullptr) Fail("the wire path took bytes protobuf's parser refuses");
  if (!reference->ok()) {
    Fail("the wire path took an event Build refuses", std::string(reference->status().message()));
  }
  const std::vector<BuiltEvent>& expected = **reference;
  if (wire->size() != expected.size()) Fail("event counts differ");
  for (size_t i = 0; i < expected.size(); ++i) {
    if ((*wire)[i].json != expected[i].json) {
      Fail("JSON differs", "wire:  " + (*wire)[i].json + "\nBuild: " + expected[i].json);
    }
    if ((*wire)[i].uuid != expected[i].uuid) {
      Fail("uuids differ", (*wire)[i].uuid + " / " + expected[i].uuid);
    }
    if ((*wire)[i].historical_migration != expected[i].historical_migration) {
      Fail("historical_migration differs");
    }
  }
}

// The request modes: the scan of a whole request, then its events. `Request`
// is StreamCaptureEventsRequest or BatchCaptureEventsRequest (the same
// layout, both read by ScanCaptureRequest).
template <typename Request>
void FuzzRequest(const std::string& bytes, const EventLimits& limits, bool disable_geoip) {
  Request parsed;
  const bool parses = parsed.ParseFromString(bytes);
  std::vector<const posthog::v1::Event*> events;
  if (parses) {
    for (const posthog::v1::Event& event : parsed.events()) events.push_back(&event);
  }
  posthog_gateway::WireCaptureRequest request;
  if (!posthog_gateway::ScanCaptureRequest(bytes, &request)) return;  // Declined: allowed.
  if (!parses) {
    // The scan leaves the events' bytes to BuildWire: the two together must
    // not take what protobuf refuses.
    if (!request.events.empty()) CompareBuilds(limits, disable_geoip, request.events, nullptr);
    return;
  }
  if (request.project != parsed.project()) Fail("projects differ");
  if (request.ack_mode != static_cast<int32_t>(parsed.ack_mode())) Fail("ack_modes differ");
  if (request.events.size() != events.size()) Fail("event counts differ");
  if (events.empty()) return;
  CompareBuilds(limits, disable_geoip, request.events, &events);
}

// Unary CaptureEvent's request: what the scan takes is one event, which
// protobuf must parse to the same project and ack_mode, and (not merged
// with another occurrence) to the same event.
void FuzzCaptureEventRequest(const std::string& bytes, const EventLimits& limits,
                             bool disable_geoip) {
  posthog::v1::CaptureEventRequest parsed;
  const bool parses = parsed.ParseFromString(bytes);
  posthog_gateway::WireCaptureRequest request;
  if (!posthog_gateway::ScanCaptureEventRequest(bytes, &request)) return;  // Declined: allowed.
  if (request.events.size() != 1) Fail("the unary scan took other than one event");
  if (!parses) {
    CompareBuilds(limits, disable_geoip, request.events, nullptr);
    return;
  }
  if (request.project != parsed.project()) Fail("projects differ");
  if (request.ack_mode != static_cast<int32_t>(parsed.ack_mode())) Fail("ack_modes differ");
  const std::vector<const posthog::v1::Event*> events = {&parsed.event()};
  CompareBuilds(limits, disable_geoip, request.events, &events, "event", /*indexed=*/false);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // protobuf logs every string it refuses as invalid UTF-8: most of the
  // run's time, and nothing to read.
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
  if (size == 0) return 0;
  const uint8_t options = data[0];
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const bool disable_geoip = (options & 1) != 0;
  constexpr int64_t kDepths[] = {32, 2, 4, 200};
  EventLimits limits;
  limits.max_properties_depth = kDepths[(options >> 1) & 3];
  switch ((options >> 4) & 3) {
    case 1:
      FuzzRequest<posthog::v1::StreamCaptureEventsRequest>(bytes, limits, disable_geoip);
      return 0;
    case 2:
      FuzzCaptureEventRequest(bytes, limits, disable_geoip);
      return 0;
    case 3:
      FuzzRequest<posthog::v1::BatchCaptureEventsRequest>(bytes, limits, disable_geoip);
      return 0;
    default:
      break;
  }
  const size_t copies = (options & 8) != 0 ? 2 : 1;
  posthog::v1::Event parsed;
  const bool parses = parsed.ParseFromString(bytes);
  const std::vector<const posthog::v1::Event*> events(copies, &parsed);
  CompareBuilds(limits, disable_geoip, std::vector<absl::string_view>(copies, bytes),
                parses ? &events : nullptr);
  return 0;
}
