#include "server/paging/stream_list.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/common/error_details.h"

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
  }
  PageStreamOptions options;
  options.path = call_.path;
  options.query = call_.query;
  options.page_size = call_.page_size == 0 ? 100 : call_.page_size;
  options.start_offset = start_.offset;
  options.look_ahead = call_.look_ahead;
  if (call_.limit > 0) {
    // The limit counts every item of the list, resumed calls included.
    options.max_items = call_.limit - start_.items_streamed;
    if (options.max_items <= 0) return absl::OkStatus();  // Nothing left: no stream.
  }
  stream_.emplace(call_.client, std::move(options), env_.pacer, env_.clock, env_.context);
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
  entry.item = std::move(paged.item);
  return std::optional<Entry>(std::move(entry));
}

std::string ListCursor::TokenAfter(const Entry& entry) const {
  return env_.tokens->Encode(call_.scope, {entry.offset + 1, entry.items_streamed},
                             env_.clock->Now());
}

absl::Status ListCursor::Malformed(int64_t offset, const absl::Status& why) const {
  absl::Status status = absl::UnavailableError(absl::StrCat("PostHog sent a ", call_.item_name,
                                                            " the gateway cannot read at offset ",
                                                            offset, ": ", why.message()));
  AttachErrorInfo(status, "UPSTREAM_MALFORMED_RESPONSE");
  return status;
}

}  // namespace paging_internal
}  // namespace posthog_gateway
