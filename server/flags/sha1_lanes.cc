#include "server/flags/sha1_lanes.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace posthog_gateway::flags {

#if defined(__x86_64__)

bool HaveSha1Lanes() {
  static const bool have = [] {
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
    const bool ssse3 = (ecx & bit_SSSE3) != 0;
    const bool sse41 = (ecx & bit_SSE4_1) != 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool sha = (ebx & bit_SHA) != 0;
    return ssse3 && sse41 && sha;
  }();
  return have;
}

namespace {

// Four rounds with the round function of rounds [20 * kFunc, 20 * kFunc + 20).
template <int kFunc>
__attribute__((target("sha,ssse3,sse4.1"))) inline __m128i Rounds(__m128i abcd, __m128i e) {
  return _mm_sha1rnds4_epu32(abcd, e, kFunc);
}

// The 80 rounds of N blocks, lane by lane in each step so that the lanes'
// independent sha1rnds4 overlap. The schedule is Intel's (the SHA
// extensions' reference code): w[g] is the message quad of rounds 4g..4g+3,
// w[g] = sha1msg2(sha1msg1(w[g-4], w[g-3]) ^ w[g-2], w[g-1]).
template <int N>
__attribute__((target("sha,ssse3,sse4.1"))) void Compress(uint32_t (*states)[5],
                                                          const unsigned char (*blocks)[64]) {
  const __m128i kByteSwap = _mm_set_epi64x(0x0001020304050607ULL, 0x08090a0b0c0d0e0fULL);
  __m128i abcd[N], abcd_save[N], e_save[N], e_next[N], w[N][4];
#pragma GCC unroll 4
  for (int l = 0; l < N; ++l) {
    abcd[l] = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(states[l])), 0x1B);
    abcd_save[l] = abcd[l];
    e_save[l] = _mm_set_epi32(static_cast<int>(states[l][4]), 0, 0, 0);
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      w[l][q] = _mm_shuffle_epi8(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks[l] + 16 * q)), kByteSwap);
    }
  }
  // e_next: the E input of the next step; for step 0, E plus the first quad.
#pragma GCC unroll 4
  for (int l = 0; l < N; ++l) e_next[l] = _mm_add_epi32(e_save[l], w[l][0]);
#pragma GCC unroll 20
  for (int g = 0; g < 20; ++g) {
#pragma GCC unroll 4
    for (int l = 0; l < N; ++l) {
      if (g >= 4) {
        // w[g % 4] holds w[g - 4] until replaced by w[g].
        w[l][g % 4] = _mm_sha1msg2_epu32(
            _mm_xor_si128(_mm_sha1msg1_epu32(w[l][g % 4], w[l][(g + 1) % 4]), w[l][(g + 2) % 4]),
            w[l][(g + 3) % 4]);
      }
      if (g >= 1) e_next[l] = _mm_sha1nexte_epu32(e_next[l], w[l][g % 4]);
      const __m128i before = abcd[l];
      switch (g / 5) {
        case 0:
          abcd[l] = Rounds<0>(abcd[l], e_next[l]);
          break;
        case 1:
          abcd[l] = Rounds<1>(abcd[l], e_next[l]);
          break;
        case 2:
          abcd[l] = Rounds<2>(abcd[l], e_next[l]);
          break;
        default:
          abcd[l] = Rounds<3>(abcd[l], e_next[l]);
          break;
      }
      // The next step's E comes from this step's A (sha1nexte rotates it).
      e_next[l] = before;
    }
  }
#pragma GCC unroll 4
  for (int l = 0; l < N; ++l) {
    const __m128i e = _mm_sha1nexte_epu32(e_next[l], e_save[l]);
    const __m128i sum = _mm_shuffle_epi32(_mm_add_epi32(abcd[l], abcd_save[l]), 0x1B);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(states[l]), sum);
    states[l][4] = static_cast<uint32_t>(_mm_extract_epi32(e, 3));
  }
}

}  // namespace

void Sha1CompressLanes(uint32_t (*states)[5], const unsigned char (*blocks)[64], int n) {
  switch (n) {
    case 1:
      Compress<1>(states, blocks);
      break;
    case 2:
      Compress<2>(states, blocks);
      break;
    case 3:
      Compress<3>(states, blocks);
      break;
    default:
      Compress<4>(states, blocks);
      break;
  }
}

#else

bool HaveSha1Lanes() { return false; }
void Sha1CompressLanes(uint32_t (*)[5], const unsigned char (*)[64], int) {}

#endif

}  // namespace posthog_gateway::flags
