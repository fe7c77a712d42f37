#include "emulator/http_util.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "libdeflate.h"

namespace posthog_emulator {
namespace {

// GunzipWhole inflates `data` when it is exactly one gzip member whose
// trailer's size (ISIZE) is at most `limit`, with libdeflate (whole-buffer,
// about three times faster than zlib's inflate, and the emulator gunzips
// every batch the gateway sends). libdeflate checks the member's CRC-32 and
// size as zlib does. False for anything else (several members, trailing
// bytes, a size past the limit, corrupt data): GzipDecompress's zlib path
// then decides, and reports the error.
bool GunzipWhole(absl::string_view data, size_t limit, std::string* out) {
  // Header (10) and trailer (8): anything shorter is not a whole member.
  if (data.size() < 18 || static_cast<unsigned char>(data[0]) != 0x1f ||
      static_cast<unsigned char>(data[1]) != 0x8b) {
    return false;
  }
  const auto* tail = reinterpret_cast<const unsigned char*>(data.data() + data.size() - 4);
  const size_t isize = static_cast<size_t>(tail[0]) | static_cast<size_t>(tail[1]) << 8 |
                       static_cast<size_t>(tail[2]) << 16 | static_cast<size_t>(tail[3]) << 24;
  if (isize > limit) return false;
  struct FreeDecompressor {
    void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
  };
  thread_local std::unique_ptr<libdeflate_decompressor, FreeDecompressor> decompressor(
      libdeflate_alloc_decompressor());
  if (decompressor == nullptr) return false;
  out->resize(isize);
  size_t in_used = 0;
  size_t produced = 0;
  const libdeflate_result result = libdeflate_gzip_decompress_ex(
      decompressor.get(), data.data(), data.size(), out->data(), out->size(), &in_used, &produced);
  // ISIZE is the size modulo 2^32: a member that inflates to more than the
  // buffer fails with LIBDEFLATE_INSUFFICIENT_SPACE and goes to zlib.
  return result == LIBDEFLATE_SUCCESS && in_used == data.size() && produced == isize;
}

}  // namespace

absl::StatusOr<std::string> GzipDecompress(absl::string_view data, size_t limit) {
  {
    std::string out;
    if (GunzipWhole(data, limit, &out)) return out;
  }
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
  if (req.has_header(kGzipBodyHeader)) {
    return absl::InvalidArgumentError("Content-Encoding: gzip, but not gzip data");
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
