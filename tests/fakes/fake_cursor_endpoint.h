#ifndef TESTS_FAKES_FAKE_CURSOR_ENDPOINT_H_
#define TESTS_FAKES_FAKE_CURSOR_ENDPOINT_H_

// FakeCursorEndpoint is an HttpClient serving one PostHog cursor-paginated
// list the way DRF's CursorPagination does (PostHog's groups list):
// {"next", "previous", "results"}, `page_size` items a page, no count,
// `next` an absolute URL carrying the request's other parameters and an
// opaque `cursor`. Items are {"id": k, "group_key": "g<k>"}, ids 0 to
// total - 1 in list order; Insert puts newer items (-1, -2, ...) in front,
// as groups created during a listing are. A cursor is the position of its
// page's last item (so inserts never shift later pages) and holds '+', '/'
// and '=' (encoded in `next`), as base64 does.
//
// Answers are computed from the request. A test can override the answer to
// one cursor ("" is the first page), replace its `next`, or hold it.
//
// Thread-safe.

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "server/http/http_client.h"

namespace posthog_gateway::test_support {

class FakeCursorEndpoint final : public HttpClient {
 public:
  FakeCursorEndpoint(std::string base_url, int total, int page_size = 100)
      : base_url_(std::move(base_url)), page_size_(page_size) {
    for (int k = 0; k < total; ++k) ids_.push_back(k);
  }

  static std::string CursorAfter(int id) { return absl::StrCat("p+", id, "/=="); }

  void Insert(int count) {
    absl::MutexLock lock(&mu_);
    for (int k = 0; k < count; ++k) ids_.push_front(--newest_);
  }
  void Override(const std::string& cursor, HttpResponse response) {
    absl::MutexLock lock(&mu_);
    overrides_[cursor].push_back(std::move(response));
  }
  void ReplaceNext(const std::string& cursor, std::string next) {
    absl::MutexLock lock(&mu_);
    next_overrides_[cursor] = std::move(next);
  }
  void Hold(const std::string& cursor) {
    absl::MutexLock lock(&mu_);
    held_.insert(cursor);
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    held_.clear();
  }

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    std::string cursor;
    std::string other;
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(request);
      ++in_flight_;
      max_in_flight_ = std::max(max_in_flight_, in_flight_);
    }
    struct Done {
      FakeCursorEndpoint* self;
      ~Done() {
        absl::MutexLock lock(&self->mu_);
        --self->in_flight_;
      }
    } done{this};
    HttpResponse response;
    if (request.url.rfind(base_url_, 0) != 0) {
      response.status_code = 404;
      return response;
    }
    const size_t question = request.url.find('?');
    if (question != std::string::npos) {
      for (absl::string_view pair :
           absl::StrSplit(absl::string_view(request.url).substr(question + 1), '&')) {
        if (absl::StartsWith(pair, "cursor=")) {
          cursor = Decode(pair.substr(7));
        } else {
          absl::StrAppend(&other, pair, "&");
        }
      }
    }
    absl::MutexLock lock(&mu_);
    auto released = [this, &cursor]()
                        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return held_.count(cursor) == 0; };
    mu_.Await(absl::Condition(&released));
    if (auto it = overrides_.find(cursor); it != overrides_.end() && !it->second.empty()) {
      response = std::move(it->second.front());
      it->second.erase(it->second.begin());
      return response;
    }
    size_t start = 0;
    if (!cursor.empty()) {
      int after = 0;
      if (!absl::StartsWith(cursor, "p+") || !absl::EndsWith(cursor, "/==") ||
          !absl::SimpleAtoi(cursor.substr(2, cursor.size() - 5), &after)) {
        response.status_code = 404;
        response.body = R"({"detail":"Invalid cursor"})";
        return response;
      }
      const auto it = std::find(ids_.begin(), ids_.end(), after);
      start = it == ids_.end() ? ids_.size() : static_cast<size_t>(it - ids_.begin()) + 1;
    }
    nlohmann::json results = nlohmann::json::array();
    for (size_t k = start; k < std::min(ids_.size(), start + page_size_); ++k) {
      results.push_back({{"id", ids_[k]}, {"group_key", absl::StrCat("g", ids_[k])}});
    }
    nlohmann::json body = {{"results", results}, {"previous", nullptr}, {"next", nullptr}};
    if (start + page_size_ < ids_.size()) {
      body["next"] = absl::StrCat(base_url_, "?", other,
                                  "cursor=", Encode(CursorAfter(ids_[start + page_size_ - 1])));
    }
    if (auto it = next_overrides_.find(cursor); it != next_overrides_.end()) {
      body["next"] = it->second;
    }
    response.status_code = 200;
    response.body = body.dump();
    return response;
  }

  std::vector<HttpRequest> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  int max_in_flight() const {
    absl::MutexLock lock(&mu_);
    return max_in_flight_;
  }

  static std::string Encode(absl::string_view text) {
    std::string out;
    for (char c : text) {
      if (c == '+')
        out += "%2B";
      else if (c == '/')
        out += "%2F";
      else if (c == '=')
        out += "%3D";
      else
        out.push_back(c);
    }
    return out;
  }

 private:
  static std::string Decode(absl::string_view text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '%' && i + 2 < text.size()) {
        int value = 0;
        (void)absl::SimpleHexAtoi(text.substr(i + 1, 2), &value);
        out.push_back(static_cast<char>(value));
        i += 2;
      } else {
        out.push_back(text[i]);
      }
    }
    return out;
  }

  const std::string base_url_;
  const size_t page_size_;
  mutable absl::Mutex mu_;
  std::deque<int> ids_ ABSL_GUARDED_BY(mu_);
  int newest_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::vector<HttpResponse>> overrides_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> next_overrides_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> held_ ABSL_GUARDED_BY(mu_);
  std::vector<HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int max_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace posthog_gateway::test_support

#endif  // TESTS_FAKES_FAKE_CURSOR_ENDPOINT_H_
