#include "server/paging/page_stream.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "server/common/error_details.h"
#include "server/common/error_reasons.h"
#include "server/posthog/error_mapping.h"
#include "server/posthog/upstream_url.h"

namespace posthog_gateway {
namespace {

// How often a reader waiting for a page checks whether its caller went away
// (a cancelled call has no way to wake the wait itself).
constexpr absl::Duration kCancelPollInterval = absl::Milliseconds(50);

// CeilPages is how many pages of `page_size` hold `items`, saturated at
// INT_MAX: `items` may be a caller's `limit` near 2^63, where
// items + page_size - 1 would overflow.
int64_t CeilPages(int64_t items, int page_size) {
  if (items <= 0) return 0;
  const int64_t size = std::max(1, page_size);
  const int64_t pages = items / size + (items % size != 0 ? 1 : 0);
  return std::min<int64_t>(pages, std::numeric_limits<int>::max());
}

int64_t PagesNeeded(const PageStreamOptions& options) {
  if (options.max_items <= 0) return std::numeric_limits<int>::max();
  return CeilPages(options.max_items, options.page_size);
}

// SaturatingAdd is a + b for b >= 0, at most INT64_MAX.
int64_t SaturatingAdd(int64_t a, int64_t b) {
  if (a > std::numeric_limits<int64_t>::max() - b) return std::numeric_limits<int64_t>::max();
  return a + b;
}

// SaturatingOffset is the offset of page `index`: start + index * page_size
// (the product stays below 2^41), at most INT64_MAX.
int64_t SaturatingOffset(int64_t start, int index, int page_size) {
  return SaturatingAdd(start, static_cast<int64_t>(index) * std::max(0, page_size));
}

// QueryValue returns the value of `name` in the query part of `path_and_query`.
std::optional<std::string> QueryValue(absl::string_view path_and_query, absl::string_view name) {
  const size_t question = path_and_query.find('?');
  if (question == absl::string_view::npos) return std::nullopt;
  for (absl::string_view pair :
       absl::StrSplit(path_and_query.substr(question + 1), '&', absl::SkipEmpty())) {
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return std::string(eq == absl::string_view::npos ? "" : pair.substr(eq + 1));
    }
  }
  return std::nullopt;
}

// PercentDecode decodes %XX escapes and '+' (a space in a query, as Django
// encodes it); nullopt for a bad escape.
std::optional<std::string> PercentDecode(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] != '%') {
      out.push_back(text[i]);
    } else {
      if (i + 2 >= text.size()) return std::nullopt;
      int value = 0;
      for (int k = 1; k <= 2; ++k) {
        const char c = text[i + k];
        value <<= 4;
        if (c >= '0' && c <= '9') {
          value |= c - '0';
        } else if (c >= 'a' && c <= 'f') {
          value |= c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
          value |= c - 'A' + 10;
        } else {
          return std::nullopt;
        }
      }
      out.push_back(static_cast<char>(value));
      i += 2;
    }
  }
  return out;
}

absl::Status Untrusted(absl::string_view where) {
  absl::Status status = absl::UnavailableError(
      absl::StrCat("PostHog answered ", where,
                   " with a `next` URL that is not the next page of the "
                   "configured app host's endpoint; the gateway does not follow it"));
  AttachErrorInfo(status, reasons::kUpstreamUntrustedNextUrl);
  return status;
}

absl::Status Malformed(absl::string_view message) {
  absl::Status status = absl::UnavailableError(message);
  AttachErrorInfo(status, reasons::kUpstreamMalformedResponse);
  return status;
}

}  // namespace

std::optional<std::pair<std::string, std::string>> SplitUrlOrigin(absl::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == absl::string_view::npos) return std::nullopt;
  const std::string scheme = absl::AsciiStrToLower(url.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") return std::nullopt;
  absl::string_view rest = url.substr(scheme_end + 3);
  const size_t authority_end = rest.find_first_of("/?#");
  absl::string_view authority = rest.substr(0, authority_end);
  const absl::string_view path =
      authority_end == absl::string_view::npos ? "" : rest.substr(authority_end);
  if (authority.empty() || absl::StrContains(authority, '@')) return std::nullopt;
  std::string host;
  std::string port = scheme == "https" ? "443" : "80";
  if (authority.front() == '[') {  // IPv6 literal.
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) return std::nullopt;
    host = std::string(authority.substr(0, close + 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return std::nullopt;
      port = std::string(authority.substr(close + 2));
    }
  } else {
    const size_t colon = authority.rfind(':');
    host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) port = std::string(authority.substr(colon + 1));
  }
  int port_number = 0;
  if (!absl::SimpleAtoi(port, &port_number) || port_number <= 0 || port_number > 65535) {
    return std::nullopt;
  }
  return std::make_pair(absl::StrCat(scheme, "://", absl::AsciiStrToLower(host), ":", port_number),
                        std::string(path));
}

// Fetcher holds everything the pool's tasks use. The stream owns it; each
// queued task holds a reference too, so that a task the pool runs after the
// stream is gone finds `stopping_` set and leaves at once, without touching
// the borrowed client, pacer or clock.
class PageStream::Fetcher final : public std::enable_shared_from_this<Fetcher> {
 public:
  Fetcher(const PostHogClient* client, const PageStreamOptions& options, RequestPacer* pacer,
          Clock* clock, const CallContext& context, FetchPool* pool)
      : client_(client),
        options_(options),
        pacer_(pacer),
        clock_(clock),
        context_(context),
        pool_(pool),
        // A cursor list's pages are PostHog's size: it stops at max_items
        // fetched instead.
        pages_needed_(options_.pagination == Pagination::kCursor ? std::numeric_limits<int>::max()
                                                                 : PagesNeeded(options_)),
        last_page_(std::numeric_limits<int>::max()),
        counted_pages_(std::numeric_limits<int64_t>::max()),
        next_cursor_(options_.start_cursor) {}

  // Start queues the first page.
  void Start() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    Schedule();
  }

  // Stop drops what is queued and waits for the fetches running.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_) {
    stopping_flag_ = true;  // Fetches in flight give up at once.
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; };
    mu_.Await(absl::Condition(&idle));
  }

  // Take waits for page `wanted` and returns it; nullopt when no page will
  // ever be there (the list ended before it); CANCELLED or
  // DEADLINE_EXCEEDED when the caller goes away or its deadline passes
  // first.
  absl::StatusOr<std::optional<Page>> Take(int wanted) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    reading_ = wanted;
    Schedule();  // The window moved with the reader.
    // No fetch will ever bring a page past the last one needed: that is
    // the end of the list, never a wait.
    auto unreachable = [this, wanted]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return wanted > last_page_ || wanted >= pages_needed_;
    };
    auto ready = [this, wanted, &unreachable]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return fetched_.count(wanted) > 0 || unreachable();
    };
    // Every wait ends with the caller's deadline or cancellation.
    while (!mu_.AwaitWithTimeout(absl::Condition(&ready), kCancelPollInterval)) {
      if (context_.is_cancelled && context_.is_cancelled()) {
        return absl::CancelledError("the caller went away while its next page was fetched");
      }
      if (absl::Now() >= context_.deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("the deadline passed while page ", wanted + 1, " was fetched"));
      }
    }
    auto page = fetched_.find(wanted);
    if (page == fetched_.end()) return std::optional<Page>();
    std::optional<Page> taken(std::move(page->second));
    fetched_.erase(page);
    return taken;
  }

  int64_t requests_sent() const { return requests_sent_.load(); }

 private:
  bool cursor_mode() const { return options_.pagination == Pagination::kCursor; }

  // Schedule queues every page the reader's position allows and no task
  // has claimed yet.
  void Schedule() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!stopping_ && CanClaim()) {
      const int index = next_claim_++;
      ++in_flight_;
      if (!pool_->Submit([self = shared_from_this(), index, cursor = next_cursor_]() {
            self->Run(index, cursor);
          })) {
        --in_flight_;
        Page refused;
        refused.status = absl::ResourceExhaustedError(
            "the gateway has no thread to fetch list pages (paging.fetch_threads could not "
            "start); retry later");
        last_page_ = std::min(last_page_, index);
        fetched_[index] = std::move(refused);
        return;
      }
    }
  }

  bool CanClaim() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // Nothing more is needed: the list ended or failed, or max_items are
    // fetched (cursor lists).
    if (next_claim_ > last_page_ || next_claim_ >= pages_needed_) return false;
    if (cursor_mode()) {
      if (options_.max_items > 0 && items_fetched_ >= options_.max_items) return false;
      // A cursor page needs the one before it (its `next`): one at a time,
      // exactly one page ahead of the one being read (none with a
      // look-ahead of 0).
      if (in_flight_ > 0) return false;
      const int ahead = std::min(1, std::max(0, options_.look_ahead));
      return next_claim_ == 0 || next_claim_ <= reading_ + ahead;
    }
    if (next_claim_ == 0) return true;
    // Until the first page says there is more, nothing else is fetched, so
    // a short list costs one request.
    if (!more_than_one_page_) return false;
    // Past PostHog's count, only the page the reader waits for.
    if (next_claim_ >= counted_pages_ && next_claim_ > reading_) return false;
    // The page being read (or waited for) and look_ahead pages after it.
    return next_claim_ <= std::max(reading_, 0) + options_.look_ahead;
  }

  // Run is one pool task: fetch page `index` unless the stream stopped.
  void Run(int index, const std::string& cursor) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      ++running_;
    }
    Page page = Fetch(index, cursor);
    absl::MutexLock lock(&mu_);
    --running_;
    --in_flight_;
    if (index == 0) more_than_one_page_ = page.status.ok() && page.has_next;
    if (cursor_mode() && page.status.ok()) {
      next_cursor_ = page.next_cursor;
      items_fetched_ = SaturatingAdd(items_fetched_, static_cast<int64_t>(page.items.size()));
    }
    if (page.status.ok() && page.total.has_value()) {
      // The latest count wins: the list may grow or shrink while streaming.
      const int64_t remaining =
          *page.total <= options_.start_offset ? 0 : *page.total - options_.start_offset;
      counted_pages_ = std::max<int64_t>(1, CeilPages(remaining, options_.page_size));
    }
    // Nothing after a failed or final page is needed.
    if (!page.status.ok() || !page.has_next) last_page_ = std::min(last_page_, index);
    fetched_[index] = std::move(page);
    Schedule();
  }

  bool Cancelled() const {
    return stopping_flag_.load() || (context_.is_cancelled && context_.is_cancelled());
  }

  Page Fetch(int index, const std::string& cursor);
  Page Parse(int index, int64_t offset, const PostHogRequest& request,
             const std::string& body) const;
  // NextCursor checks a cursor page's `next` URL (the configured app host's
  // endpoint, with a `cursor`) and returns its decoded cursor.
  absl::StatusOr<std::string> NextCursor(const std::string& where, const std::string& url) const;
  // SkipResumed drops the items of a resumed cursor list's first page that
  // the earlier call already streamed.
  void SkipResumed(Page& page) const;

  const PostHogClient* const client_;
  const PageStreamOptions options_;
  RequestPacer* const pacer_;
  Clock* const clock_;
  const CallContext context_;
  FetchPool* const pool_;
  // Pages that can hold an item within max_items.
  const int64_t pages_needed_;

  std::atomic<int64_t> requests_sent_{0};
  // stopping_, readable without the lock by a fetch in flight.
  std::atomic<bool> stopping_flag_{false};

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Fetches running now (queued ones are not counted: they never start
  // once stopping_ is set).
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  // Fetches queued or running.
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // The page the reader is on or waits for (-1 before the first).
  int reading_ ABSL_GUARDED_BY(mu_) = -1;
  // The next page index to queue.
  int next_claim_ ABSL_GUARDED_BY(mu_) = 0;
  // No page after this one is needed (the list ended or failed there).
  int last_page_ ABSL_GUARDED_BY(mu_);
  // Whether the first page said there is more.
  bool more_than_one_page_ ABSL_GUARDED_BY(mu_) = false;
  // Pages holding items according to the latest `count` (unbounded without
  // one): pages from here on are fetched only once the reader waits for them.
  int64_t counted_pages_ ABSL_GUARDED_BY(mu_);
  std::map<int, Page> fetched_ ABSL_GUARDED_BY(mu_);
  // Cursor lists: the cursor of the next page to claim, and the items
  // fetched so far (no page is fetched once max_items are).
  std::string next_cursor_ ABSL_GUARDED_BY(mu_);
  int64_t items_fetched_ ABSL_GUARDED_BY(mu_) = 0;
};

PageStream::PageStream(const PostHogClient* client, PageStreamOptions options, RequestPacer* pacer,
                       Clock* clock, CallContext context, FetchPool* pool)
    : options_(std::move(options)), context_(std::move(context)) {
  fetcher_ = std::make_shared<Fetcher>(client, options_, pacer, clock, context_,
                                       pool != nullptr ? pool : FetchPool::Default());
  fetcher_->Start();
}

PageStream::~PageStream() { fetcher_->Stop(); }

int64_t PageStream::requests_sent() const { return fetcher_->requests_sent(); }

PageStream::Page PageStream::Fetcher::Fetch(int index, const std::string& cursor) {
  const int64_t offset =
      cursor_mode() ? 0 : SaturatingOffset(options_.start_offset, index, options_.page_size);
  PostHogRequest request;
  Page page;
  // The path and filters were built by UpstreamUrl; parsing checks they
  // still are canonical before the page's limit and offset are added.
  absl::StatusOr<UpstreamUrl> url = ParseUpstreamTarget(
      options_.query.empty() ? options_.path : absl::StrCat(options_.path, "?", options_.query));
  if (url.ok()) {
    if (!cursor_mode()) {
      url->Query("limit", options_.page_size).Query("offset", offset);
    } else if (!cursor.empty()) {
      url->Query("cursor", cursor);
    }
  }
  absl::StatusOr<std::string> target =
      url.ok() ? url->Build() : absl::StatusOr<std::string>(url.status());
  if (!target.ok()) {
    page.status = absl::InternalError(
        absl::StrCat("the list's upstream target is invalid: ", target.status().message()));
    return page;
  }
  request.path = *std::move(target);
  request.headers = {{"Accept", "application/json"}};
  request.bearer = KeyKind::kPersonalApiKey;
  request.host = PostHogHost::kApp;
  CallContext context = context_;
  context.is_cancelled = [this] { return Cancelled(); };

  for (int waits = 0;; ++waits) {
    if (Cancelled()) {
      page.status = absl::CancelledError("the caller went away");
      return page;
    }
    page.status = pacer_->Acquire(context_.deadline, context.is_cancelled);
    if (!page.status.ok()) return page;
    ++requests_sent_;
    absl::StatusOr<HttpResponse> response = client_->Send(request, context);
    if (!response.ok()) {
      page.status = absl::Status(
          response.status().code(),
          absl::StrCat(cursor_mode() ? absl::StrCat("page ", index + 1)
                                     : absl::StrCat("page at offset ", offset),
                       " of ", client_->Describe(request), ": ", response.status().message()));
      return page;
    }
    const absl::Time now = clock_->Now();
    page.status = StatusFromHttpResponse(*response, client_->Describe(request), now);
    if (response->status_code == 429) {
      const absl::Duration wait = RetryDelay(page.status).value_or(absl::Seconds(1));
      // Wait only when the retried request can still finish in time.
      if (waits < options_.max_rate_limit_waits && now + wait < context_.deadline) {
        pacer_->PauseUntil(now + wait);
        continue;
      }
      return page;
    }
    if (!page.status.ok()) return page;
    page = Parse(index, offset, request, response->body);
    if (cursor_mode()) {
      page.cursor = cursor;
      if (page.status.ok() && page.has_next && page.next_cursor == cursor) {
        // The same page again: following it would never end.
        page.status =
            Untrusted(absl::StrCat("page ", index + 1, " of ", client_->Describe(request)));
        page.items.clear();
        page.has_next = false;
      }
      if (page.status.ok() && index == 0) SkipResumed(page);
    }
    return page;
  }
}

void PageStream::Fetcher::SkipResumed(Page& page) const {
  if (options_.start_skip <= 0 && options_.start_after_id.empty()) return;
  size_t skip = static_cast<size_t>(std::min<int64_t>(std::max<int64_t>(0, options_.start_skip),
                                                      static_cast<int64_t>(page.items.size())));
  // The anchor wins: items created since the token was made may have
  // shifted the first page (later pages are stable: their cursor is a
  // position in the list, not an offset).
  if (!options_.start_after_id.empty() && options_.item_id) {
    for (size_t i = 0; i < page.items.size(); ++i) {
      if (options_.item_id(page.items[i]) == options_.start_after_id) {
        skip = i + 1;
        break;
      }
    }
  }
  page.skipped = static_cast<int64_t>(skip);
  page.items.erase(page.items.begin(), page.items.begin() + static_cast<std::ptrdiff_t>(skip));
}

absl::StatusOr<std::string> PageStream::Fetcher::NextCursor(const std::string& where,
                                                            const std::string& url) const {
  const auto actual = SplitUrlOrigin(url);
  const auto expected = SplitUrlOrigin(client_->project().app_host);
  const std::string expected_path =
      expected.has_value() ? absl::StrCat(expected->second, options_.path) : "";
  const bool same_place =
      expected.has_value() && actual.has_value() && actual->first == expected->first &&
      absl::StartsWith(actual->second, expected_path) &&
      actual->second.size() > expected_path.size() && actual->second[expected_path.size()] == '?';
  if (!same_place) return Untrusted(where);
  const auto raw = QueryValue(actual->second, "cursor");
  const std::optional<std::string> decoded = raw.has_value() ? PercentDecode(*raw) : std::nullopt;
  if (!decoded.has_value() || decoded->empty() || decoded->size() > kMaxUpstreamCursorBytes) {
    return Untrusted(where);
  }
  return *decoded;
}

PageStream::Page PageStream::Fetcher::Parse(int index, int64_t offset,
                                            const PostHogRequest& request,
                                            const std::string& body) const {
  Page page;
  const std::string where =
      cursor_mode() ? absl::StrCat("page ", index + 1, " of ", client_->Describe(request))
                    : absl::StrCat("page ", index + 1, " (offset ", offset, ") of ",
                                   client_->Describe(request));
  nlohmann::json json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_discarded()) {
    page.status = Malformed(absl::StrCat("PostHog answered ", where, " with ", body.size(),
                                         " bytes that are not complete JSON (malformed or "
                                         "truncated); resume from the last token"));
    return page;
  }
  if (!json.is_object() || !json.contains("results") || !json["results"].is_array()) {
    page.status = Malformed(absl::StrCat("PostHog answered ", where, " without a `results` list"));
    return page;
  }
  const nlohmann::json next = json.value("next", nlohmann::json());
  if (!next.is_null()) {
    if (!next.is_string()) {
      page.status =
          Malformed(absl::StrCat("PostHog answered ", where, " with a `next` that is not a URL"));
      return page;
    }
    const std::string url = next.get<std::string>();
    if (cursor_mode()) {
      absl::StatusOr<std::string> next_cursor = NextCursor(where, url);
      if (!next_cursor.ok()) {
        page.status = next_cursor.status();
        return page;
      }
      page.next_cursor = *std::move(next_cursor);
    }
    const auto expected = SplitUrlOrigin(client_->project().app_host);
    const auto actual = SplitUrlOrigin(url);
    // The app host may carry a path prefix (a self-hosted PostHog under /x).
    const std::string expected_path =
        expected.has_value() ? absl::StrCat(expected->second, options_.path) : "";
    const bool same_place = expected.has_value() && actual.has_value() &&
                            actual->first == expected->first &&
                            absl::StartsWith(actual->second, expected_path) &&
                            (actual->second.size() == expected_path.size() ||
                             actual->second[expected_path.size()] == '?');
    const auto next_offset =
        actual.has_value() ? QueryValue(actual->second, "offset") : std::nullopt;
    int64_t next_offset_value = -1;
    if (!cursor_mode() && (!same_place || !next_offset.has_value() ||
                           !absl::SimpleAtoi(*next_offset, &next_offset_value) ||
                           next_offset_value != SaturatingAdd(offset, options_.page_size))) {
      page.status = Untrusted(where);
      return page;
    }
    page.has_next = true;
  }
  if (const auto count = json.find("count");
      count != json.end() && count->is_number_integer() && count->get<int64_t>() >= 0) {
    page.total = count->get<int64_t>();
  }
  page.sent_items = static_cast<int64_t>(json["results"].size());
  page.items.reserve(json["results"].size());
  for (nlohmann::json& item : json["results"]) page.items.push_back(std::move(item));
  return page;
}

absl::StatusOr<std::optional<PagedItem>> PageStream::Next() {
  while (true) {
    if (done_) return std::optional<PagedItem>();
    if (options_.max_items > 0 && handed_out_ >= options_.max_items) {
      done_ = true;
      continue;
    }
    if (current_index_ >= 0 && position_ < current_.items.size()) {
      PagedItem item;
      if (cursor_mode()) {
        item.page_cursor = current_.cursor;
        item.position = current_.skipped + static_cast<int64_t>(position_);
        item.page_items = current_.sent_items;
        item.next_cursor = current_.next_cursor;
      } else {
        item.offset = SaturatingAdd(
            SaturatingOffset(options_.start_offset, current_index_, options_.page_size),
            static_cast<int64_t>(position_));
      }
      item.item = std::move(current_.items[position_++]);
      item.page = current_index_ + 1;
      item.count = ++handed_out_;
      return std::optional<PagedItem>(std::move(item));
    }
    if (current_index_ >= 0 && !current_.has_next) {
      done_ = true;
      continue;
    }
    const int wanted = current_index_ + 1;
    absl::StatusOr<std::optional<Page>> taken = fetcher_->Take(wanted);
    if (!taken.ok()) {
      done_ = true;
      return taken.status();
    }
    if (!taken->has_value()) {
      done_ = true;
      return std::optional<PagedItem>();
    }
    current_ = **std::move(taken);
    current_index_ = wanted;
    position_ = 0;
    if (!current_.status.ok()) {
      done_ = true;
      return current_.status;
    }
  }
}

bool PageStream::ItemReady() const {
  return !done_ && (options_.max_items == 0 || handed_out_ < options_.max_items) &&
         current_index_ >= 0 && position_ < current_.items.size();
}

}  // namespace posthog_gateway
