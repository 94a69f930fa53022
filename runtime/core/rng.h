// Counter-based randomness: every random choice is a pure function of a key such as
// (seed, epoch, global sample index), so results do not depend on how work is split.
#pragma once

#include <cmath>
#include <cstdint>

namespace dptrain {

// SplitMix64 finaliser: a bijective 64-bit mix with good avalanche.
constexpr uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Folds a sequence of integers into one key; hash_key(s, e, i) differs from hash_key(s, i, e).
inline uint64_t hash_key(uint64_t a, uint64_t b = 0, uint64_t c = 0, uint64_t d = 0) {
  uint64_t h = mix64(a ^ 0x5851f42d4c957f2dULL);
  h = mix64(h ^ b);
  h = mix64((h + 0x14057b7ef767814fULL) ^ c);
  h = mix64(h ^ (d * 0xd6e8feb86659fd93ULL));
  return h;
}

// Streams of labels for hash_key, so that different uses of one seed never collide.
enum class RngStream : uint64_t { Shuffle = 1, Init = 2, Dropout = 3, Augment = 4, Synthetic = 5, Split = 6 };

// A small generator over one key: cheap to create per sample or per layer.
class Rng {
 public:
  explicit Rng(uint64_t key) : state_(key) {}
  uint64_t next_u64() { return mix64(state_++); }
  // Uniform in [0, 1).
  float uniform() { return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f); }
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n) { return static_cast<uint64_t>((static_cast<unsigned __int128>(next_u64()) * n) >> 64); }
  // Standard normal (Box-Muller).
  float normal() {
    const double u1 = (static_cast<double>(next_u64() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    const double u2 = static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0);
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }

 private:
  uint64_t state_;
};

}  // namespace dptrain
