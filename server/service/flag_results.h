#ifndef SERVER_SERVICE_FLAG_RESULTS_H_
#define SERVER_SERVICE_FLAG_RESULTS_H_

// FlagResults holds the results of one EvaluateFlag(s) call, in the order
// they were set, one per key.
//
// A result decided locally stays the evaluator's FlagEvaluation (a few
// words that borrow from the definitions) until it is written out; the rest
// (PostHog's answers, errors) are FlagResult messages. EncodeResponse then
// writes an EvaluateFlagsResponse's wire bytes straight from them: building
// 50 FlagResults in a protobuf map and serializing it cost the gateway more
// CPU than evaluating the 50 flags did.
//
// The bytes are exactly what the generated code would parse into the same
// EvaluateFlagsResponse as ToProto's results (tests/flags/flag_results_test
// compares the two for every kind of result and payload).
//
// Not thread-safe. The definitions snapshot behind local results must
// outlive the FlagResults.

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/flag.pb.h"
#include "server/flags/evaluator.h"

namespace posthog_gateway {

class FlagResults final {
 public:
  // What one result says, whichever way it was decided: what
  // `$feature_flag_called` events are made of.
  struct Summary {
    bool local = false;
    bool enabled = false;
    absl::string_view variant;
    // The payload as JSON, or null when there is none.
    nlohmann::json payload;
    std::string reason_description;
    int64_t flag_id = 0;
    int64_t flag_version = 0;
    posthog::v1::FlagErrorCode error_code = posthog::v1::FLAG_ERROR_CODE_UNSPECIFIED;
  };

  // SetLocal records a decided local evaluation; Set any other result. Each
  // key must be set once. A local evaluation from CompiledDefinitions is set
  // under its flag's key: the reply copies the key's bytes the definitions
  // hold (FlagEvaluation::encoded).
  void SetLocal(const std::string& key, const flags::FlagEvaluation& evaluation);
  void Set(const std::string& key, posthog::v1::FlagResult result);

  // SetLocalBorrowed is SetLocal without a copy of `key`, which must outlive
  // the FlagResults: the flag's key in the CompiledDefinitions
  // (CompiledDefinitions::FlagKey), which the results borrow from anyway.
  // A copy of each key was a tenth of a 50-flag call's mallocs (issue 18).
  void SetLocalBorrowed(const std::string& key, const flags::FlagEvaluation& evaluation);

  // Reserve makes room for `results` results.
  void Reserve(size_t results) { entries_.reserve(results); }

  size_t size() const { return entries_.size(); }
  const std::string& key(size_t i) const { return entries_[i].key(); }
  Summary Summarize(size_t i) const;

  // ToProto is result `i` as a message.
  posthog::v1::FlagResult ToProto(size_t i) const;

  // EncodeResponse is the wire form of an EvaluateFlagsResponse holding
  // every result and `request_id`.
  std::string EncodeResponse(absl::string_view request_id) const;

  // EncodeResponseInto writes the same bytes into the buffer that
  // `allocate(size)` returns, called once with their size, and returns how
  // many it wrote (at most `size`). EvaluateFlags writes them into the gRPC
  // slice it sends: a std::string, then a slice around it, cost three
  // allocations per call where one does.
  size_t EncodeResponseInto(absl::string_view request_id,
                            absl::FunctionRef<char*(size_t)> allocate) const;

 private:
  struct Entry {
    // Built in place in entries_ (a temporary Entry moved in cost a copy of
    // each result and key per call).
    template <typename Result>
    Entry(const std::string& key, Result&& result)
        : owned_key(key), result(std::forward<Result>(result)) {}
    template <typename Result>
    Entry(const std::string* borrowed, Result&& result)
        : borrowed_key(borrowed), result(std::forward<Result>(result)) {}

    // A pointer, not a view, to whichever key holds it: entries move when
    // entries_ grows, and a view of a short `owned_key` would point into
    // the moved-from entry.
    const std::string& key() const { return borrowed_key != nullptr ? *borrowed_key : owned_key; }

    std::string owned_key;
    const std::string* borrowed_key = nullptr;
    std::variant<flags::FlagEvaluation, posthog::v1::FlagResult> result;
  };

  // The rest of SetLocal, once the entry is in.
  void CheckLocalKey();

  std::vector<Entry> entries_;
};

}  // namespace posthog_gateway

#endif  // SERVER_SERVICE_FLAG_RESULTS_H_
