#include "pim/runtime/host_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "check.h"

namespace pim::runtime {

// With SSE4.1 the compiler turns std::nearbyint into one roundsd (same result: round to nearest
// even in the default mode) instead of a libm call per element; target_clones keeps a baseline
// version for x86-64 without SSE4.1.
__attribute__((target_clones("sse4.1", "default")))
Tensor QuantizeOp(Tensor x, double scale, int64_t zero_point, int64_t lo, int64_t hi) {
  const double zp = double(zero_point), dlo = double(lo), dhi = double(hi);
  for (double& e : x.data) {
    const double v = std::nearbyint(e / scale) + zp;
    e = std::isnan(v) ? v : std::min(std::max(v, dlo), dhi);
  }
  return x;
}

Tensor DequantizeOp(Tensor q, double scale, int64_t zero_point) {
  const double zp = double(zero_point);
  for (double& e : q.data) e = (e - zp) * scale;
  return q;
}

Tensor BatchNormOp(Tensor x, absl::Span<const double> scale, absl::Span<const double> bias,
                   absl::Span<const double> mean, absl::Span<const double> var, double epsilon) {
  PIM_CHECK(x.shape.size() >= 2 && int64_t(scale.size()) == x.shape[1]);
  const int64_t c_count = x.shape[1];
  const int64_t inner = x.sample_size() / c_count;
  size_t i = 0;
  for (int64_t n = 0; n < x.batch(); ++n) {
    for (int64_t c = 0; c < c_count; ++c) {
      const double denom = std::sqrt(var[size_t(c)] + epsilon);
      for (int64_t j = 0; j < inner; ++j, ++i) {
        x.data[i] = (x.data[i] - mean[size_t(c)]) / denom * scale[size_t(c)] + bias[size_t(c)];
      }
    }
  }
  return x;
}

Tensor ReluOp(Tensor x) {
  for (double& e : x.data) e = std::max(e, 0.0);
  return x;
}

Tensor ClipOp(Tensor x, double lo, double hi) {
  for (double& e : x.data) e = std::min(std::max(e, lo), hi);
  return x;
}

Tensor AddOp(Tensor a, const Tensor& b) {
  PIM_CHECK(a.shape.size() == b.shape.size());
  if (a.shape == b.shape) {
    for (size_t i = 0; i < a.data.size(); ++i) a.data[i] += b.data[i];
    return a;
  }
  const size_t rank = a.shape.size();
  std::vector<int64_t> shape(rank);
  for (size_t d = 0; d < rank; ++d) {
    PIM_CHECK(a.shape[d] == b.shape[d] || a.shape[d] == 1 || b.shape[d] == 1);
    shape[d] = std::max(a.shape[d], b.shape[d]);
  }
  Tensor y(shape);
  // Strides of a and b in the output index space (0 along broadcast axes).
  std::vector<int64_t> sa(rank), sb(rank);
  int64_t ma = 1, mb = 1;
  for (size_t d = rank; d-- > 0;) {
    sa[d] = a.shape[d] == 1 ? 0 : ma;
    sb[d] = b.shape[d] == 1 ? 0 : mb;
    ma *= a.shape[d];
    mb *= b.shape[d];
  }
  std::vector<int64_t> idx(rank, 0);
  int64_t ia = 0, ib = 0;
  for (size_t i = 0; i < y.data.size(); ++i) {
    y.data[i] = a.data[size_t(ia)] + b.data[size_t(ib)];
    for (size_t d = rank; d-- > 0;) {
      ++idx[d];
      ia += sa[d];
      ib += sb[d];
      if (idx[d] < shape[d]) break;
      ia -= sa[d] * shape[d];
      ib -= sb[d] * shape[d];
      idx[d] = 0;
    }
  }
  return y;
}

int64_t PoolOutputSize(int64_t size, int kernel, int stride, int pad_begin, int pad_end, bool ceil_mode) {
  const int64_t span = size + pad_begin + pad_end - kernel;
  int64_t n = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  if (ceil_mode && (n - 1) * stride >= size + pad_begin) --n;
  return n;
}

Tensor PoolOp(const Tensor& x, const PoolParams& p) {
  PIM_CHECK(x.shape.size() == 4);
  const int64_t n_count = x.shape[0], c_count = x.shape[1], h = x.shape[2], w = x.shape[3];
  if (p.kind == PoolParams::Kind::kGlobalAverage) {
    Tensor y({n_count, c_count, 1, 1});
    for (int64_t nc = 0; nc < n_count * c_count; ++nc) {
      double sum = 0;
      for (int64_t i = 0; i < h * w; ++i) sum += x.data[size_t(nc * h * w + i)];
      y.data[size_t(nc)] = sum / double(h * w);
    }
    return y;
  }
  const int64_t oh = PoolOutputSize(h, p.kernel_h, p.stride_h, p.pad_top, p.pad_bottom, p.ceil_mode);
  const int64_t ow = PoolOutputSize(w, p.kernel_w, p.stride_w, p.pad_left, p.pad_right, p.ceil_mode);
  Tensor y({n_count, c_count, oh, ow});
  size_t out = 0;
  for (int64_t nc = 0; nc < n_count * c_count; ++nc) {
    const double* plane = x.data.data() + nc * h * w;
    for (int64_t oy = 0; oy < oh; ++oy) {
      for (int64_t ox = 0; ox < ow; ++ox, ++out) {
        const int64_t y0 = oy * p.stride_h - p.pad_top, x0 = ox * p.stride_w - p.pad_left;
        if (p.kind == PoolParams::Kind::kMax) {
          double m = -std::numeric_limits<double>::infinity();
          for (int64_t ky = 0; ky < p.kernel_h; ++ky) {
            const int64_t yy = y0 + ky;
            if (yy < 0 || yy >= h) continue;
            for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
              const int64_t xx = x0 + kx;
              if (xx >= 0 && xx < w) m = std::max(m, plane[yy * w + xx]);
            }
          }
          y.data[out] = m;
        } else {
          double sum = 0;
          int64_t valid = 0, padded = 0;
          for (int64_t ky = 0; ky < p.kernel_h; ++ky) {
            const int64_t yy = y0 + ky;
            for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
              const int64_t xx = x0 + kx;
              if (yy >= 0 && yy < h && xx >= 0 && xx < w) {
                sum += plane[yy * w + xx];
                ++valid;
              } else if (yy < h + p.pad_bottom && xx < w + p.pad_right) {
                ++padded;  // inside the explicit padding (not past it, as ceil_mode can reach)
              }
            }
          }
          y.data[out] = sum / double(p.count_include_pad ? valid + padded : valid);
        }
      }
    }
  }
  return y;
}

Tensor ReshapeOp(const Tensor& x, const std::vector<int64_t>& shape) {
  Tensor y;
  y.shape = shape;
  y.shape[0] = x.batch();
  PIM_CHECK(Tensor::NumElements(y.shape) == int64_t(x.data.size()));
  y.data = x.data;
  return y;
}

Tensor SoftmaxOp(const Tensor& x, int axis) {
  const int rank = int(x.shape.size());
  if (axis < 0) axis += rank;
  PIM_CHECK(axis >= 0 && axis < rank);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x.shape[size_t(d)];
  for (int d = axis + 1; d < rank; ++d) inner *= x.shape[size_t(d)];
  const int64_t len = x.shape[size_t(axis)];
  Tensor y(x.shape);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const size_t base = size_t(o * len * inner + i);
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < len; ++j) m = std::max(m, x.data[base + size_t(j * inner)]);
      double sum = 0;
      for (int64_t j = 0; j < len; ++j) sum += std::exp(x.data[base + size_t(j * inner)] - m);
      for (int64_t j = 0; j < len; ++j) y.data[base + size_t(j * inner)] = std::exp(x.data[base + size_t(j * inner)] - m) / sum;
    }
  }
  return y;
}

Tensor ConcatOp(const std::vector<const Tensor*>& inputs, int axis) {
  PIM_CHECK(!inputs.empty());
  const int rank = int(inputs[0]->shape.size());
  if (axis < 0) axis += rank;
  std::vector<int64_t> shape = inputs[0]->shape;
  shape[size_t(axis)] = 0;
  for (const Tensor* t : inputs) shape[size_t(axis)] += t->shape[size_t(axis)];
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= shape[size_t(d)];
  for (int d = axis + 1; d < rank; ++d) inner *= shape[size_t(d)];
  Tensor y;
  y.shape = shape;
  y.data.reserve(size_t(Tensor::NumElements(shape)));
  for (int64_t o = 0; o < outer; ++o) {
    for (const Tensor* t : inputs) {
      const int64_t chunk = t->shape[size_t(axis)] * inner;
      y.data.insert(y.data.end(), t->data.begin() + o * chunk, t->data.begin() + (o + 1) * chunk);
    }
  }
  return y;
}

template <typename T>
void Im2Col(const Tensor& x, const ConvParams& conv, std::vector<T>* out) {
  PIM_CHECK(x.shape.size() == 4 && x.shape[1] == conv.in_channels);
  const int64_t n_count = x.shape[0], c_count = x.shape[1], h = x.shape[2], w = x.shape[3];
  const int64_t oh = conv.OutH(h), ow = conv.OutW(w), k_count = conv.K();
  out->assign(size_t(n_count * oh * ow * k_count), T(0));
  T* row = out->data();
  for (int64_t n = 0; n < n_count; ++n) {
    for (int64_t oy = 0; oy < oh; ++oy) {
      for (int64_t ox = 0; ox < ow; ++ox, row += k_count) {
        T* dst = row;
        for (int64_t c = 0; c < c_count; ++c) {
          const double* plane = x.data.data() + (n * c_count + c) * h * w;
          for (int64_t ky = 0; ky < conv.kernel_h; ++ky) {
            const int64_t yy = oy * conv.stride_h - conv.pad_top + ky * conv.dilation_h;
            for (int64_t kx = 0; kx < conv.kernel_w; ++kx, ++dst) {
              const int64_t xx = ox * conv.stride_w - conv.pad_left + kx * conv.dilation_w;
              if (yy >= 0 && yy < h && xx >= 0 && xx < w) *dst = T(plane[yy * w + xx]);
            }
          }
        }
      }
    }
  }
}
template void Im2Col<double>(const Tensor&, const ConvParams&, std::vector<double>*);
template void Im2Col<uint8_t>(const Tensor&, const ConvParams&, std::vector<uint8_t>*);

std::vector<double> FloatMatmul(absl::Span<const double> rows, int64_t m_count, absl::Span<const double> weight,
                                int64_t o_count, int64_t k_count, absl::Span<const double> bias) {
  std::vector<double> y(size_t(m_count * o_count));
  for (int64_t m = 0; m < m_count; ++m) {
    const double* x = rows.data() + m * k_count;
    for (int64_t o = 0; o < o_count; ++o) {
      const double* wr = weight.data() + o * k_count;
      double sum = 0;
      for (int64_t k = 0; k < k_count; ++k) sum += wr[k] * x[k];
      y[size_t(m * o_count + o)] = bias.empty() ? sum : sum + bias[size_t(o)];
    }
  }
  return y;
}

std::vector<int64_t> IntegerMatmul(absl::Span<const uint8_t> codes, int64_t m_count, absl::Span<const int8_t> weight,
                                   int64_t o_count, int64_t k_count) {
  std::vector<int64_t> s(size_t(m_count * o_count));
  for (int64_t m = 0; m < m_count; ++m) {
    const uint8_t* x = codes.data() + m * k_count;
    for (int64_t o = 0; o < o_count; ++o) {
      const int8_t* q = weight.data() + o * k_count;
      int64_t sum = 0;
      for (int64_t k = 0; k < k_count; ++k) sum += int64_t(q[k]) * x[k];
      s[size_t(m * o_count + o)] = sum;
    }
  }
  return s;
}

int64_t ToCodes(absl::Span<const double> x, int max_code, uint8_t* out) {
  PIM_CHECK(max_code >= 0 && max_code <= 255);
  const double hi = double(max_code);
  const size_t n = x.size();
  const double* v = x.data();
  // Blocks of 64 are checked branch-free (the compiler vectorizes the test), then narrowed; only a
  // block with a bad element is searched for its index. The range test comes first, so the
  // int conversion is always defined; NaN fails it.
  size_t i = 0;
  for (; i < n; i += 64) {
    const size_t end = std::min(n, i + 64);
    bool ok = true;
    for (size_t j = i; j < end; ++j) {
      const double e = v[j];
      ok &= e >= 0.0 && e <= hi;
    }
    if (ok) {
      for (size_t j = i; j < end; ++j) ok &= v[j] == double(int32_t(v[j]));
    }
    if (!ok) break;
    for (size_t j = i; j < end; ++j) out[j] = uint8_t(int32_t(v[j]));
  }
  for (; i < n; ++i) {
    const double e = v[i];
    if (!(e >= 0.0 && e <= hi && e == double(int32_t(e)))) return int64_t(i);
    out[i] = uint8_t(int32_t(e));
  }
  return -1;
}

namespace {

// Samples [n0, n1) of Im2ColCodes. KH, KW > 0 fix the kernel size at compile time (the window
// loops unroll; a plain per-position loop with a known 3x3 window beats a column-by-column
// transpose here), 0 reads it from conv.
template <int KH, int KW>
void Im2ColCodesSamples(const uint8_t* x, int64_t n0, int64_t n1, int64_t h, int64_t w, const ConvParams& conv, uint8_t* out) {
  const int64_t c_count = conv.in_channels, oh = conv.OutH(h), ow = conv.OutW(w), k_count = conv.K();
  const int kh = KH ? KH : conv.kernel_h, kw = KW ? KW : conv.kernel_w, dh = conv.dilation_h, dw = conv.dilation_w;
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* image = x + n * c_count * h * w;
    uint8_t* dst = out + n * oh * ow * k_count;
    for (int64_t oy = 0; oy < oh; ++oy) {
      const int64_t y0 = oy * conv.stride_h - conv.pad_top;
      const bool rows_inside = y0 >= 0 && y0 + int64_t(kh - 1) * dh < h;
      for (int64_t ox = 0; ox < ow; ++ox) {
        const int64_t x0 = ox * conv.stride_w - conv.pad_left;
        if (rows_inside && x0 >= 0 && x0 + int64_t(kw - 1) * dw < w) {
          // Interior window: no bounds tests.
          const uint8_t* src = image + y0 * w + x0;
          for (int64_t c = 0; c < c_count; ++c, src += h * w) {
            const uint8_t* r = src;
            for (int ky = 0; ky < kh; ++ky, r += dh * w) {
              for (int kx = 0; kx < kw; ++kx) *dst++ = r[kx * dw];
            }
          }
          continue;
        }
        for (int64_t c = 0; c < c_count; ++c) {
          const uint8_t* plane = image + c * h * w;
          for (int ky = 0; ky < kh; ++ky) {
            const int64_t yy = y0 + int64_t(ky) * dh;
            const bool row_ok = yy >= 0 && yy < h;
            for (int kx = 0; kx < kw; ++kx) {
              const int64_t xx = x0 + int64_t(kx) * dw;
              *dst++ = row_ok && xx >= 0 && xx < w ? plane[yy * w + xx] : 0;
            }
          }
        }
      }
    }
  }
}

// Samples [n0, n1) of Im2ColCodes for windows 3 wide with stride 1 and dilation 1 along x (any
// height, vertical stride and dilation). Inside the image row, a window's 3 bytes are copied
// with one 4-byte load and store: the 4th byte lands on the next (c, ky)'s first byte, which is
// written after it, so only the last (c, ky) of a window stores exactly 3. The loads read the
// input itself (a copy into a padded line first would stall every load on store forwarding).
void Im2ColCodesSamplesWidth3(const uint8_t* x, int64_t n0, int64_t n1, int64_t h, int64_t w, const ConvParams& conv,
                              uint8_t* out) {
  const int64_t c_count = conv.in_channels, oh = conv.OutH(h), ow = conv.OutW(w), k_count = conv.K();
  const int kh = conv.kernel_h, pad = conv.pad_left;
  // Windows [ox_in, ox_end) read 4 bytes inside the row: x0 = ox - pad >= 0 and x0 + 3 < w.
  const int64_t ox_in = std::min<int64_t>(ow, pad), ox_end = std::max(ox_in, std::min<int64_t>(ow, w - 3 + pad));
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* image = x + n * c_count * h * w;
    for (int64_t oy = 0; oy < oh; ++oy) {
      uint8_t* dst = out + (n * oh + oy) * ow * k_count;
      for (int64_t c = 0; c < c_count; ++c) {
        for (int ky = 0; ky < kh; ++ky) {
          const int64_t yy = oy * conv.stride_h - conv.pad_top + int64_t(ky) * conv.dilation_h;
          uint8_t* d = dst + (c * kh + ky) * 3;
          if (yy < 0 || yy >= h) {
            for (int64_t ox = 0; ox < ow; ++ox) std::memset(d + ox * k_count, 0, 3);
            continue;
          }
          const uint8_t* row = image + (c * h + yy) * w;
          auto edge = [&](int64_t ox) {
            for (int i = 0; i < 3; ++i) {
              const int64_t xx = ox - pad + i;
              d[ox * k_count + i] = xx >= 0 && xx < w ? row[xx] : 0;
            }
          };
          for (int64_t ox = 0; ox < ox_in; ++ox) edge(ox);
          if (c == c_count - 1 && ky == kh - 1) {
            for (int64_t ox = ox_in; ox < ox_end; ++ox) std::memcpy(d + ox * k_count, row + ox - pad, 3);
          } else {
            for (int64_t ox = ox_in; ox < ox_end; ++ox) std::memcpy(d + ox * k_count, row + ox - pad, 4);
          }
          for (int64_t ox = ox_end; ox < ow; ++ox) edge(ox);
        }
      }
    }
  }
}

}  // namespace

void Im2ColCodes(const uint8_t* x, int64_t n_count, int64_t h, int64_t w, const ConvParams& conv, uint8_t* out) {
  const int64_t work = n_count * conv.OutH(h) * conv.OutW(w) * conv.K();
#pragma omp parallel for schedule(static) if (work > (int64_t(1) << 20))
  for (int64_t n = 0; n < n_count; ++n) {
    if (conv.kernel_w == 3 && conv.stride_w == 1 && conv.dilation_w == 1) {
      Im2ColCodesSamplesWidth3(x, n, n + 1, h, w, conv, out);
    } else if (conv.kernel_h == 3 && conv.kernel_w == 3) {
      Im2ColCodesSamples<3, 3>(x, n, n + 1, h, w, conv, out);
    } else if (conv.kernel_h == 1 && conv.kernel_w == 1) {
      Im2ColCodesSamples<1, 1>(x, n, n + 1, h, w, conv, out);
    } else {
      Im2ColCodesSamples<0, 0>(x, n, n + 1, h, w, conv, out);
    }
  }
}

PackedIntegerWeights PackIntegerWeights(absl::Span<const int8_t> weight, int64_t o_count, int64_t k_count) {
  PIM_CHECK(int64_t(weight.size()) == o_count * k_count);
  constexpr int64_t B = PackedIntegerWeights::kBlock;
  PackedIntegerWeights p;
  p.o_count = o_count;
  p.k_count = k_count;
  p.q.assign(weight.begin(), weight.end());
  p.fits_int32 = k_count * 255 * 128 < (int64_t(1) << 31);
  const int64_t blocks = (o_count + B - 1) / B;
  p.blocks.assign(size_t(blocks * k_count * B), 0);
  for (int64_t o = 0; o < o_count; ++o) {
    for (int64_t k = 0; k < k_count; ++k) {
      p.blocks[size_t(((o / B) * k_count + k) * B + o % B)] = weight[size_t(o * k_count + k)];
    }
  }
  return p;
}

namespace {

// Rows [m0, m1) of S against one block of 32 outputs, two rows at a time so that each weight load
// feeds two multiply-adds. int32 accumulation is exact (PackedIntegerWeights::fits_int32). The
// compiler vectorizes the j loops; target_clones builds an AVX2 and a baseline version and picks
// one at load time, so the binary still runs on any x86-64.
__attribute__((target_clones("avx2", "default"))) void GemmBlock(const uint8_t* codes, int64_t m0, int64_t m1,
                                                                  const int32_t* wb, int64_t k_count, int64_t o0,
                                                                  int64_t valid, int64_t o_count, int64_t* s) {
  constexpr int B = PackedIntegerWeights::kBlock;
  int64_t m = m0;
  for (; m + 2 <= m1; m += 2) {
    const uint8_t* xa = codes + m * k_count;
    const uint8_t* xb = xa + k_count;
    int32_t a[B] = {}, b[B] = {};
    for (int64_t k = 0; k < k_count; ++k) {
      const int32_t va = xa[k], vb = xb[k];
      const int32_t* wk = wb + k * B;
      for (int j = 0; j < B; ++j) {
        a[j] += va * wk[j];
        b[j] += vb * wk[j];
      }
    }
    int64_t* sa = s + m * o_count + o0;
    int64_t* sb = sa + o_count;
    for (int64_t j = 0; j < valid; ++j) {
      sa[j] = a[j];
      sb[j] = b[j];
    }
  }
  for (; m < m1; ++m) {
    const uint8_t* xa = codes + m * k_count;
    int32_t a[B] = {};
    for (int64_t k = 0; k < k_count; ++k) {
      const int32_t va = xa[k];
      const int32_t* wk = wb + k * B;
      for (int j = 0; j < B; ++j) a[j] += va * wk[j];
    }
    int64_t* sa = s + m * o_count + o0;
    for (int64_t j = 0; j < valid; ++j) sa[j] = a[j];
  }
}

}  // namespace

void IntegerGemm(const uint8_t* codes, int64_t m_count, const PackedIntegerWeights& w, int64_t* s) {
  const int64_t k_count = w.k_count, o_count = w.o_count;
  if (!w.fits_int32) {
    const std::vector<int64_t> r =
        IntegerMatmul(absl::MakeConstSpan(codes, size_t(m_count * k_count)), m_count, w.q, o_count, k_count);
    std::copy(r.begin(), r.end(), s);
    return;
  }
  constexpr int64_t B = PackedIntegerWeights::kBlock;
  const int64_t blocks = (o_count + B - 1) / B;
  // Chunks of 64 rows: the block's weights (K x 32 int32) stay in L1 while the rows pass.
  constexpr int64_t kChunk = 64;
  const int64_t chunks = (m_count + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (m_count * k_count * o_count > (int64_t(1) << 18))
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t m0 = c * kChunk, m1 = std::min(m_count, m0 + kChunk);
    for (int64_t b = 0; b < blocks; ++b) {
      GemmBlock(codes, m0, m1, w.blocks.data() + b * k_count * B, k_count, b * B, std::min(B, o_count - b * B),
                o_count, s);
    }
  }
}

template <typename T>
Tensor RowsToNchw(const std::vector<T>& rows, int64_t n, int64_t o, int64_t oh, int64_t ow, bool conv) {
  if (!conv) {
    Tensor y({n, o});
    for (size_t i = 0; i < rows.size(); ++i) y.data[i] = double(rows[i]);
    return y;
  }
  Tensor y({n, o, oh, ow});
  const int64_t l = oh * ow;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t p = 0; p < l; ++p)
      for (int64_t c = 0; c < o; ++c) y.data[size_t((b * o + c) * l + p)] = double(rows[size_t((b * l + p) * o + c)]);
  return y;
}
template Tensor RowsToNchw<int32_t>(const std::vector<int32_t>&, int64_t, int64_t, int64_t, int64_t, bool);
template Tensor RowsToNchw<int64_t>(const std::vector<int64_t>&, int64_t, int64_t, int64_t, int64_t, bool);
template Tensor RowsToNchw<double>(const std::vector<double>&, int64_t, int64_t, int64_t, int64_t, bool);

}  // namespace pim::runtime
