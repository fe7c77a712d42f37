#ifndef TESTS_FAKES_FAKE_LIST_ENDPOINT_H_
#define TESTS_FAKES_FAKE_LIST_ENDPOINT_H_

// FakeListEndpoint is an HttpClient serving one PostHog offset-paginated list
// the way PostHog's persons list does ({"results", "next", "previous"},
// `next` an absolute URL while the page is full), or with UseDrfPagination()
// the way DRF's LimitOffsetPagination (the feature flag list) does (a
// `count`, `next` only while offset + limit < count), with `total` items
// {"id": k}. Answers are
// computed from the request, not scripted in order, so concurrent page
// fetches get the right page whatever their order. A test can override the
// answer at one offset (a 429, a truncated body, a foreign `next`, ...).
//
// Thread-safe.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "server/common/clock.h"
#include "server/http/http_client.h"

namespace posthog_gateway::test_support {

class FakeListEndpoint final : public HttpClient {
 public:
  // Serves `total` items at `base_url` (e.g. "https://app.example/api/projects/7/persons/").
  // Request times are read from `clock` when given.
  FakeListEndpoint(std::string base_url, int total, const Clock* clock = nullptr)
      : base_url_(std::move(base_url)), total_(total), clock_(clock) {}

  // Override answers the next request at `offset` with `response` (once per call).
  void Override(int offset, HttpResponse response) {
    absl::MutexLock lock(&mu_);
    overrides_[offset].push_back(std::move(response));
  }

  // Hold makes requests at `offset` wait until Release: a PostHog that
  // never answers that page (its requests are still recorded at once).
  void Hold(int offset) {
    absl::MutexLock lock(&mu_);
    held_.insert(offset);
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    held_.clear();
  }

  // UseDrfPagination answers like DRF's LimitOffsetPagination from now on.
  void UseDrfPagination() {
    absl::MutexLock lock(&mu_);
    drf_ = true;
  }

  // ReplaceNext makes the page at `offset` carry `next` as its next URL.
  void ReplaceNext(int offset, std::string next) {
    absl::MutexLock lock(&mu_);
    next_overrides_[offset] = std::move(next);
  }

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    absl::MutexLock lock(&mu_);
    requests_.push_back(request);
    if (clock_ != nullptr) times_.push_back(clock_->Now());
    if (request.url.rfind(base_url_, 0) != 0) {
      HttpResponse not_found;
      not_found.status_code = 404;
      return not_found;
    }
    int limit = 100;
    int offset = 0;
    const size_t question = request.url.find('?');
    if (question != std::string::npos) {
      for (absl::string_view pair :
           absl::StrSplit(absl::string_view(request.url).substr(question + 1), '&')) {
        std::pair<std::string, std::string> kv = absl::StrSplit(pair, '=');
        if (kv.first == "limit") (void)absl::SimpleAtoi(kv.second, &limit);
        if (kv.first == "offset") (void)absl::SimpleAtoi(kv.second, &offset);
      }
    }
    auto released = [this, offset]()
                        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return held_.count(offset) == 0; };
    mu_.Await(absl::Condition(&released));
    if (auto it = overrides_.find(offset); it != overrides_.end() && !it->second.empty()) {
      HttpResponse response = std::move(it->second.front());
      it->second.erase(it->second.begin());
      return response;
    }
    nlohmann::json results = nlohmann::json::array();
    for (int k = offset; k < std::min(total_, offset + limit); ++k) {
      results.push_back({{"id", k}});
    }
    nlohmann::json body = {{"results", results}, {"previous", nullptr}, {"next", nullptr}};
    const bool more = drf_ ? offset + limit < total_ : static_cast<int>(results.size()) >= limit;
    if (more) body["next"] = absl::StrCat(base_url_, "?limit=", limit, "&offset=", offset + limit);
    if (drf_) body["count"] = total_;
    if (auto it = next_overrides_.find(offset); it != next_overrides_.end()) {
      body["next"] = it->second;
    }
    HttpResponse response;
    response.status_code = 200;
    response.body = body.dump();
    return response;
  }

  std::vector<HttpRequest> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  std::vector<absl::Time> times() const {
    absl::MutexLock lock(&mu_);
    return times_;
  }

 private:
  const std::string base_url_;
  const int total_;
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  std::map<int, std::vector<HttpResponse>> overrides_ ABSL_GUARDED_BY(mu_);
  std::map<int, std::string> next_overrides_ ABSL_GUARDED_BY(mu_);
  bool drf_ ABSL_GUARDED_BY(mu_) = false;
  std::set<int> held_ ABSL_GUARDED_BY(mu_);
  std::vector<HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> times_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_gateway::test_support

#endif  // TESTS_FAKES_FAKE_LIST_ENDPOINT_H_
