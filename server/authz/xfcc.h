#ifndef SERVER_AUTHZ_XFCC_H_
#define SERVER_AUTHZ_XFCC_H_

// A parser of Envoy's `x-forwarded-client-cert` (XFCC) header, which a mesh
// sidecar (Istio) uses to tell the gateway whose certificate the caller
// presented.
//
// The header is a list of elements separated by `,`; each element is a list
// of `Key=Value` pairs separated by `;`. A value is either bare (no `,`, `;`,
// `=` or `"`) or a quoted string: `"` ... `"`, in which `,`, `;` and `=` are
// ordinary characters and a backslash escapes the next character (`\"`,
// `\\`). Whitespace around elements and pairs is ignored. Keys are matched
// without regard to case by callers (Envoy writes By, Hash, Cert, Chain,
// Subject, URI and DNS).
//
// Under Envoy's APPEND_FORWARD (Istio's sidecars), the header a caller sent
// is kept and the sidecar appends its own element at the end: only the LAST
// element was written by the proxy the gateway trusts; everything before it
// is whatever the caller chose. So a header that does not parse as a whole
// (an unclosed quote, a stray quote in a bare value, a dangling backslash,
// a pair without `=`) yields an error and no element at all: reading past
// the caller's unbalanced quote would let the caller's bytes swallow the
// sidecar's element, or pose as it.
//
// Pure functions over bytes: no I/O, no global state, no allocation beyond
// the result; any input (including NUL and non-UTF-8 bytes) is safe.
// Thread-safe.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace posthog_gateway {

// One element of the header: its pairs in order, values unquoted and
// unescaped. A key may repeat (Envoy repeats DNS).
struct XfccElement {
  std::vector<std::pair<std::string, std::string>> pairs;

  // The value of the first pair whose key equals `key` ignoring ASCII case;
  // nullptr when there is none.
  const std::string* Find(absl::string_view key) const;
};

// Upper bounds of what ParseXfcc accepts; a longer header is an error.
inline constexpr size_t kMaxXfccBytes = 64 * 1024;
inline constexpr size_t kMaxXfccElements = 64;

// ParseXfcc parses a whole header value. INVALID_ARGUMENT (the message names
// the byte offset, never the header's contents) when it is malformed, empty
// or beyond the bounds above.
absl::StatusOr<std::vector<XfccElement>> ParseXfcc(absl::string_view header);

// XfccCallerUri returns the URI (e.g. `spiffe://cluster.local/ns/a/sa/b`) of
// the last element of a well-formed header: the caller the nearest proxy
// vouches for. Empty when the header is malformed or its last element has no
// URI.
std::string XfccCallerUri(absl::string_view header);

}  // namespace posthog_gateway

#endif  // SERVER_AUTHZ_XFCC_H_
