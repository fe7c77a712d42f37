#include "server/flags/flag_called.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace posthog_gateway::flags {

bool FlagCalledDeduplicator::FirstTime(absl::string_view distinct_id, absl::string_view flag_key,
                                       absl::string_view value,
                                       const std::map<std::string, std::string>& groups) {
  // Length-prefixed parts: no separator can make two tuples collide.
  std::string key = absl::StrCat(distinct_id.size(), ":", distinct_id, flag_key.size(), ":",
                                 flag_key, value.size(), ":", value);
  for (const auto& [type, group_key] : groups) {  // std::map: sorted.
    absl::StrAppend(&key, type.size(), ":", type, group_key.size(), ":", group_key);
  }
  absl::MutexLock lock(&mu_);
  if (!seen_.insert(key).second) return false;
  order_.push_back(std::move(key));
  while (order_.size() > capacity_) {
    seen_.erase(order_.front());
    order_.pop_front();
  }
  return true;
}

}  // namespace posthog_gateway::flags
