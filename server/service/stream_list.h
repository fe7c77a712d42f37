#ifndef SERVER_SERVICE_STREAM_LIST_H_
#define SERVER_SERVICE_STREAM_LIST_H_

// StreamList serves one server-streaming List RPC (ListPersons, ListFlags,
// ListGroups, ...) over one of PostHog's offset- or cursor-paginated list
// endpoints: every list RPC of the gateway behaves the same because they all
// go through it. A cursor list's token carries PostHog's cursor of the page
// to fetch, inside the MAC and bound to the scope like every token.
//
// What it does, in order:
// - Decodes the request's resume token for the list's scope (the kind of
//   list, the project and its filters: see ListScope), so that a token only
//   resumes the list it came from; a forged, expired or foreign token is
//   INVALID_ARGUMENT and nothing is fetched.
// - Counts `limit` over the whole list, resumed calls included: a call
//   resumed at or past the limit ends at once with OK.
// - Streams the list through a PageStream (look-ahead, pacing, 429 waits,
//   trusted `next` URLs only; see page_stream.h) and converts each item with
//   the caller's converter.
// - Batches: a message carries the items of one PostHog page that are
//   already fetched (at most kMaxListMessageBytes of them, and never fewer
//   than one), so the per-message cost of gRPC, on the gateway and above
//   all in the caller's runtime, is paid once per page rather than once per
//   item. A message is sent as soon as its page is exhausted: no item waits
//   for a later page.
// - Attaches to every message a resume token (right after its last item)
//   and the progress (the PostHog page of its last item, items streamed).
// - A PostHog item the converter refuses ends the stream with UNAVAILABLE,
//   UPSTREAM_MALFORMED_RESPONSE, after every item before it was written.
// - A failed Write (the caller went away) is CANCELLED and stops fetching.
//
// Blocking; call it from the RPC's handler thread. Borrows everything it is
// given for the duration of the call.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/sync_stream.h"
#include "nlohmann/json.hpp"
#include "server/common/clock.h"
#include "server/grpc/status_conversion.h"
#include "server/paging/fetch_pool.h"
#include "server/paging/page_stream.h"
#include "server/paging/request_pacer.h"
#include "server/paging/resume_token.h"
#include "server/posthog/call_context.h"
#include "server/posthog/posthog_client.h"

namespace posthog_gateway {

// ListScope names one list for its resume tokens: `kind` ("persons",
// "flags", ...), the client's project (alias and id) and the list's encoded
// filters. Lists of different kinds, projects or filters never share a scope.
std::string ListScope(absl::string_view kind, const PostHogClient& client, absl::string_view query);

// A message stops taking items once they serialize to this many bytes:
// far below gRPC's default 4 MiB receive limit of every caller.
inline constexpr size_t kMaxListMessageBytes = 1 << 20;

// The largest page_size a list accepts (PostHog documents no cap for its
// lists; this bounds the gateway's memory: look_ahead + 1 pages per call).
inline constexpr int kMaxListPageSize = 1000;

// CheckListBounds validates a list request's page_size (0 to
// kMaxListPageSize) and limit (not negative): INVALID_ARGUMENT with a
// BadRequest naming each bad field, `rpc` in the message.
absl::Status CheckListBounds(absl::string_view rpc, int page_size, int64_t limit);

// One list call: what to fetch and how far it already got.
struct ListCall {
  const PostHogClient* client = nullptr;
  // The endpoint's path and its URL-encoded filters (see PageStreamOptions).
  std::string path;
  std::string query;
  // ListScope of the list; resume tokens are bound to it.
  std::string scope;
  // Items per PostHog page; PostHog's default (100) when 0.
  int page_size = 0;
  // Items of the whole list to stream at most (resumed calls included); 0
  // means all.
  int64_t limit = 0;
  // The caller's resume token; empty starts at the beginning.
  std::string resume_token;
  // Pages fetched ahead of the one being streamed.
  int look_ahead = 3;
  // What the item is called in error messages ("person", "flag").
  std::string item_name = "item";
  // How PostHog paginates the list. A cursor list ignores page_size
  // (PostHog's own) and fetches one page ahead at most.
  Pagination pagination = Pagination::kOffset;
  // Cursor lists: an item's identity (e.g. its key), kept in tokens as a
  // digest to place a resumed position exactly.
  std::function<std::string(const nlohmann::json&)> item_id;
};

// What a list call borrows. The pacer is the project's for this endpoint.
struct ListEnv {
  RequestPacer* pacer = nullptr;
  const ResumeTokenCodec* tokens = nullptr;
  Clock* clock = nullptr;
  CallContext context;
  // Where pages are fetched; FetchPool::Default() when null.
  FetchPool* fetch_pool = nullptr;
};

namespace paging_internal {

// ListCursor is the non-template part of StreamList: token decoding, limit
// accounting, the PageStream and the per-message token and progress.
class ListCursor final {
 public:
  // One item and where it stands in the list.
  struct Entry {
    nlohmann::json item;
    int page = 0;
    int64_t items_streamed = 0;
    int64_t offset = 0;
    // Cursor lists: see PagedItem.
    std::string page_cursor;
    int64_t position = 0;
    int64_t page_items = 0;
    std::string next_cursor;
  };

  ListCursor(ListCall call, ListEnv env);

  ListCursor(const ListCursor&) = delete;
  ListCursor& operator=(const ListCursor&) = delete;

  // Open checks the resume token and starts fetching (unless the limit is
  // already reached). INVALID_ARGUMENT for a bad token.
  absl::Status Open();

  // Next returns the next entry, nullopt at the end, or the list's error.
  absl::StatusOr<std::optional<Entry>> Next();

  // ItemReady is whether Next would answer from the page already fetched.
  bool ItemReady() const { return stream_.has_value() && stream_->ItemReady(); }

  // TokenAfter is the resume token continuing right after `entry`.
  std::string TokenAfter(const Entry& entry) const;

  // Malformed is the status ending the list when the converter refused the
  // item at `offset` with `why`.
  absl::Status Malformed(int64_t offset, const absl::Status& why) const;

 private:
  const ListCall call_;
  ListEnv env_;
  ResumePosition start_;
  std::optional<PageStream> stream_;
};

}  // namespace paging_internal

// StreamList streams the list `call` names to `writer`. `convert` turns one
// PostHog item into the RPC's resource (any error means PostHog sent an item
// the gateway cannot read); `add` appends an empty resource to the response
// message's repeated field and returns it. StreamList fills the message's
// `resume_token` (string) and `progress` (posthog.v1.StreamProgress).
template <typename Response, typename Item>
grpc::Status StreamList(ListCall call, ListEnv env,
                        absl::FunctionRef<absl::StatusOr<Item>(const nlohmann::json&)> convert,
                        absl::FunctionRef<Item*(Response&)> add,
                        grpc::ServerWriterInterface<Response>* writer) {
  using Entry = paging_internal::ListCursor::Entry;
  paging_internal::ListCursor cursor(std::move(call), std::move(env));
  if (absl::Status opened = cursor.Open(); !opened.ok()) return ToGrpcStatus(opened);
  Response response;
  while (true) {
    // Wait for the next item, then take what its page already holds.
    absl::StatusOr<std::optional<Entry>> next = cursor.Next();
    if (!next.ok()) return ToGrpcStatus(next.status());
    if (!next->has_value()) return grpc::Status::OK;
    response.Clear();
    Entry entry = **std::move(next);
    Entry last;
    size_t bytes = 0;
    // Why the list ends after this message, if it does.
    absl::Status ended;
    while (true) {
      absl::StatusOr<Item> item = convert(entry.item);
      if (!item.ok()) {
        ended = cursor.Malformed(entry.offset, item.status());
        break;
      }
      bytes += item->ByteSizeLong();
      *add(response) = *std::move(item);
      last = std::move(entry);
      if (bytes >= kMaxListMessageBytes || !cursor.ItemReady()) break;
      next = cursor.Next();  // From memory: it neither waits nor fails.
      if (!next.ok()) {
        ended = next.status();
        break;
      }
      if (!next->has_value()) break;
      entry = **std::move(next);
    }
    if (last.items_streamed > 0) {
      response.set_resume_token(cursor.TokenAfter(last));
      response.mutable_progress()->set_page(last.page);
      response.mutable_progress()->set_items_streamed(last.items_streamed);
      // Write blocks while the reader is slow (flow control), which holds
      // the engine's look-ahead; it fails once the caller has gone.
      if (!writer->Write(response)) {
        return grpc::Status(grpc::StatusCode::CANCELLED, "the caller went away");
      }
    }
    if (!ended.ok()) return ToGrpcStatus(ended);
  }
}

}  // namespace posthog_gateway

#endif  // SERVER_SERVICE_STREAM_LIST_H_
