// Counter-based random numbers (Philox4x32-10, Salmon et al. SC'11). A draw is a pure function of
// (seed, stream, index): ranks agree without talking, and a resumed run continues the same stream.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>

namespace mt {

// Mixes several identifiers (step, layer, purpose, ...) into one 64-bit stream id.
constexpr uint64_t stream_id(std::initializer_list<uint64_t> parts) {
  uint64_t h = 0x9E3779B97F4A7C15ull;
  for (uint64_t p : parts) {
    h ^= p + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
  }
  return h;
}

// Stable 64-bit FNV-1a hash of a name, for streams keyed by parameter names.
constexpr uint64_t name_hash(const char* s) {
  uint64_t h = 0xcbf29ce484222325ull;
  while (*s) h = (h ^ static_cast<unsigned char>(*s++)) * 0x100000001b3ull;
  return h;
}

inline std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t stream, uint64_t index) {
  uint32_t c0 = uint32_t(index), c1 = uint32_t(index >> 32), c2 = uint32_t(stream),
           c3 = uint32_t(stream >> 32);
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  for (int r = 0; r < 10; ++r) {
    uint64_t p0 = uint64_t(0xD2511F53u) * c0, p1 = uint64_t(0xCD9E8D57u) * c2;
    uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0, n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = uint32_t(p1);
    c3 = uint32_t(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {c0, c1, c2, c3};
}

// Uniform in (0, 1): never exactly 0 or 1, so log() of it is finite.
inline float u32_to_unit(uint32_t x) {
  return (float(x >> 8) + 0.5f) * (1.0f / 16777216.0f);
}

// Draws of one stream, addressed by index: uniform(i) and normal(i) are pure functions of i.
class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}
  float uniform(uint64_t i) const { return u32_to_unit(philox4x32(seed_, stream_, i)[0]); }
  uint32_t bits(uint64_t i) const { return philox4x32(seed_, stream_, i)[0]; }
  // Standard normal by Box-Muller on two uniforms of the same Philox block.
  float normal(uint64_t i) const {
    auto b = philox4x32(seed_, stream_, i);
    float u1 = u32_to_unit(b[0]), u2 = u32_to_unit(b[1]);
    return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.28318530717958647692f * u2);
  }
  // Uniform integer in [0, n).
  uint64_t below(uint64_t i, uint64_t n) const {
    auto b = philox4x32(seed_, stream_, i);
    uint64_t x = (uint64_t(b[0]) << 32) | b[1];
    return static_cast<uint64_t>((static_cast<unsigned __int128>(x) * n) >> 64);
  }

 private:
  uint64_t seed_, stream_;
};

}  // namespace mt
