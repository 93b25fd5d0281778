#pragma once

// Host (digital) operators, in double, exactly as docs/onnx-convention.md section 4 writes them
// (same operation order, rne = std::nearbyint in the default rounding mode). Shapes are checked
// by the Program validator before these run; a mismatch here is a bug and aborts.

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "pim/runtime/tensor.h"

namespace pim::runtime {

// Elementwise ops take their (first) input by value and compute in place: a caller that no
// longer needs the input moves it in and no new tensor is allocated; otherwise it is copied.

// clamp(rne(x / scale) + zero_point, lo, hi)
Tensor QuantizeOp(Tensor x, double scale, int64_t zero_point, int64_t lo, int64_t hi);
// (q - zero_point) * scale
Tensor DequantizeOp(Tensor q, double scale, int64_t zero_point);
// (x - mean[c]) / sqrt(var[c] + epsilon) * scale[c] + bias[c], c = dimension 1
Tensor BatchNormOp(Tensor x, absl::Span<const double> scale, absl::Span<const double> bias,
                   absl::Span<const double> mean, absl::Span<const double> var, double epsilon);
Tensor ReluOp(Tensor x);
Tensor ClipOp(Tensor x, double lo, double hi);
// a + b with numpy broadcasting (equal ranks); in place in `a` when the shapes are equal.
Tensor AddOp(Tensor a, const Tensor& b);

struct PoolParams {
  enum class Kind { kMax, kAverage, kGlobalAverage };
  Kind kind = Kind::kMax;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool count_include_pad = false;
  bool ceil_mode = false;
};
// Output size along one axis (floor or ceil mode; with ceil_mode the last window must start
// inside the input or its leading padding, as ONNX and PyTorch).
int64_t PoolOutputSize(int64_t size, int kernel, int stride, int pad_begin, int pad_end, bool ceil_mode);
// NCHW pooling. Max: padding never wins. Average: window sum in row-major order from 0, divided
// by the count (padded positions counted when count_include_pad). Global: sum over H*W / (H*W).
Tensor PoolOp(const Tensor& x, const PoolParams& p);

Tensor ReshapeOp(const Tensor& x, const std::vector<int64_t>& shape_with_batch_minus_one);
// exp(x - max) / sum(exp(x - max)) along `axis` (negative counts from the end).
Tensor SoftmaxOp(const Tensor& x, int axis);
Tensor ConcatOp(const std::vector<const Tensor*>& inputs, int axis);

// Convolution geometry of a matrix layer (ONNX Conv, group 1).
struct ConvParams {
  int in_channels = 0;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int dilation_h = 1, dilation_w = 1;

  int K() const { return in_channels * kernel_h * kernel_w; }
  int64_t OutH(int64_t h) const { return (h + pad_top + pad_bottom - (int64_t(dilation_h) * (kernel_h - 1) + 1)) / stride_h + 1; }
  int64_t OutW(int64_t w) const { return (w + pad_left + pad_right - (int64_t(dilation_w) * (kernel_w - 1) + 1)) / stride_w + 1; }
};

// im2col of an NCHW tensor: row (n, oy, ox) of [N*OH*OW, K], k = (c, ky, kx) row-major, zero
// padding. `out` is resized.
template <typename T>
void Im2Col(const Tensor& x, const ConvParams& conv, std::vector<T>* out);

// Float Conv/Gemm/MatMul on the host: y[m][o] = (sum over k in order, from 0, of
// w[o][k] * x[m][k]) + bias[o]; rows = [M, K] (im2col rows for a conv), weight [O, K].
std::vector<double> FloatMatmul(absl::Span<const double> rows, int64_t m_count, absl::Span<const double> weight,
                                int64_t o_count, int64_t k_count, absl::Span<const double> bias);

// Exact integer product S[m][o] = sum_k Q[o][k] X[m][k] (the digital placement).
std::vector<int64_t> IntegerMatmul(absl::Span<const uint8_t> codes, int64_t m_count, absl::Span<const int8_t> weight,
                                   int64_t o_count, int64_t k_count);

// The hot path of a quantized matrix layer on the host (Executor), in three steps that never
// leave integers: ToCodes (check + narrow the layer input), Im2ColCodes, and IntegerGemm over
// weights packed once. Results equal IntegerMatmul's exactly.

// out[i] = uint8(x[i]). Returns the index of the first element that is not an integer code in
// [0, max_code] (NaN included; nothing after it is written), or -1 when every element is one.
// max_code must be <= 255.
int64_t ToCodes(absl::Span<const double> x, int max_code, uint8_t* out);

// Im2Col of NCHW codes x ([n][c][h][w], c = conv.in_channels) into `out` ([n*OH*OW][K], sized by
// the caller), same layout and zero padding as Im2Col.
void Im2ColCodes(const uint8_t* x, int64_t n, int64_t h, int64_t w, const ConvParams& conv, uint8_t* out);

// Weights [O][K] int8 transposed into K x O blocks of int32 for a vectorized GEMM. Immutable
// after PackIntegerWeights; IntegerGemm may use it from several threads.
struct PackedIntegerWeights {
  int64_t o_count = 0, k_count = 0;
  std::vector<int8_t> q;          // the original [O][K] (fallback when int32 could overflow)
  std::vector<int32_t> blocks;    // [ceil(O / kBlock)][K][kBlock], zero-padded outputs
  bool fits_int32 = true;         // K * 255 * 128 < 2^31: every sum is exact in int32
  static constexpr int kBlock = 32;
};
PackedIntegerWeights PackIntegerWeights(absl::Span<const int8_t> weight, int64_t o_count, int64_t k_count);

// S[m][o] = sum_k Q[o][k] X[m][k] exactly, into s ([m_count][O]). OpenMP over rows of X.
void IntegerGemm(const uint8_t* codes, int64_t m_count, const PackedIntegerWeights& w, int64_t* s);

// Rearranges [N*L, O] rows (L = OH*OW positions per sample, 1 for a fully connected layer) into
// [N, O, OH, OW] (or [N, O]).
template <typename T>
Tensor RowsToNchw(const std::vector<T>& rows, int64_t n, int64_t o, int64_t oh, int64_t ow, bool conv);

}  // namespace pim::runtime
