#include "pim/runtime/host_ops.h"

#include <cmath>
#include <limits>
#include <random>
#include <tuple>

#include "gtest/gtest.h"

namespace pim::runtime {
namespace {

TEST(HostOps, QuantizeRoundsHalfToEvenAndClamps) {
  Tensor x({1, 6}, {0.25, 0.75, 1.25, -0.5, 9.0, 0.5});
  // x / 0.5 = 0.5, 1.5, 2.5, -1, 18, 1 -> 0, 2, 2, -1 -> 0, 18 -> 15, 1
  EXPECT_EQ(QuantizeOp(x, 0.5, 0, 0, 15).data, (std::vector<double>{0, 2, 2, 0, 15, 1}));
  EXPECT_EQ(QuantizeOp(x, 0.5, 3, 0, 255).data, (std::vector<double>{3, 5, 5, 2, 21, 4}));
  EXPECT_EQ(DequantizeOp(Tensor({1, 2}, {5, 2}), 0.5, 3).data, (std::vector<double>{1.0, -0.5}));
}

TEST(HostOps, BatchNormFollowsTheWrittenOrder) {
  Tensor x({1, 2, 1, 2}, {1.0, 2.0, 3.0, 4.0});
  std::vector<double> scale = {2.0, 0.5}, bias = {0.1, -0.1}, mean = {1.5, 0.3}, var = {0.2, 1.7};
  Tensor y = BatchNormOp(x, scale, bias, mean, var, 1e-5);
  for (int i = 0; i < 4; ++i) {
    const int c = i / 2;
    EXPECT_EQ(y.data[size_t(i)], (x.data[size_t(i)] - mean[c]) / std::sqrt(var[c] + 1e-5) * scale[c] + bias[c]);
  }
}

TEST(HostOps, AddBroadcasts) {
  Tensor a({2, 2, 1}, {1, 2, 3, 4});
  Tensor b({1, 1, 3}, {10, 20, 30});
  Tensor y = AddOp(a, b);
  EXPECT_EQ(y.shape, (std::vector<int64_t>{2, 2, 3}));
  EXPECT_EQ(y.data, (std::vector<double>{11, 21, 31, 12, 22, 32, 13, 23, 33, 14, 24, 34}));
}

TEST(HostOps, MaxPoolIgnoresPadding) {
  Tensor x({1, 1, 2, 2}, {-1, -2, -3, -4});
  PoolParams p;
  p.kernel_h = p.kernel_w = 2;
  p.stride_h = p.stride_w = 1;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
  Tensor y = PoolOp(x, p);
  EXPECT_EQ(y.shape, (std::vector<int64_t>{1, 1, 3, 3}));
  EXPECT_EQ(y.data, (std::vector<double>{-1, -1, -2, -1, -1, -2, -3, -3, -4}));
}

TEST(HostOps, AveragePoolCountsPadOnlyWhenAsked) {
  Tensor x({1, 1, 2, 2}, {1, 2, 3, 4});
  PoolParams p;
  p.kind = PoolParams::Kind::kAverage;
  p.kernel_h = p.kernel_w = 2;
  p.stride_h = p.stride_w = 2;
  p.pad_top = p.pad_left = 1;
  p.pad_bottom = p.pad_right = 1;
  EXPECT_EQ(PoolOp(x, p).data, (std::vector<double>{1, 2, 3, 4}));
  p.count_include_pad = true;
  EXPECT_EQ(PoolOp(x, p).data, (std::vector<double>{0.25, 0.5, 0.75, 1.0}));
  p = PoolParams{};
  p.kind = PoolParams::Kind::kGlobalAverage;
  EXPECT_EQ(PoolOp(x, p).data, (std::vector<double>{2.5}));
}

TEST(HostOps, PoolCeilModeDropsWindowStartingInPadding) {
  EXPECT_EQ(PoolOutputSize(5, 2, 2, 0, 0, false), 2);
  EXPECT_EQ(PoolOutputSize(5, 2, 2, 0, 0, true), 3);
  EXPECT_EQ(PoolOutputSize(4, 2, 2, 1, 1, true), 3);
}

TEST(HostOps, SoftmaxAlongAxis) {
  Tensor y = SoftmaxOp(Tensor({1, 2, 2}, {0, 1, 0, 1}), 1);
  const double a = std::exp(0.0) / (std::exp(0.0) + std::exp(0.0));
  EXPECT_EQ(y.data, (std::vector<double>{a, a, a, a}));
  y = SoftmaxOp(Tensor({1, 2}, {1000, 1000}), -1);
  EXPECT_EQ(y.data, (std::vector<double>{0.5, 0.5}));
}

TEST(HostOps, ConcatAlongChannels) {
  Tensor a({2, 1, 1}, {1, 2}), b({2, 2, 1}, {3, 4, 5, 6});
  Tensor y = ConcatOp({&a, &b}, 1);
  EXPECT_EQ(y.shape, (std::vector<int64_t>{2, 3, 1}));
  EXPECT_EQ(y.data, (std::vector<double>{1, 3, 4, 2, 5, 6}));
}

TEST(HostOps, Im2ColOrdersChannelThenKernelRowThenColumn) {
  // 2 channels of 3x3, kernel 2x2, stride 2, pad 1, dilation 1 -> 2x2 outputs.
  Tensor x({1, 2, 3, 3});
  for (int i = 0; i < 18; ++i) x.data[size_t(i)] = i + 1;
  ConvParams c;
  c.in_channels = 2;
  c.kernel_h = c.kernel_w = 2;
  c.stride_h = c.stride_w = 2;
  c.pad_top = c.pad_left = c.pad_bottom = c.pad_right = 1;
  std::vector<double> rows;
  Im2Col(x, c, &rows);
  ASSERT_EQ(rows.size(), 4u * 8u);
  // Output (0,0): window rows -1..0, cols -1..0: only (0,0) is inside.
  EXPECT_EQ(std::vector<double>(rows.begin(), rows.begin() + 8), (std::vector<double>{0, 0, 0, 1, 0, 0, 0, 10}));
  // Output (1,1): rows 1..2, cols 1..2.
  EXPECT_EQ(std::vector<double>(rows.begin() + 24, rows.end()), (std::vector<double>{5, 6, 8, 9, 14, 15, 17, 18}));
  // Dilation 2 on a 3x3 with no padding: the four corners.
  ConvParams d;
  d.in_channels = 2;
  d.kernel_h = d.kernel_w = 2;
  d.dilation_h = d.dilation_w = 2;
  std::vector<uint8_t> codes;
  Im2Col(x, d, &codes);
  EXPECT_EQ(codes, (std::vector<uint8_t>{1, 3, 7, 9, 10, 12, 16, 18}));
}

TEST(HostOps, MatmulsSumInOrder) {
  std::vector<uint8_t> x = {1, 2, 3};
  std::vector<int8_t> w = {1, -1, 2, -7, 0, 7};
  EXPECT_EQ(IntegerMatmul(x, 1, w, 2, 3), (std::vector<int64_t>{5, 14}));
  std::vector<double> xf = {1e16, 1.0, -1e16};
  std::vector<double> wf = {1, 1, 1};
  // In order: (1e16 + 1) - 1e16 = 0 in double; a reordered sum could give 1.
  EXPECT_EQ(FloatMatmul(xf, 1, wf, 1, 3, {}), (std::vector<double>{0.0}));
  EXPECT_EQ(FloatMatmul(xf, 1, wf, 1, 3, std::vector<double>{0.5}), (std::vector<double>{0.5}));
}

TEST(HostOps, ToCodesNarrowsAndNamesTheFirstBadElement) {
  std::vector<double> x(200, 3.0);
  x[5] = 15.0;
  std::vector<uint8_t> out(x.size());
  EXPECT_EQ(ToCodes(x, 15, out.data()), -1);
  EXPECT_EQ(out[5], 15);
  EXPECT_EQ(out[199], 3);
  for (double bad : {16.0, -1.0, 2.5, std::numeric_limits<double>::quiet_NaN(), 1e300}) {
    x[130] = bad;
    EXPECT_EQ(ToCodes(x, 15, out.data()), 130) << bad;
  }
}

TEST(HostOps, Im2ColCodesEqualsIm2Col) {
  std::mt19937 rng(3);
  // 3-wide windows with stride and dilation 1 along x take a path of their own.
  for (auto [kh, kw] : {std::pair{3, 2}, {3, 3}, {1, 1}, {1, 3}, {2, 3}}) {
    for (int stride : {1, 2}) {
      for (int pad : {0, 1, 2}) {
        for (int dil : {1, 2}) {
          for (int x_step : {1, 2}) {
            ConvParams c;
            c.in_channels = 3;
            c.kernel_h = kh;
            c.kernel_w = kw;
            c.stride_h = stride;
            c.stride_w = x_step;
            c.pad_top = pad;
            c.pad_left = pad;
            c.pad_bottom = 1;
            c.pad_right = (pad + 1) % 3;
            c.dilation_h = dil;
            c.dilation_w = dil == 2 ? x_step : 1;
            Tensor x({2, 3, 7, 6});
            std::vector<uint8_t> codes(x.data.size());
            for (size_t i = 0; i < x.data.size(); ++i) codes[i] = uint8_t(rng() % 16), x.data[i] = codes[i];
            std::vector<uint8_t> want;
            Im2Col(x, c, &want);
            std::vector<uint8_t> got(want.size(), 0xee);
            Im2ColCodes(codes.data(), 2, 7, 6, c, got.data());
            EXPECT_EQ(got, want) << kh << "x" << kw << " " << stride << " " << pad << " " << dil << " " << x_step;
          }
        }
      }
    }
  }
}

TEST(HostOps, IntegerGemmEqualsIntegerMatmul) {
  std::mt19937 rng(5);
  for (auto [m, o, k] : {std::tuple{1, 1, 1}, {7, 10, 9}, {64, 32, 144}, {65, 33, 577}, {3, 70, 1000}}) {
    std::vector<uint8_t> x(size_t(m * k));
    std::vector<int8_t> w(size_t(o * k));
    for (auto& v : x) v = uint8_t(rng() % 256);
    for (auto& v : w) v = int8_t(int(rng() % 256) - 128);
    const PackedIntegerWeights p = PackIntegerWeights(w, o, k);
    std::vector<int64_t> got(size_t(m * o));
    IntegerGemm(x.data(), m, p, got.data());
    EXPECT_EQ(got, IntegerMatmul(x, m, w, o, k)) << m << " " << o << " " << k;
  }
}

}  // namespace
}  // namespace pim::runtime
