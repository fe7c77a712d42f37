#include "server/grpc/malformed_request_interceptor.h"

#include "grpcpp/grpcpp.h"

namespace posthog_gateway {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

class MalformedRequestInterceptor final : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      malformed_ = true;
    }
    if (malformed_ &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::StatusCode code = methods->GetSendStatus().error_code();
      if (code == grpc::StatusCode::INTERNAL || code == grpc::StatusCode::UNIMPLEMENTED) {
        methods->ModifySendStatus(
            grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, kMalformedRequestMessage));
      }
    }
    methods->Proceed();
  }

 private:
  bool malformed_ = false;
};

}  // namespace

grpc::experimental::Interceptor* MalformedRequestInterceptorFactory::CreateServerInterceptor(
    ServerRpcInfo* info) {
  const bool one_request = info->type() == ServerRpcInfo::Type::UNARY ||
                           info->type() == ServerRpcInfo::Type::SERVER_STREAMING;
  if (!one_request || raw_methods_.contains(absl::string_view(info->method()))) return nullptr;
  return new MalformedRequestInterceptor();
}

}  // namespace posthog_gateway
