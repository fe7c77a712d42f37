#include "server/flags/evaluator.h"

#include <openssl/sha.h>

// The low-level SHA1_* calls are deprecated in OpenSSL 3 but are the only
// ones that let a flag keep the SHA-1 state of its `key.` prefix and copy it
// per evaluation (EVP would allocate a context each time).
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/civil_time.h"
#include "re2/re2.h"

namespace posthog_gateway::flags {

using nlohmann::json;

namespace {

// 2^60 - 1, PostHog's divisor.
constexpr double kLongScale = 1152921504606846975.0;

double HashFromDigest(const unsigned char* digest) {
  uint64_t top = 0;
  for (int i = 0; i < 8; ++i) top = (top << 8) | digest[i];
  return static_cast<double>(top >> 4) / kLongScale;
}

double HashWithPrefix(const SHA_CTX& prefix, absl::string_view identifier,
                      absl::string_view salt) {
  SHA_CTX ctx = prefix;
  SHA1_Update(&ctx, identifier.data(), identifier.size());
  SHA1_Update(&ctx, salt.data(), salt.size());
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1_Final(digest, &ctx);
  return HashFromDigest(digest);
}

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

// ValueStr is the string PostHog's flags service matches a JSON value as
// (`to_string_representation`): a string as is, anything else as compact
// JSON (`true`, `null`, `1.0`, `["a","b"]`). posthog-node does the same for
// scalars (for objects and arrays in the substring operators it uses
// JavaScript's String(): a documented difference).
absl::string_view ValueStr(const json& value, std::string* buffer) {
  switch (value.type()) {
    case json::value_t::string:
      return value.get_ref<const std::string&>();
    case json::value_t::boolean:
      return value.get<bool>() ? "true" : "false";
    case json::value_t::null:
      return "null";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
    default:
      *buffer = value.dump();
      return *buffer;
  }
}

std::string Fold(absl::string_view text) { return absl::AsciiStrToLower(text); }

// Whether `text`, case-folded, equals / contains / starts / ends with the
// already folded `folded`.
bool FoldedEquals(absl::string_view text, absl::string_view folded) {
  if (text.size() != folded.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(text[i])) != folded[i]) return false;
  }
  return true;
}

bool FoldedContains(absl::string_view text, absl::string_view folded) {
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

// UnicodeLiteral matches `text` exactly, with Unicode case folding; nullptr
// when `text` is ASCII (ASCII folding is then enough, and cheaper).
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

bool UnicodeEquals(absl::string_view text, const RE2& matcher) {
  return RE2::FullMatch(re2::StringPiece(text.data(), text.size()), matcher);
}

// Whether RE2's `code` means the pattern is invalid in every engine (the
// server's fancy_regex, JavaScript, Python), rather than a construct RE2
// alone does not run (look-around, backreferences, possessive repeats).
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

// Both sides as numbers, as the server parses them: a JSON number, or a
// string that parses as one.
bool AsNumber(const json& value, double* out) {
  if (value.is_number()) {
    *out = value.get<double>();
    return true;
  }
  if (value.is_string()) {
    return absl::SimpleAtod(absl::StripAsciiWhitespace(value.get_ref<const std::string&>()), out);
  }
  return false;
}

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
bool ParseSemver(absl::string_view text, Semver* out, int* parts = nullptr) {
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

// ParseIsoTime parses the absolute dates PostHog stores and persons carry:
// ISO 8601 with or without a time and a zone (naive means UTC), `Z`, a
// ` UTC` suffix.
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
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 ||
      second > 60) {
    return false;
  }
  const absl::CivilSecond civil(year, month, day, hour, minute, second);
  if (civil.day() != day) return false;  // e.g. February 30.
  *out = absl::FromCivil(civil, absl::UTCTimeZone()) + absl::Nanoseconds(nanos) -
         absl::Minutes(offset_minutes);
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

enum class Match { kFalse, kTrue, kInconclusive };

Match FromBool(bool value) { return value ? Match::kTrue : Match::kFalse; }

}  // namespace

// ---------------------------------------------------------------------------
// Compiled forms.

struct PropertyGroup;

struct CompiledProperty {
  enum class Kind { kPlain, kCohort, kFlag };
  Kind kind = Kind::kPlain;
  std::string key;
  Op op = Op::kExact;
  std::string op_name;
  bool negation = false;
  json value;

  // Plain properties.
  std::string value_str;
  std::string folded;
  bool is_list = false;
  std::vector<std::string> folded_list;
  std::unique_ptr<RE2> regex;
  // The pattern is invalid in every engine: regex and not_regex are false.
  bool regex_invalid = false;
  // exact / is_not on a value with non-ASCII letters: a case-insensitive
  // literal matcher (Unicode case folding, as the server's to_lowercase), for
  // the value or each list item (nullptr for an ASCII one).
  std::unique_ptr<RE2> unicode_exact;
  std::vector<std::unique_ptr<RE2>> unicode_list;
  // exact / is_not compare as booleans (IsTruthyOrFalsy of the value).
  bool boolean_compare = false;
  bool value_truthy = false;
  bool has_number = false;
  double number = 0;
  // Dates: relative (`-30d`) or absolute; a 4-digit year needs "now".
  bool date_ok = false;
  bool date_relative = false;
  int64_t relative_count = 0;
  char relative_unit = 'd';
  bool date_year_only = false;
  int64_t date_year = 0;
  absl::Time date_absolute;
  // Semver: the value, or the [low, high) range of tilde/caret/wildcard.
  bool semver_ok = false;
  Semver semver;
  Semver semver_high;

  // Cohorts.
  std::string cohort_id;

  // Flag dependencies.
  bool chain_present = false;
  std::vector<std::string> chain;
};

struct PropertyGroup {
  bool is_and = true;
  bool malformed = false;
  std::vector<PropertyGroup> groups;
  std::vector<CompiledProperty> properties;
};

struct CompiledCohort {
  PropertyGroup root;
};

struct CompiledCondition {
  std::vector<CompiledProperty> properties;
  bool has_rollout = false;
  double rollout = 100;
  // Only set when it names one of the flag's variants.
  std::string variant_override;
  int aggregation_group_type_index = -1;
};

struct CompiledVariant {
  std::string key;
  double value_min = 0;
  double value_max = 0;
};

struct CompiledFlag {
  std::string key;
  int64_t id = 0;
  int64_t version = 0;
  bool active = true;
  bool ensure_experience_continuity = false;
  bool has_experiment = false;
  bool bucket_by_device = false;
  int aggregation_group_type_index = -1;
  bool early_exit = false;
  std::vector<CompiledCondition> conditions;
  std::vector<CompiledVariant> variants;
  bool feature_enrollment = false;
  std::string enrollment_property;
  bool has_holdout = false;
  double holdout_percentage = 0;
  std::string holdout_variant;
  // Parsed payloads by value: "true", "false" or a variant key.
  absl::flat_hash_map<std::string, json> payloads;
  // SHA-1 state after `key.`.
  SHA_CTX prefix;
  // A part of the definition could not be compiled: evaluation is
  // inconclusive with this reason.
  std::string malformed;
};

// ---------------------------------------------------------------------------
// Public helpers.

double Hash(absl::string_view prefix, absl::string_view identifier, absl::string_view salt) {
  SHA_CTX ctx;
  SHA1_Init(&ctx);
  SHA1_Update(&ctx, prefix.data(), prefix.size());
  return HashWithPrefix(ctx, identifier, salt);
}

const char* ReasonCodeName(ReasonCode code) {
  switch (code) {
    case ReasonCode::kConditionMatch:
      return "condition_match";
    case ReasonCode::kNoConditionMatch:
      return "no_condition_match";
    case ReasonCode::kOutOfRolloutBound:
      return "out_of_rollout_bound";
    case ReasonCode::kNoGroupType:
      return "no_group_type";
    case ReasonCode::kSuperConditionValue:
      return "super_condition_value";
    case ReasonCode::kHoldoutConditionValue:
      return "holdout_condition_value";
    case ReasonCode::kFlagDisabled:
      return "flag_disabled";
  }
  return "unknown";
}

absl::string_view ReasonDescription(const FlagEvaluation& evaluation, std::string* buffer) {
  if (!evaluation.decided) return evaluation.inconclusive_reason;
  switch (evaluation.reason) {
    case ReasonCode::kConditionMatch: {
      // Formatted once: EvaluateFlags writes one per flag and call.
      static const std::vector<std::string>* const kMatched = [] {
        auto* matched = new std::vector<std::string>();
        for (int i = 1; i <= 64; ++i) matched->push_back(absl::StrCat("Matched condition set ", i));
        return matched;
      }();
      const int index = evaluation.condition_index;
      if (index >= 0 && index < static_cast<int>(kMatched->size())) return (*kMatched)[index];
      *buffer = absl::StrCat("Matched condition set ", index + 1);
      return *buffer;
    }
    case ReasonCode::kNoConditionMatch:
      return "No matching condition set";
    case ReasonCode::kOutOfRolloutBound:
      return "Out of rollout bound";
    case ReasonCode::kNoGroupType:
      return "No group type";
    case ReasonCode::kSuperConditionValue:
      return "Super condition value";
    case ReasonCode::kHoldoutConditionValue:
      return "Holdout condition value";
    case ReasonCode::kFlagDisabled:
      return "Feature flag is disabled";
  }
  return "";
}

CompiledDefinitions::CompiledDefinitions() = default;
CompiledDefinitions::~CompiledDefinitions() = default;

const CompiledFlag* CompiledDefinitions::Find(absl::string_view key) const {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : it->second;
}

const std::string& CompiledDefinitions::FlagKey(const CompiledFlag& flag) { return flag.key; }

bool CompiledDefinitions::HasExperiment(const CompiledFlag& flag) { return flag.has_experiment; }

// ---------------------------------------------------------------------------
// Compilation.

namespace {

int OptionalIndex(const json& object, const char* field) {
  if (!object.is_object()) return -1;
  auto it = object.find(field);
  if (it == object.end() || !it->is_number_integer()) return -1;
  return it->get<int>();
}

int64_t IntField(const json& object, const char* field) {
  auto it = object.find(field);
  if (it == object.end() || !it->is_number()) return 0;
  return it->get<int64_t>();
}

bool BoolField(const json& object, const char* field) {
  if (!object.is_object()) return false;
  auto it = object.find(field);
  return it != object.end() && it->is_boolean() && it->get<bool>();
}

void CompileDate(CompiledProperty* property) {
  std::string buffer;
  if (!property->value.is_string()) return;
  absl::string_view text = property->value.get_ref<const std::string&>();
  // Relative: ^-?(\d+)([hdwmy])$ with a number below 10000.
  static const LazyRE2 kRelative = {R"(^-?([0-9]+)([a-z])$)"};
  std::string count;
  std::string unit;
  if (RE2::FullMatch(re2::StringPiece(text.data(), text.size()), *kRelative, &count, &unit)) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(count, &n) || n >= 10000) return;
    if (unit != "h" && unit != "d" && unit != "w" && unit != "m" && unit != "y") return;
    property->date_relative = true;
    property->relative_count = n;
    property->relative_unit = unit[0];
    property->date_ok = true;
    return;
  }
  if (text.size() == 4 && std::all_of(text.begin(), text.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      })) {
    property->date_year_only = absl::SimpleAtoi(text, &property->date_year);
    property->date_ok = property->date_year_only;
    return;
  }
  property->date_ok = ParseIsoTime(text, &property->date_absolute);
}

void CompileSemver(CompiledProperty* property) {
  std::string buffer;
  absl::string_view text = ValueStr(property->value, &buffer);
  text = absl::StripAsciiWhitespace(text);
  Semver low;
  switch (property->op) {
    // The value is a bare version: a `~` or `^` prefix is not a version
    // (posthog-node cannot evaluate it and PostHog refuses it), so it stays
    // unparsed and the property inconclusive.
    case Op::kSemverTilde: {
      if (!ParseSemver(text, &low)) return;
      property->semver = low;
      property->semver_high = Semver{low.major, low.minor + 1, 0};
      break;
    }
    case Op::kSemverCaret: {
      if (!ParseSemver(text, &low)) return;
      property->semver = low;
      if (low.major > 0) {
        property->semver_high = Semver{low.major + 1, 0, 0};
      } else if (low.minor > 0) {
        property->semver_high = Semver{0, low.minor + 1, 0};
      } else {
        property->semver_high = Semver{0, 0, low.patch + 1};
      }
      break;
    }
    case Op::kSemverWildcard: {
      // `1.*`, `1.2.*`: the prefix before the first `*`. Only major and
      // minor count (`1.2.3.*` is `1.2.*`), as in posthog-node.
      std::string prefix(text.substr(0, text.find('*')));
      while (!prefix.empty() && prefix.back() == '.') prefix.pop_back();
      int parts = 0;
      if (prefix.empty() || !ParseSemver(prefix, &low, &parts)) return;
      if (parts == 1) {
        property->semver = Semver{low.major, 0, 0};
        property->semver_high = Semver{low.major + 1, 0, 0};
      } else {
        property->semver = Semver{low.major, low.minor, 0};
        property->semver_high = Semver{low.major, low.minor + 1, 0};
      }
      break;
    }
    default:
      if (!ParseSemver(text, &low)) return;
      property->semver = low;
  }
  property->semver_ok = true;
}

CompiledProperty CompileProperty(const json& filter) {
  CompiledProperty property;
  std::string buffer;
  const std::string type = filter.value("type", std::string("person"));
  if (filter.contains("key") && filter["key"].is_string()) property.key = filter["key"];
  property.value = filter.contains("value") ? filter["value"] : json();
  property.negation = BoolField(filter, "negation");
  property.op_name = filter.contains("operator") && filter["operator"].is_string()
                         ? filter["operator"].get<std::string>()
                         : std::string();
  if (type == "cohort") {
    property.kind = CompiledProperty::Kind::kCohort;
    property.op = property.op_name.empty() ? Op::kIn : ParseOp(property.op_name);
    property.cohort_id = std::string(ValueStr(property.value, &buffer));
    return property;
  }
  if (type == "flag") {
    property.kind = CompiledProperty::Kind::kFlag;
    property.op = ParseOp(property.op_name);
    auto chain = filter.find("dependency_chain");
    if (chain != filter.end() && chain->is_array()) {
      property.chain_present = true;
      for (const json& key : *chain) {
        if (key.is_string()) property.chain.push_back(key.get<std::string>());
      }
    }
    return property;
  }
  property.op = property.op_name.empty() ? Op::kExact : ParseOp(property.op_name);
  property.value_str = std::string(ValueStr(property.value, &buffer));
  property.folded = Fold(property.value_str);
  if (property.value.is_array()) {
    property.is_list = true;
    for (const json& item : property.value) {
      property.folded_list.push_back(Fold(ValueStr(item, &buffer)));
    }
  }
  property.has_number = AsNumber(property.value, &property.number);
  property.boolean_compare = IsTruthyOrFalsy(property.value);
  property.value_truthy = property.boolean_compare && IsTruthy(property.value);
  if ((property.op == Op::kExact || property.op == Op::kIsNot) && !property.boolean_compare) {
    if (property.is_list) {
      for (const json& item : property.value) {
        property.unicode_list.push_back(UnicodeLiteral(ValueStr(item, &buffer)));
      }
    } else {
      property.unicode_exact = UnicodeLiteral(property.value_str);
    }
  }
  switch (property.op) {
    case Op::kRegex:
    case Op::kNotRegex: {
      RE2::Options options;
      options.set_log_errors(false);
      auto regex = std::make_unique<RE2>(
          re2::StringPiece(property.value_str.data(), property.value_str.size()), options);
      if (regex->ok()) {
        property.regex = std::move(regex);
      } else {
        property.regex_invalid = InvalidEverywhere(regex->error_code());
      }
      break;
    }
    case Op::kDateBefore:
    case Op::kDateAfter:
      CompileDate(&property);
      break;
    case Op::kSemverEq:
    case Op::kSemverNeq:
    case Op::kSemverGt:
    case Op::kSemverGte:
    case Op::kSemverLt:
    case Op::kSemverLte:
    case Op::kSemverTilde:
    case Op::kSemverCaret:
    case Op::kSemverWildcard:
      CompileSemver(&property);
      break;
    default:
      break;
  }
  return property;
}

PropertyGroup CompileGroup(const json& group) {
  PropertyGroup compiled;
  if (!group.is_object() || group.empty()) return compiled;  // {} matches.
  const std::string type = group.value("type", std::string());
  if (type != "AND" && type != "OR") {
    compiled.malformed = true;
    return compiled;
  }
  compiled.is_and = type == "AND";
  auto values = group.find("values");
  if (values == group.end() || values->is_null()) return compiled;
  if (!values->is_array()) {
    compiled.malformed = true;
    return compiled;
  }
  for (const json& value : *values) {
    if (!value.is_object()) {
      compiled.malformed = true;
      continue;
    }
    if (value.contains("values")) {
      compiled.groups.push_back(CompileGroup(value));
    } else {
      compiled.properties.push_back(CompileProperty(value));
    }
  }
  return compiled;
}

std::unique_ptr<CompiledFlag> CompileFlag(const json& definition) {
  auto flag = std::make_unique<CompiledFlag>();
  flag->key = definition.value("key", std::string());
  flag->id = IntField(definition, "id");
  flag->version = IntField(definition, "version");
  flag->active = !definition.contains("active") || BoolField(definition, "active");
  flag->ensure_experience_continuity = BoolField(definition, "ensure_experience_continuity");
  flag->has_experiment = BoolField(definition, "has_experiment");
  SHA1_Init(&flag->prefix);
  SHA1_Update(&flag->prefix, flag->key.data(), flag->key.size());
  SHA1_Update(&flag->prefix, ".", 1);

  static const json kEmpty = json::object();
  const json& filters = definition.contains("filters") && definition["filters"].is_object()
                            ? definition["filters"]
                            : kEmpty;
  auto bucketing_is_device = [](const json& object) {
    auto it = object.find("bucketing_identifier");
    return it != object.end() && it->is_string() && *it == "device_id";
  };
  flag->bucket_by_device = bucketing_is_device(definition) || bucketing_is_device(filters);
  flag->aggregation_group_type_index = OptionalIndex(filters, "aggregation_group_type_index");
  flag->early_exit = BoolField(filters, "early_exit");
  flag->feature_enrollment = BoolField(filters, "feature_enrollment");
  flag->enrollment_property = absl::StrCat("$feature_enrollment/", flag->key);

  if (auto multivariate = filters.find("multivariate");
      multivariate != filters.end() && multivariate->is_object()) {
    auto variants = multivariate->find("variants");
    if (variants != multivariate->end() && variants->is_array()) {
      double value_min = 0;
      for (const json& variant : *variants) {
        if (!variant.is_object()) continue;
        CompiledVariant compiled;
        compiled.key = variant.value("key", std::string());
        double rollout = 0;
        if (auto it = variant.find("rollout_percentage"); it != variant.end()) {
          AsNumber(*it, &rollout);
        }
        compiled.value_min = value_min;
        compiled.value_max = value_min + rollout / 100;
        value_min = compiled.value_max;
        flag->variants.push_back(std::move(compiled));
      }
    }
  }

  if (auto groups = filters.find("groups"); groups != filters.end() && groups->is_array()) {
    for (const json& group : *groups) {
      if (!group.is_object()) continue;
      CompiledCondition condition;
      if (auto properties = group.find("properties");
          properties != group.end() && properties->is_array()) {
        for (const json& property : *properties) {
          if (!property.is_object()) continue;
          // A condition's own filters ignore `negation`: PostHog's flags
          // service applies it only inside cohorts (flag filters use
          // operators such as is_not instead), and so does posthog-node.
          condition.properties.push_back(CompileProperty(property));
          condition.properties.back().negation = false;
        }
      }
      // A number, or a string holding one (as JavaScript reads it).
      if (auto rollout = group.find("rollout_percentage");
          rollout != group.end() && !rollout->is_null()) {
        condition.has_rollout = true;
        if (!AsNumber(*rollout, &condition.rollout)) {
          flag->malformed =
              absl::StrCat("rollout_percentage ", rollout->dump(), " is not a number");
        }
      }
      if (auto variant = group.find("variant"); variant != group.end() && variant->is_string()) {
        for (const CompiledVariant& known : flag->variants) {
          if (known.key == *variant) condition.variant_override = known.key;
        }
      }
      condition.aggregation_group_type_index = OptionalIndex(group, "aggregation_group_type_index");
      flag->conditions.push_back(std::move(condition));
    }
  }

  // Holdouts: `holdout {id, exclusion_percentage}` (newest) or
  // `holdout_groups[0] {rollout_percentage, variant: "holdout-<id>"}`.
  // A holdout without a numeric id and percentage is ignored, as the SDKs
  // do; the percentage is clamped to [0, 100].
  if (auto holdout = filters.find("holdout"); holdout != filters.end() && holdout->is_object()) {
    auto id = holdout->find("id");
    auto percentage = holdout->find("exclusion_percentage");
    if (id != holdout->end() && id->is_number_integer() && percentage != holdout->end() &&
        percentage->is_number()) {
      flag->has_holdout = true;
      flag->holdout_percentage = std::clamp(percentage->get<double>(), 0.0, 100.0);
      flag->holdout_variant = absl::StrCat("holdout-", id->get<int64_t>());
    }
  } else if (auto groups = filters.find("holdout_groups");
             groups != filters.end() && groups->is_array() && !groups->empty() &&
             (*groups)[0].is_object()) {
    const json& group = (*groups)[0];
    flag->has_holdout = true;
    if (auto rollout = group.find("rollout_percentage");
        rollout != group.end() && rollout->is_number()) {
      flag->holdout_percentage = rollout->get<double>();
    }
    auto variant = group.find("variant");
    flag->holdout_variant =
        variant != group.end() && variant->is_string() ? variant->get<std::string>() : "holdout";
  }

  if (auto payloads = filters.find("payloads");
      payloads != filters.end() && payloads->is_object()) {
    for (auto it = payloads->begin(); it != payloads->end(); ++it) {
      if (it->is_null()) continue;
      if (it->is_string()) {
        json parsed = json::parse(it->get_ref<const std::string&>(), nullptr, false);
        flag->payloads[it.key()] = parsed.is_discarded() ? *it : std::move(parsed);
      } else {
        flag->payloads[it.key()] = *it;
      }
    }
  }
  return flag;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const CompiledDefinitions>> CompileDefinitions(json body) {
  if (!body.is_object() || !body.contains("flags") || !body["flags"].is_array()) {
    return absl::InvalidArgumentError("flag definitions: expected an object with a `flags` array");
  }
  auto definitions = std::make_shared<CompiledDefinitions>();
  for (const json& flag : body["flags"]) {
    if (!flag.is_object() || !flag.contains("key") || !flag["key"].is_string()) continue;
    if (BoolField(flag, "deleted")) continue;
    definitions->flags_.push_back(CompileFlag(flag));
  }
  for (const auto& flag : definitions->flags_) {
    definitions->by_key_.emplace(flag->key, flag.get());
  }
  if (auto cohorts = body.find("cohorts"); cohorts != body.end() && cohorts->is_object()) {
    for (auto it = cohorts->begin(); it != cohorts->end(); ++it) {
      auto cohort = std::make_unique<CompiledCohort>();
      cohort->root = CompileGroup(*it);
      definitions->cohorts_.emplace(it.key(), std::move(cohort));
    }
  }
  if (auto mapping = body.find("group_type_mapping");
      mapping != body.end() && mapping->is_object()) {
    for (auto it = mapping->begin(); it != mapping->end(); ++it) {
      int index = 0;
      if (absl::SimpleAtoi(it.key(), &index) && it->is_string()) {
        definitions->group_types_[index] = it->get<std::string>();
      }
    }
  }
  definitions->minimal_flag_called_events_ = BoolField(body, "minimal_flag_called_events");
  definitions->raw_ = std::move(body);
  return std::shared_ptr<const CompiledDefinitions>(std::move(definitions));
}

// ---------------------------------------------------------------------------
// Evaluation.

// Evaluator holds the state of one EvaluateFlag call: the dependency cache and
// the first reason for inconclusiveness.
class Evaluator {
 public:
  Evaluator(const CompiledDefinitions& definitions, const EvaluationContext& context,
            absl::Time now)
      : definitions_(definitions), context_(context), now_(now) {}

  FlagEvaluation Evaluate(const CompiledFlag& flag);

 private:
  // Where a condition reads properties and what it buckets by.
  struct Subject {
    const json* properties = nullptr;
    // An implicit property (distinct_id for persons, $group_key for groups),
    // used when the caller's properties lack it.
    absl::string_view implicit_key;
    absl::string_view implicit_value;
    absl::string_view bucketing;
  };

  // Dependency values: enabled with a variant, enabled, disabled, unknown.
  struct DependencyValue {
    bool decided = false;
    // Undecided because it needs PostHog (a static cohort): so does every
    // flag that depends on it.
    bool requires_server = false;
    bool enabled = false;
    std::string variant;
  };

  Match Inconclusive(std::string why) {
    if (why_.empty()) why_ = std::move(why);
    return Match::kInconclusive;
  }

  Match MatchProperty(const CompiledProperty& property, const Subject& subject);
  Match MatchPlain(const CompiledProperty& property, const Subject& subject);
  Match MatchCohort(const CompiledProperty& property);
  Match MatchGroup(const PropertyGroup& group, const Subject& subject);
  Match MatchDependency(const CompiledProperty& property);
  const DependencyValue* EvaluateDependency(const std::string& key);
  absl::Time RelativeDate(const CompiledProperty& property) const;
  absl::string_view Variant(const CompiledFlag& flag, const CompiledCondition* condition,
                            absl::string_view bucketing) const;
  FlagEvaluation Finish(const CompiledFlag& flag, FlagEvaluation result) const;

  const CompiledDefinitions& definitions_;
  const EvaluationContext& context_;
  const absl::Time now_;
  std::string why_;
  // A static or missing cohort, a malformed group: the whole flag needs the
  // server, whatever the other conditions say.
  bool requires_server_ = false;
  int depth_ = 0;
  std::vector<std::pair<std::string, DependencyValue>> dependencies_;
};

absl::Time Evaluator::RelativeDate(const CompiledProperty& property) const {
  const int64_t n = property.relative_count;
  switch (property.relative_unit) {
    case 'h':
      return now_ - absl::Hours(n);
    case 'd':
      return now_ - absl::Hours(24 * n);
    case 'w':
      return now_ - absl::Hours(24 * 7 * n);
    default:
      break;
  }
  // Months and years, clamped to the end of the month (dateutil's
  // relativedelta).
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilSecond civil = absl::ToCivilSecond(now_, utc);
  const int64_t months = property.relative_unit == 'm' ? n : 12 * n;
  const absl::CivilMonth month = absl::CivilMonth(civil) - months;
  const absl::CivilDay last_day = absl::CivilDay(month + 1) - 1;
  const int day = std::min(civil.day(), last_day.day());
  const absl::CivilSecond shifted(month.year(), month.month(), day, civil.hour(), civil.minute(),
                                  civil.second());
  return absl::FromCivil(shifted, utc) + (now_ - absl::FromCivil(civil, utc));
}

Match Evaluator::MatchPlain(const CompiledProperty& p, const Subject& subject) {
  if (p.op == Op::kUnknown || p.op == Op::kFlagEvaluatesTo || p.op == Op::kIn ||
      p.op == Op::kNotIn) {
    return Inconclusive(absl::StrCat("operator `", p.op_name, "` is not evaluated locally"));
  }
  const json* found = nullptr;
  json implicit;
  if (subject.properties != nullptr && subject.properties->is_object()) {
    auto it = subject.properties->find(p.key);
    if (it != subject.properties->end()) found = &*it;
  }
  if (found == nullptr && !subject.implicit_key.empty() && p.key == subject.implicit_key) {
    implicit = std::string(subject.implicit_value);
    found = &implicit;
  }
  if (found == nullptr) {
    if (p.op == Op::kIsNotSet) return Match::kTrue;
    return Inconclusive(absl::StrCat("property `", p.key, "` was not given"));
  }
  if (p.op == Op::kIsNotSet) return Match::kFalse;
  if (p.op == Op::kIsSet) return Match::kTrue;  // Even when null, as the server.
  const json& value = *found;
  // A null value matches as the string `null` for the string operators (the
  // server's to_string); every other operator is false on it.
  if (value.is_null()) {
    switch (p.op) {
      case Op::kExact:
      case Op::kIsNot:
      case Op::kIcontains:
      case Op::kNotIcontains:
      case Op::kStartsWith:
      case Op::kNotStartsWith:
      case Op::kEndsWith:
      case Op::kNotEndsWith:
      case Op::kRegex:
      case Op::kNotRegex:
        break;
      default:
        return Match::kFalse;
    }
  }

  std::string buffer;
  switch (p.op) {
    case Op::kExact:
    case Op::kIsNot: {
      if (p.boolean_compare) {
        const bool in = IsTruthy(value) == p.value_truthy;
        return FromBool(p.op == Op::kExact ? in : !in);
      }
      const absl::string_view text = ValueStr(value, &buffer);
      bool in = false;
      if (p.is_list) {
        for (size_t i = 0; i < p.folded_list.size() && !in; ++i) {
          const RE2* unicode = i < p.unicode_list.size() ? p.unicode_list[i].get() : nullptr;
          in = unicode != nullptr ? UnicodeEquals(text, *unicode)
                                  : FoldedEquals(text, p.folded_list[i]);
        }
      } else {
        in = p.unicode_exact != nullptr ? UnicodeEquals(text, *p.unicode_exact)
                                        : FoldedEquals(text, p.folded);
      }
      return FromBool(p.op == Op::kExact ? in : !in);
    }
    case Op::kIcontains:
    case Op::kNotIcontains: {
      bool in = FoldedContains(ValueStr(value, &buffer), p.folded);
      return FromBool(p.op == Op::kIcontains ? in : !in);
    }
    case Op::kStartsWith:
    case Op::kNotStartsWith: {
      const absl::string_view text = ValueStr(value, &buffer);
      bool in = text.size() >= p.folded.size() &&
                FoldedEquals(text.substr(0, p.folded.size()), p.folded);
      return FromBool(p.op == Op::kStartsWith ? in : !in);
    }
    case Op::kEndsWith:
    case Op::kNotEndsWith: {
      const absl::string_view text = ValueStr(value, &buffer);
      bool in = text.size() >= p.folded.size() &&
                FoldedEquals(text.substr(text.size() - p.folded.size()), p.folded);
      return FromBool(p.op == Op::kEndsWith ? in : !in);
    }
    case Op::kRegex:
    case Op::kNotRegex: {
      if (p.regex_invalid) return Match::kFalse;  // For both, as the server.
      if (p.regex == nullptr) {
        return Inconclusive(absl::StrCat("regular expression of `", p.key, "` is not RE2"));
      }
      const absl::string_view text = ValueStr(value, &buffer);
      bool in = RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), *p.regex);
      return FromBool(p.op == Op::kRegex ? in : !in);
    }
    case Op::kGt:
    case Op::kGte:
    case Op::kLt:
    case Op::kLte: {
      double lhs = 0;
      int order;
      if (p.has_number && AsNumber(value, &lhs)) {
        order = lhs < p.number ? -1 : (lhs > p.number ? 1 : 0);
      } else {
        const int c = ValueStr(value, &buffer).compare(p.value_str);
        order = c < 0 ? -1 : (c > 0 ? 1 : 0);
      }
      switch (p.op) {
        case Op::kGt:
          return FromBool(order > 0);
        case Op::kGte:
          return FromBool(order >= 0);
        case Op::kLt:
          return FromBool(order < 0);
        default:
          return FromBool(order <= 0);
      }
    }
    case Op::kDateBefore:
    case Op::kDateAfter: {
      if (!p.date_ok) return Inconclusive(absl::StrCat("date of `", p.key, "` is not valid"));
      absl::Time flag_date = p.date_absolute;
      if (p.date_relative) {
        flag_date = RelativeDate(p);
      } else if (p.date_year_only) {
        const absl::CivilDay today = absl::ToCivilDay(now_, absl::UTCTimeZone());
        flag_date = absl::FromCivil(absl::CivilDay(p.date_year, today.month(), today.day()),
                                    absl::UTCTimeZone());
      }
      absl::Time person_date;
      if (!value.is_string() || !ParseIsoTime(value.get_ref<const std::string&>(), &person_date)) {
        return Inconclusive(absl::StrCat("property `", p.key, "` is not a date"));
      }
      return FromBool(p.op == Op::kDateBefore ? person_date < flag_date : person_date > flag_date);
    }
    case Op::kSemverEq:
    case Op::kSemverNeq:
    case Op::kSemverGt:
    case Op::kSemverGte:
    case Op::kSemverLt:
    case Op::kSemverLte:
    case Op::kSemverTilde:
    case Op::kSemverCaret:
    case Op::kSemverWildcard: {
      Semver version;
      if (!p.semver_ok || !ParseSemver(ValueStr(value, &buffer), &version)) {
        return Inconclusive(absl::StrCat("version of `", p.key, "` is not semver"));
      }
      switch (p.op) {
        case Op::kSemverEq:
          return FromBool(version == p.semver);
        case Op::kSemverNeq:
          return FromBool(!(version == p.semver));
        case Op::kSemverGt:
          return FromBool(p.semver < version);
        case Op::kSemverGte:
          return FromBool(!(version < p.semver));
        case Op::kSemverLt:
          return FromBool(version < p.semver);
        case Op::kSemverLte:
          return FromBool(!(p.semver < version));
        default:
          return FromBool(!(version < p.semver) && version < p.semver_high);
      }
    }
    default:
      return Inconclusive(absl::StrCat("operator `", p.op_name, "` is not evaluated locally"));
  }
}

Match Evaluator::MatchGroup(const PropertyGroup& group, const Subject& subject) {
  if (group.malformed) {
    requires_server_ = true;
    return Inconclusive("malformed cohort");
  }
  bool inconclusive = false;
  // Folds one member's result in; returns the group's result once decided.
  auto decides = [&](Match match) -> std::optional<Match> {
    if (requires_server_) return Match::kInconclusive;
    if (match == Match::kInconclusive) {
      inconclusive = true;
    } else if (group.is_and && match == Match::kFalse) {
      return Match::kFalse;
    } else if (!group.is_and && match == Match::kTrue) {
      return Match::kTrue;
    }
    return std::nullopt;
  };
  for (const PropertyGroup& child : group.groups) {
    if (std::optional<Match> result = decides(MatchGroup(child, subject))) return *result;
  }
  for (const CompiledProperty& property : group.properties) {
    if (std::optional<Match> result = decides(MatchProperty(property, subject))) return *result;
  }
  if (inconclusive) return Match::kInconclusive;
  return FromBool(group.is_and);
}

Match Evaluator::MatchCohort(const CompiledProperty& property) {
  auto it = definitions_.cohorts_.find(property.cohort_id);
  if (it == definitions_.cohorts_.end()) {
    requires_server_ = true;
    return Inconclusive(absl::StrCat("cohort ", property.cohort_id, " is static or unknown"));
  }
  Subject person;
  person.properties = &context_.person_properties;
  person.implicit_key = "distinct_id";
  person.implicit_value = context_.distinct_id;
  Match match = MatchGroup(it->second->root, person);
  if (match != Match::kInconclusive && property.op == Op::kNotIn) {
    match = FromBool(match == Match::kFalse);
  }
  return match;
}

const Evaluator::DependencyValue* Evaluator::EvaluateDependency(const std::string& key) {
  for (const auto& entry : dependencies_) {
    if (entry.first == key) return &entry.second;
  }
  DependencyValue value;
  const CompiledFlag* flag = definitions_.Find(key);
  if (flag != nullptr && depth_ < 32) {
    ++depth_;
    const std::string saved_why = std::move(why_);
    const bool saved_requires = requires_server_;
    why_.clear();
    requires_server_ = false;
    FlagEvaluation result = Evaluate(*flag);
    value.requires_server = requires_server_;
    why_ = saved_why.empty() ? why_ : saved_why;
    requires_server_ = saved_requires;
    --depth_;
    value.decided = result.decided;
    value.enabled = result.enabled;
    value.variant = std::string(result.variant);
  }
  dependencies_.emplace_back(key, std::move(value));
  return &dependencies_.back().second;
}

Match Evaluator::MatchDependency(const CompiledProperty& p) {
  if (p.op != Op::kFlagEvaluatesTo || p.key.empty() || p.value.is_null()) return Match::kFalse;
  if (!p.chain_present || p.chain.empty()) {
    return Inconclusive(absl::StrCat("dependency `", p.key, "` has no dependency chain"));
  }
  for (const std::string& key : p.chain) {
    if (definitions_.Find(key) == nullptr) {
      return Inconclusive(absl::StrCat("dependency `", key, "` is not in the definitions"));
    }
    const DependencyValue* value = EvaluateDependency(key);
    if (value->requires_server) requires_server_ = true;
    if (!value->decided) {
      return Inconclusive(absl::StrCat("dependency `", key, "` is inconclusive"));
    }
  }
  const DependencyValue* actual = EvaluateDependency(p.key);
  if (actual->requires_server) requires_server_ = true;
  if (!actual->decided) {
    return Inconclusive(absl::StrCat("dependency `", p.key, "` is inconclusive"));
  }
  if (!actual->variant.empty()) {
    if (p.value.is_boolean()) return FromBool(p.value.get<bool>());
    if (p.value.is_string())
      return FromBool(p.value.get_ref<const std::string&>() == actual->variant);
    return Match::kFalse;
  }
  if (p.value.is_boolean()) return FromBool(p.value.get<bool>() == actual->enabled);
  return Match::kFalse;
}

Match Evaluator::MatchProperty(const CompiledProperty& property, const Subject& subject) {
  Match match;
  switch (property.kind) {
    case CompiledProperty::Kind::kCohort:
      match = MatchCohort(property);
      break;
    case CompiledProperty::Kind::kFlag:
      match = MatchDependency(property);
      break;
    default:
      match = MatchPlain(property, subject);
  }
  if (match == Match::kInconclusive || !property.negation) return match;
  return FromBool(match == Match::kFalse);
}

absl::string_view Evaluator::Variant(const CompiledFlag& flag,
                                     const CompiledCondition* condition,
                                     absl::string_view bucketing) const {
  if (condition != nullptr && !condition->variant_override.empty()) {
    return condition->variant_override;
  }
  if (flag.variants.empty()) return {};
  const double hash = HashWithPrefix(flag.prefix, bucketing, "variant");
  for (const CompiledVariant& variant : flag.variants) {
    if (hash >= variant.value_min && hash < variant.value_max) return variant.key;
  }
  return {};
}

FlagEvaluation Evaluator::Finish(const CompiledFlag& flag, FlagEvaluation result) const {
  result.decided = true;
  // A disabled value has no payload (the server and the SDKs agree), even if
  // the flag stores one under "false".
  if (!result.enabled) return result;
  const absl::string_view lookup = !result.variant.empty() ? result.variant : "true";
  auto it = flag.payloads.find(lookup);
  if (it != flag.payloads.end()) result.payload = &it->second;
  return result;
}

FlagEvaluation Evaluator::Evaluate(const CompiledFlag& flag) {
  FlagEvaluation result;
  result.flag_id = flag.id;
  result.flag_version = flag.version;
  auto inconclusive = [&](std::string why) {
    result.decided = false;
    result.inconclusive_reason = why_.empty() ? std::move(why) : why_;
    return result;
  };

  // 1. Disabled (decided even under experience continuity: PostHog answers
  //    flag_disabled either way).
  if (!flag.active) {
    result.reason = ReasonCode::kFlagDisabled;
    return Finish(flag, result);
  }
  if (!flag.malformed.empty()) return inconclusive(flag.malformed);
  if (flag.ensure_experience_continuity) {
    return inconclusive("experience continuity needs PostHog's stored hash keys");
  }

  // 2. Who the flag is about: a group, or the person.
  Subject person;
  person.properties = &context_.person_properties;
  person.implicit_key = "distinct_id";
  person.implicit_value = context_.distinct_id;
  // A group flag buckets by the group key whatever its bucketing_identifier.
  if (flag.bucket_by_device && flag.aggregation_group_type_index < 0) {
    if (context_.device_id.empty())
      return inconclusive("the flag buckets by device_id; none given");
    person.bucketing = context_.device_id;
  } else {
    person.bucketing = context_.distinct_id;
  }
  static const json kNoProperties = json::object();
  // Fills `subject` for group type `index`. Returns false with `missing`
  // telling whether the group was absent (true) or the type unknown (false).
  auto group_subject = [&](int index, Subject* subject, bool* missing) {
    auto type = definitions_.group_types_.find(index);
    *missing = false;
    if (type == definitions_.group_types_.end()) return false;
    auto key = context_.groups.find(type->second);
    if (key == context_.groups.end() || key->second.empty()) {
      *missing = true;
      return false;
    }
    auto properties = context_.group_properties.find(type->second);
    subject->properties =
        properties == context_.group_properties.end() ? &kNoProperties : &properties->second;
    subject->implicit_key = "$group_key";
    subject->implicit_value = key->second;
    subject->bucketing = key->second;
    return true;
  };
  Subject flag_subject = person;
  if (flag.aggregation_group_type_index >= 0) {
    bool missing = false;
    if (!group_subject(flag.aggregation_group_type_index, &flag_subject, &missing)) {
      if (!missing) {
        return inconclusive(absl::StrCat("unknown group type index ",
                                         flag.aggregation_group_type_index));
      }
      result.reason = ReasonCode::kNoGroupType;
      return Finish(flag, result);
    }
  }

  // 3. Feature enrollment (early access), by the person's property.
  if (flag.feature_enrollment && context_.person_properties.is_object()) {
    auto it = context_.person_properties.find(flag.enrollment_property);
    if (it != context_.person_properties.end()) {
      const bool enrolled = (it->is_boolean() && it->get<bool>()) ||
                            (it->is_string() && Fold(it->get<std::string>()) == "true");
      result.reason = ReasonCode::kSuperConditionValue;
      result.condition_index = 0;
      result.enabled = enrolled;
      if (enrolled) result.variant = Variant(flag, nullptr, flag_subject.bucketing);
      return Finish(flag, result);
    }
  }

  // 4. Holdout.
  if (flag.has_holdout && !flag_subject.bucketing.empty()) {
    const double hash = Hash("holdout-", flag_subject.bucketing, "");
    if (hash <= flag.holdout_percentage / 100) {
      result.enabled = true;
      result.variant = flag.holdout_variant;
      result.reason = ReasonCode::kHoldoutConditionValue;
      return Finish(flag, result);
    }
  }

  // 5. Release conditions, in order.
  bool any_inconclusive = false;
  bool out_of_rollout = false;
  int out_of_rollout_index = -1;
  for (size_t i = 0; i < flag.conditions.size(); ++i) {
    const CompiledCondition& condition = flag.conditions[i];
    Subject subject = flag_subject;
    if (condition.aggregation_group_type_index >= 0 &&
        condition.aggregation_group_type_index != flag.aggregation_group_type_index) {
      // A condition on a group the caller did not give, or on a group type
      // the definitions do not know, is skipped.
      bool missing = false;
      if (!group_subject(condition.aggregation_group_type_index, &subject, &missing)) continue;
    }
    Match match = Match::kTrue;
    // A property that needs PostHog (a static or missing cohort) leaves the
    // condition open: a definite non-match of another property still decides
    // it, otherwise the whole flag needs PostHog.
    bool condition_requires_server = false;
    for (const CompiledProperty& property : condition.properties) {
      Match one = MatchProperty(property, subject);
      if (requires_server_) {
        condition_requires_server = true;
        requires_server_ = false;
        one = Match::kInconclusive;
      }
      if (one == Match::kFalse) {
        match = Match::kFalse;
        break;
      }
      if (one == Match::kInconclusive) match = Match::kInconclusive;
    }
    if (match == Match::kFalse) continue;
    if (condition_requires_server) {
      requires_server_ = true;  // Read by a flag that depends on this one.
      return inconclusive("needs PostHog");
    }
    if (match == Match::kInconclusive) {
      any_inconclusive = true;
      continue;
    }
    if (condition.has_rollout &&
        HashWithPrefix(flag.prefix, subject.bucketing, "") > condition.rollout / 100) {
      if (!out_of_rollout) out_of_rollout_index = static_cast<int>(i);
      out_of_rollout = true;
      // Early exit decides "false" only when no earlier condition was left
      // undecided: that one might have matched.
      if (flag.early_exit && any_inconclusive) {
        return inconclusive("a condition before an early exit could not be decided locally");
      }
      if (flag.early_exit) {
        result.reason = ReasonCode::kOutOfRolloutBound;
        result.condition_index = out_of_rollout_index;
        return Finish(flag, result);
      }
      continue;
    }
    result.enabled = true;
    result.variant = Variant(flag, &condition, subject.bucketing);
    result.reason = ReasonCode::kConditionMatch;
    result.condition_index = static_cast<int>(i);
    return Finish(flag, result);
  }
  if (any_inconclusive) return inconclusive("a condition could not be decided locally");
  if (out_of_rollout) {
    result.reason = ReasonCode::kOutOfRolloutBound;
    result.condition_index = out_of_rollout_index;
  } else {
    result.reason = ReasonCode::kNoConditionMatch;
  }
  return Finish(flag, result);
}

FlagEvaluation EvaluateFlag(const CompiledDefinitions& definitions, const CompiledFlag& flag,
                            const EvaluationContext& context, absl::Time now) {
  Evaluator evaluator(definitions, context, now);
  return evaluator.Evaluate(flag);
}

}  // namespace posthog_gateway::flags
