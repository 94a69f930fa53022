#include "layers/cpu/im2col.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace dptrain {

namespace {

// Output columns ox whose input column ox * stride - padding + kj * dilation lies inside [0, width).
struct ValidRange {
  std::ptrdiff_t begin, end;
};

ValidRange valid_columns(const ConvGeometry& g, size_t kj) {
  const auto s = static_cast<std::ptrdiff_t>(g.stride);
  const auto offset =
      static_cast<std::ptrdiff_t>(kj * g.dilation) - static_cast<std::ptrdiff_t>(g.padding);  // ix = ox*s + offset
  const auto w = static_cast<std::ptrdiff_t>(g.width);
  const auto wo = static_cast<std::ptrdiff_t>(g.out_width);
  std::ptrdiff_t begin = offset >= 0 ? 0 : (-offset + s - 1) / s;
  std::ptrdiff_t end = w - offset <= 0 ? 0 : (w - offset + s - 1) / s;
  begin = std::min(begin, wo);
  end = std::clamp(end, begin, wo);
  return {begin, end};
}

// dst[0, len) = src[0, len) in fixed 8-float pieces (the last one overlapping), which compile to
// vector moves: rows here are a few dozen floats, where a memcpy call costs more than the copy.
void copy_row(const float* src, float* dst, size_t len) {
  constexpr size_t kPiece = 8;
  if (len < kPiece) {
    for (size_t i = 0; i < len; ++i) dst[i] = src[i];
    return;
  }
  size_t i = 0;
  for (; i + kPiece <= len; i += kPiece) std::memcpy(dst + i, src + i, kPiece * sizeof(float));
  if (i < len) std::memcpy(dst + len - kPiece, src + len - kPiece, kPiece * sizeof(float));
}

}  // namespace

void pad_image(const float* x, const ConvGeometry& g, float* padded) {
  const size_t hp = g.padded_height(), wp = g.padded_width();
  for (size_t c = 0; c < g.channels; ++c) {
    for (size_t y = 0; y < g.height; ++y) {
      copy_row(x + (c * g.height + y) * g.width, padded + (c * hp + y + g.padding) * wp + g.padding, g.width);
    }
  }
}

void im2col(const float* padded, const ConvGeometry& g, float* col) {
  const size_t hp = g.padded_height(), wp = g.padded_width();
  const size_t k = g.kernel, s = g.stride, d = g.dilation, ho = g.out_height, wo = g.out_width;
  for (size_t c = 0; c < g.channels; ++c) {
    for (size_t ki = 0; ki < k; ++ki) {
      for (size_t kj = 0; kj < k; ++kj) {
        float* out = col + ((c * k + ki) * k + kj) * ho * wo;
        for (size_t oy = 0; oy < ho; ++oy, out += wo) {
          // in[ox * s] = padded[c, oy * s + ki * d, ox * s + kj * d]
          const float* in = padded + (c * hp + oy * s + ki * d) * wp + kj * d;
          if (s == 1) {
            copy_row(in, out, wo);
          } else {
            for (size_t ox = 0; ox < wo; ++ox) out[ox] = in[ox * s];
          }
        }
      }
    }
  }
}

void col2im_add(const float* col, const ConvGeometry& g, float* x) {
  const size_t k = g.kernel, wo = g.out_width, ho = g.out_height;
  const auto s = static_cast<std::ptrdiff_t>(g.stride);
  const auto d = static_cast<std::ptrdiff_t>(g.dilation);
  const auto pad = static_cast<std::ptrdiff_t>(g.padding);
  const auto h = static_cast<std::ptrdiff_t>(g.height);
  for (size_t c = 0; c < g.channels; ++c) {
    float* plane = x + c * g.height * g.width;
    for (size_t ki = 0; ki < k; ++ki) {
      for (size_t kj = 0; kj < k; ++kj) {
        const float* in = col + ((c * k + ki) * k + kj) * ho * wo;
        const ValidRange r = valid_columns(g, kj);
        const std::ptrdiff_t offset = static_cast<std::ptrdiff_t>(kj) * d - pad;
        for (size_t oy = 0; oy < ho; ++oy, in += wo) {
          const std::ptrdiff_t iy = static_cast<std::ptrdiff_t>(oy) * s - pad + static_cast<std::ptrdiff_t>(ki) * d;
          if (iy < 0 || iy >= h) continue;
          float* out = plane + iy * static_cast<std::ptrdiff_t>(g.width);  // out[ox * s + offset] = x[c, iy, ix]
          if (s == 1) {
#pragma omp simd
            for (std::ptrdiff_t ox = r.begin; ox < r.end; ++ox) out[ox + offset] += in[ox];
          } else {
            for (std::ptrdiff_t ox = r.begin; ox < r.end; ++ox) out[ox * s + offset] += in[ox];
          }
        }
      }
    }
  }
}

}  // namespace dptrain
