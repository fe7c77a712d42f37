// Fuzzes the personal key's allow-list and the id validators (the URL
// builder itself has upstream_url_fuzzer). The input, split at its first NUL,
// gives a method and a request target:
// - a target the allow-list matches is canonical, holds no dot segment
//   (plain or encoded), and each of its segments is a literal route word, the
//   project's id, a positive integer or a UUID: never text a caller chose;
// - the id validators accept only values that percent-encoding leaves as
//   they are (so an accepted id can never smuggle '/', '.', '%' or controls
//   into a path), and a validated value always builds into a target the
//   allow-list's placeholders match.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "server/posthog/personal_key_routes.h"
#include "server/posthog/upstream_url.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

constexpr int64_t kProject = 7;

bool IsDigits(absl::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool IsRouteWord(absl::string_view segment) {
  for (const auto& route : posthog_gateway::kPersonalKeyRoutes) {
    for (absl::string_view word : absl::StrSplit(route.path, '/')) {
      if (word == segment && (word.empty() || word.front() != '{')) return true;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace posthog_gateway;  // NOLINT: a fuzz target, one function.
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<absl::string_view> parts = absl::StrSplit(input, absl::MaxSplits('\0', 1));
  parts.resize(2);
  const absl::string_view method = parts[0];
  const absl::string_view target = parts[1];

  if (absl::StatusOr<UpstreamUrl> url = ParseUpstreamTarget(target); url.ok()) {
    if (MatchPersonalKeyRoute(method, *url, kProject).has_value()) {
      const std::string path = url->Path();
      for (absl::string_view segment : absl::StrSplit(path, '/')) {
        if (segment.empty()) continue;
        Check(segment != "." && segment != "..");
        Check(segment.find('%') == absl::string_view::npos);
        Check(IsRouteWord(segment) || IsDigits(segment) || IsUuid(segment));
      }
    }
  }

  // The whole input as an id of each kind.
  if (ValidatePersonUuid("person.uuid", input).ok()) {
    Check(PercentEncode(input) == input);
    const auto built = UpstreamUrl()
                           .Literal("api")
                           .Literal("projects")
                           .Segment(kProject)
                           .Literal("persons")
                           .Segment(input)
                           .TrailingSlash()
                           .Build();
    Check(built.ok());
    const auto parsed = ParseUpstreamTarget(*built);
    Check(parsed.ok() && MatchPersonalKeyRoute("DELETE", *parsed, kProject).has_value());
  }
  if (ValidateFlagKey("flag.key", input).ok()) {
    Check(PercentEncode(input) == input);
    Check(input != "." && input != "..");
  }
  return 0;
}
