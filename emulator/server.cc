#include "emulator/server.h"

#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "emulator/api_errors.h"
#include "emulator/capture_handler.h"
#include "emulator/flags_handler.h"
#include "emulator/groups_handler.h"
#include "emulator/http_util.h"
#include "emulator/persons_handler.h"
#include "emulator/users_handler.h"

namespace posthog_emulator {
namespace {

using nlohmann::json;

// IsCapturePath tells whether `path` is one of the capture routes below
// (their patterns: "/batch/?" and "/(?:i/v0/e|e|capture|track|engage)/?").
bool IsCapturePath(absl::string_view path) {
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  for (absl::string_view route : {"/batch", "/i/v0/e", "/e", "/capture", "/track", "/engage"}) {
    if (path == route) return true;
  }
  return false;
}

void SleepMs(int ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// FaultBody is the error body of an injected status, shaped like the route's
// real errors.
json FaultBody(int status, int retry_after_s) {
  if (status == 429) {
    return ToHttpError(ThrottledError(retry_after_s > 0 ? retry_after_s : 1)).body;
  }
  if (status >= 500) {
    return ErrorBody("server_error", "error", "A server error occurred.");
  }
  return ErrorBody("invalid_request", "error", "Injected fault.");
}

// ApplyBodyFaults rewrites a finished response per `fault`.
void ApplyBodyFaults(const FaultDecision& fault, httplib::Response& res) {
  if (!fault.foreign_next_host.empty() && !res.body.empty()) {
    json body = json::parse(res.body, nullptr, false);
    if (body.is_object() && body.contains("next") && body["next"].is_string()) {
      std::string next = body["next"].get<std::string>();
      const size_t scheme = next.find("://");
      const size_t path = next.find('/', scheme == std::string::npos ? 0 : scheme + 3);
      body["next"] = fault.foreign_next_host + (path == std::string::npos ? "" : next.substr(path));
      res.body = body.dump();
    }
  }
  if (fault.malformed) {
    res.body = "{\"results\": [{\"id\": <html>bad gateway</html>";
  } else if (fault.truncate && res.body.size() > 1) {
    res.body = res.body.substr(0, res.body.size() / 2);
  }
  if (fault.reset || fault.stall_ms > 0) {
    // Stream the body by hand: half, then either drop the connection
    // (returning false aborts it) or stall before the rest.
    auto body = std::make_shared<std::string>(std::move(res.body));
    const std::string type = res.get_header_value("Content-Type");
    const bool reset = fault.reset;
    const int stall_ms = fault.stall_ms;
    res.body.clear();
    res.set_content_provider(
        body->size(), type.empty() ? "application/json" : type,
        [body, reset, stall_ms](size_t offset, size_t, httplib::DataSink& sink) {
          const size_t half = body->size() / 2;
          if (offset < half) {
            sink.write(body->data(), half);
            return true;
          }
          if (reset) return false;
          SleepMs(stall_ms);
          sink.write(body->data() + offset, body->size() - offset);
          return true;
        });
  }
}

}  // namespace

EmulatorServer::EmulatorServer(EmulatorState* state, ServerOptions options)
    : state_(state), server_(std::make_unique<httplib::Server>()) {
  const int threads = options.threads > 0 ? options.threads : 32;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_keep_alive_max_count(1000000);
  server_->set_keep_alive_timeout(5);
  server_->set_tcp_nodelay(true);
  // A little over the batch limit: bigger bodies get httplib's 413 before
  // being read; the handlers enforce the exact limits.
  server_->set_payload_max_length(kBatchBodyLimit + 1024 * 1024);
  server_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404 && res.body.empty() && absl::StartsWith(req.path, "/api/")) {
      SetJson(res, 404, ToHttpError(NotFoundError()).body);
    } else if (res.status == 413 && res.body.empty()) {
      SetJson(res, 413,
              {{"status", 413},
               {"code", "payload_too_large"},
               {"error", "maximum event size exceeded"}});
    }
  });
  // httplib inflates a `Content-Encoding: gzip` body itself, with zlib's
  // streaming inflate, before any handler runs. The capture routes gunzip
  // their bodies anyway (DecodeRequestBody, by the magic bytes) in one
  // libdeflate call, about three times faster, and every batch the gateway
  // sends is gzip while the emulator shares the capture benchmark's cores
  // (bench/README.md). So on those routes the header is moved aside before
  // httplib reads the body (routing runs this handler first; the Request is
  // httplib's own mutable object), and DecodeRequestBody still refuses a
  // body so labelled that is not gzip.
  server_->set_pre_routing_handler([](const httplib::Request& req, httplib::Response&) {
    if (IsCapturePath(req.path) && req.get_header_value("Content-Encoding") == "gzip") {
      httplib::Headers& headers = const_cast<httplib::Request&>(req).headers;
      headers.erase("Content-Encoding");
      headers.emplace(kGzipBodyHeader, "1");
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server_->set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        SetJson(res, 500, ErrorBody("server_error", "error", "A server error occurred."));
      });
  AddRoutes();
  AddAdminRoutes();
}

EmulatorServer::~EmulatorServer() { Stop(); }

absl::StatusOr<int> EmulatorServer::Bind(const std::string& host, int port) {
  if (port == 0) {
    const int bound = server_->bind_to_any_port(host);
    if (bound < 0) return absl::UnavailableError("cannot bind " + host);
    return bound;
  }
  if (!server_->bind_to_port(host, port)) {
    return absl::UnavailableError(absl::StrCat("cannot bind ", host, ":", port));
  }
  return port;
}

bool EmulatorServer::Serve() { return server_->listen_after_bind(); }

void EmulatorServer::Stop() { server_->stop(); }

bool EmulatorServer::WaitUntilServing(const std::atomic<bool>* give_up) {
  while (!server_->is_running()) {
    if (give_up != nullptr && give_up->load()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

void EmulatorServer::Route(const char* method, const std::string& pattern, const std::string& name,
                           RouteHandler handler) {
  EmulatorState* state = state_;
  httplib::Server::Handler wrapped = [state, name, handler](const httplib::Request& req,
                                                            httplib::Response& res) {
    RequestContext ctx{name, AuthMethod::kNone};
    FaultDecision fault = state->faults().Decide(name, req.path);
    SleepMs(fault.latency_ms);
    if (fault.status != 0) {
      SetJson(res, fault.status, FaultBody(fault.status, fault.retry_after_s));
      if (fault.retry_after_s >= 0) {
        res.set_header("Retry-After", std::to_string(fault.retry_after_s));
      }
    } else {
      handler(req, res, ctx);
    }
    ApplyBodyFaults(fault, res);
    state->requests().Record(req.method, req.path, name, std::string(AuthMethodName(ctx.auth)),
                             res.status);
  };
  const std::string m = method;
  if (m == "GET") server_->Get(pattern, wrapped);
  if (m == "POST") server_->Post(pattern, wrapped);
  if (m == "PUT") server_->Put(pattern, wrapped);
  if (m == "PATCH") server_->Patch(pattern, wrapped);
  if (m == "DELETE") server_->Delete(pattern, wrapped);
  if (m == "OPTIONS") server_->Options(pattern, wrapped);
}

void EmulatorServer::AddRoutes() {
  EmulatorState* state = state_;
  auto capture = [state](size_t limit) {
    return [state, limit](const httplib::Request& req, httplib::Response& res,
                          RequestContext& ctx) { HandleCapture(*state, limit, req, res, ctx); };
  };
  for (const char* method : {"POST", "GET", "OPTIONS"}) {
    Route(method, "/batch/?", "batch", capture(kBatchBodyLimit));
    Route(method, "/(?:i/v0/e|e|capture|track|engage)/?", "capture", capture(kEventBodyLimit));
  }
  auto bind = [state](auto fn) {
    return [state, fn](const httplib::Request& req, httplib::Response& res, RequestContext& ctx) {
      fn(*state, req, res, ctx);
    };
  };
  const std::string persons = "/api/(?:projects|environments)/([^/]+)/persons";
  for (const char* method : {"GET", "POST", "PUT", "PATCH", "DELETE"}) {
    Route(method, "/api/users/([^/]+)/?", "users", bind(HandleUser));
    Route(method, persons + "/?", "persons", bind(HandlePersons));
    Route(method, persons + "/([^/]+)/?()", "person", bind(HandlePerson));
    Route(method, persons + "/([^/]+)/(update_property|delete_property)/?", "person",
          bind(HandlePerson));
    Route(method, "/api/(?:projects|environments)/([^/]+)/groups_types/?", "group_types",
          bind(HandleGroupTypes));
    Route(method, "/api/(?:projects|environments)/([^/]+)/groups/?()", "groups",
          bind(HandleGroups));
    Route(method,
          "/api/(?:projects|environments)/([^/]+)/groups/(find|update_property|delete_property)/?",
          "group", bind(HandleGroups));
    Route(method, "/api/(?:projects|environments)/([^/]+)/feature_flags/?", "feature_flags",
          bind(HandleFlagCollection));
    Route(method, "/api/(?:projects|environments)/([^/]+)/feature_flags/([^/]+)/?", "feature_flag",
          bind(HandleFlagItem));
  }
  Route("GET", "/flags/definitions/?", "flag_definitions", bind(HandleDefinitions));
  Route("GET", "/api/feature_flag/local_evaluation/?", "local_evaluation", bind(HandleDefinitions));
  for (const char* method : {"POST", "GET", "OPTIONS"}) {
    Route(method, "/flags/?", "flags",
          [state](const httplib::Request& req, httplib::Response& res, RequestContext& ctx) {
            HandleRemoteEvaluation(*state, false, req, res, ctx);
          });
    Route(method, "/decide/?", "decide",
          [state](const httplib::Request& req, httplib::Response& res, RequestContext& ctx) {
            HandleRemoteEvaluation(*state, true, req, res, ctx);
          });
  }
}

void EmulatorServer::AddAdminRoutes() {
  EmulatorState* state = state_;
  server_->Get("/_emulator/health", [state](const httplib::Request&, httplib::Response& res) {
    SetJson(res, 200, {{"status", "ok"}, {"events", state->events().count()}});
  });
  server_->Get("/_emulator/events", [state](const httplib::Request& req, httplib::Response& res) {
    EventQuery query;
    query.uuid = QueryParam(req, "uuid");
    query.event = QueryParam(req, "event");
    query.distinct_id = QueryParam(req, "distinct_id");
    absl::SimpleAtoi(QueryParam(req, "project_id"), &query.team_id);
    size_t limit = 0;
    if (absl::SimpleAtoi(QueryParam(req, "limit"), &limit)) query.limit = limit;
    json events = json::array();
    for (json& e : state->events().Query(query)) events.push_back(std::move(e));
    SetJson(res, 200,
            {{"count", state->events().count()},
             {"duplicates", state->events().duplicates()},
             {"events", events}});
  });
  server_->Get("/_emulator/requests", [state](const httplib::Request& req, httplib::Response& res) {
    SetJson(res, 200, state->requests().ToJson(QueryParam(req, "route")));
  });
  server_->Get("/_emulator/faults", [state](const httplib::Request&, httplib::Response& res) {
    SetJson(res, 200, state->faults().Config());
  });
  server_->Post("/_emulator/faults", [state](const httplib::Request& req, httplib::Response& res) {
    json config = json::parse(req.body.empty() ? "[]" : req.body, nullptr, false);
    absl::Status status = config.is_discarded() ? absl::InvalidArgumentError("faults: not JSON")
                                                : state->faults().Configure(config);
    if (!status.ok()) {
      return SetJson(res, 400, {{"error", std::string(status.message())}});
    }
    SetJson(res, 200, state->faults().Config());
  });
  server_->Post("/_emulator/reset", [state](const httplib::Request&, httplib::Response& res) {
    absl::Status status = state->Reset();
    if (!status.ok()) {
      return SetJson(res, 500, {{"error", std::string(status.message())}});
    }
    SetJson(res, 200, {{"status", "ok"}});
  });
  server_->Post("/_emulator/seed", [state](const httplib::Request& req, httplib::Response& res) {
    json seed = json::parse(req.body, nullptr, false);
    absl::Status status =
        seed.is_discarded() ? absl::InvalidArgumentError("seed: not JSON") : state->AddSeed(seed);
    if (!status.ok()) {
      return SetJson(res, 400, {{"error", std::string(status.message())}});
    }
    SetJson(res, 200, {{"status", "ok"}});
  });
  server_->Get("/_emulator/rate_limits", [state](const httplib::Request&, httplib::Response& res) {
    SetJson(res, 200, state->rate_limiter().config().ToJson());
  });
  server_->Post("/_emulator/rate_limits",
                [state](const httplib::Request& req, httplib::Response& res) {
                  json config = json::parse(req.body, nullptr, false);
                  if (!config.is_object()) {
                    return SetJson(res, 400, {{"error", "rate_limits: expected an object"}});
                  }
                  state->rate_limiter().Configure(
                      RateLimitConfig::FromJson(config, state->rate_limiter().config()));
                  SetJson(res, 200, state->rate_limiter().config().ToJson());
                });
}

}  // namespace posthog_emulator
