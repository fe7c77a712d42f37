#ifndef SERVER_COMMON_REDACT_H_
#define SERVER_COMMON_REDACT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace posthog_gateway {

// RedactKeys returns `text` with anything shaped like a PostHog key
// (`phc_`, `phx_`, `phs_`, `pha_` or `phr_` followed by key characters)
// replaced by its prefix and `[redacted]`. Every text that came from outside
// the gateway (PostHog error bodies, curl messages) passes through it before it
// reaches a log line, an error message or a metric label.
std::string RedactKeys(absl::string_view text);

// Truncate returns at most `max_bytes` of `text`, cut at a UTF-8 character
// boundary, with `...` appended when it was cut.
std::string Truncate(absl::string_view text, size_t max_bytes);

}  // namespace posthog_gateway

#endif  // SERVER_COMMON_REDACT_H_
