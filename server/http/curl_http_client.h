#ifndef SERVER_HTTP_CURL_HTTP_CLIENT_H_
#define SERVER_HTTP_CURL_HTTP_CLIENT_H_

// CurlHttpClient is the HttpClient over libcurl.
//
// Connections are reused across calls: easy handles are pooled, and every
// handle shares one connection cache, DNS cache and TLS session cache (a curl
// share object), so a request from any thread finds a warm connection. HTTP/2
// is negotiated where the server offers it over TLS; plain http:// stays
// HTTP/1.1 with keep-alive. TLS peers are always verified.
//
// Thread-safe. The client must outlive every Send in flight.

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/http/http_client.h"

namespace posthog_gateway {

struct CurlHttpClientOptions {
  // Used when a request has no deadline.
  absl::Duration default_timeout = absl::Seconds(30);
  absl::Duration connect_timeout = absl::Seconds(5);
  // A CA bundle to verify TLS peers with; the system's when empty.
  std::string ca_file;
  // Sent as User-Agent on every request.
  std::string user_agent = "posthog-grpc-gateway";
  // Idle easy handles kept for reuse.
  int max_idle_handles = 64;
};

class CurlHttpClient final : public HttpClient {
 public:
  explicit CurlHttpClient(CurlHttpClientOptions options);
  ~CurlHttpClient() override;

  CurlHttpClient(const CurlHttpClient&) = delete;
  CurlHttpClient& operator=(const CurlHttpClient&) = delete;

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override;

 private:
  class Share;
  struct HandleDeleter {
    void operator()(void* handle) const;
  };
  using Handle = std::unique_ptr<void, HandleDeleter>;

  Handle Acquire();
  void Release(Handle handle);

  const CurlHttpClientOptions options_;
  std::unique_ptr<Share> share_;
  absl::Mutex mu_;
  std::vector<Handle> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_gateway

#endif  // SERVER_HTTP_CURL_HTTP_CLIENT_H_
