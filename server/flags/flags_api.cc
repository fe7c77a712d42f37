#include "server/flags/flags_api.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/flags/flag_json.h"

namespace posthog_gateway::flags {

using nlohmann::json;

namespace {

// False unless the member is there and a boolean: json::value(field, false)
// throws on a member of another type.
bool BoolField(const json& object, const char* field) {
  auto it = object.find(field);
  return it != object.end() && it->is_boolean() && it->get<bool>();
}

}  // namespace

absl::StatusOr<RemoteEvaluation> ParseRemoteEvaluation(const json& body) {
  RemoteEvaluation result;
  if (!body.is_object()) return absl::InvalidArgumentError("/flags answer is not an object");
  if (auto it = body.find("quotaLimited"); it != body.end() && it->is_array()) {
    for (const json& limited : *it) result.quota_limited |= limited == "feature_flags";
  }
  result.errors_while_computing = BoolField(body, "errorsWhileComputingFlags");
  if (auto it = body.find("requestId"); it != body.end() && it->is_string()) {
    result.request_id = *it;
  }
  if (auto it = body.find("evaluatedAt"); it != body.end() && it->is_number_integer()) {
    result.evaluated_at_ms = it->get<int64_t>();
  }
  auto flags = body.find("flags");
  if (flags == body.end() || !flags->is_object()) {
    if (result.quota_limited) return result;
    return absl::InvalidArgumentError("/flags answer has no `flags` object");
  }
  for (auto it = flags->begin(); it != flags->end(); ++it) {
    const json& flag = it.value();
    if (!flag.is_object()) continue;
    RemoteFlag remote;
    remote.enabled = BoolField(flag, "enabled");
    if (auto variant = flag.find("variant"); variant != flag.end() && variant->is_string()) {
      remote.variant = *variant;
    }
    remote.failed = BoolField(flag, "failed");
    if (auto reason = flag.find("reason"); reason != flag.end() && reason->is_object()) {
      if (reason->contains("code") && (*reason)["code"].is_string()) {
        remote.reason_code = (*reason)["code"];
      }
      if (reason->contains("description") && (*reason)["description"].is_string()) {
        remote.reason_description = (*reason)["description"];
      }
      if (reason->contains("condition_index") && (*reason)["condition_index"].is_number_integer()) {
        remote.condition_index = (*reason)["condition_index"];
      }
    }
    if (auto metadata = flag.find("metadata"); metadata != flag.end() && metadata->is_object()) {
      // Integers only: converting a double outside int64_t's range is undefined.
      if (metadata->contains("id") && (*metadata)["id"].is_number_integer()) {
        remote.id = (*metadata)["id"];
      }
      if (metadata->contains("version") && (*metadata)["version"].is_number_integer()) {
        remote.version = (*metadata)["version"];
      }
      remote.has_experiment = BoolField(*metadata, "has_experiment");
      if (auto payload = metadata->find("payload"); payload != metadata->end()) {
        if (payload->is_string()) {
          json parsed = json::parse(payload->get<std::string>(), nullptr, false);
          remote.payload = parsed.is_discarded() ? *payload : std::move(parsed);
        } else {
          remote.payload = *payload;
        }
      }
    }
    result.flags.emplace(it.key(), std::move(remote));
  }
  return result;
}

absl::StatusOr<RemoteEvaluation> FlagsApi::RemoteEvaluate(const EvaluationContext& context,
                                                          const std::vector<std::string>& keys,
                                                          const CallContext& call) const {
  ASSIGN_OR_RETURN(Secret token, client_->Key(KeyKind::kProjectApiKey));
  json body = {{"token", token.value()}, {"distinct_id", context.distinct_id}};
  // As PostHog's server SDKs: the address PostHog sees is the gateway's, so
  // GeoIP person properties are not computed from it unless asked.
  body["geoip_disable"] = context.disable_geoip.value_or(client_->project().disable_geoip);
  if (!context.groups.empty()) body["groups"] = context.groups;
  if (context.person_properties.is_object() && !context.person_properties.empty()) {
    body["person_properties"] = context.person_properties;
  }
  if (!context.group_properties.empty()) body["group_properties"] = context.group_properties;
  if (!context.device_id.empty()) body["device_id"] = context.device_id;
  if (!keys.empty()) body["flag_keys_to_evaluate"] = keys;
  PostHogRequest request;
  request.method = "POST";
  request.host = PostHogHost::kIngestion;
  ASSIGN_OR_RETURN(request.path,
                   UpstreamUrl().Literal("flags").TrailingSlash().Query("v", 2).Build());
  request.body = body.dump();
  request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  ASSIGN_OR_RETURN(json answer, client_->CallJson(request, call));
  absl::StatusOr<RemoteEvaluation> parsed = ParseRemoteEvaluation(answer);
  if (!parsed.ok()) {
    return absl::UnavailableError(
        absl::StrCat("PostHog's /flags answer is malformed: ", parsed.status().message()));
  }
  return parsed;
}

UpstreamUrl FeatureFlagsUrl(const PostHogClient& client) {
  UpstreamUrl url;
  url.Literal("api")
      .Literal("projects")
      .Segment(client.project().project_id)
      .Literal("feature_flags")
      .TrailingSlash();
  return url;
}

std::string FeatureFlagsPath(const PostHogClient& client) { return FeatureFlagsUrl(client).Path(); }

absl::StatusOr<std::string> FlagsApi::FlagPath(int64_t id, absl::string_view field) const {
  RETURN_IF_ERROR(ValidatePositiveId(field, id));
  return FeatureFlagsUrl(*client_).Segment(id).TrailingSlash().Build();
}

namespace {

PostHogRequest PrivateRequest(std::string method, std::string path, std::string body = "") {
  PostHogRequest request;
  request.method = std::move(method);
  request.host = PostHogHost::kApp;
  request.path = std::move(path);
  request.body = std::move(body);
  request.bearer = KeyKind::kPersonalApiKey;
  request.headers = {{"Accept", "application/json"}};
  if (!request.body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  return request;
}

absl::StatusOr<posthog::v1::Flag> FlagFromAnswer(const json& answer) {
  absl::StatusOr<posthog::v1::Flag> flag = FlagFromJson(answer);
  if (!flag.ok()) {
    return absl::UnavailableError(
        absl::StrCat("PostHog answered with a malformed flag: ", flag.status().message()));
  }
  return flag;
}

// Fields PostHog computes or owns: never sent back.
constexpr const char* kReadOnly[] = {"id",
                                     "created_at",
                                     "updated_at",
                                     "created_by",
                                     "last_modified_by",
                                     "is_simple_flag",
                                     "rollout_percentage",
                                     "can_edit",
                                     "user_access_level",
                                     "status",
                                     "experiment_set",
                                     "surveys",
                                     "features",
                                     "usage_dashboard",
                                     "analytics_dashboards"};

json WritableJson(const posthog::v1::Flag& flag) {
  json body = JsonFromFlag(flag);
  for (const char* field : kReadOnly) body.erase(field);
  return body;
}

}  // namespace

absl::StatusOr<posthog::v1::Flag> FlagsApi::GetFlag(int64_t id, const CallContext& call) const {
  ASSIGN_OR_RETURN(std::string path, FlagPath(id, "id"));
  ASSIGN_OR_RETURN(json answer, CallRest(PrivateRequest("GET", std::move(path)), call));
  return FlagFromAnswer(answer);
}

absl::StatusOr<posthog::v1::Flag> FlagsApi::CreateFlag(const posthog::v1::Flag& flag,
                                                       const CallContext& call) const {
  RETURN_IF_ERROR(ValidateFlagKey("flag.key", flag.key()));
  json body = WritableJson(flag);
  body.erase("version");
  body.erase("deleted");
  ASSIGN_OR_RETURN(std::string path, FeatureFlagsUrl(*client_).Build());
  ASSIGN_OR_RETURN(json answer,
                   CallRest(PrivateRequest("POST", std::move(path), body.dump()), call));
  return FlagFromAnswer(answer);
}

absl::StatusOr<posthog::v1::Flag> FlagsApi::UpdateFlag(const posthog::v1::Flag& flag,
                                                       const std::vector<std::string>& mask,
                                                       const CallContext& call) const {
  ASSIGN_OR_RETURN(std::string path, FlagPath(flag.id(), "flag.id"));
  json full = WritableJson(flag);
  json body = json::object();
  if (mask.empty()) {
    body = std::move(full);
  } else {
    for (const std::string& field : mask) {
      if (full.contains(field)) body[field] = full[field];
    }
    if (flag.version() != 0) body["version"] = flag.version();
  }
  if (flag.version() == 0) body.erase("version");
  if (body.contains("key")) RETURN_IF_ERROR(ValidateFlagKey("flag.key", flag.key()));
  ASSIGN_OR_RETURN(json answer,
                   CallRest(PrivateRequest("PATCH", std::move(path), body.dump()), call));
  return FlagFromAnswer(answer);
}

absl::Status FlagsApi::DeleteFlag(int64_t id, const CallContext& call) const {
  ASSIGN_OR_RETURN(std::string path, FlagPath(id, "id"));
  json body = {{"deleted", true}};
  return CallRest(PrivateRequest("PATCH", std::move(path), body.dump()), call).status();
}

absl::StatusOr<json> FlagsApi::CallRest(const PostHogRequest& request,
                                        const CallContext& call) const {
  if (pacer_ == nullptr) return client_->CallJson(request, call);
  return pacer_->Run(call.deadline, call.is_cancelled,
                     [&] { return client_->CallJson(request, call); });
}

}  // namespace posthog_gateway::flags
