#ifndef SERVER_SERVICE_CAPTURE_SERVICE_H_
#define SERVER_SERVICE_CAPTURE_SERVICE_H_

// CaptureServiceImpl serves posthog.v1.CaptureService on a CapturePipeline:
// it turns the convention RPCs into their events, calls the pipeline and
// converts the result. Thread-safe; borrows the pipeline.
//
// CaptureEvent, BatchCaptureEvents and StreamCaptureEvents use gRPC's
// callback API: in ACK_MODE_DURABLE no thread waits for the spool's sync
// (the call finishes, or the stream acknowledges, from the spool's writer),
// so that many calls and streams share one group commit without a parked
// thread each, and an open stream costs no thread at all. In
// ACK_MODE_DELIVERED they wait for PostHog on a thread of their own, at most
// `max_delivered_waits` at once (capture.max_delivered_waits; past it
// RESOURCE_EXHAUSTED with ErrorInfo DELIVERED_WAITS_EXHAUSTED and RetryInfo,
// nothing stored), and the wait ends as soon as the caller cancels
// (CANCELLED; the events stay spooled).
// The other methods are synchronous.
//
// StreamCaptureEvents streams count towards server.max_streams (`streams`).

//
// Every call first asks `authorizer` (server/authz/authorizer.h), each
// stream message too, spending one unit of the caller's capture quota per
// event; the default allows every call, for tests of the handlers alone.

#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"
#include "posthog/v1/capture.grpc.pb.h"
#include "server/authz/authorizer.h"
#include "server/capture/capture_pipeline.h"
#include "server/grpc/blocking_calls.h"
#include "server/grpc/stream_limits.h"

namespace posthog_gateway {

class CaptureServiceImpl final
    : public posthog::v1::CaptureService::WithRawCallbackMethod_CaptureEvent<
          posthog::v1::CaptureService::WithRawCallbackMethod_BatchCaptureEvents<
              posthog::v1::CaptureService::WithRawCallbackMethod_StreamCaptureEvents<
                  posthog::v1::CaptureService::Service>>> {
 public:
  // Waits, on destruction, for the ACK_MODE_DELIVERED calls still running.
  explicit CaptureServiceImpl(CapturePipeline* pipeline,
                              const Authorizer* authorizer = Authorizer::AllowAll(),
                              StreamLimits* streams = StreamLimits::Unlimited(),
                              int64_t max_delivered_waits = kDefaultMaxDeliveredWaits);

  // The default of capture.max_delivered_waits.
  static constexpr int64_t kDefaultMaxDeliveredWaits = 256;

  // The methods served raw, which parse their requests themselves
  // (NamedService::raw_methods).
  static constexpr absl::string_view kRawMethods[] = {"CaptureEvent", "BatchCaptureEvents",
                                                      "StreamCaptureEvents"};

  // Raw: takes a serialized CaptureEventRequest and writes a
  // CaptureEventResponse. An ordinary durable event is written as JSON
  // straight from the request's bytes (CapturePipeline::PrepareWire); any
  // other request is parsed and captured as before, with the same answers
  // (a request that does not parse: INVALID_ARGUMENT).
  grpc::ServerUnaryReactor* CaptureEvent(grpc::CallbackServerContext* context,
                                         const grpc::ByteBuffer* request_bytes,
                                         grpc::ByteBuffer* response_bytes) override;
  // Raw: the same for a serialized BatchCaptureEventsRequest and its
  // BatchCaptureEventsResponse.
  grpc::ServerUnaryReactor* BatchCaptureEvents(grpc::CallbackServerContext* context,
                                               const grpc::ByteBuffer* request_bytes,
                                               grpc::ByteBuffer* response_bytes) override;
  // Each request message is spooled as a unit and acknowledged with the
  // running count of the stream's events; the first error ends the stream
  // (events acknowledged before it stay accepted). Raw: the stream parses
  // each message itself, so that one that is not a
  // StreamCaptureEventsRequest ends the stream with INVALID_ARGUMENT (gRPC
  // would report it as the caller's half-close, an OK end that drops the
  // rest of the stream silently).
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* StreamCaptureEvents(
      grpc::CallbackServerContext* context) override;
  grpc::Status Identify(grpc::ServerContext* context, const posthog::v1::IdentifyRequest* request,
                        posthog::v1::IdentifyResponse* response) override;
  grpc::Status Alias(grpc::ServerContext* context, const posthog::v1::AliasRequest* request,
                     posthog::v1::AliasResponse* response) override;
  grpc::Status GroupIdentify(grpc::ServerContext* context,
                             const posthog::v1::GroupIdentifyRequest* request,
                             posthog::v1::GroupIdentifyResponse* response) override;
  grpc::Status SetPersonProperties(grpc::ServerContext* context,
                                   const posthog::v1::SetPersonPropertiesRequest* request,
                                   posthog::v1::SetPersonPropertiesResponse* response) override;

  // ACK_MODE_DELIVERED calls and stream messages waiting for PostHog now.
  int64_t delivered_waits() const { return blocking_.Running(); }

 private:
  class EventStream;

  // The two ways of CaptureEvent and BatchCaptureEvents: the wire path
  // (false, having done nothing observable, when it declines the request)
  // and the parsed one.
  bool UnaryFromWire(grpc::CallbackServerContext* context, absl::string_view method, bool one_event,
                     const grpc::ByteBuffer& request_bytes, grpc::ByteBuffer* response_bytes,
                     grpc::ServerUnaryReactor* reactor);
  void CaptureParsedEvent(grpc::CallbackServerContext* context,
                          const grpc::ByteBuffer& request_bytes, grpc::ByteBuffer* response_bytes,
                          grpc::ServerUnaryReactor* reactor);
  void BatchParsed(grpc::CallbackServerContext* context, const grpc::ByteBuffer& request_bytes,
                   grpc::ByteBuffer* response_bytes, grpc::ServerUnaryReactor* reactor);

  // Captures one convention event built from a request; `field` prefixes
  // violations ("" for the request's own fields).
  grpc::Status CaptureOne(grpc::ServerContext* context, const std::string& project,
                          const posthog::v1::Event& event, posthog::v1::AckMode ack_mode,
                          std::string* uuid);

  CapturePipeline* pipeline_;
  const Authorizer* authorizer_;
  StreamLimits* const streams_;
  const int64_t max_delivered_waits_;
  // ACK_MODE_DELIVERED CaptureEvent calls and stream messages, at most
  // max_delivered_waits at once; waited for on destruction.
  BlockingCalls blocking_;
};

}  // namespace posthog_gateway

#endif  // SERVER_SERVICE_CAPTURE_SERVICE_H_
