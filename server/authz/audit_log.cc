#include "server/authz/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/flag.pb.h"
#include "posthog/v1/group.pb.h"
#include "posthog/v1/person.pb.h"
#include "server/authz/grants.h"

namespace posthog_gateway {
namespace {

namespace v1 = ::posthog::v1;
using grpc::experimental::InterceptionHookPoints;

constexpr size_t kMaxTargetBytes = 256;

std::string Bounded(std::string text) {
  if (text.size() > kMaxTargetBytes) {
    text.resize(kMaxTargetBytes);
    text += "...";
  }
  return text;
}

std::string PersonTarget(const v1::PersonRef& person) {
  switch (person.ref_case()) {
    case v1::PersonRef::kUuid:
      return Bounded(absl::StrCat("person uuid ", person.uuid()));
    case v1::PersonRef::kId:
      return absl::StrCat("person id ", person.id());
    case v1::PersonRef::kDistinctId:
      return Bounded(absl::StrCat("person distinct_id ", person.distinct_id()));
    case v1::PersonRef::REF_NOT_SET:
      break;
  }
  return "person (none named)";
}

std::string FlagTarget(const v1::Flag& flag) {
  if (flag.id() != 0) return Bounded(absl::StrCat("flag id ", flag.id(), " key ", flag.key()));
  return Bounded(absl::StrCat("flag key ", flag.key()));
}

const char* CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  const int index = static_cast<int>(code);
  return index >= 0 && index < 17 ? kNames[index] : "Unknown";
}

class AuditInterceptor final : public grpc::experimental::Interceptor {
 public:
  AuditInterceptor(grpc::experimental::ServerRpcInfo* info, const Authorizer* authorizer,
                   AuditLog* log)
      : info_(info), authorizer_(authorizer), log_(log) {
    record_.method = std::string(absl::StripPrefix(info->method(), "/"));
  }

  ~AuditInterceptor() override {
    if (finished_) log_->Write(record_);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      absl::StatusOr<Caller> caller = authorizer_->Identify(*info_->server_context());
      if (caller.ok()) {
        record_.caller = caller->name;
        record_.caller_source = caller->source;
      }
      const auto* metadata = methods->GetRecvInitialMetadata();
      if (auto it = metadata->find("x-request-id"); it != metadata->end()) {
        record_.request_id = Bounded(std::string(it->second.data(), it->second.size()));
      }
      record_.project = authorizer_->ResolveProject("");
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        !read_request_ && methods->GetRecvMessage() != nullptr) {
      read_request_ = true;
      AuditSubject subject = AuditSubjectOf(info_->method(), methods->GetRecvMessage());
      record_.project = authorizer_->ResolveProject(subject.project);
      record_.target = std::move(subject.target);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      record_.code = CodeName(methods->GetSendStatus().error_code());
      finished_ = true;
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* const info_;
  const Authorizer* const authorizer_;
  AuditLog* const log_;
  AuditRecord record_;
  bool read_request_ = false;
  bool finished_ = false;
};

}  // namespace

AuditSubject AuditSubjectOf(absl::string_view method, const void* request) {
  // The request types of the audited methods of grants.h, by method.
  if (method == "/posthog.v1.PersonService/DeletePerson") {
    const auto* typed = static_cast<const v1::DeletePersonRequest*>(request);
    return {typed->project(), PersonTarget(typed->person())};
  }
  if (method == "/posthog.v1.PersonService/UpdatePersonProperties") {
    const auto* typed = static_cast<const v1::UpdatePersonPropertiesRequest*>(request);
    return {typed->project(), PersonTarget(typed->person())};
  }
  if (method == "/posthog.v1.FlagService/CreateFlag") {
    const auto* typed = static_cast<const v1::CreateFlagRequest*>(request);
    return {typed->project(), FlagTarget(typed->flag())};
  }
  if (method == "/posthog.v1.FlagService/UpdateFlag") {
    const auto* typed = static_cast<const v1::UpdateFlagRequest*>(request);
    return {typed->project(), FlagTarget(typed->flag())};
  }
  if (method == "/posthog.v1.FlagService/DeleteFlag") {
    const auto* typed = static_cast<const v1::DeleteFlagRequest*>(request);
    return {typed->project(), absl::StrCat("flag id ", typed->id())};
  }
  if (method == "/posthog.v1.GroupService/CreateGroup") {
    const auto* typed = static_cast<const v1::CreateGroupRequest*>(request);
    return {typed->project(), Bounded(absl::StrCat("group type ", typed->group_type_index(),
                                                   " key ", typed->group_key()))};
  }
  if (method == "/posthog.v1.GroupService/UpdateGroupProperties") {
    const auto* typed = static_cast<const v1::UpdateGroupPropertiesRequest*>(request);
    return {typed->project(), Bounded(absl::StrCat("group type ", typed->group_type_index(),
                                                   " key ", typed->group_key()))};
  }
  return {};
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  if (path.empty()) return std::unique_ptr<AuditLog>(new AuditLog(STDERR_FILENO, false));
  const int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat("authorization.audit_log_file: cannot open ",
                                                      path, ": ", std::strerror(errno)));
  }
  return std::unique_ptr<AuditLog>(new AuditLog(fd, true));
}

AuditLog::~AuditLog() {
  if (owned_) close(fd_);
}

std::string AuditLog::Format(const AuditRecord& record, absl::string_view time) {
  nlohmann::ordered_json line;
  if (!time.empty()) line["time"] = std::string(time);
  line["log"] = "audit";
  line["caller"] = record.caller;
  if (!record.caller_source.empty()) line["caller_source"] = record.caller_source;
  line["project"] = record.project;
  line["method"] = record.method;
  line["target"] = record.target;
  line["code"] = record.code;
  if (!record.request_id.empty()) line["request_id"] = record.request_id;
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void AuditLog::Write(const AuditRecord& record) {
  std::string line =
      Format(record, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()));
  line += '\n';
  absl::MutexLock lock(&mu_);
  size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = write(fd_, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    written += static_cast<size_t>(n);
  }
}

grpc::experimental::Interceptor* AuditInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  const MethodGrant* grant = FindMethodGrant(info->method());
  if (grant == nullptr || !grant->audited) return nullptr;
  return new AuditInterceptor(info, authorizer_, log_);
}

}  // namespace posthog_gateway
