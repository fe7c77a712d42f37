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
#include "server/flags/compiled_flag.h"
#include "server/flags/sha1_lanes.h"
#include "server/flags/values.h"

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

// The hash of a digest whose first two words are h0 and h1.
double HashFromState(uint32_t h0, uint32_t h1) {
  // The digest's first 8 bytes, big-endian: h0 then h1.
  const uint64_t top = (static_cast<uint64_t>(h0) << 32) | h1;
  return static_cast<double>(top >> 4) / kLongScale;
}

// SHA-1's message length, big-endian: written byte by byte, which the
// compiler merges into one swapped store (a loop of eight was 15 % of
// BucketingHash's own samples).
inline void PutBigEndian64(uint64_t value, unsigned char* out) {
  out[0] = static_cast<unsigned char>(value >> 56);
  out[1] = static_cast<unsigned char>(value >> 48);
  out[2] = static_cast<unsigned char>(value >> 40);
  out[3] = static_cast<unsigned char>(value >> 32);
  out[4] = static_cast<unsigned char>(value >> 24);
  out[5] = static_cast<unsigned char>(value >> 16);
  out[6] = static_cast<unsigned char>(value >> 8);
  out[7] = static_cast<unsigned char>(value);
}

// What nearly every call hashes (`key.` + a distinct id + a salt) fits in
// the one block SHA-1 pads it to. PadBlock writes that block into `block`
// and returns true, or returns false when the message needs two.
// `prefix` holds its unhashed tail in `data` (`num` bytes) and the bits
// hashed so far in Nh:Nl, as OpenSSL's md32_common.h keeps them.
bool PadBlock(const SHA_CTX& prefix, absl::string_view identifier, absl::string_view salt,
              unsigned char* block) {
  const size_t buffered = prefix.num;
  const size_t length = buffered + identifier.size() + salt.size();
  if (length > SHA_CBLOCK - 9) return false;
  std::memset(block, 0, SHA_CBLOCK);
  std::memcpy(block, prefix.data, buffered);
  if (!identifier.empty()) std::memcpy(block + buffered, identifier.data(), identifier.size());
  if (!salt.empty()) std::memcpy(block + buffered + identifier.size(), salt.data(), salt.size());
  block[length] = 0x80;
  const uint64_t bits = ((static_cast<uint64_t>(prefix.Nh) << 32) | prefix.Nl) +
                        8 * static_cast<uint64_t>(identifier.size() + salt.size());
  PutBigEndian64(bits, block + SHA_CBLOCK - 8);
  return true;
}

double HashWithPrefix(const SHA_CTX& prefix, absl::string_view identifier, absl::string_view salt) {
  // One block compressed alone: SHA1_Update and SHA1_Final around the same
  // compression cost about as much again (bookkeeping, padding,
  // OPENSSL_cleanse of the context): 15 % of the evaluator's samples in a
  // perf profile of 50 flags (issue 18).
  unsigned char block[SHA_CBLOCK];
  if (PadBlock(prefix, identifier, salt, block)) {
    SHA_CTX ctx;
    ctx.h0 = prefix.h0;
    ctx.h1 = prefix.h1;
    ctx.h2 = prefix.h2;
    ctx.h3 = prefix.h3;
    ctx.h4 = prefix.h4;
    SHA1_Transform(&ctx, block);
    return HashFromState(ctx.h0, ctx.h1);
  }
  SHA_CTX ctx = prefix;
  SHA1_Update(&ctx, identifier.data(), identifier.size());
  SHA1_Update(&ctx, salt.data(), salt.size());
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1_Final(digest, &ctx);
  return HashFromDigest(digest);
}

}  // namespace

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

// ---------------------------------------------------------------------------
// Evaluation.

// Evaluator holds the state of one EvaluateFlag call: the dependency cache and
// the first reason for inconclusiveness.
class Evaluator {
 public:
  Evaluator(const CompiledDefinitions& definitions, const EvaluationContext& context,
            absl::Time now, EvaluationCache* cache)
      : definitions_(definitions), context_(context), now_(now), cache_(cache) {
    // Relative dates make a filter's outcome depend on `now` too.
    if (cache_ != nullptr && (cache_->definitions_ != &definitions ||
                              cache_->context_ != &context || cache_->now_ != now)) {
      cache_->definitions_ = &definitions;
      cache_->context_ = &context;
      cache_->now_ = now;
      cache_->entries_.assign(definitions.property_keys_, EvaluationCache::Entry());
      cache_->outcomes_.assign(definitions.plain_filters_, EvaluationCache::kUnknown);
      cache_->rollout_hashes_.assign(definitions.flags_.size(), -1);
      cache_->variant_hashes_.assign(definitions.flags_.size(), -1);
    }
  }

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
                            absl::string_view bucketing);
  FlagEvaluation Finish(const CompiledFlag& flag, FlagEvaluation result) const;

  // Hash(`key.` of `flag`, `bucketing`, `` or `variant`), from the cache
  // when `bucketing` is the person's distinct id.
  double BucketingHash(const CompiledFlag& flag, absl::string_view bucketing, bool variant);

  // Sets `*value` to the person's property `key` and returns true, or
  // returns false when the person has none: from context_.person_lookup
  // (which may convert it into `storage`) when set, else from
  // context_.person_properties.
  bool PersonProperty(const std::string& key, PropertyValue* value, json* storage) const;

  // The cache's entry for `p` when `subject` is the person, else nullptr.
  EvaluationCache::Entry* CachedPersonValue(const CompiledProperty& p, const Subject& subject);

  const CompiledDefinitions& definitions_;
  const EvaluationContext& context_;
  const absl::Time now_;
  EvaluationCache* const cache_;
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

EvaluationCache::Entry* Evaluator::CachedPersonValue(const CompiledProperty& p,
                                                     const Subject& subject) {
  // Group subjects read their group's properties: not cached (rare, and
  // one object per group type).
  if (cache_ == nullptr || p.key_slot < 0 || subject.properties != &context_.person_properties) {
    return nullptr;
  }
  EvaluationCache::Entry& entry = cache_->entries_[p.key_slot];
  if (!entry.looked_up) {
    entry.looked_up = true;
    entry.found = PersonProperty(p.key, &entry.value, &entry.storage);
  }
  return &entry;
}

bool Evaluator::PersonProperty(const std::string& key, PropertyValue* value, json* storage) const {
  if (context_.person_lookup != nullptr) return context_.person_lookup->Find(key, value, storage);
  if (!context_.person_properties.is_object()) return false;
  auto it = context_.person_properties.find(key);
  if (it == context_.person_properties.end()) return false;
  *value = PropertyValue::Json(*it);
  return true;
}

Match Evaluator::MatchPlain(const CompiledProperty& p, const Subject& subject) {
  if (p.op == Op::kUnknown || p.op == Op::kFlagEvaluatesTo || p.op == Op::kIn ||
      p.op == Op::kNotIn) {
    return Inconclusive(absl::StrCat("operator `", p.op_name, "` is not evaluated locally"));
  }
  bool found = false;
  PropertyValue value;
  json person_storage;
  EvaluationCache::Entry* cached = CachedPersonValue(p, subject);
  if (cached != nullptr) {
    found = cached->found;
    value = cached->value;
  } else if (subject.properties == &context_.person_properties) {
    found = PersonProperty(p.key, &value, &person_storage);
  } else if (subject.properties != nullptr && subject.properties->is_object()) {
    auto it = subject.properties->find(p.key);
    if (it != subject.properties->end()) {
      found = true;
      value = PropertyValue::Json(*it);
    }
  }
  if (!found && !subject.implicit_key.empty() && p.key == subject.implicit_key) {
    // The implicit value is a string (a distinct id, a group key): viewed,
    // not copied.
    found = true;
    value = PropertyValue::String(subject.implicit_value);
    cached = nullptr;  // The cache holds the person's own values only.
  }
  if (!found) {
    if (p.op == Op::kIsNotSet) return Match::kTrue;
    return Inconclusive(absl::StrCat("property `", p.key, "` was not given"));
  }
  if (p.op == Op::kIsNotSet) return Match::kFalse;
  if (p.op == Op::kIsSet) return Match::kTrue;  // Even when null, as the server.
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
      bool in =
          text.size() >= p.folded.size() && FoldedEquals(text.substr(0, p.folded.size()), p.folded);
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
      bool is_date;
      if (cached != nullptr && cached->date != EvaluationCache::Entry::kNotYet) {
        is_date = cached->date == EvaluationCache::Entry::kParsed;
        person_date = cached->date_value;
      } else {
        is_date = value.is_string() && ParseIsoTime(value.string(), &person_date);
        if (cached != nullptr) {
          cached->date =
              is_date ? EvaluationCache::Entry::kParsed : EvaluationCache::Entry::kInvalid;
          cached->date_value = person_date;
        }
      }
      if (!is_date) return Inconclusive(absl::StrCat("property `", p.key, "` is not a date"));
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
      bool is_version = false;
      if (p.semver_ok) {
        if (cached != nullptr && cached->version != EvaluationCache::Entry::kNotYet) {
          is_version = cached->version == EvaluationCache::Entry::kParsed;
          version =
              Semver{cached->version_value[0], cached->version_value[1], cached->version_value[2]};
        } else {
          is_version = ParseSemver(ValueStr(value, &buffer), &version);
          if (cached != nullptr) {
            cached->version =
                is_version ? EvaluationCache::Entry::kParsed : EvaluationCache::Entry::kInvalid;
            cached->version_value[0] = version.major;
            cached->version_value[1] = version.minor;
            cached->version_value[2] = version.patch;
          }
        }
      }
      if (!is_version) {
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
      // Only a decided outcome is kept: an inconclusive one also names why.
      if (cache_ != nullptr && property.filter_slot >= 0 &&
          subject.properties == &context_.person_properties) {
        EvaluationCache::Outcome& outcome = cache_->outcomes_[property.filter_slot];
        if (outcome == EvaluationCache::kUnknown) {
          match = MatchPlain(property, subject);
          if (match != Match::kInconclusive) {
            outcome = match == Match::kTrue ? EvaluationCache::kTrue : EvaluationCache::kFalse;
          }
        } else {
          match = FromBool(outcome == EvaluationCache::kTrue);
        }
      } else {
        match = MatchPlain(property, subject);
      }
  }
  if (match == Match::kInconclusive || !property.negation) return match;
  return FromBool(match == Match::kFalse);
}

double Evaluator::BucketingHash(const CompiledFlag& flag, absl::string_view bucketing,
                                bool variant) {
  const absl::string_view salt = variant ? "variant" : "";
  if (cache_ == nullptr || flag.index < 0 || bucketing.data() != context_.distinct_id.data() ||
      !HaveSha1Lanes()) {
    return HashWithPrefix(flag.prefix, bucketing, salt);
  }
  std::vector<double>& hashes = variant ? cache_->variant_hashes_ : cache_->rollout_hashes_;
  if (hashes[flag.index] >= 0) return hashes[flag.index];
  const int job = variant ? flag.variant_hash_job : flag.rollout_hash_job;
  if (job < 0) return hashes[flag.index] = HashWithPrefix(flag.prefix, bucketing, salt);
  // This hash and the next few the definitions' flags will likely need
  // (EvaluateFlags asks for them in that order), their blocks compressed
  // together. The list of likely hashes is the definitions': no search per
  // miss (scanning the next flags for them was a third of this function's
  // cost in a perf profile of 50 flags, issue 18).
  const auto& jobs = definitions_.hash_jobs_;
  double* into[kSha1Lanes];
  uint32_t states[kSha1Lanes][5];
  unsigned char blocks[kSha1Lanes][SHA_CBLOCK];
  int n = 0;
  for (size_t j = job; j < jobs.size() && n < kSha1Lanes; ++j) {
    const CompiledDefinitions::HashJob& next = jobs[j];
    double* hash =
        next.variant ? &cache_->variant_hashes_[next.flag] : &cache_->rollout_hashes_[next.flag];
    if (static_cast<int>(j) != job && *hash >= 0) continue;
    // PadBlock, from the job's copy of the prefix.
    const absl::string_view next_salt = next.variant ? "variant" : "";
    const size_t length = next.buffered + bucketing.size() + next_salt.size();
    if (length > SHA_CBLOCK - 9) {
      // Too long for one block: this one alone, the others later.
      if (static_cast<int>(j) == job) {
        return hashes[flag.index] = HashWithPrefix(flag.prefix, bucketing, salt);
      }
      continue;
    }
    unsigned char* block = blocks[n];
    std::memcpy(block, next.tail, SHA_CBLOCK);
    if (!bucketing.empty()) std::memcpy(block + next.buffered, bucketing.data(), bucketing.size());
    if (!next_salt.empty()) {
      std::memcpy(block + next.buffered + bucketing.size(), next_salt.data(), next_salt.size());
    }
    block[length] = 0x80;
    const uint64_t bits =
        next.bits + 8 * static_cast<uint64_t>(bucketing.size() + next_salt.size());
    PutBigEndian64(bits, block + SHA_CBLOCK - 8);
    std::memcpy(states[n], next.state, sizeof next.state);
    into[n++] = hash;
  }
  Sha1CompressLanes(states, blocks, n);
  for (int l = 0; l < n; ++l) *into[l] = HashFromState(states[l][0], states[l][1]);
  return hashes[flag.index];
}

absl::string_view Evaluator::Variant(const CompiledFlag& flag, const CompiledCondition* condition,
                                     absl::string_view bucketing) {
  if (condition != nullptr && !condition->variant_override.empty()) {
    return condition->variant_override;
  }
  if (flag.variants.empty()) return {};
  const double hash = BucketingHash(flag, bucketing, /*variant=*/true);
  for (const CompiledVariant& variant : flag.variants) {
    if (hash >= variant.value_min && hash < variant.value_max) return variant.key;
  }
  return {};
}

FlagEvaluation Evaluator::Finish(const CompiledFlag& flag, FlagEvaluation result) const {
  result.decided = true;
  result.encoded = &flag.encoded;
  // A disabled value has no payload (the server and the SDKs agree), even if
  // the flag stores one under "false".
  if (!result.enabled) {
    static const std::string* const kDisabled = new std::string();
    if (result.variant.empty()) result.encoded_value = kDisabled;
    return result;
  }
  // The value's payload and fields, found without hashing the variant: a
  // flag has few variants.
  const CompiledValue* value = nullptr;
  if (result.variant.empty()) {
    value = &flag.values[0];
  } else {
    for (size_t i = 0; i < flag.variants.size(); ++i) {
      if (flag.variants[i].key == result.variant) {
        value = &flag.values[i + 1];
        break;
      }
    }
  }
  if (value != nullptr) {
    if (value->payload != nullptr) {
      result.payload = &value->payload->value;
      result.payload_bytes = value->payload->value_bytes;
    }
    result.encoded_value = &value->fields;
    return result;
  }
  // A variant the flag does not list (a holdout's): looked up by name.
  if (flag.payloads.empty()) return result;
  const absl::string_view lookup = result.variant;
  auto it = flag.payloads.find(lookup);
  if (it != flag.payloads.end()) {
    result.payload = &it->second.value;
    result.payload_bytes = it->second.value_bytes;
  }
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

  // 2. Who the flag is about: a group, or the person (filled in place: a
  // copy of a Subject just written stalls on store forwarding).
  Subject flag_subject;
  Subject& person = flag_subject;
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
  if (flag.aggregation_group_type_index >= 0) {
    bool missing = false;
    if (!group_subject(flag.aggregation_group_type_index, &flag_subject, &missing)) {
      if (!missing) {
        return inconclusive(
            absl::StrCat("unknown group type index ", flag.aggregation_group_type_index));
      }
      result.reason = ReasonCode::kNoGroupType;
      return Finish(flag, result);
    }
  }

  // 3. Feature enrollment (early access), by the person's property.
  if (flag.feature_enrollment) {
    PropertyValue enrollment;
    json enrollment_storage;
    if (PersonProperty(flag.enrollment_property, &enrollment, &enrollment_storage)) {
      // `true` in any ASCII case, as Fold(text) == "true" (without the copy).
      const bool enrolled =
          (enrollment.is_boolean() && enrollment.boolean()) ||
          (enrollment.is_string() && absl::EqualsIgnoreCase(enrollment.string(), "true"));
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
    // Most conditions read the flag's subject: referred to, not copied (a
    // copy of the Subject just written was a store-forwarding stall, a third
    // of this function's samples in a perf profile of 50 flags, issue 18).
    const Subject* subject_of = &flag_subject;
    Subject group;
    if (condition.aggregation_group_type_index >= 0 &&
        condition.aggregation_group_type_index != flag.aggregation_group_type_index) {
      // A condition on a group the caller did not give, or on a group type
      // the definitions do not know, is skipped.
      bool missing = false;
      if (!group_subject(condition.aggregation_group_type_index, &group, &missing)) continue;
      subject_of = &group;
    }
    const Subject& subject = *subject_of;
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
    // A hash is at most 1: a rollout of 100 % or more takes everyone.
    if (condition.has_rollout && condition.rollout < 100 &&
        BucketingHash(flag, subject.bucketing, /*variant=*/false) > condition.rollout / 100) {
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
                            const EvaluationContext& context, absl::Time now,
                            EvaluationCache* cache) {
  Evaluator evaluator(definitions, context, now, cache);
  return evaluator.Evaluate(flag);
}

}  // namespace posthog_gateway::flags
