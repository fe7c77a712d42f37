#include "server/posthog/personal_key_routes.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace posthog_gateway {
namespace {

bool IsPositiveDecimal(absl::string_view text) {
  if (text.empty() || text.size() > 19 || text[0] == '0') return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  // 19 digits may still exceed 2^63 - 1.
  return text.size() < 19 || text <= "9223372036854775807";
}

bool SegmentMatches(absl::string_view pattern, absl::string_view segment,
                    const std::string& project) {
  if (pattern == "{project}") return segment == project;
  if (pattern == "{id}") return IsPositiveDecimal(segment);
  if (pattern == "{uuid}") return IsUuid(segment);
  if (pattern == "{person}") return IsUuid(segment) || IsPositiveDecimal(segment);
  return segment == pattern;
}

}  // namespace

std::optional<absl::string_view> MatchPersonalKeyRoute(absl::string_view method,
                                                       const UpstreamUrl& url, int64_t project_id) {
  if (!url.status().ok()) return std::nullopt;
  const std::string path = url.Path();
  const std::string project = absl::StrCat(project_id);
  const std::vector<absl::string_view> segments = absl::StrSplit(path, '/');
  for (const PersonalKeyRoute& route : kPersonalKeyRoutes) {
    if (route.method != method) continue;
    const std::vector<absl::string_view> patterns = absl::StrSplit(route.path, '/');
    if (patterns.size() != segments.size()) continue;
    bool matches = true;
    for (size_t i = 0; i < patterns.size() && matches; ++i) {
      matches = SegmentMatches(patterns[i], segments[i], project);
    }
    if (matches) return route.path;
  }
  return std::nullopt;
}

}  // namespace posthog_gateway
