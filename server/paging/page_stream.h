#ifndef SERVER_PAGING_PAGE_STREAM_H_
#define SERVER_PAGING_PAGE_STREAM_H_

// PageStream turns one of PostHog's paginated list endpoints into a stream of
// JSON items, in order: offset-paginated lists (persons, feature flags, ...)
// and cursor-paginated ones (groups: DRF's CursorPagination). It knows
// nothing of the items' type: callers convert each `nlohmann::json` item
// themselves.
//
// How it fetches an offset list:
// - The first page alone; once PostHog says there is more (a `next` URL),
//   the page the reader needs and up to `look_ahead` pages after it,
//   concurrently. Offset pagination makes later pages predictable (offset +
//   k * page_size), so they need not wait for each other; items are still
//   handed out strictly in order.
// - Pages are fetched on a FetchPool (fetch_pool.h) shared by every stream,
//   not on threads of the stream's own: an open stream costs no thread, and
//   the process fetches at most the pool's size of pages at a time. A pool
//   that refuses the task (no thread could be started) ends the stream with
//   RESOURCE_EXHAUSTED.
// - Fetching stays at most `look_ahead` pages ahead of the page being read
//   (the reader holds one page, look_ahead more are fetched or in flight),
//   so memory is bounded by look_ahead + 1 pages whatever the list's size,
//   and a reader that stops reading stops fetching.
// - Next's wait for a page ends with the caller's deadline
//   (DEADLINE_EXCEEDED) or cancellation (CANCELLED, noticed within 50 ms),
//   whatever PostHog does: no reader is ever stranded. Page counts and
//   offsets saturate, so any `max_items` (a caller's `limit` up to 2^63 - 1)
//   is safe.
// - Fetching stops when the list ends, `max_items` are handed out, the
//   caller cancels, the deadline passes, or the stream is destroyed (requests
//   in flight are abandoned).
// - Every request first takes a slot from the project's RequestPacer. On 429
//   it waits as PostHog says (Retry-After, else "Expected available in N
//   seconds") when the deadline allows, and pauses the whole project's pacer;
//   otherwise the stream ends with RESOURCE_EXHAUSTED and RetryInfo.
// - A `next` URL is only trusted when its scheme, host, port and path are the
//   configured app host's and the endpoint's, and its offset is the predicted
//   one; anything else ends the stream (UNAVAILABLE,
//   UPSTREAM_UNTRUSTED_NEXT_URL). Requests are always built from the
//   configured host, so the key never goes anywhere else.
// - A page that is not JSON (malformed or truncated) or lacks `results` ends
//   the stream with UNAVAILABLE, UPSTREAM_MALFORMED_RESPONSE.
// - When pages carry DRF's `count` (the feature flag list does; the persons
//   list does not), no page past the count is fetched ahead: a list of
//   n items costs ceil(n / page_size) requests. A page past it is still
//   fetched when the reader needs it (the list grew while streaming).
//
// How it fetches a cursor list (Pagination::kCursor): PostHog's `next` holds
// an opaque `cursor` that only the page before it reveals, so pages cannot be
// fetched concurrently. One fetcher fetches exactly one page ahead of the page
// being read (none when look_ahead is 0): page k + 1 while page k streams, so
// a reader as fast as PostHog waits pages x page latency in all, and never
// more than one page is held beyond the one being read. `next` must be the
// configured app host's endpoint and carry a non-empty `cursor` of at most
// kMaxUpstreamCursorBytes that differs from the page's own; the gateway
// then builds the request itself from the configured path, the list's
// filters and that cursor (encoded by UpstreamUrl), so neither the rest of
// `next` nor a cursor can change where a request goes. No `limit` or
// `offset` is sent (PostHog's page size is its own). Pacing, 429 waits,
// deadline and cancellation, malformed pages and max_items behave exactly as
// for offset lists; PagedItem::offset is meaningless (0).
// A cursor list resumes at `start_cursor` (the page to fetch first) skipping
// the items up to and including the one whose item_id is `start_after_id`
// when that page holds it, else its first `start_skip` items.
//
// Offset pagination is not a snapshot: persons created or deleted while a
// list streams may shift it (PostHog behaves the same for any client).
//
// Next must be called from one thread. Borrows the client, pacer, clock and
// pool, which must outlive it; the pool's tasks never touch them once the
// stream is destroyed.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/common/clock.h"
#include "server/paging/fetch_pool.h"
#include "server/paging/request_pacer.h"
#include "server/posthog/call_context.h"
#include "server/posthog/posthog_client.h"

namespace posthog_gateway {

// A cursor longer than this in a `next` URL is refused (it would travel in
// resume tokens); PostHog's are a few dozen bytes.
inline constexpr size_t kMaxUpstreamCursorBytes = 2048;

enum class Pagination {
  kOffset,  // `limit` and `offset`; later pages predictable.
  kCursor,  // DRF's CursorPagination: an opaque `cursor` in `next`.
};

struct PageStreamOptions {
  Pagination pagination = Pagination::kOffset;
  // The endpoint's path on the app host, e.g. "/api/projects/7/persons/".
  std::string path;
  // URL-encoded filters, without limit and offset: "email=a%40b.c&cohort=3".
  std::string query;
  // Items per PostHog page (`limit`).
  int page_size = 100;
  // The PostHog offset of the first item to hand out.
  int64_t start_offset = 0;
  // Hand out at most this many items; 0 means all.
  int64_t max_items = 0;
  // Pages fetched beyond the one being read, at most; at least 0.
  int look_ahead = 3;
  // How many 429s in a row one page may wait out.
  int max_rate_limit_waits = 5;

  // Cursor lists only (see above): where a resumed list continues.
  std::string start_cursor;
  int64_t start_skip = 0;
  std::string start_after_id;
  // An item's identity for start_after_id (e.g. a digest of its key); unset:
  // start_skip alone places a resumed list.
  std::function<std::string(const nlohmann::json&)> item_id;
};

// One item of the list and where it stands.
struct PagedItem {
  nlohmann::json item;
  // Its PostHog offset; the next item's is offset + 1.
  int64_t offset = 0;
  // The page of this stream it came from, counting from 1.
  int page = 0;
  // Items handed out by this stream, this one included.
  int64_t count = 0;
  // Cursor lists: the cursor that fetched the item's page ("" for the
  // list's first page), the item's index in that page as PostHog sent it,
  // the page's size as sent, and the cursor of the page after it ("" when
  // it is the last).
  std::string page_cursor;
  int64_t position = 0;
  int64_t page_items = 0;
  std::string next_cursor;
};

class PageStream final {
 public:
  // Starts fetching at once, on `pool` (FetchPool::Default() when null).
  // Uses the personal API key on the app host.
  PageStream(const PostHogClient* client, PageStreamOptions options, RequestPacer* pacer,
             Clock* clock, CallContext context, FetchPool* pool = nullptr);
  // Stops fetching: queued fetches are dropped, and the destructor waits for
  // those already running (they notice at once, see CallContext).
  ~PageStream();

  PageStream(const PageStream&) = delete;
  PageStream& operator=(const PageStream&) = delete;

  // Next returns the next item, nullopt at the end, or the error that ended
  // the list (after every item before it was handed out).
  absl::StatusOr<std::optional<PagedItem>> Next();

  // ItemReady is whether Next would return an item of the page already
  // read, without waiting for another page. Callers batch items with it:
  // one message per page, never a wait with items held back.
  bool ItemReady() const;

  // Requests sent to PostHog so far (tests and metrics).
  int64_t requests_sent() const;

 private:
  struct Page {
    absl::Status status;
    std::vector<nlohmann::json> items;
    bool has_next = false;
    // PostHog's `count` of the whole list, when the page had one.
    std::optional<int64_t> total;
    // Cursor lists: the cursor that fetched the page, the one in its `next`,
    // the items PostHog sent and how many were skipped at the front (a
    // resumed first page).
    std::string cursor;
    std::string next_cursor;
    int64_t sent_items = 0;
    int64_t skipped = 0;
  };
  // What the pool's tasks share with the stream; outlives the stream while
  // a task for it is queued.
  class Fetcher;

  bool cursor_mode() const { return options_.pagination == Pagination::kCursor; }

  std::shared_ptr<Fetcher> fetcher_;
  const PageStreamOptions options_;
  const CallContext context_;

  // Reader state (Next's thread only).
  Page current_;
  int current_index_ = -1;
  size_t position_ = 0;
  int64_t handed_out_ = 0;
  bool done_ = false;
};

// ParseUrlOrigin splits an absolute URL into its normalized origin
// ("scheme://host:port", lower-case, default port made explicit) and the rest
// (path and query). nullopt when it is not an http(s) URL.
std::optional<std::pair<std::string, std::string>> SplitUrlOrigin(absl::string_view url);

}  // namespace posthog_gateway

#endif  // SERVER_PAGING_PAGE_STREAM_H_
