#include "server/service/capture_service.h"

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "google/protobuf/arena.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "server/capture/event_json.h"
#include "server/common/error_details.h"
#include "server/common/error_reasons.h"
#include "server/common/request_limits.h"
#include "server/grpc/arena_message_allocator.h"
#include "server/grpc/malformed_request_interceptor.h"
#include "server/grpc/status_conversion.h"

namespace posthog_gateway {
namespace {

// The arena block of a stream's messages: enough for a message of a few
// hundred ordinary events.
constexpr size_t kStreamArenaBlockBytes = 512 << 10;

absl::Time Deadline(const grpc::ServerContextBase* context) {
  const auto deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

// RESOURCE_EXHAUSTED for a DELIVERED-mode call refused a waiting thread.
absl::Status DeliveredWaitsExhausted(int64_t max) {
  absl::Status status = absl::ResourceExhaustedError(absl::StrCat(
      "ACK_MODE_DELIVERED: ", max,
      " calls already wait for PostHog (capture.max_delivered_waits) or no thread could be "
      "started; nothing was stored: retry later or use ACK_MODE_DURABLE"));
  AttachErrorInfo(status, reasons::kDeliveredWaitsExhausted,
                  {{"limit", "capture.max_delivered_waits"}, {"max", absl::StrCat(max)}});
  AttachRetryDelay(status, absl::Seconds(1));
  return status;
}

// SingleSlice points `slice` at a request's bytes: its one slice (a unary
// request almost always arrives as one), or its slices joined into one of
// its own.
bool SingleSlice(const grpc::ByteBuffer& bytes, grpc::Slice* slice) {
  return bytes.TrySingleSlice(slice).ok() || bytes.DumpToSingleSlice(slice).ok();
}

// SetUuidsResponse makes `response` the bytes protobuf writes for a message
// whose repeated string field 1 holds `uuids`: BatchCaptureEventsResponse's
// `uuids`, and CaptureEventResponse's `uuid` when there is one uuid (never
// empty: 36 characters). Written straight into the slice gRPC sends.
void SetUuidsResponse(absl::Span<const std::string> uuids, grpc::ByteBuffer* response) {
  size_t size = 0;
  for (const std::string& uuid : uuids) size += 1 + 10 + uuid.size();
  grpc::Slice slice(size);
  char* const begin = reinterpret_cast<char*>(const_cast<uint8_t*>(slice.begin()));
  char* out = begin;
  for (const std::string& uuid : uuids) {
    *out++ = 0x0A;  // Field 1, LEN.
    uint64_t length = uuid.size();
    for (; length >= 0x80; length >>= 7) *out++ = static_cast<char>((length & 0x7F) | 0x80);
    *out++ = static_cast<char>(length);
    std::memcpy(out, uuid.data(), uuid.size());
    out += uuid.size();
  }
  slice = slice.sub(0, static_cast<size_t>(out - begin));
  grpc::ByteBuffer reply(&slice, 1);
  response->Swap(&reply);
}

// FinishWithUuids finishes a CaptureEvent or BatchCaptureEvents call with
// what the pipeline returned.
void FinishWithUuids(absl::StatusOr<std::vector<std::string>> uuids,
                     grpc::ServerUnaryReactor* reactor, grpc::ByteBuffer* response) {
  if (!uuids.ok()) {
    reactor->Finish(ToGrpcStatus(uuids.status()));
    return;
  }
  SetUuidsResponse(*uuids, response);
  reactor->Finish(grpc::Status::OK);
}

// A bidi stream refused before its first message.
class RefusedBidi final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit RefusedBidi(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

CaptureServiceImpl::CaptureServiceImpl(CapturePipeline* pipeline, const Authorizer* authorizer,
                                       StreamLimits* streams, int64_t max_delivered_waits)
    : pipeline_(pipeline),
      authorizer_(authorizer),
      streams_(streams),
      max_delivered_waits_(max_delivered_waits),
      blocking_(max_delivered_waits) {}

grpc::ServerUnaryReactor* CaptureServiceImpl::CaptureEvent(grpc::CallbackServerContext* context,
                                                           const grpc::ByteBuffer* request_bytes,
                                                           grpc::ByteBuffer* response_bytes) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!UnaryFromWire(context, "/posthog.v1.CaptureService/CaptureEvent", /*one_event=*/true,
                     *request_bytes, response_bytes, reactor)) {
    CaptureParsedEvent(context, *request_bytes, response_bytes, reactor);
  }
  return reactor;
}

// UnaryFromWire takes a CaptureEvent (`one_event`) or BatchCaptureEvents
// request the short way when it can: its events' JSON written straight from
// its bytes, as the stream's messages (EventStream::CaptureFromWire), with
// no parse into messages. It declines (false, having done nothing
// observable) what the long way must decide: a request that is not plainly
// encoded; no event or more than a request may hold; for CaptureEvent an
// event given more than once (protobuf merges the occurrences);
// ACK_MODE_DELIVERED; events PrepareWire declines. What it takes it does as
// the long way would, in the same order: the request is authorized (a unit
// of quota per event), then spooled, and the call finishes once the spool
// syncs.
bool CaptureServiceImpl::UnaryFromWire(grpc::CallbackServerContext* context,
                                       absl::string_view method, bool one_event,
                                       const grpc::ByteBuffer& request_bytes,
                                       grpc::ByteBuffer* response_bytes,
                                       grpc::ServerUnaryReactor* reactor) {
  // The JSON is written from views into the slice.
  grpc::Slice slice;
  if (!SingleSlice(request_bytes, &slice)) return false;
  const absl::string_view bytes(reinterpret_cast<const char*>(slice.begin()), slice.size());
  // Per thread, so that its list of events keeps its capacity; its views
  // are read only within this call.
  thread_local WireCaptureRequest wire;
  const bool scanned =
      one_event ? ScanCaptureEventRequest(bytes, &wire) : ScanCaptureRequest(bytes, &wire);
  if (!scanned || wire.events.empty() || wire.ack_mode == posthog::v1::ACK_MODE_DELIVERED) {
    return false;
  }
  std::optional<CapturePipeline::Prepared> prepared =
      pipeline_->PrepareWire(wire.project, wire.events, /*with_uuids=*/true);
  if (!prepared.has_value()) return false;
  if (grpc::Status denied = authorizer_->Check(*context, method, wire.project,
                                               static_cast<int64_t>(wire.events.size()));
      !denied.ok()) {
    reactor->Finish(denied);
    return true;
  }
  pipeline_->SpoolPreparedAsync(
      *std::move(prepared),
      [reactor, response_bytes](absl::StatusOr<std::vector<std::string>> uuids) {
        FinishWithUuids(std::move(uuids), reactor, response_bytes);
      });
  return true;
}

void CaptureServiceImpl::CaptureParsedEvent(grpc::CallbackServerContext* context,
                                            const grpc::ByteBuffer& request_bytes,
                                            grpc::ByteBuffer* response_bytes,
                                            grpc::ServerUnaryReactor* reactor) {
  // The request (an event's properties: many small objects) on an arena of
  // its own.
  auto request = std::make_unique<ArenaMessage<posthog::v1::CaptureEventRequest, 16 << 10>>();
  if (!request->ParseFrom(request_bytes)) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, kMalformedRequestMessage));
    return;
  }
  const posthog::v1::CaptureEventRequest& r = **request;
  if (grpc::Status denied =
          authorizer_->Check(*context, "/posthog.v1.CaptureService/CaptureEvent", r.project());
      !denied.ok()) {
    reactor->Finish(denied);
    return;
  }
  auto finish = [reactor, response_bytes](absl::StatusOr<std::vector<std::string>> uuids) {
    FinishWithUuids(std::move(uuids), reactor, response_bytes);
  };
  if (r.ack_mode() != posthog::v1::ACK_MODE_DELIVERED) {
    // Built before this returns: the request is not needed past it.
    pipeline_->CaptureDurableAsync(r.project(), {&r.event()}, "event", /*indexed=*/false,
                                   std::move(finish));
    return;
  }
  // The context and response live until Finish; the request goes with the
  // wait.
  const absl::Time deadline = Deadline(context);
  absl::AnyInvocable<void()&&> wait = [this, context, request = std::move(request), deadline,
                                       finish]() mutable {
    const posthog::v1::CaptureEventRequest& waiting = **request;
    finish(pipeline_->Capture(waiting.project(), {&waiting.event()}, "event",
                              /*indexed=*/false, waiting.ack_mode(), deadline,
                              [context] { return context->IsCancelled(); }));
  };
  if (!blocking_.TryStart(wait)) finish(DeliveredWaitsExhausted(max_delivered_waits_));
}

grpc::ServerUnaryReactor* CaptureServiceImpl::BatchCaptureEvents(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!UnaryFromWire(context, "/posthog.v1.CaptureService/BatchCaptureEvents",
                     /*one_event=*/false, *request_bytes, response_bytes, reactor)) {
    BatchParsed(context, *request_bytes, response_bytes, reactor);
  }
  return reactor;
}

void CaptureServiceImpl::BatchParsed(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer& request_bytes,
                                     grpc::ByteBuffer* response_bytes,
                                     grpc::ServerUnaryReactor* reactor) {
  auto request = std::make_unique<ArenaMessage<posthog::v1::BatchCaptureEventsRequest, 16 << 10>>();
  if (!request->ParseFrom(request_bytes)) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, kMalformedRequestMessage));
    return;
  }
  const posthog::v1::BatchCaptureEventsRequest& r = **request;
  if (grpc::Status denied = authorizer_->Check(
          *context, "/posthog.v1.CaptureService/BatchCaptureEvents", r.project(), r.events_size());
      !denied.ok()) {
    reactor->Finish(denied);
    return;
  }
  if (r.events().empty()) {
    reactor->Finish(ToGrpcStatus(
        InvalidArgumentWithViolations("no events", {{"events", "must hold at least one event"}})));
    return;
  }
  if (absl::Status limit = CheckCountLimit("BatchCaptureEvents", "events", r.events_size(),
                                           kMaxCaptureEventsPerMessage);
      !limit.ok()) {
    reactor->Finish(ToGrpcStatus(limit));
    return;
  }
  auto finish = [reactor, response_bytes](absl::StatusOr<std::vector<std::string>> uuids) {
    FinishWithUuids(std::move(uuids), reactor, response_bytes);
  };
  if (r.ack_mode() != posthog::v1::ACK_MODE_DELIVERED) {
    std::vector<const posthog::v1::Event*> events;
    events.reserve(r.events_size());
    for (const posthog::v1::Event& event : r.events()) events.push_back(&event);
    // Built before this returns: the request is not needed past it.
    pipeline_->CaptureDurableAsync(r.project(), events, "events", /*indexed=*/true,
                                   std::move(finish));
    return;
  }
  // The context and response live until Finish; the request goes with the
  // wait, on a thread of its own as CaptureEvent's (capture.max_delivered_waits).
  const absl::Time deadline = Deadline(context);
  absl::AnyInvocable<void()&&> wait = [this, context, request = std::move(request), deadline,
                                       finish]() mutable {
    const posthog::v1::BatchCaptureEventsRequest& waiting = **request;
    std::vector<const posthog::v1::Event*> events;
    events.reserve(waiting.events_size());
    for (const posthog::v1::Event& event : waiting.events()) events.push_back(&event);
    finish(pipeline_->Capture(waiting.project(), events, "events", /*indexed=*/true,
                              waiting.ack_mode(), deadline,
                              [context] { return context->IsCancelled(); }));
  };
  if (!blocking_.TryStart(wait)) finish(DeliveredWaitsExhausted(max_delivered_waits_));
}

// One StreamCaptureEvents stream, one message at a time: read, captured,
// acknowledged, read again. Each message is parsed into an arena that is
// reset before the next one: a message of hundreds of events holds thousands
// of small objects (the properties' Structs), which the heap would allocate
// and free one by one. The first block is kept across messages; larger
// messages grow the arena with blocks that each Reset frees.
class CaptureServiceImpl::EventStream final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  EventStream(CaptureServiceImpl* service, grpc::CallbackServerContext* context,
              absl::Time deadline, StreamLimits::Slot slot)
      : service_(service),
        context_(context),
        deadline_(deadline),
        slot_(std::move(slot)),
        first_block_(kStreamArenaBlockBytes),
        arena_(ArenaOptions(first_block_)) {
    ReadNext();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // The caller closed its side (or left): all is acknowledged.
      Finish(grpc::Status::OK);
      return;
    }
    ++message_number_;
    if (CaptureFromWire()) return;
    if (!Parse()) {
      absl::Status status = absl::InvalidArgumentError(absl::StrCat(
          "stream message ", message_number_, " (after ", acknowledged_,
          " acknowledged events) is not a posthog.v1.StreamCaptureEventsRequest; nothing of "
          "it was stored"));
      AttachErrorInfo(status, reasons::kMalformedRequest,
                      {{"acknowledged_count", absl::StrCat(acknowledged_)}});
      Finish(ToGrpcStatus(status));
      return;
    }
    if (message_number_ == 1) {
      project_ = request_->project();
      ack_mode_ = request_->ack_mode();
    }
    // Each message (even an empty one) is authorized and spends the
    // caller's quota; the first one names the stream's project.
    if (grpc::Status denied = service_->authorizer_->Check(
            *context_, "/posthog.v1.CaptureService/StreamCaptureEvents", project_,
            request_->events_size());
        !denied.ok()) {
      Finish(denied);
      return;
    }
    if (request_->events().empty()) {
      ReadNext();
      return;
    }
    if (absl::Status limit = CheckCountLimit("StreamCaptureEvents", "events",
                                             request_->events_size(), kMaxCaptureEventsPerMessage);
        !limit.ok()) {
      Acknowledge(limit);  // Ends the stream; nothing of this message is stored.
      return;
    }
    events_.clear();
    for (const posthog::v1::Event& event : request_->events()) events_.push_back(&event);
    // The arena (and so events_) lives until the next read, after the ack.
    if (ack_mode_ != posthog::v1::ACK_MODE_DELIVERED) {
      service_->pipeline_->CaptureDurableCountAsync(
          project_, events_, "events", /*indexed=*/true,
          [this](absl::StatusOr<int64_t> count) { Acknowledge(count); });
      return;
    }
    absl::AnyInvocable<void()&&> wait = [this] {
      absl::StatusOr<std::vector<std::string>> uuids =
          service_->pipeline_->Capture(project_, events_, "events", /*indexed=*/true, ack_mode_,
                                       deadline_, [this] { return context_->IsCancelled(); });
      if (!uuids.ok()) return Acknowledge(uuids.status());
      Acknowledge(static_cast<int64_t>(uuids->size()));
    };
    if (!service_->blocking_.TryStart(wait)) {
      Acknowledge(DeliveredWaitsExhausted(service_->max_delivered_waits_));
    }
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {  // The caller left.
      Finish(grpc::Status::OK);
      return;
    }
    ReadNext();
  }

  void OnDone() override { delete this; }

 private:
  static google::protobuf::ArenaOptions ArenaOptions(std::vector<char>& first_block) {
    google::protobuf::ArenaOptions options;
    options.initial_block = first_block.data();
    options.initial_block_size = first_block.size();
    options.start_block_size = kStreamArenaBlockBytes;
    options.max_block_size = kStreamArenaBlockBytes;
    return options;
  }

  // CaptureFromWire takes the message the short way when it can: its events'
  // JSON written straight from its bytes (CapturePipeline::PrepareWire), with
  // no parse into messages, which was most of the stream's CPU per event. It
  // declines (false, having done nothing observable) what the long way must
  // decide: a message that is not plainly encoded, an empty one, one over the
  // count limit, ACK_MODE_DELIVERED, any event PrepareWire declines. What it
  // takes it does as the long way would, in the same order: the first
  // message names the project and mode, the message is authorized, then
  // spooled and acknowledged.
  bool CaptureFromWire() {
    absl::string_view bytes;
    if (!Contiguous(&bytes) || !ScanCaptureRequest(bytes, &wire_)) return false;
    const bool first = message_number_ == 1;
    const absl::string_view project = first ? wire_.project : absl::string_view(project_);
    const int32_t ack_mode = first ? wire_.ack_mode : ack_mode_;
    const int64_t count = static_cast<int64_t>(wire_.events.size());
    if (count == 0 || count > kMaxCaptureEventsPerMessage ||
        ack_mode == posthog::v1::ACK_MODE_DELIVERED) {
      return false;
    }
    std::optional<CapturePipeline::Prepared> prepared =
        service_->pipeline_->PrepareWire(project, wire_.events, /*with_uuids=*/false);
    if (!prepared.has_value()) return false;
    if (first) {
      project_ = std::string(wire_.project);
      ack_mode_ = static_cast<posthog::v1::AckMode>(wire_.ack_mode);
    }
    if (grpc::Status denied = service_->authorizer_->Check(
            *context_, "/posthog.v1.CaptureService/StreamCaptureEvents", project_, count);
        !denied.ok()) {
      Finish(denied);
      return true;
    }
    service_->pipeline_->SpoolPreparedCountAsync(
        *std::move(prepared), [this](absl::StatusOr<int64_t> stored) { Acknowledge(stored); });
    return true;
  }

  // Contiguous points `bytes` at the message just read: its one slice, or
  // the slices joined into a buffer the stream keeps (the JSON is written
  // from views into it).
  bool Contiguous(absl::string_view* bytes) {
    slices_.clear();
    if (!request_bytes_.Dump(&slices_).ok()) return false;
    if (slices_.size() == 1) {
      *bytes =
          absl::string_view(reinterpret_cast<const char*>(slices_[0].begin()), slices_[0].size());
      return true;
    }
    // One unusually large message must not pin its size for the stream's
    // life.
    if (joined_.capacity() > kStreamArenaBlockBytes) std::string().swap(joined_);
    joined_.clear();
    for (const grpc::Slice& slice : slices_) {
      joined_.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
    *bytes = joined_;
    return true;
  }

  void ReadNext() {
    request_bytes_.Clear();
    StartRead(&request_bytes_);
  }

  // Parse parses the message just read into a fresh request on the arena;
  // false when the bytes are not a StreamCaptureEventsRequest.
  bool Parse() {
    arena_.Reset();
    request_ =
        google::protobuf::Arena::CreateMessage<posthog::v1::StreamCaptureEventsRequest>(&arena_);
    std::vector<grpc::Slice> slices;
    if (!request_bytes_.Dump(&slices).ok()) return false;
    if (slices.size() == 1) {
      return request_->ParseFromArray(slices[0].begin(), static_cast<int>(slices[0].size()));
    }
    // Parsed across the slices where they lie: joining them first copied
    // the whole message into a fresh buffer of its size (tens of KB, which
    // glibc's malloc served by consolidating its free lists) per message.
    grpc::ProtoBufferReader reader(&request_bytes_);
    if (!reader.status().ok()) return false;
    return request_->ParseFromZeroCopyStream(&reader);
  }

  // Acknowledge answers the message just captured: the running count, or
  // the error that ends the stream.
  void Acknowledge(absl::StatusOr<int64_t> stored) {
    if (!stored.ok()) {
      absl::Status status(
          stored.status().code(),
          absl::StrCat("stream message ", message_number_, " (after ", acknowledged_,
                       " acknowledged events): ", stored.status().message()));
      stored.status().ForEachPayload(
          [&status](absl::string_view type_url, const absl::Cord& payload) {
            status.SetPayload(type_url, payload);
          });
      Finish(ToGrpcStatus(status));
      return;
    }
    acknowledged_ += *stored;
    posthog::v1::StreamCaptureEventsResponse response;
    response.set_acknowledged_count(acknowledged_);
    grpc::Slice slice(response.SerializeAsString());
    response_bytes_ = grpc::ByteBuffer(&slice, 1);
    StartWrite(&response_bytes_);
  }

  CaptureServiceImpl* const service_;
  grpc::CallbackServerContext* const context_;
  const absl::Time deadline_;
  // Counted in server.max_streams until the stream is deleted (OnDone).
  StreamLimits::Slot slot_;
  std::vector<char> first_block_;
  google::protobuf::Arena arena_;
  grpc::ByteBuffer request_bytes_;
  posthog::v1::StreamCaptureEventsRequest* request_ = nullptr;  // On arena_.
  // The message just read, for CaptureFromWire: its slices, joined when
  // there are several, and its fields.
  std::vector<grpc::Slice> slices_;
  std::string joined_;
  WireCaptureRequest wire_;
  std::vector<const posthog::v1::Event*> events_;
  grpc::ByteBuffer response_bytes_;
  std::string project_;
  posthog::v1::AckMode ack_mode_ = posthog::v1::ACK_MODE_UNSPECIFIED;
  int64_t acknowledged_ = 0;
  int64_t message_number_ = 0;
};

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
CaptureServiceImpl::StreamCaptureEvents(grpc::CallbackServerContext* context) {
  absl::StatusOr<StreamLimits::Slot> slot = streams_->Open(
      authorizer_->CallerName(*context), "/posthog.v1.CaptureService/StreamCaptureEvents");
  if (!slot.ok()) return new RefusedBidi(ToGrpcStatus(slot.status()));
  return new EventStream(this, context, Deadline(context), *std::move(slot));
}

grpc::Status CaptureServiceImpl::CaptureOne(grpc::ServerContext* context,
                                            const std::string& project,
                                            const posthog::v1::Event& event,
                                            posthog::v1::AckMode ack_mode, std::string* uuid) {
  absl::StatusOr<std::vector<std::string>> uuids =
      pipeline_->Capture(project, {&event}, "", /*indexed=*/false, ack_mode, Deadline(context),
                         [context] { return context->IsCancelled(); });
  if (!uuids.ok()) return ToGrpcStatus(uuids.status());
  *uuid = uuids->front();
  return grpc::Status::OK;
}

grpc::Status CaptureServiceImpl::Identify(grpc::ServerContext* context,
                                          const posthog::v1::IdentifyRequest* request,
                                          posthog::v1::IdentifyResponse* response) {
  if (grpc::Status denied =
          authorizer_->Check(*context, "/posthog.v1.CaptureService/Identify", request->project());
      !denied.ok()) {
    return denied;
  }
  return CaptureOne(context, request->project(), IdentifyEvent(*request), request->ack_mode(),
                    response->mutable_uuid());
}

grpc::Status CaptureServiceImpl::Alias(grpc::ServerContext* context,
                                       const posthog::v1::AliasRequest* request,
                                       posthog::v1::AliasResponse* response) {
  if (grpc::Status denied =
          authorizer_->Check(*context, "/posthog.v1.CaptureService/Alias", request->project());
      !denied.ok()) {
    return denied;
  }
  if (request->alias().empty()) {
    return ToGrpcStatus(
        InvalidArgumentWithViolations("no alias", {{"alias", "must not be empty"}}));
  }
  return CaptureOne(context, request->project(), AliasEvent(*request), request->ack_mode(),
                    response->mutable_uuid());
}

grpc::Status CaptureServiceImpl::GroupIdentify(grpc::ServerContext* context,
                                               const posthog::v1::GroupIdentifyRequest* request,
                                               posthog::v1::GroupIdentifyResponse* response) {
  if (grpc::Status denied = authorizer_->Check(*context, "/posthog.v1.CaptureService/GroupIdentify",
                                               request->project());
      !denied.ok()) {
    return denied;
  }
  std::vector<FieldViolation> violations;
  if (request->group_type().empty()) violations.push_back({"group_type", "must not be empty"});
  if (request->group_key().empty()) violations.push_back({"group_key", "must not be empty"});
  if (!violations.empty()) {
    return ToGrpcStatus(InvalidArgumentWithViolations("the group is incomplete", violations));
  }
  return CaptureOne(context, request->project(), GroupIdentifyEvent(*request), request->ack_mode(),
                    response->mutable_uuid());
}

grpc::Status CaptureServiceImpl::SetPersonProperties(
    grpc::ServerContext* context, const posthog::v1::SetPersonPropertiesRequest* request,
    posthog::v1::SetPersonPropertiesResponse* response) {
  if (grpc::Status denied = authorizer_->Check(
          *context, "/posthog.v1.CaptureService/SetPersonProperties", request->project());
      !denied.ok()) {
    return denied;
  }
  return CaptureOne(context, request->project(), SetPersonPropertiesEvent(*request),
                    request->ack_mode(), response->mutable_uuid());
}

}  // namespace posthog_gateway
