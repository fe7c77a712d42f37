#ifndef TESTS_FAKES_FAKE_HTTP_CLIENT_H_
#define TESTS_FAKES_FAKE_HTTP_CLIENT_H_

// FakeHttpClient is a scripted HttpClient: each Send records the request and
// returns the next scripted outcome (a response or a transport error). When
// the script runs out, Send fails with INTERNAL so a test notices.
//
// Thread-safe.

#include <deque>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/http/http_client.h"

namespace posthog_gateway::test_support {

class FakeHttpClient final : public HttpClient {
 public:
  // Script adds an outcome for a later Send.
  void Script(absl::StatusOr<HttpResponse> outcome) {
    absl::MutexLock lock(&mu_);
    script_.push_back(std::move(outcome));
  }

  // Respond scripts an answer with `status_code` and `body`.
  void Respond(int status_code, std::string body, HttpHeaders headers = {}) {
    HttpResponse response;
    response.status_code = status_code;
    response.body = std::move(body);
    response.headers = std::move(headers);
    Script(std::move(response));
  }

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    absl::MutexLock lock(&mu_);
    requests_.push_back(request);
    if (script_.empty()) return absl::InternalError("FakeHttpClient: no scripted answer");
    absl::StatusOr<HttpResponse> outcome = std::move(script_.front());
    script_.pop_front();
    return outcome;
  }

  std::vector<HttpRequest> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  mutable absl::Mutex mu_;
  std::deque<absl::StatusOr<HttpResponse>> script_ ABSL_GUARDED_BY(mu_);
  std::vector<HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_gateway::test_support

#endif  // TESTS_FAKES_FAKE_HTTP_CLIENT_H_
