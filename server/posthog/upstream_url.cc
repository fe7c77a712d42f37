#include "server/posthog/upstream_url.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/common/error_details.h"

namespace posthog_gateway {
namespace {

bool IsUnreserved(unsigned char c) {
  return absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

bool IsUpperHex(char c) { return absl::ascii_isdigit(c) || (c >= 'A' && c <= 'F'); }

bool IsDotSegment(absl::string_view segment) { return segment == "." || segment == ".."; }

// Whether `text` is canonical encoded text: unreserved characters, %XX with
// upper-case hex, and '@' when `allow_at`.
bool IsCanonical(absl::string_view text, bool allow_at) {
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (IsUnreserved(c) || (allow_at && c == '@')) continue;
    if (c == '%' && i + 2 < text.size() && IsUpperHex(text[i + 1]) && IsUpperHex(text[i + 2])) {
      i += 2;
      continue;
    }
    return false;
  }
  return true;
}

// Decodes canonical text (for the dot-segment check).
std::string Decode(absl::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      int value = 0;
      for (int k = 1; k <= 2; ++k) {
        const char h = text[i + k];
        value = value * 16 + (absl::ascii_isdigit(h) ? h - '0' : h - 'A' + 10);
      }
      out.push_back(static_cast<char>(value));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

absl::Status Violation(absl::string_view field, absl::string_view message,
                       absl::string_view description) {
  return InvalidArgumentWithViolations(message, {{std::string(field), std::string(description)}});
}

}  // namespace

std::string PercentEncode(absl::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (IsUnreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

void UpstreamUrl::Refuse(absl::string_view why) {
  if (status_.ok()) status_ = absl::InvalidArgumentError(why);
}

UpstreamUrl& UpstreamUrl::Literal(absl::string_view segment) {
  if (segment.empty() || IsDotSegment(segment) || !IsCanonical(segment, true) ||
      absl::StrContains(segment, '%')) {
    Refuse("a literal path segment of an upstream route is not plain text");
  }
  segments_.emplace_back(segment);
  return *this;
}

UpstreamUrl& UpstreamUrl::Segment(absl::string_view value) {
  if (value.empty()) Refuse("an upstream path segment is empty");
  if (IsDotSegment(value)) Refuse("an upstream path segment is a dot segment");
  segments_.push_back(PercentEncode(value));
  return *this;
}

UpstreamUrl& UpstreamUrl::Segment(int64_t value) { return Segment(absl::StrCat(value)); }

UpstreamUrl& UpstreamUrl::TrailingSlash() {
  trailing_slash_ = true;
  return *this;
}

UpstreamUrl& UpstreamUrl::Query(absl::string_view name, absl::string_view value) {
  if (name.empty()) Refuse("an upstream query parameter has no name");
  query_.emplace_back(PercentEncode(name), PercentEncode(value));
  return *this;
}

UpstreamUrl& UpstreamUrl::Query(absl::string_view name, int64_t value) {
  return Query(name, absl::StrCat(value));
}

UpstreamUrl& UpstreamUrl::QueryFlag(absl::string_view name) {
  if (name.empty()) Refuse("an upstream query parameter has no name");
  query_.emplace_back(PercentEncode(name), std::nullopt);
  return *this;
}

std::string UpstreamUrl::Path() const {
  std::string path;
  for (const std::string& segment : segments_) absl::StrAppend(&path, "/", segment);
  if (trailing_slash_ || path.empty()) path.push_back('/');
  return path;
}

std::string UpstreamUrl::EncodedQuery() const {
  std::string query;
  for (const auto& [name, value] : query_) {
    if (!query.empty()) query.push_back('&');
    absl::StrAppend(&query, name);
    if (value.has_value()) absl::StrAppend(&query, "=", *value);
  }
  return query;
}

absl::StatusOr<std::string> UpstreamUrl::Build() const {
  if (!status_.ok()) return status_;
  std::string target = Path();
  if (!query_.empty()) absl::StrAppend(&target, "?", EncodedQuery());
  return target;
}

absl::StatusOr<UpstreamUrl> ParseUpstreamTarget(absl::string_view target) {
  const auto refuse = [](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a canonical upstream request target: ", why));
  };
  if (target.empty() || target.front() != '/') return refuse("it does not start with '/'");
  const size_t question = target.find('?');
  const absl::string_view path = target.substr(0, question);
  UpstreamUrl url;
  if (path != "/") {
    std::vector<absl::string_view> segments = absl::StrSplit(path.substr(1), '/');
    if (segments.back().empty()) {
      url.trailing_slash_ = true;
      segments.pop_back();
    }
    for (absl::string_view segment : segments) {
      if (segment.empty()) return refuse("an empty path segment");
      if (!IsCanonical(segment, true)) return refuse("a path segment is not encoded");
      if (IsDotSegment(Decode(segment))) return refuse("a dot segment");
      url.segments_.emplace_back(segment);
    }
  }
  if (question != absl::string_view::npos) {
    const absl::string_view query = target.substr(question + 1);
    if (query.empty()) return refuse("an empty query");
    for (absl::string_view pair : absl::StrSplit(query, '&')) {
      const size_t eq = pair.find('=');
      const absl::string_view name = pair.substr(0, eq);
      if (name.empty() || !IsCanonical(name, false)) return refuse("a query name");
      std::optional<std::string> value;
      if (eq != absl::string_view::npos) {
        const absl::string_view encoded = pair.substr(eq + 1);
        if (!IsCanonical(encoded, false)) return refuse("a query value is not encoded");
        value = std::string(encoded);
      }
      url.query_.emplace_back(std::string(name), std::move(value));
    }
  }
  return url;
}

bool IsUuid(absl::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : !absl::ascii_isxdigit(static_cast<unsigned char>(text[i]))) {
      return false;
    }
  }
  return true;
}

absl::Status ValidatePersonUuid(absl::string_view field, absl::string_view uuid) {
  if (IsUuid(uuid)) return absl::OkStatus();
  return Violation(field, absl::StrCat(field, " is not a UUID"),
                   "must be a UUID (8-4-4-4-12 hexadecimal digits)");
}

absl::Status ValidatePositiveId(absl::string_view field, int64_t id) {
  if (id > 0) return absl::OkStatus();
  return Violation(field, absl::StrCat(field, " must be a positive id"), "must be positive");
}

bool IsFlagKey(absl::string_view key) {
  if (key.empty() || key.size() > kMaxFlagKeyLength) return false;
  for (unsigned char c : key) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

absl::Status ValidateFlagKey(absl::string_view field, absl::string_view key) {
  if (IsFlagKey(key)) return absl::OkStatus();
  if (key.empty()) return Violation(field, "a flag key is required", "must not be empty");
  return Violation(field, absl::StrCat(field, " is not a valid flag key"),
                   absl::StrCat("only letters, digits, '-' and '_', at most ", kMaxFlagKeyLength,
                                " characters"));
}

absl::Status ValidateGroupTypeIndex(absl::string_view field, int64_t index) {
  if (index >= 0 && index <= kMaxGroupTypeIndex) return absl::OkStatus();
  return Violation(field, absl::StrCat(field, " is not a group type index"),
                   absl::StrCat("must be between 0 and ", kMaxGroupTypeIndex));
}

absl::Status ValidateGroupKey(absl::string_view field, absl::string_view key) {
  if (key.empty()) return Violation(field, "a group key is required", "must not be empty");
  if (key.size() > kMaxGroupKeyLength || key.find('\0') != absl::string_view::npos) {
    return Violation(field, absl::StrCat(field, " is not a valid group key"),
                     absl::StrCat("at most ", kMaxGroupKeyLength, " bytes, without NUL"));
  }
  return absl::OkStatus();
}

}  // namespace posthog_gateway
