// Fuzzes the upstream URL builder and its inverse. The input, split at its
// first two NUL bytes, gives two path values and a query value:
// - what UpstreamUrl builds from them parses back with ParseUpstreamTarget
//   to the same target, and holds no dot segment, no raw '?', '#', NUL, CR
//   or LF and no empty segment;
// - the whole input as a target: ParseUpstreamTarget accepts it only as it
//   would build it (its Build() gives the input back).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "server/posthog/upstream_url.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using posthog_gateway::ParseUpstreamTarget;
  using posthog_gateway::UpstreamUrl;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);

  std::vector<absl::string_view> parts = absl::StrSplit(input, absl::MaxSplits('\0', 2));
  parts.resize(3);
  UpstreamUrl url;
  url.Literal("api").Literal("projects").Segment(int64_t{1}).Literal("persons");
  url.Segment(parts[0]).Segment(parts[1]).TrailingSlash().Query("distinct_id", parts[2]);
  const auto built = url.Build();
  if (built.ok()) {
    const std::string path = url.Path();
    Check(!path.empty() && path[0] == '/');
    for (absl::string_view segment : absl::StrSplit(path.substr(1), '/')) {
      Check(segment != "." && segment != "..");
    }
    Check(path.find("//") == std::string::npos);
    Check(built->find_first_of(std::string("#\r\n\0", 4)) == std::string::npos);
    Check(built->find('?') == path.size());
    const auto parsed = ParseUpstreamTarget(*built);
    Check(parsed.ok());
    const auto again = parsed->Build();
    Check(again.ok() && *again == *built);
  }

  const auto target = ParseUpstreamTarget(input);
  if (target.ok()) {
    const auto again = target->Build();
    Check(again.ok() && *again == input);
  }
  return 0;
}
