#include "server/service/stream_list.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/common/error_details.h"
#include "server/common/error_reasons.h"

namespace posthog_gateway {

std::string ListScope(absl::string_view kind, const PostHogClient& client,
                      absl::string_view query) {
  // The persons tokens issued before lists were shared had exactly this
  // form ("persons|alias|id|query"); keeping it keeps them valid.
  return absl::StrCat(kind, "|", client.project().alias, "|", client.project().project_id, "|",
                      query);
}

absl::Status CheckListBounds(absl::string_view rpc, int page_size, int64_t limit) {
  std::vector<FieldViolation> violations;
  if (page_size < 0 || page_size > kMaxListPageSize) {
    violations.push_back({"page_size", absl::StrCat("must be between 0 and ", kMaxListPageSize)});
  }
  if (limit < 0) violations.push_back({"limit", "must not be negative"});
  if (violations.empty()) return absl::OkStatus();
  return InvalidArgumentWithViolations(absl::StrCat("invalid ", rpc, " request"), violations);
}

namespace paging_internal {

ListCursor::ListCursor(ListCall call, ListEnv env) : call_(std::move(call)), env_(std::move(env)) {}

absl::Status ListCursor::Open() {
  if (!call_.resume_token.empty()) {
    absl::StatusOr<ResumePosition> position =
        env_.tokens->Decode(call_.resume_token, call_.scope, env_.clock->Now());
    if (!position.ok()) return position.status();
    start_ = *position;
    // The scope already tells lists apart; this catches a token of the
    // other pagination made for the same scope (never, unless a list
    // changes how PostHog paginates it).
    if (start_.cursor.has_value() != (call_.pagination == Pagination::kCursor)) {
      return InvalidArgumentWithViolations(
          "invalid resume_token: made for another list; resume with the same request",
          {{"resume_token", "made for another list"}});
    }
  }
  PageStreamOptions options;
  options.path = call_.path;
  options.query = call_.query;
  options.page_size = call_.page_size == 0 ? 100 : call_.page_size;
  options.start_offset = start_.offset;
  options.look_ahead = call_.look_ahead;
  options.pagination = call_.pagination;
  if (call_.pagination == Pagination::kCursor) {
    options.start_cursor = start_.cursor.value_or("");
    options.start_skip = start_.skip;
    options.start_after_id = start_.after_id;
    if (call_.item_id) {
      options.item_id = [id = call_.item_id](const nlohmann::json& item) {
        return ResumeDigest(id(item));
      };
    }
  }
  if (call_.limit > 0) {
    // The limit counts every item of the list, resumed calls included.
    options.max_items = call_.limit - start_.items_streamed;
    if (options.max_items <= 0) return absl::OkStatus();  // Nothing left: no stream.
  }
  stream_.emplace(call_.client, std::move(options), env_.pacer, env_.clock, env_.context,
                  env_.fetch_pool);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<ListCursor::Entry>> ListCursor::Next() {
  if (!stream_.has_value()) return std::optional<Entry>();
  absl::StatusOr<std::optional<PagedItem>> item = stream_->Next();
  if (!item.ok()) return item.status();
  if (!item->has_value()) return std::optional<Entry>();
  PagedItem& paged = **item;
  Entry entry;
  entry.items_streamed = start_.items_streamed + paged.count;
  entry.page = paged.page;
  entry.offset = paged.offset;
  entry.page_cursor = std::move(paged.page_cursor);
  entry.position = paged.position;
  entry.page_items = paged.page_items;
  entry.next_cursor = std::move(paged.next_cursor);
  entry.item = std::move(paged.item);
  return std::optional<Entry>(std::move(entry));
}

std::string ListCursor::TokenAfter(const Entry& entry) const {
  if (call_.pagination != Pagination::kCursor) {
    return env_.tokens->Encode(call_.scope, {entry.offset + 1, entry.items_streamed},
                               env_.clock->Now());
  }
  ResumePosition position;
  position.items_streamed = entry.items_streamed;
  if (entry.position + 1 >= entry.page_items && !entry.next_cursor.empty()) {
    // The page's last item: resume at the next page itself.
    position.cursor = entry.next_cursor;
  } else {
    position.cursor = entry.page_cursor;
    position.skip = entry.position + 1;
    if (call_.item_id) position.after_id = ResumeDigest(call_.item_id(entry.item));
  }
  return env_.tokens->Encode(call_.scope, position, env_.clock->Now());
}

absl::Status ListCursor::Malformed(int64_t offset, const absl::Status& why) const {
  absl::Status status = absl::UnavailableError(
      call_.pagination == Pagination::kCursor
          ? absl::StrCat("PostHog sent a ", call_.item_name,
                         " the gateway cannot read: ", why.message())
          : absl::StrCat("PostHog sent a ", call_.item_name, " the gateway cannot read at offset ",
                         offset, ": ", why.message()));
  AttachErrorInfo(status, reasons::kUpstreamMalformedResponse);
  return status;
}

}  // namespace paging_internal
}  // namespace posthog_gateway
