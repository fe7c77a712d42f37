#include "emulator/http_util.h"

#include <zlib.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace posthog_emulator {

absl::StatusOr<std::string> GzipDecompress(absl::string_view data, size_t limit) {
  z_stream zs{};
  // 32 + MAX_WBITS: accept both gzip and zlib headers.
  if (inflateInit2(&zs, 32 + MAX_WBITS) != Z_OK) {
    return absl::InternalError("inflateInit2 failed");
  }
  // Inflate straight into the result, growing it geometrically; at most
  // limit + 1 bytes are ever produced (one more than the limit tells that
  // it is exceeded).
  std::string out;
  out.resize(std::min<size_t>(limit + 1, data.size() * 8 + 4096));
  size_t produced = 0;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (produced == out.size()) {
      if (out.size() > limit) break;
      out.resize(std::min<size_t>(limit + 1, out.size() * 2));
    }
    const size_t room = std::min<size_t>(out.size() - produced, 1u << 30);
    zs.next_out = reinterpret_cast<Bytef*>(&out[produced]);
    zs.avail_out = static_cast<uInt>(room);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return absl::InvalidArgumentError("invalid gzip data");
    }
    const size_t n = room - zs.avail_out;
    produced += n;
    if (rc == Z_OK && zs.avail_in == 0 && n == 0) {
      inflateEnd(&zs);
      return absl::InvalidArgumentError("truncated gzip data");
    }
  }
  inflateEnd(&zs);
  if (produced > limit) {
    return absl::ResourceExhaustedError("decompressed body too large");
  }
  out.resize(produced);
  return out;
}

std::string GzipCompress(absl::string_view data, int level) {
  z_stream zs{};
  deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out;
  out.resize(deflateBound(&zs, data.size()) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(&out[0]);
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

absl::StatusOr<std::string> DecodeRequestBody(const httplib::Request& req, size_t limit) {
  const std::string& body = req.body;
  if (body.size() >= 2 && static_cast<unsigned char>(body[0]) == 0x1f &&
      static_cast<unsigned char>(body[1]) == 0x8b) {
    return GzipDecompress(body, limit);
  }
  if (body.size() > limit) {
    return absl::ResourceExhaustedError("body too large");
  }
  if (QueryParam(req, "compression") == "base64") {
    std::string decoded;
    if (!absl::Base64Unescape(body, &decoded)) {
      return absl::InvalidArgumentError("invalid base64 body");
    }
    return decoded;
  }
  return body;
}

void SetJson(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

std::string BaseUrl(const httplib::Request& req) {
  std::string host = req.get_header_value("Host");
  if (host.empty()) host = "localhost";
  return absl::StrCat("http://", host);
}

void SetPageLinks(const httplib::Request& req, long offset, long limit, bool has_next,
                  nlohmann::json& page) {
  page["next"] = has_next ? nlohmann::json(PageUrl(req, offset + limit, limit)) : nlohmann::json();
  page["previous"] = offset > 0 ? nlohmann::json(PageUrl(req, std::max(0L, offset - limit), limit))
                                : nlohmann::json();
}

std::string PageUrl(const httplib::Request& req, long offset, long limit) {
  // httplib keeps params in a multimap (sorted by name); DRF keeps the
  // original order. Rebuild from the raw target to keep the client's order.
  std::string query;
  const std::string& target = req.target;
  const size_t q = target.find('?');
  std::vector<std::string> parts;
  if (q != std::string::npos) {
    std::string raw = target.substr(q + 1);
    size_t start = 0;
    while (start <= raw.size()) {
      size_t end = raw.find('&', start);
      if (end == std::string::npos) end = raw.size();
      std::string part = raw.substr(start, end - start);
      const std::string name = part.substr(0, part.find('='));
      if (!part.empty() && name != "offset" && name != "limit") {
        parts.push_back(part);
      }
      start = end + 1;
    }
  }
  parts.push_back(absl::StrCat("limit=", limit));
  if (offset > 0) parts.push_back(absl::StrCat("offset=", offset));
  for (const std::string& part : parts) {
    absl::StrAppend(&query, query.empty() ? "?" : "&", part);
  }
  return absl::StrCat(BaseUrl(req), req.path, query);
}

std::string QueryParam(const httplib::Request& req, const std::string& name) {
  return req.has_param(name.c_str()) ? req.get_param_value(name.c_str()) : "";
}

}  // namespace posthog_emulator
