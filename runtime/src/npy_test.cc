#include "pim/runtime/npy.h"

#include <zlib.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pim/runtime/dataset.h"

namespace pim::runtime {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void Write(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

TEST(Npy, Float32RoundTrip) {
  Tensor t({2, 1, 3}, {0.5, -1.25, 3.0, 1.0 / 3.0, 0, 7});
  const std::string path = ::testing::TempDir() + "/t.npy";
  ASSERT_TRUE(WriteNpyFloat32(path, t).ok());
  EXPECT_EQ(Slurp(path).size() % 16, 8u);  // 64-byte aligned header + 24 data bytes
  absl::StatusOr<NpyArray> a = ReadNpy(path);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->dtype, "<f4");
  EXPECT_EQ(a->shape, t.shape);
  EXPECT_EQ(a->data[3], double(float(1.0 / 3.0)));
  absl::StatusOr<Tensor> in = ReadInputFile(path);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->shape, t.shape);
}

TEST(Npy, ErrorsNameTheProblem) {
  Tensor t({2, 2}, {1, 2, 3, 4});
  std::string good = NpyFloat32Bytes(t);
  EXPECT_THAT(Message(ParseNpy("PK\x03\x04 not npy", "a.npy").status()), HasSubstr("a.npy: not a .npy file"));
  EXPECT_THAT(Message(ParseNpy(good.substr(0, good.size() - 1), "b.npy").status()),
              HasSubstr("b.npy: shape [2, 2] of <f4 needs 16 data bytes, the file holds 15"));
  std::string fortran = good;
  fortran.replace(fortran.find("False"), 5, "True ");
  EXPECT_THAT(Message(ParseNpy(fortran, "c.npy").status()), HasSubstr("Fortran order"));
  std::string big_endian = good;
  big_endian.replace(big_endian.find("<f4"), 3, ">f4");
  EXPECT_THAT(Message(ParseNpy(big_endian, "d.npy").status()), HasSubstr("dtype '>f4' is not a little-endian"));
  std::string bad_shape = good;
  bad_shape.replace(bad_shape.find("(2, 2)"), 6, "(2, x)");
  EXPECT_THAT(Message(ParseNpy(bad_shape, "e.npy").status()), HasSubstr("bad dimension"));
}

TEST(Npz, ReadsNumpyLayoutStoredAndDeflated) {
  absl::StatusOr<std::map<std::string, NpyArray>> z =
      ReadNpz(std::string(PIM_SOURCE_DIR) + "/tests/e2e/data/fixture.npz");
  ASSERT_TRUE(z.ok()) << z.status();
  ASSERT_EQ(z->size(), 5u);
  EXPECT_EQ(z->at("logits").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(z->at("logits").data, (std::vector<double>{0.1, -2.5, 3e-300, 1.0 / 3.0, -0.0, 12345.678}));
  EXPECT_EQ(z->at("conv1:S").data, (std::vector<double>{3, -4, 0, 127}));
  EXPECT_EQ(z->at("input").data[1], double(1.0f / 255.0f));
  EXPECT_EQ(z->at("labels").data, (std::vector<double>{7, 0, 9}));
  EXPECT_EQ(z->at("codes").dtype, "|u1");
}

TEST(Npz, CorruptionIsReported) {
  const std::string good = Slurp(std::string(PIM_SOURCE_DIR) + "/tests/e2e/data/fixture.npz");
  ASSERT_FALSE(good.empty());
  const std::string path = ::testing::TempDir() + "/bad.npz";
  Write(path, good.substr(0, good.size() / 2));
  EXPECT_THAT(Message(ReadNpz(path).status()), HasSubstr("no end-of-central-directory"));
  int refused = 0;
  for (size_t i = 0; i < good.size(); i += 7) {
    std::string bytes = good;
    bytes[i] = char(bytes[i] ^ 0x5a);
    Write(path, bytes);
    absl::StatusOr<std::map<std::string, NpyArray>> z = ReadNpz(path);
    if (!z.ok()) {
      ++refused;
      EXPECT_THAT(Message(z.status()), HasSubstr(path));
    }
  }
  EXPECT_GT(refused, 10);
}

std::string IdxBytes(int type, std::vector<uint32_t> dims, const std::string& data) {
  std::string out = {0, 0, char(type), char(dims.size())};
  for (uint32_t d : dims) {
    for (int s = 24; s >= 0; s -= 8) out += char((d >> s) & 0xff);
  }
  return out + data;
}

void WriteGz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), unsigned(bytes.size()));
  gzclose(f);
}

TEST(Idx, ImagesScaleBy255AsFloat32AndLabelsRead) {
  const std::string dir = ::testing::TempDir();
  WriteGz(dir + "/img.gz", IdxBytes(0x08, {2, 1, 2}, std::string("\x00\x01\xff\x80", 4)));
  absl::StatusOr<Tensor> x = ReadInputFile(dir + "/img.gz");
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->shape, (std::vector<int64_t>{2, 1, 1, 2}));
  EXPECT_EQ(x->data, (std::vector<double>{0.0, double(1.0f / 255.0f), 1.0, double(128.0f / 255.0f)}));
  Write(dir + "/lab", IdxBytes(0x08, {3}, std::string("\x02\x00\x09", 3)));
  absl::StatusOr<std::vector<int64_t>> l = ReadLabelFile(dir + "/lab");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(*l, (std::vector<int64_t>{2, 0, 9}));
}

TEST(Idx, ErrorsNameFileAndProblem) {
  const std::string dir = ::testing::TempDir();
  Write(dir + "/short", IdxBytes(0x08, {2, 2, 2}, "abc"));
  EXPECT_THAT(Message(ReadIdx(dir + "/short").status()), HasSubstr("short: header says [2, 2, 2] (8 bytes of data), file holds 3"));
  Write(dir + "/magic", "\x01\x02\x03\x04rest");
  EXPECT_THAT(Message(ReadIdx(dir + "/magic").status()), HasSubstr("magic: not an IDX file"));
  std::string gz;
  WriteGz(dir + "/full.gz", IdxBytes(0x08, {100}, std::string(100, 'x')));
  gz = Slurp(dir + "/full.gz");
  Write(dir + "/cut.gz", gz.substr(0, gz.size() - 12));
  EXPECT_THAT(Message(ReadIdx(dir + "/cut.gz").status()), HasSubstr("cut.gz: "));
  Write(dir + "/lab3", IdxBytes(0x08, {1, 2}, "\x01\x02"));
  EXPECT_THAT(Message(ReadLabelFile(dir + "/lab3").status()), HasSubstr("labels must be a 1-D array"));
  EXPECT_THAT(Message(ReadInputFile(dir + "/lab3").status()), HasSubstr("IDX images must be uint8 [N, H, W]"));
}

TEST(Dataset, FitsNhwToModelNchw) {
  absl::StatusOr<Tensor> t = FitToInputShape(Tensor({3, 28, 28}), {-1, 1, 28, 28}, "x");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->shape, (std::vector<int64_t>{3, 1, 28, 28}));
  EXPECT_THAT(Message(FitToInputShape(Tensor({3, 28, 27}), {-1, 1, 28, 28}, "x").status()),
              HasSubstr("x: input shape [3, 28, 27] does not fit the model's input [N, 1, 28, 28]"));
}

}  // namespace
}  // namespace pim::runtime
