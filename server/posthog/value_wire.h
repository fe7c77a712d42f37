#ifndef SERVER_POSTHOG_VALUE_WIRE_H_
#define SERVER_POSTHOG_VALUE_WIRE_H_

// The protobuf wire bytes of the google.protobuf.Value that ValueFromJson
// (json_struct.h) builds from a JSON value, written without building the
// message: EvaluateFlags writes its reply by hand (server/service/
// flag_results.cc), and the flag evaluator keeps each payload's bytes from
// compilation on, so that a reply copies them instead of encoding the
// payload per call.
//
// The bytes equal the generated code's deterministic serialization of the
// same message (Struct fields in key order, as nlohmann::json keeps them);
// tests/flags/flag_results_test.cc compares the two for every JSON type.
// Non-finite numbers do not occur in JSON; integers are written as the
// double they convert to, as ValueFromJson does.

#include <cstddef>
#include <string>

#include "nlohmann/json.hpp"

namespace posthog_gateway::value_wire {

// ValueSize is the encoded size of the Value's contents (never 0: every
// Value sets one field of its oneof).
size_t ValueSize(const nlohmann::json& json);

// PutValue writes the Value's contents at `p`, which has room for
// ValueSize(json) bytes, and returns the end.
char* PutValue(const nlohmann::json& json, char* p);

// EncodeValue is the Value's contents as a string.
std::string EncodeValue(const nlohmann::json& json);

}  // namespace posthog_gateway::value_wire

#endif  // SERVER_POSTHOG_VALUE_WIRE_H_
