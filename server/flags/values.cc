#include "server/flags/values.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/time/civil_time.h"

namespace posthog_gateway::flags {

using nlohmann::json;

namespace {

// FastIsoTime parses the common shape without allocating:
// YYYY-MM-DD[(T| )HH:MM[:SS[.fff...]]][Z|±HH:MM].
bool FastIsoTime(absl::string_view text, absl::Time* out) {
  auto digits = [&](size_t at, size_t n, int* value) {
    if (at + n > text.size()) return false;
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      v = v * 10 + (text[i] - '0');
    }
    *value = v;
    return true;
  };
  int year, month, day, hour = 0, minute = 0, second = 0;
  if (!digits(0, 4, &year) || text.size() < 10 || text[4] != '-' || !digits(5, 2, &month) ||
      text[7] != '-' || !digits(8, 2, &day)) {
    return false;
  }
  size_t at = 10;
  int64_t nanos = 0;
  if (at < text.size() && (text[at] == 'T' || text[at] == ' ')) {
    if (!digits(at + 1, 2, &hour) || at + 3 >= text.size() || text[at + 3] != ':' ||
        !digits(at + 4, 2, &minute)) {
      return false;
    }
    at += 6;
    if (at < text.size() && text[at] == ':') {
      if (!digits(at + 1, 2, &second)) return false;
      at += 3;
      if (at < text.size() && text[at] == '.') {
        ++at;
        int64_t scale = 100000000;
        size_t begin = at;
        while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
          nanos += (text[at] - '0') * scale;
          scale /= 10;
          ++at;
        }
        if (at == begin) return false;
      }
    }
  }
  int offset_minutes = 0;
  if (at < text.size()) {
    if ((text[at] == 'Z' || text[at] == 'z') && at + 1 == text.size()) {
      ++at;
    } else if ((text[at] == '+' || text[at] == '-') && at + 6 == text.size() &&
               text[at + 3] == ':') {
      int oh, om;
      if (!digits(at + 1, 2, &oh) || !digits(at + 4, 2, &om)) return false;
      offset_minutes = (text[at] == '-' ? -1 : 1) * (oh * 60 + om);
      at += 6;
    } else {
      return false;
    }
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return false;
  }
  const absl::CivilSecond civil(year, month, day, hour, minute, second);
  if (civil.day() != day) return false;  // e.g. February 30.
  *out = absl::FromCivil(civil, absl::UTCTimeZone()) + absl::Nanoseconds(nanos) -
         absl::Minutes(offset_minutes);
  return true;
}

}  // namespace

Op ParseOp(absl::string_view name) {
  static const auto* const kOps = new absl::flat_hash_map<std::string, Op>{
      {"exact", Op::kExact},
      {"is_not", Op::kIsNot},
      {"is_set", Op::kIsSet},
      {"is_not_set", Op::kIsNotSet},
      {"icontains", Op::kIcontains},
      {"not_icontains", Op::kNotIcontains},
      {"regex", Op::kRegex},
      {"not_regex", Op::kNotRegex},
      {"starts_with", Op::kStartsWith},
      {"not_starts_with", Op::kNotStartsWith},
      {"ends_with", Op::kEndsWith},
      {"not_ends_with", Op::kNotEndsWith},
      {"gt", Op::kGt},
      {"gte", Op::kGte},
      {"lt", Op::kLt},
      {"lte", Op::kLte},
      {"is_date_before", Op::kDateBefore},
      {"is_date_after", Op::kDateAfter},
      {"semver_eq", Op::kSemverEq},
      {"semver_neq", Op::kSemverNeq},
      {"semver_gt", Op::kSemverGt},
      {"semver_gte", Op::kSemverGte},
      {"semver_lt", Op::kSemverLt},
      {"semver_lte", Op::kSemverLte},
      {"semver_tilde", Op::kSemverTilde},
      {"semver_caret", Op::kSemverCaret},
      {"semver_wildcard", Op::kSemverWildcard},
      {"flag_evaluates_to", Op::kFlagEvaluatesTo},
      {"in", Op::kIn},
      {"not_in", Op::kNotIn},
  };
  auto it = kOps->find(std::string(name));
  return it == kOps->end() ? Op::kUnknown : it->second;
}

bool IsTruthyOrFalsy(const json& value) {
  if (value.is_boolean()) return true;
  if (value.is_string()) {
    const std::string folded = absl::AsciiStrToLower(value.get_ref<const std::string&>());
    return folded == "true" || folded == "false";
  }
  if (value.is_array()) {
    return std::all_of(value.begin(), value.end(),
                       [](const json& v) { return IsTruthyOrFalsy(v); });
  }
  return false;
}

bool IsTruthy(const json& value) {
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_string())
    return absl::AsciiStrToLower(value.get_ref<const std::string&>()) == "true";
  if (value.is_array()) {
    return std::all_of(value.begin(), value.end(), [](const json& v) { return IsTruthy(v); });
  }
  return false;
}

std::unique_ptr<RE2> UnicodeLiteral(absl::string_view text) {
  if (std::all_of(text.begin(), text.end(), [](char c) { return (c & 0x80) == 0; })) {
    return nullptr;
  }
  RE2::Options options;
  options.set_literal(true);
  options.set_case_sensitive(false);
  options.set_log_errors(false);
  auto matcher = std::make_unique<RE2>(re2::StringPiece(text.data(), text.size()), options);
  return matcher->ok() ? std::move(matcher) : nullptr;
}

bool InvalidEverywhere(RE2::ErrorCode code) {
  switch (code) {
    case RE2::ErrorBadCharRange:
    case RE2::ErrorMissingBracket:
    case RE2::ErrorMissingParen:
    case RE2::ErrorUnexpectedParen:
    case RE2::ErrorTrailingBackslash:
    case RE2::ErrorRepeatArgument:
      return true;
    default:
      return false;
  }
}

bool ParseSemver(absl::string_view text, Semver* out, int* parts) {
  text = absl::StripAsciiWhitespace(text);
  while (!text.empty() && (text.front() == 'v' || text.front() == 'V')) text.remove_prefix(1);
  text = text.substr(0, text.find_first_of("-+"));
  if (text.empty()) return false;
  int64_t numbers[3] = {0, 0, 0};
  int count = 0;
  size_t start = 0;
  while (count < 3) {
    size_t end = text.find('.', start);
    absl::string_view piece =
        text.substr(start, end == absl::string_view::npos ? end : end - start);
    if (piece.empty() || piece.size() > 18 || (piece.size() > 1 && piece[0] == '0')) return false;
    int64_t value = 0;
    for (char c : piece) {
      if (c < '0' || c > '9') return false;
      value = value * 10 + (c - '0');
    }
    numbers[count++] = value;
    if (end == absl::string_view::npos) break;
    start = end + 1;
  }
  *out = Semver{numbers[0], numbers[1], numbers[2]};
  if (parts != nullptr) *parts = count;
  return true;
}

bool ParseIsoTime(absl::string_view text, absl::Time* out) {
  if (FastIsoTime(text, out)) return true;
  std::string value(absl::StripAsciiWhitespace(text));
  if (absl::EndsWith(value, " UTC")) value.resize(value.size() - 4);
  if (absl::EndsWith(value, "Z") || absl::EndsWith(value, "z")) {
    value.back() = '+';
    value += "00:00";
  }
  static const char* const kFormats[] = {
      "%Y-%m-%dT%H:%M:%E*S%Ez", "%Y-%m-%d %H:%M:%E*S%Ez", "%Y-%m-%dT%H:%M%Ez",
      "%Y-%m-%d %H:%M%Ez",      "%Y-%m-%dT%H:%M:%E*S",    "%Y-%m-%d %H:%M:%E*S",
      "%Y-%m-%dT%H:%M",         "%Y-%m-%d %H:%M",         "%Y-%m-%d",
  };
  for (const char* format : kFormats) {
    std::string error;
    if (absl::ParseTime(format, value, absl::UTCTimeZone(), out, &error)) return true;
  }
  return false;
}

}  // namespace posthog_gateway::flags
