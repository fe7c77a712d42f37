#include "server/authz/xfcc.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace posthog_gateway {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

// A cursor over the header; every method leaves `pos` just after what it read.
class XfccReader {
 public:
  explicit XfccReader(absl::string_view text) : text_(text) {}

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }
  size_t pos() const { return pos_; }
  void Advance() { ++pos_; }

  void SkipSpace() {
    while (!AtEnd() && IsSpace(Peek())) ++pos_;
  }

  absl::Status Error(absl::string_view problem) const {
    return absl::InvalidArgumentError(
        absl::StrCat("x-forwarded-client-cert: ", problem, " at byte ", pos_));
  }

  // A key: everything up to `=`, without surrounding whitespace.
  absl::StatusOr<std::string> Key() {
    const size_t start = pos_;
    while (!AtEnd() && Peek() != '=') {
      const char c = Peek();
      if (c == ',' || c == ';' || c == '"' || c == '\\') return Error("malformed key");
      ++pos_;
    }
    if (AtEnd()) return Error("a pair without '='");
    absl::string_view key = text_.substr(start, pos_ - start);
    while (!key.empty() && IsSpace(key.back())) key.remove_suffix(1);
    if (key.empty()) return Error("an empty key");
    ++pos_;  // '='
    return std::string(key);
  }

  // A value: a quoted string (unescaped) or a bare run up to `;` or `,`.
  absl::StatusOr<std::string> Value() {
    SkipSpace();
    std::string value;
    if (!AtEnd() && Peek() == '"') {
      ++pos_;
      while (true) {
        if (AtEnd()) return Error("an unclosed quote");
        const char c = Peek();
        ++pos_;
        if (c == '"') break;
        if (c == '\\') {
          if (AtEnd()) return Error("a dangling backslash");
          value.push_back(Peek());
          ++pos_;
          continue;
        }
        value.push_back(c);
      }
      SkipSpace();
      if (!AtEnd() && Peek() != ';' && Peek() != ',') {
        return Error("text after a quoted value");
      }
      return value;
    }
    while (!AtEnd() && Peek() != ';' && Peek() != ',') {
      const char c = Peek();
      if (c == '"' || c == '\\' || c == '=')
        return Error("a quote, backslash or '=' in a bare value");
      value.push_back(c);
      ++pos_;
    }
    while (!value.empty() && IsSpace(value.back())) value.pop_back();
    return value;
  }

 private:
  absl::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

const std::string* XfccElement::Find(absl::string_view key) const {
  for (const auto& [name, value] : pairs) {
    if (absl::EqualsIgnoreCase(name, key)) return &value;
  }
  return nullptr;
}

absl::StatusOr<std::vector<XfccElement>> ParseXfcc(absl::string_view header) {
  if (header.size() > kMaxXfccBytes) {
    return absl::InvalidArgumentError("x-forwarded-client-cert: too long");
  }
  XfccReader reader(header);
  std::vector<XfccElement> elements;
  reader.SkipSpace();
  if (reader.AtEnd()) return reader.Error("empty");
  while (true) {
    if (elements.size() == kMaxXfccElements) return reader.Error("too many elements");
    XfccElement& element = elements.emplace_back();
    while (true) {
      reader.SkipSpace();
      absl::StatusOr<std::string> key = reader.Key();
      if (!key.ok()) return key.status();
      absl::StatusOr<std::string> value = reader.Value();
      if (!value.ok()) return value.status();
      element.pairs.emplace_back(*std::move(key), *std::move(value));
      if (reader.AtEnd() || reader.Peek() == ',') break;
      reader.Advance();  // ';'
      reader.SkipSpace();
      if (reader.AtEnd() || reader.Peek() == ',') break;  // A trailing ';'.
    }
    if (reader.AtEnd()) break;
    reader.Advance();  // ','
    reader.SkipSpace();
    if (reader.AtEnd()) return reader.Error("an empty element");
  }
  return elements;
}

std::string XfccCallerUri(absl::string_view header) {
  absl::StatusOr<std::vector<XfccElement>> elements = ParseXfcc(header);
  if (!elements.ok() || elements->empty()) return "";
  const std::string* uri = elements->back().Find("URI");
  return uri == nullptr ? "" : *uri;
}

}  // namespace posthog_gateway
