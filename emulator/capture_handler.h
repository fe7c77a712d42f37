#ifndef EMULATOR_CAPTURE_HANDLER_H_
#define EMULATOR_CAPTURE_HANDLER_H_

// Capture: `/i/v0/e/`, `/e/`, `/capture/`, `/track/`, `/engage/` (2 MiB) and
// `/batch/` (20 MiB), trailing slash optional (docs/posthog-api.md §1).
//
// Accepts one event, a JSON array of events, or a batch envelope
// {"api_key"|"token", "batch": [...]}, gzip-compressed or not (by
// Content-Encoding, `?compression=gzip` or the magic bytes). Answers 200
// {"status": "Ok"}; 400 for an unparseable body, an empty batch or an event
// without name or distinct_id; 401 for a missing or unknown project token;
// 413 when the (decompressed) body is over the endpoint's limit. Accepted
// events are stored with their uuid (one is generated when absent) and
// update persons (see person_store.h). Plain events are read by a
// validating scanner without building a JSON DOM; see README.md
// ("Ingestion rate"). Thread-safe.

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "emulator/handler.h"
#include "emulator/state.h"
#include "httplib.h"

namespace posthog_emulator {

inline constexpr size_t kEventBodyLimit = 2 * 1024 * 1024;
inline constexpr size_t kBatchBodyLimit = 20 * 1024 * 1024;

// CaptureResult tells how many events a request stored.
struct CaptureResult {
  size_t accepted = 0;
  size_t duplicates = 0;
};

// IngestCapture parses a decoded capture body and stores its events.
// `gzip`, when not empty, is the body as received, gzip-compressed: the
// store may keep it instead of each event's JSON (BatchBody in
// event_store.h). Errors: InvalidArgument (400), Unauthenticated (401).
absl::StatusOr<CaptureResult> IngestCapture(EmulatorState& state, absl::string_view body,
                                            absl::string_view gzip = {});

// HandleCapture serves one capture request with the body limit `limit`.
void HandleCapture(EmulatorState& state, size_t limit, const httplib::Request& req,
                   httplib::Response& res, RequestContext& ctx);

}  // namespace posthog_emulator

#endif  // EMULATOR_CAPTURE_HANDLER_H_
