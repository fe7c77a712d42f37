#ifndef EMULATOR_HTTP_UTIL_H_
#define EMULATOR_HTTP_UTIL_H_

// Small helpers shared by the handlers: body decoding (gzip, base64),
// JSON responses and absolute page URLs. Stateless and thread-safe.

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {

// GzipDecompress inflates a gzip (or zlib) stream. Returns
// ResourceExhausted as soon as the output would exceed `limit` bytes and
// InvalidArgument when the stream is corrupt.
absl::StatusOr<std::string> GzipDecompress(absl::string_view data, size_t limit);

// GzipCompress deflates `data` into a gzip stream at zlib `level` (1-9,
// -1 for zlib's default); used by tests and tools.
std::string GzipCompress(absl::string_view data, int level = -1);

// kGzipBodyHeader marks a request whose `Content-Encoding: gzip` the server
// took away so that httplib would not inflate the body (the capture routes:
// emulator/server.cc); DecodeRequestBody gunzips it.
inline constexpr char kGzipBodyHeader[] = "X-Emulator-Gzip-Body";

// DecodeRequestBody returns the request body as capture reads it: gunzipped
// when it starts with the gzip magic bytes 1f 8b (`Content-Encoding: gzip`
// bodies, see kGzipBodyHeader; `?compression=gzip|gzip-js` bodies carry the
// magic bytes), base64-decoded for `?compression=base64`. ResourceExhausted
// when the decoded body exceeds `limit`; InvalidArgument for a body marked
// with kGzipBodyHeader that is not gzip, or for corrupt gzip.
absl::StatusOr<std::string> DecodeRequestBody(const httplib::Request& req, size_t limit);

// SetJson sets a JSON response with `status`.
void SetJson(httplib::Response& res, int status, const nlohmann::json& body);

// BaseUrl returns "http://<Host header>" (the emulator's own address as the
// client named it), used to build absolute `next`/`previous` URLs.
std::string BaseUrl(const httplib::Request& req);

// PageUrl returns the absolute URL of the request with `offset` and `limit`
// replaced (other query parameters kept, in their original order), as DRF's
// replace_query_param does; offset 0 is dropped like DRF's `previous`.
std::string PageUrl(const httplib::Request& req, long offset, long limit);

// SetPageLinks sets DRF's `next` (when `has_next`) and `previous` (past the
// first page) links of a limit/offset page in `page`, null otherwise.
void SetPageLinks(const httplib::Request& req, long offset, long limit, bool has_next,
                  nlohmann::json& page);

// QueryParam returns the first value of query parameter `name`, or "".
std::string QueryParam(const httplib::Request& req, const std::string& name);

}  // namespace posthog_emulator

#endif  // EMULATOR_HTTP_UTIL_H_
