#include "pim/runtime/dataset.h"

#include <zlib.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "pim/runtime/npy.h"

namespace pim::runtime {
namespace {

absl::Status Bad(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

constexpr uint64_t kMaxIdxBytes = uint64_t(1) << 32;
constexpr double kMaxLabel = 2147483647;  // a class index; far above any model's output count

// Whole content of a gzip or plain file (zlib reads both).
absl::StatusOr<std::string> ReadMaybeGzip(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return Bad(path, "is a directory, not a file");
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return absl::NotFoundError(absl::StrCat(path, ": cannot open file (", std::strerror(errno), ")"));
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(f, buf, sizeof(buf));
    if (n < 0) {
      int err = 0;
      const std::string msg = gzerror(f, &err);
      gzclose(f);
      return absl::DataLossError(absl::StrCat(path, ": corrupted or truncated gzip data (", msg, ")"));
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
    if (out.size() > kMaxIdxBytes) {
      gzclose(f);
      return Bad(path, "larger than 4 GiB");
    }
  }
  // gzread stops silently on a truncated stream; gzclose reports it.
  const int rc = gzclose(f);
  if (rc != Z_OK && rc != Z_BUF_ERROR) return absl::DataLossError(absl::StrCat(path, ": read error"));
  if (rc == Z_BUF_ERROR) return absl::DataLossError(absl::StrCat(path, ": truncated gzip data"));
  return out;
}

}  // namespace

absl::StatusOr<IdxArray> ReadIdx(const std::string& path) {
  absl::StatusOr<std::string> raw = ReadMaybeGzip(path);
  if (!raw.ok()) return raw.status();
  const std::string& b = *raw;
  if (b.size() < 4) return Bad(path, absl::StrCat("too short for an IDX header (", b.size(), " bytes)"));
  const int type = uint8_t(b[2]), rank = uint8_t(b[3]);
  static const std::map<int, int> kSizes = {{0x08, 1}, {0x09, 1}, {0x0B, 2}, {0x0C, 4}, {0x0D, 4}, {0x0E, 8}};
  if (b[0] != 0 || b[1] != 0 || !kSizes.count(type) || rank < 1) {
    return Bad(path, absl::StrCat("not an IDX file (magic bytes ", int(uint8_t(b[0])), " ", int(uint8_t(b[1])), " ",
                                  type, " ", rank, ")"));
  }
  const size_t header = 4 + 4 * size_t(rank);
  if (b.size() < header) return Bad(path, "truncated IDX header");
  IdxArray out;
  out.type_code = type;
  uint64_t count = 1;
  for (int d = 0; d < rank; ++d) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(b.data()) + 4 + 4 * d;
    const uint64_t v = (uint64_t(p[0]) << 24) | (uint64_t(p[1]) << 16) | (uint64_t(p[2]) << 8) | p[3];
    out.shape.push_back(int64_t(v));
    count *= v;
    if (count > kMaxIdxBytes) return Bad(path, "IDX header declares more than 2^32 elements");
  }
  const size_t item = size_t(kSizes.at(type));
  if (b.size() - header != count * item) {
    return Bad(path, absl::StrCat("header says ", ShapeToString(out.shape), " (", count * item,
                                  " bytes of data), file holds ", b.size() - header));
  }
  out.data.resize(count);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(b.data()) + header;
  for (uint64_t i = 0; i < count; ++i, p += item) {
    uint64_t be = 0;
    for (size_t j = 0; j < item; ++j) be = (be << 8) | p[j];
    double v = 0;
    switch (type) {
      case 0x08: v = double(p[0]); break;
      case 0x09: v = double(int8_t(p[0])); break;
      case 0x0B: v = double(int16_t(uint16_t(be))); break;
      case 0x0C: v = double(int32_t(uint32_t(be))); break;
      case 0x0D: {
        const uint32_t u = uint32_t(be);
        float f;
        std::memcpy(&f, &u, 4);
        v = double(f);
        break;
      }
      case 0x0E: std::memcpy(&v, &be, 8); break;
    }
    out.data[i] = v;
  }
  return out;
}

absl::StatusOr<Tensor> ReadInputFile(const std::string& path) {
  if (absl::EndsWith(path, ".npy")) {
    absl::StatusOr<NpyArray> a = ReadNpy(path);
    if (!a.ok()) return a.status();
    if (a->dtype != "<f4") {
      return Bad(path, absl::StrCat("dtype '", a->dtype, "', model inputs must be float32 ('<f4')"));
    }
    if (a->shape.empty()) return Bad(path, "a scalar; inputs need a sample dimension");
    Tensor t(a->shape, std::move(a->data));
    const int64_t per_sample = t.sample_size();
    for (size_t i = 0; i < t.data.size(); ++i) {
      if (!std::isfinite(t.data[i])) {
        return Bad(path, absl::StrCat("sample ", int64_t(i) / per_sample, " holds ", t.data[i], " at element ",
                                      int64_t(i) % per_sample, "; inputs must be finite"));
      }
    }
    return t;
  }
  absl::StatusOr<IdxArray> idx = ReadIdx(path);
  if (!idx.ok()) return idx.status();
  if (idx->type_code != 0x08 || (idx->shape.size() != 3 && idx->shape.size() != 4)) {
    return Bad(path, absl::StrCat("IDX images must be uint8 [N, H, W] or [N, C, H, W], file holds type 0x",
                                  absl::Hex(idx->type_code), " shape ", ShapeToString(idx->shape)));
  }
  std::vector<int64_t> shape = idx->shape;
  if (shape.size() == 3) shape.insert(shape.begin() + 1, 1);
  // The same rounding as the training script: float32(k) / float32(255), then widened.
  for (double& v : idx->data) v = double(float(v) / 255.0f);
  return Tensor(shape, std::move(idx->data));
}

absl::StatusOr<std::vector<int64_t>> ReadLabelFile(const std::string& path) {
  std::vector<int64_t> shape;
  std::vector<double> data;
  if (absl::EndsWith(path, ".npy")) {
    absl::StatusOr<NpyArray> a = ReadNpy(path);
    if (!a.ok()) return a.status();
    if (a->dtype.find('f') != std::string::npos || a->dtype.find('b') != std::string::npos) {
      return Bad(path, absl::StrCat("labels have dtype '", a->dtype, "', need integers"));
    }
    shape = a->shape;
    data = std::move(a->data);
  } else {
    absl::StatusOr<IdxArray> idx = ReadIdx(path);
    if (!idx.ok()) return idx.status();
    if (idx->type_code == 0x0D || idx->type_code == 0x0E) return Bad(path, "labels are floating point, need integers");
    shape = idx->shape;
    data = std::move(idx->data);
  }
  if (shape.size() != 1) return Bad(path, absl::StrCat("labels must be a 1-D array, file holds ", ShapeToString(shape)));
  std::vector<int64_t> out(data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] < 0) return Bad(path, absl::StrCat("label ", i, " is negative (", data[i], ")"));
    if (data[i] > kMaxLabel) return Bad(path, absl::StrCat("label ", i, " is larger than ", int64_t(kMaxLabel)));
    out[i] = int64_t(data[i]);
  }
  return out;
}

absl::StatusOr<Tensor> FitToInputShape(Tensor t, const std::vector<int64_t>& model, const std::string& what) {
  auto matches = [&](const std::vector<int64_t>& shape) {
    if (shape.size() != model.size()) return false;
    for (size_t d = 1; d < model.size(); ++d) {
      if (shape[d] != model[d]) return false;
    }
    return true;
  };
  if (matches(t.shape)) return t;
  if (model.size() == 4 && model[1] == 1 && t.shape.size() == 3) {
    std::vector<int64_t> shape = {t.shape[0], 1, t.shape[1], t.shape[2]};
    if (matches(shape)) {
      t.shape = shape;
      return t;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(what, ": input shape ", ShapeToString(t.shape),
                                                 " does not fit the model's input ", ShapeToString(model)));
}

}  // namespace pim::runtime
