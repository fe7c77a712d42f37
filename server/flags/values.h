#ifndef SERVER_FLAGS_VALUES_H_
#define SERVER_FLAGS_VALUES_H_

// How PostHog's flags service compares a property's value with a filter's:
// the operators, the string form of a JSON value, ASCII and Unicode case
// folding, numbers, semantic versions and dates. Used by the evaluator's
// compilation (compile.cc, on the filter's side, once) and its evaluation
// (evaluator.cc, on the person's side, per call); the small functions
// evaluation calls per property are inline here.
//
// Pure functions; thread-safe.

#include <cstdint>
#include <memory>
#include <string>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "re2/re2.h"

namespace posthog_gateway::flags {

// A filter's operator (`operator` in PostHog's property filters).
enum class Op {
  kExact,
  kIsNot,
  kIsSet,
  kIsNotSet,
  kIcontains,
  kNotIcontains,
  kRegex,
  kNotRegex,
  kStartsWith,
  kNotStartsWith,
  kEndsWith,
  kNotEndsWith,
  kGt,
  kGte,
  kLt,
  kLte,
  kDateBefore,
  kDateAfter,
  kSemverEq,
  kSemverNeq,
  kSemverGt,
  kSemverGte,
  kSemverLt,
  kSemverLte,
  kSemverTilde,
  kSemverCaret,
  kSemverWildcard,
  kFlagEvaluatesTo,
  kIn,
  kNotIn,
  kUnknown,
};

// ParseOp is the operator named `name`; kUnknown for a name PostHog has not
// defined (such a filter is inconclusive).
Op ParseOp(absl::string_view name);

// ValueStr is the string PostHog's flags service matches a JSON value as
// (`to_string_representation`): a string as is, anything else as compact
// JSON (`true`, `null`, `1.0`, `["a","b"]`). posthog-node does the same for
// scalars (for objects and arrays in the substring operators it uses
// JavaScript's String(): a documented difference).
inline absl::string_view ValueStr(const nlohmann::json& value, std::string* buffer) {
  switch (value.type()) {
    case nlohmann::json::value_t::string:
      return value.get_ref<const std::string&>();
    case nlohmann::json::value_t::boolean:
      return value.get<bool>() ? "true" : "false";
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
    default:
      *buffer = value.dump();
      return *buffer;
  }
}

// PropertyValue is a person's property value as the evaluator reads it:
// either a string borrowed from wherever the caller holds it (the request's
// google.protobuf.Value: EvaluateFlags matches it without copying it into
// an nlohmann::json, whose string is a heap allocation per property and
// call: the largest source of mallocs in a 50-flag call, issue 18), or any
// JSON value, borrowed likewise. A string matches exactly as the JSON
// string with the same text: the functions below that take a PropertyValue
// answer as their JSON versions do on that JSON.
//
// Trivially copyable; what it refers to must outlive it.
class PropertyValue final {
 public:
  // The JSON null.
  PropertyValue() : json_(&Null()) {}
  static PropertyValue String(absl::string_view text) { return PropertyValue(text); }
  static PropertyValue Json(const nlohmann::json& value) { return PropertyValue(&value); }

  bool is_string() const { return json_ == nullptr || json_->is_string(); }
  bool is_null() const { return json_ != nullptr && json_->is_null(); }
  bool is_boolean() const { return json_ != nullptr && json_->is_boolean(); }
  // Only when is_boolean().
  bool boolean() const { return json_->get<bool>(); }
  // The text of a string value; only when is_string().
  absl::string_view string() const {
    return json_ == nullptr ? text_ : absl::string_view(json_->get_ref<const std::string&>());
  }
  // The JSON value it stands for, or nullptr for a borrowed string.
  const nlohmann::json* json() const { return json_; }

 private:
  explicit PropertyValue(absl::string_view text) : json_(nullptr), text_(text) {}
  explicit PropertyValue(const nlohmann::json* json) : json_(json) {}

  static const nlohmann::json& Null() {
    static const nlohmann::json* const kNull = new nlohmann::json();
    return *kNull;
  }

  // Null: the string `text_`.
  const nlohmann::json* json_;
  absl::string_view text_;
};

// ValueStr of the JSON `value` stands for.
inline absl::string_view ValueStr(const PropertyValue& value, std::string* buffer) {
  return value.json() == nullptr ? value.string() : ValueStr(*value.json(), buffer);
}

// Fold is ASCII lower-casing.
inline std::string Fold(absl::string_view text) { return absl::AsciiStrToLower(text); }

// Whether `text`, case-folded, equals / contains / starts / ends with the
// already folded `folded`.
inline bool FoldedEquals(absl::string_view text, absl::string_view folded) {
  if (text.size() != folded.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(text[i])) != folded[i]) return false;
  }
  return true;
}

inline bool FoldedContains(absl::string_view text, absl::string_view folded) {
  if (folded.empty()) return true;
  if (text.size() < folded.size()) return false;
  for (size_t i = 0; i + folded.size() <= text.size(); ++i) {
    if (FoldedEquals(text.substr(i, folded.size()), folded)) return true;
  }
  return false;
}

// The server's boolean handling of `exact`/`is_not`: when the filter value is
// a boolean, "true"/"false" (any case) or a list of only those (an empty list
// included), both sides compare as booleans; anything else is false.
bool IsTruthyOrFalsy(const nlohmann::json& value);

// IsTruthy is the boolean `value` stands for under IsTruthyOrFalsy.
bool IsTruthy(const nlohmann::json& value);

// IsTruthy of the JSON `value` stands for.
inline bool IsTruthy(const PropertyValue& value) {
  // A string is true when it is `true` in any ASCII case, as
  // IsTruthy(json) decides by lower-casing it (without the copy).
  return value.json() == nullptr ? absl::EqualsIgnoreCase(value.string(), "true")
                                 : IsTruthy(*value.json());
}

// UnicodeLiteral matches `text` exactly, with Unicode case folding; nullptr
// when `text` is ASCII (ASCII folding is then enough, and cheaper).
std::unique_ptr<RE2> UnicodeLiteral(absl::string_view text);

// Whether `text` matches a matcher made by UnicodeLiteral.
inline bool UnicodeEquals(absl::string_view text, const RE2& matcher) {
  return RE2::FullMatch(re2::StringPiece(text.data(), text.size()), matcher);
}

// Whether RE2's `code` means the pattern is invalid in every engine (the
// server's fancy_regex, JavaScript, Python), rather than a construct RE2
// alone does not run (look-around, backreferences, possessive repeats).
bool InvalidEverywhere(RE2::ErrorCode code);

// Both sides as numbers, as the server parses them: a JSON number, or a
// string that parses as one.
inline bool AsNumber(const nlohmann::json& value, double* out) {
  if (value.is_number()) {
    *out = value.get<double>();
    return true;
  }
  if (value.is_string()) {
    return absl::SimpleAtod(absl::StripAsciiWhitespace(value.get_ref<const std::string&>()), out);
  }
  return false;
}

// AsNumber of the JSON `value` stands for.
inline bool AsNumber(const PropertyValue& value, double* out) {
  if (value.json() != nullptr) return AsNumber(*value.json(), out);
  return absl::SimpleAtod(absl::StripAsciiWhitespace(value.string()), out);
}

// A semantic version's numbers.
struct Semver {
  int64_t major = 0, minor = 0, patch = 0;
  friend bool operator<(const Semver& a, const Semver& b) {
    return std::tie(a.major, a.minor, a.patch) < std::tie(b.major, b.minor, b.patch);
  }
  friend bool operator==(const Semver& a, const Semver& b) {
    return a.major == b.major && a.minor == b.minor && a.patch == b.patch;
  }
};

// ParseSemver follows posthog-python: strip spaces and a `v` prefix, drop
// pre-release and build parts, fill missing parts with 0, reject leading
// zeros and non-digits. `parts` gets how many parts were given.
bool ParseSemver(absl::string_view text, Semver* out, int* parts = nullptr);

// ParseIsoTime parses the absolute dates PostHog stores and persons carry:
// ISO 8601 with or without a time and a zone (naive means UTC), `Z`, a
// ` UTC` suffix.
bool ParseIsoTime(absl::string_view text, absl::Time* out);

// The outcome of matching one property, condition or flag.
enum class Match { kFalse, kTrue, kInconclusive };

inline Match FromBool(bool value) { return value ? Match::kTrue : Match::kFalse; }

}  // namespace posthog_gateway::flags

#endif  // SERVER_FLAGS_VALUES_H_
