// Fuzzes the x-forwarded-client-cert parser (server/authz/xfcc.h), which
// reads bytes a caller partly chose. For any input:
// - ParseXfcc accepts only a well-formed header: 1 to kMaxXfccElements
//   elements, each with non-empty keys free of the separators, and what it
//   returns prints back (every value quoted) to a header that parses to
//   the same elements;
// - XfccCallerUri is the URI of the last element, or empty;
// - the sidecar's word cannot be forged: with the sidecar's element
//   appended after the input (Envoy's APPEND_FORWARD), the caller named is
//   the sidecar's or nobody, whatever the input's quotes and escapes do.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/authz/xfcc.h"

namespace {

using posthog_gateway::kMaxXfccBytes;
using posthog_gateway::kMaxXfccElements;
using posthog_gateway::ParseXfcc;
using posthog_gateway::XfccCallerUri;
using posthog_gateway::XfccElement;

constexpr char kSidecarUri[] = "spiffe://cluster.local/ns/prod/sa/trusted-caller";

void Check(bool ok) {
  if (!ok) std::abort();
}

std::string Quote(const std::string& value) {
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  quoted.push_back('"');
  return quoted;
}

std::string Print(const std::vector<XfccElement>& elements) {
  std::string header;
  for (const XfccElement& element : elements) {
    if (!header.empty()) header.push_back(',');
    bool first = true;
    for (const auto& [key, value] : element.pairs) {
      if (!first) header.push_back(';');
      first = false;
      absl::StrAppend(&header, key, "=", Quote(value));
    }
  }
  return header;
}

bool SameElements(const std::vector<XfccElement>& a, const std::vector<XfccElement>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].pairs != b[i].pairs) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);

  const auto elements = ParseXfcc(input);
  const std::string caller = XfccCallerUri(input);
  if (elements.ok()) {
    Check(input.size() <= kMaxXfccBytes);
    Check(!elements->empty() && elements->size() <= kMaxXfccElements);
    for (const XfccElement& element : *elements) {
      Check(!element.pairs.empty());
      for (const auto& [key, value] : element.pairs) {
        Check(!key.empty());
        Check(key.find_first_of(",;=\"\\") == std::string::npos);
        Check(key.back() != ' ' && key.back() != '\t');
      }
    }
    const std::string* uri = elements->back().Find("URI");
    Check(caller == (uri == nullptr ? "" : *uri));
    const std::string printed = Print(*elements);
    if (printed.size() <= kMaxXfccBytes) {
      const auto again = ParseXfcc(printed);
      Check(again.ok() && SameElements(*again, *elements));
    }
  } else {
    Check(caller.empty());
  }

  const std::string appended = absl::StrCat(
      input, ",By=spiffe://cluster.local/ns/gw/sa/gateway;Hash=abc;Subject=\"\";URI=", kSidecarUri);
  const std::string named = XfccCallerUri(appended);
  Check(named.empty() || named == kSidecarUri);
  return 0;
}
