#ifndef SERVER_FLAGS_SHA1_LANES_H_
#define SERVER_FLAGS_SHA1_LANES_H_

// SHA-1's compression of several independent one-block messages at once,
// private to the evaluator. PostHog's bucketing hash is one SHA-1 block per
// flag and caller; with the x86 SHA extensions one block is bound by the
// latency of its 20 dependent sha1rnds4 steps, so interleaving the blocks of
// a few flags keeps the unit busy and costs little more than one block
// (issue 18: the hashes were a fifth of a 50-flag EvaluateFlags call).

#include <cstdint>

namespace posthog_gateway::flags {

// At most this many blocks per call.
inline constexpr int kSha1Lanes = 4;

// Whether this CPU has the SHA extensions (and SSSE3/SSE4.1) that
// Sha1CompressLanes needs. Without them callers compress one block at a
// time with OpenSSL.
bool HaveSha1Lanes();

// Sha1CompressLanes continues the SHA-1 state `states[i]` (h0..h4) with the
// 64-byte block `blocks[i]` for i < n (1 <= n <= kSha1Lanes), in place. Only
// when HaveSha1Lanes().
void Sha1CompressLanes(uint32_t (*states)[5], const unsigned char (*blocks)[64], int n);

}  // namespace posthog_gateway::flags

#endif  // SERVER_FLAGS_SHA1_LANES_H_
