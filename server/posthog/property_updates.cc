#include "server/posthog/property_updates.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/posthog/json_struct.h"

namespace posthog_gateway {

absl::Status ApplyPropertyUpdates(
    const std::string& update_path, const std::string& delete_path,
    const google::protobuf::Struct& set, const std::vector<std::string>& unset,
    const CallContext& context,
    const std::function<absl::StatusOr<nlohmann::json>(const PostHogRequest&)>& send) {
  using nlohmann::json;
  std::vector<std::pair<std::string, PostHogRequest>> requests;
  auto add = [&](std::string change, const std::string& path, json body) {
    PostHogRequest request;
    request.method = "POST";
    request.path = path;
    request.headers = {{"Content-Type", "application/json"}};
    request.body = body.dump();
    request.bearer = KeyKind::kPersonalApiKey;
    requests.emplace_back(std::move(change), std::move(request));
  };
  const std::map<std::string, google::protobuf::Value> sorted(set.fields().begin(),
                                                              set.fields().end());
  for (const auto& [key, value] : sorted) {
    add(absl::StrCat("set ", key), update_path,
        json{{"key", key}, {"value", JsonFromValue(value)}});
  }
  for (const std::string& key : unset) {
    add(absl::StrCat("unset ", key), delete_path, json{{"$unset", key}});
  }
  std::vector<std::string> applied;
  for (const auto& [change, request] : requests) {
    absl::Status sent = context.is_cancelled && context.is_cancelled()
                            ? absl::CancelledError("the caller went away")
                            : send(request).status();
    if (sent.ok()) {
      applied.push_back(change);
      continue;
    }
    if (applied.empty()) return sent;
    absl::Status partial(sent.code(),
                         absl::StrCat("the update stopped after applying ", applied.size(), " of ",
                                      requests.size(), " changes (", absl::StrJoin(applied, ", "),
                                      "); not applied from \"", change, "\" on: ", sent.message()));
    sent.ForEachPayload([&partial](absl::string_view type_url, const absl::Cord& payload) {
      partial.SetPayload(type_url, payload);
    });
    return partial;
  }
  return absl::OkStatus();
}

}  // namespace posthog_gateway
