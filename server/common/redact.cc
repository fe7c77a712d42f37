#include "server/common/redact.h"

#include "absl/strings/ascii.h"

namespace posthog_gateway {
namespace {

bool IsKeyPrefix(absl::string_view text, size_t i) {
  if (i + 4 > text.size() || text[i] != 'p' || text[i + 1] != 'h' || text[i + 3] != '_') {
    return false;
  }
  switch (text[i + 2]) {
    case 'a':
    case 'c':
    case 'r':
    case 's':
    case 'x':
      return true;
    default:
      return false;
  }
}

bool IsKeyChar(char c) { return absl::ascii_isalnum(c) || c == '_' || c == '-'; }

}  // namespace

std::string RedactKeys(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const bool at_word_start = i == 0 || !IsKeyChar(text[i - 1]);
    if (at_word_start && IsKeyPrefix(text, i)) {
      size_t end = i + 4;
      while (end < text.size() && IsKeyChar(text[end])) ++end;
      out.append(text.data() + i, 4);
      out.append("[redacted]");
      i = end;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

std::string Truncate(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t cut = max_bytes;
  // Step back over UTF-8 continuation bytes (10xxxxxx).
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "...";
}

}  // namespace posthog_gateway
