#include "server/flags/flag_called.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "server/posthog/json_struct.h"

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

nlohmann::json FlagCalledResponse(const FlagCalledResult& result) {
  return !result.variant.empty() ? nlohmann::json(result.variant) : nlohmann::json(result.enabled);
}

bool FlagCalledDue(const FlagCalledCall& call, const FlagCalledResult& result,
                   FlagCalledDeduplicator& seen) {
  if (result.error_code == posthog::v1::FLAG_ERROR_CODE_FLAG_NOT_FOUND) return false;
  return seen.FirstTime(call.distinct_id, result.key, FlagCalledResponse(result).dump(),
                        call.groups);
}

posthog::v1::Event FlagCalledEvent(const FlagCalledCall& call, const FlagCalledResult& result,
                                   std::string uuid) {
  const nlohmann::json response = FlagCalledResponse(result);
  nlohmann::json properties = {{"$feature_flag", result.key},
                               {"$feature_flag_response", response},
                               {"locally_evaluated", result.local},
                               {absl::StrCat("$feature/", result.key), response},
                               {"$feature_flag_evaluated_at", call.evaluated_at_ms}};
  if (!result.payload.is_null()) properties["$feature_flag_payload"] = result.payload;
  if (!result.local && !call.request_id.empty()) {
    properties["$feature_flag_request_id"] = call.request_id;
  }
  if (!result.reason_description.empty()) {
    properties["$feature_flag_reason"] = result.reason_description;
  }
  if (result.flag_version != 0) properties["$feature_flag_version"] = result.flag_version;
  if (result.flag_id != 0) properties["$feature_flag_id"] = result.flag_id;
  if (result.error_code != posthog::v1::FLAG_ERROR_CODE_UNSPECIFIED) {
    properties["$feature_flag_error"] =
        call.quota_limited ? "quota_limited" : "errors_while_computing_flags";
  }
  if (result.has_experiment.has_value()) {
    properties["$feature_flag_has_experiment"] = *result.has_experiment;
  }
  posthog::v1::Event event;
  event.set_event("$feature_flag_called");
  event.set_distinct_id(call.distinct_id);
  *event.mutable_properties() = StructFromJson(properties);
  event.mutable_groups()->insert(call.groups.begin(), call.groups.end());
  *event.mutable_timestamp() =
      google::protobuf::util::TimeUtil::MillisecondsToTimestamp(absl::ToUnixMillis(call.now));
  event.set_uuid(std::move(uuid));
  return event;
}

}  // namespace posthog_gateway::flags
