// Differential fuzzer of AppendJsonString (server/capture/event_json.h),
// which escapes every string of every captured event: its bytes must be
// exactly nlohmann::json's dump() of the same string, and it must refuse
// (false) exactly the strings dump() refuses as invalid UTF-8. What it
// takes protobuf's UTF-8 check must take too: the wire path writes a
// string from the request's bytes only when protobuf's parser would have
// accepted it (a string it refuses is left to the parser).
//
// Input: the string itself, written after a prefix that must stay as it
// was (AppendJsonString appends).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/stubs/common.h"
#include "nlohmann/json.hpp"
#include "server/capture/event_json.h"

namespace {

[[noreturn]] void Fail(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "json_string_fuzzer: %s\n%s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  constexpr absl::string_view kPrefix = "{\"k\":";
  std::string out(kPrefix);
  const bool ok = posthog_gateway::AppendJsonString(text, &out);

  std::string expected;
  bool reference_ok = true;
  try {
    expected = nlohmann::json(text).dump();
  } catch (const nlohmann::json::type_error&) {
    reference_ok = false;  // 316: invalid UTF-8.
  }
  if (ok != reference_ok)
    Fail(ok ? "took a string nlohmann refuses" : "refused a string nlohmann takes");
  if (!ok) return 0;
  if (absl::string_view(out).substr(0, kPrefix.size()) != kPrefix)
    Fail("changed what it appends to");
  if (out.substr(kPrefix.size()) != expected) {
    Fail("bytes differ", "ours:     " + out.substr(kPrefix.size()) + "\nnlohmann: " + expected);
  }
  if (!google::protobuf::internal::IsStructurallyValidUTF8(text.data(),
                                                           static_cast<int>(text.size()))) {
    Fail("took a string protobuf refuses as invalid UTF-8");
  }
  return 0;
}
