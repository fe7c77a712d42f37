#ifndef SERVER_SERVICE_STRUCT_PROPERTIES_H_
#define SERVER_SERVICE_STRUCT_PROPERTIES_H_

// StructProperties lets the flag evaluator read a person's properties from
// the request's google.protobuf.Struct one key at a time, each as
// JsonFromStruct (server/posthog/json_struct.h) converts it: the evaluator
// reads the few properties the definitions filter on, and the call does not
// build the JSON object of all of them (flags::PropertyLookup). A string is
// given as a view of the request's own (most filtered properties are
// strings, and a JSON copy of each was a third of a 50-flag call's mallocs
// in the handler, issue 18); numbers, booleans, null, lists and structs are
// converted by JsonFromValue, so they match exactly as before (numbers
// stringify as that JSON: `30` for 30.0, `1e+21`, `0` for -0).
//
// The Struct must outlive the lookup and the values it gives.
// Thread-compatible.

#include <string>

#include "google/protobuf/struct.pb.h"
#include "nlohmann/json.hpp"
#include "server/flags/evaluator.h"
#include "server/flags/values.h"
#include "server/posthog/json_struct.h"

namespace posthog_gateway {

class StructProperties final : public flags::PropertyLookup {
 public:
  explicit StructProperties(const google::protobuf::Struct* properties) : properties_(properties) {}

  bool Find(const std::string& key, flags::PropertyValue* value,
            nlohmann::json* storage) const override {
    auto it = properties_->fields().find(key);
    if (it == properties_->fields().end()) return false;
    if (it->second.kind_case() == google::protobuf::Value::kStringValue) {
      *value = flags::PropertyValue::String(it->second.string_value());
    } else {
      *storage = JsonFromValue(it->second);
      *value = flags::PropertyValue::Json(*storage);
    }
    return true;
  }

 private:
  const google::protobuf::Struct* properties_;
};

}  // namespace posthog_gateway

#endif  // SERVER_SERVICE_STRUCT_PROPERTIES_H_
