#ifndef SERVER_SERVICE_STRUCT_PROPERTIES_H_
#define SERVER_SERVICE_STRUCT_PROPERTIES_H_

// StructProperties lets the flag evaluator read a person's properties from
// the request's google.protobuf.Struct one key at a time, each converted as
// JsonFromStruct (server/posthog/json_struct.h) converts it: the evaluator
// reads the few properties the definitions filter on, and the call does not
// build the JSON object of all of them (flags::PropertyLookup).
//
// The Struct must outlive the lookup. Thread-compatible.

#include <string>

#include "google/protobuf/struct.pb.h"
#include "nlohmann/json.hpp"
#include "server/flags/evaluator.h"
#include "server/posthog/json_struct.h"

namespace posthog_gateway {

class StructProperties final : public flags::PropertyLookup {
 public:
  explicit StructProperties(const google::protobuf::Struct* properties) : properties_(properties) {}

  bool Find(const std::string& key, nlohmann::json* value) const override {
    auto it = properties_->fields().find(key);
    if (it == properties_->fields().end()) return false;
    *value = JsonFromValue(it->second);
    return true;
  }

 private:
  const google::protobuf::Struct* properties_;
};

}  // namespace posthog_gateway

#endif  // SERVER_SERVICE_STRUCT_PROPERTIES_H_
