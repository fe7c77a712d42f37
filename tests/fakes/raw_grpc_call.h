#ifndef TESTS_FAKES_RAW_GRPC_CALL_H_
#define TESTS_FAKES_RAW_GRPC_CALL_H_

// RawUnaryCall sends `bytes` as the one request message of `method` (a path
// such as "/posthog.v1.FlagService/EvaluateFlag", known to the server or
// not) and reads every response message until the status, so that tests can
// send what no generated stub would: malformed protobuf, unknown methods.
// Works for unary and server-streaming methods. Blocking; thread-compatible.

#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"

namespace posthog_gateway::test_support {

inline grpc::Status RawUnaryCall(const std::shared_ptr<grpc::Channel>& channel,
                                 const std::string& method, const std::string& bytes,
                                 absl::Duration timeout = absl::Seconds(10)) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(&context, method, &cq);
  void* tag = nullptr;
  bool ok = false;
  call->StartCall(reinterpret_cast<void*>(1));
  cq.Next(&tag, &ok);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  if (ok) {
    call->WriteLast(request, grpc::WriteOptions(), reinterpret_cast<void*>(2));
    cq.Next(&tag, &ok);
  }
  grpc::ByteBuffer response;
  while (ok) {
    call->Read(&response, reinterpret_cast<void*>(3));
    cq.Next(&tag, &ok);
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

}  // namespace posthog_gateway::test_support

#endif  // TESTS_FAKES_RAW_GRPC_CALL_H_
