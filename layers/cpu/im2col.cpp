#include "layers/cpu/im2col.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "runtime/core/kernel_dispatch.h"

namespace dptrain {

namespace {

using Index = std::ptrdiff_t;

// Output positions o in [begin, end) whose input position o * stride + offset lies in [0, size).
struct ValidRange {
  Index begin, end;
};

ValidRange valid_range(Index offset, Index stride, Index size, Index out_size) {
  Index begin = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  Index end = size - offset <= 0 ? 0 : (size - offset + stride - 1) / stride;
  begin = std::min(begin, out_size);
  end = std::clamp(end, begin, out_size);
  return {begin, end};
}

// One kernel tap (ki, kj) of a geometry, as the input offsets of output row 0 and column 0.
struct Tap {
  Index row_offset, col_offset;  // iy = oy * stride + row_offset, ix = ox * stride + col_offset
  ValidRange rows, cols;         // outputs whose input row / column is inside the image
};

Tap tap(const ConvGeometry& g, size_t ki, size_t kj) {
  const auto s = static_cast<Index>(g.stride), p = static_cast<Index>(g.padding);
  const Index row_offset = static_cast<Index>(ki * g.dilation) - p;
  const Index col_offset = static_cast<Index>(kj * g.dilation) - p;
  return {row_offset, col_offset,
          valid_range(row_offset, s, static_cast<Index>(g.height), static_cast<Index>(g.out_height)),
          valid_range(col_offset, s, static_cast<Index>(g.width), static_cast<Index>(g.out_width))};
}

// For a same-size geometry, output j = oy * W + ox of a tap reads input plane entry j + shift.
// Outputs in [begin, end) lie in rows inside the image and read inside the plane; of those, the
// columns outside t.cols read a neighbouring row's entry and have to be masked.
struct FlatTap {
  Index shift, begin, end;
};

FlatTap flat_tap(const ConvGeometry& g, const Tap& t) {
  const auto w = static_cast<Index>(g.width), plane = static_cast<Index>(g.height * g.width);
  const Index shift = t.row_offset * w + t.col_offset;
  const Index begin = std::max(t.rows.begin * w, -shift);
  const Index end = std::max(begin, std::min(t.rows.end * w, plane - shift));
  return {shift, begin, end};
}

// Zeroes, in every row of `out` (Ho, Wo) inside t.rows, the columns outside t.cols.
void zero_masked_columns(const ConvGeometry& g, const Tap& t, float* out) {
  const auto wo = static_cast<Index>(g.out_width);
  if (t.cols.begin == 0 && t.cols.end == wo) return;
  // A column or two per row: strided stores, not a memset call per row.
  for (Index ox = 0; ox < t.cols.begin; ++ox) {
    for (Index oy = t.rows.begin; oy < t.rows.end; ++oy) out[oy * wo + ox] = 0.0f;
  }
  for (Index ox = t.cols.end; ox < wo; ++ox) {
    for (Index oy = t.rows.begin; oy < t.rows.end; ++oy) out[oy * wo + ox] = 0.0f;
  }
}

// col2im of one tap, same-size geometry: one contiguous add of the shifted plane after the
// masked columns of `col` are zeroed.
void fold_flat(float* col, const ConvGeometry& g, const Tap& t, float* out) {
  zero_masked_columns(g, t, col);
  const FlatTap f = flat_tap(g, t);
#pragma omp simd
  for (Index j = f.begin; j < f.end; ++j) out[j + f.shift] += col[j];
}

// col2im of one tap, any geometry, row by row.
void fold_rows(const float* col, const ConvGeometry& g, const Tap& t, float* out) {
  const auto wo = static_cast<Index>(g.out_width), w = static_cast<Index>(g.width);
  const auto s = static_cast<Index>(g.stride);
  for (Index oy = t.rows.begin; oy < t.rows.end; ++oy) {
    float* row = out + (oy * s + t.row_offset) * w;  // input row iy
    const float* c = col + oy * wo;
    if (s == 1) {
#pragma omp simd
      for (Index ox = t.cols.begin; ox < t.cols.end; ++ox) row[ox + t.col_offset] += c[ox];
    } else {
      for (Index ox = t.cols.begin; ox < t.cols.end; ++ox) row[ox * s + t.col_offset] += c[ox];
    }
  }
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

DPTRAIN_CPU_KERNEL void im2col_same_size(const float* x, const ConvGeometry& g, float* col) {
  const size_t k = g.kernel, plane = g.height * g.width;
  const auto pixels = static_cast<Index>(g.col_cols());
  for (size_t c = 0; c < g.channels; ++c) {
    for (size_t ki = 0; ki < k; ++ki) {
      for (size_t kj = 0; kj < k; ++kj) {
        float* out = col + ((c * k + ki) * k + kj) * g.col_cols();
        const float* in = x + c * plane;
        const Tap t = tap(g, ki, kj);
        const FlatTap f = flat_tap(g, t);
        // Element loops for the few border entries: a memset call would cost more.
        for (Index j = 0; j < f.begin; ++j) out[j] = 0.0f;
        if (f.end > f.begin) std::memcpy(out + f.begin, in + f.begin + f.shift, (f.end - f.begin) * sizeof(float));
        for (Index j = f.end; j < pixels; ++j) out[j] = 0.0f;
        zero_masked_columns(g, t, out);
      }
    }
  }
}

DPTRAIN_CPU_KERNEL void pad_image(const float* x, const ConvGeometry& g, float* padded) {
  const size_t hp = g.padded_height(), wp = g.padded_width();
  for (size_t c = 0; c < g.channels; ++c) {
    for (size_t y = 0; y < g.height; ++y) {
      copy_row(x + (c * g.height + y) * g.width, padded + (c * hp + y + g.padding) * wp + g.padding, g.width);
    }
  }
}

DPTRAIN_CPU_KERNEL void im2col(const float* padded, const ConvGeometry& g, float* col) {
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

DPTRAIN_CPU_KERNEL void col2im_add(float* col, const ConvGeometry& g, float* x) {
  const size_t k = g.kernel, plane = g.height * g.width, pixels = g.col_cols();
  const bool flat = g.is_same_size();
  for (size_t c = 0; c < g.channels; ++c) {
    for (size_t ki = 0; ki < k; ++ki) {
      for (size_t kj = 0; kj < k; ++kj) {
        float* in = col + ((c * k + ki) * k + kj) * pixels;
        const Tap t = tap(g, ki, kj);
        if (flat) {
          fold_flat(in, g, t, x + c * plane);
        } else {
          fold_rows(in, g, t, x + c * plane);
        }
      }
    }
  }
}

}  // namespace dptrain
