#include "pim/runtime/npy.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "pim/runtime/file_bytes.h"

namespace pim::runtime {
namespace {

constexpr int64_t kMaxElements = int64_t(1) << 32;

absl::Status Bad(const std::string& origin, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ": ", what));
}

// The value of 'key': in a numpy header dict, up to the next top-level ',' or '}' (tuples kept).
std::optional<std::string> HeaderValue(absl::string_view header, absl::string_view key) {
  const std::string quoted1 = absl::StrCat("'", key, "'"), quoted2 = absl::StrCat("\"", key, "\"");
  size_t pos = header.find(quoted1);
  size_t len = quoted1.size();
  if (pos == absl::string_view::npos) {
    pos = header.find(quoted2);
    len = quoted2.size();
  }
  if (pos == absl::string_view::npos) return std::nullopt;
  size_t i = pos + len;
  while (i < header.size() && (header[i] == ' ' || header[i] == ':')) ++i;
  int depth = 0;
  size_t j = i;
  for (; j < header.size(); ++j) {
    const char c = header[j];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
    if (depth < 0) return std::nullopt;
  }
  if (j == header.size()) return std::nullopt;
  return std::string(absl::StripAsciiWhitespace(header.substr(i, j - i)));
}

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

absl::StatusOr<NpyArray> ParseNpy(const std::string& bytes, const std::string& origin) {
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) {
    return Bad(origin, "not a .npy file (no \\x93NUMPY magic)");
  }
  const int major = uint8_t(bytes[6]);
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = uint8_t(bytes[8]) | (size_t(uint8_t(bytes[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return Bad(origin, "truncated .npy header");
    header_len = Load<uint32_t>(bytes.data() + 8);
    offset = 12;
  } else {
    return Bad(origin, absl::StrCat(".npy format version ", major, " is not supported (1, 2 or 3)"));
  }
  if (header_len > bytes.size() - offset) {
    return Bad(origin, absl::StrCat(".npy header of ", header_len, " bytes runs past the end of the file"));
  }
  const absl::string_view header(bytes.data() + offset, header_len);
  const size_t data_offset = offset + header_len;
  std::optional<std::string> descr = HeaderValue(header, "descr");
  std::optional<std::string> fortran = HeaderValue(header, "fortran_order");
  std::optional<std::string> shape_text = HeaderValue(header, "shape");
  if (!descr || !fortran || !shape_text) {
    return Bad(origin, absl::StrCat(".npy header lacks descr, fortran_order or shape: ", header));
  }
  NpyArray out;
  out.dtype = std::string(absl::StripSuffix(absl::StripPrefix(absl::StripPrefix(*descr, "'"), "\""), "'"));
  out.dtype = std::string(absl::StripSuffix(out.dtype, "\""));
  if (*fortran == "True") return Bad(origin, "array is in Fortran order; C order is required");
  if (*fortran != "False") return Bad(origin, absl::StrCat("fortran_order is '", *fortran, "'"));
  absl::string_view dims = *shape_text;
  if (!absl::ConsumePrefix(&dims, "(") || !absl::ConsumeSuffix(&dims, ")")) {
    return Bad(origin, absl::StrCat("shape '", *shape_text, "' is not a tuple"));
  }
  int64_t count = 1;
  for (absl::string_view d : absl::StrSplit(dims, ',', absl::SkipWhitespace())) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(d), &v) || v < 0 || v > kMaxElements) {
      return Bad(origin, absl::StrCat("shape '", *shape_text, "' has a bad dimension '", d, "'"));
    }
    out.shape.push_back(v);
    count *= v;
    if (count > kMaxElements) return Bad(origin, absl::StrCat("shape '", *shape_text, "' is too large"));
  }
  const std::string& dt = out.dtype;
  if (dt.size() < 3 || (dt[0] != '<' && dt[0] != '|' && dt[0] != '=')) {
    return Bad(origin, absl::StrCat("dtype '", dt, "' is not a little-endian numeric type"));
  }
  const std::string kind = dt.substr(1);
  static const std::map<std::string, int> kSizes = {{"f4", 4}, {"f8", 8}, {"u1", 1}, {"i1", 1}, {"b1", 1},
                                                    {"u2", 2}, {"i2", 2}, {"u4", 4}, {"i4", 4}, {"u8", 8}, {"i8", 8}};
  auto size_it = kSizes.find(kind);
  if (size_it == kSizes.end()) return Bad(origin, absl::StrCat("dtype '", dt, "' is not supported"));
  const size_t item = size_t(size_it->second);
  const size_t have = bytes.size() - data_offset;
  if (have != size_t(count) * item) {
    return Bad(origin, absl::StrCat("shape ", ShapeToString(out.shape), " of ", dt, " needs ", size_t(count) * item,
                                    " data bytes, the file holds ", have));
  }
  out.data.resize(size_t(count));
  const char* p = bytes.data() + data_offset;
  for (size_t i = 0; i < size_t(count); ++i, p += item) {
    double v = 0;
    if (kind == "f4") v = double(Load<float>(p));
    else if (kind == "f8") v = Load<double>(p);
    else if (kind == "u1" || kind == "b1") v = double(Load<uint8_t>(p));
    else if (kind == "i1") v = double(Load<int8_t>(p));
    else if (kind == "u2") v = double(Load<uint16_t>(p));
    else if (kind == "i2") v = double(Load<int16_t>(p));
    else if (kind == "u4") v = double(Load<uint32_t>(p));
    else if (kind == "i4") v = double(Load<int32_t>(p));
    else if (kind == "u8") v = double(Load<uint64_t>(p));
    else if (kind == "i8") v = double(Load<int64_t>(p));
    out.data[i] = v;
  }
  return out;
}

absl::StatusOr<NpyArray> ReadNpy(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileBytes(path, "file");
  if (!bytes.ok()) return bytes.status();
  return ParseNpy(*bytes, path);
}

std::string NpyFloat32Bytes(const Tensor& t) {
  std::string shape = "(";
  for (size_t i = 0; i < t.shape.size(); ++i) absl::StrAppend(&shape, t.shape[i], i + 1 < t.shape.size() || t.shape.size() == 1 ? ", " : "");
  if (t.shape.size() == 1) shape.resize(shape.size() - 1);
  shape += ")";
  std::string header = absl::StrCat("{'descr': '<f4', 'fortran_order': False, 'shape': ", shape, ", }");
  // Pad with spaces so magic + length + header + '\n' is a multiple of 64 (numpy's layout).
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += char(header.size() & 0xff);
  out += char(header.size() >> 8);
  out += header;
  for (double v : t.data) {
    const float f = float(v);
    out.append(reinterpret_cast<const char*>(&f), 4);
  }
  return out;
}

absl::Status WriteNpyFloat32(const std::string& path, const Tensor& t) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot create file (", std::strerror(errno), ")"));
  const std::string bytes = NpyFloat32Bytes(t);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, NpyArray>> ReadNpz(const std::string& path) {
  absl::StatusOr<std::string> file = ReadFileBytes(path, "file");
  if (!file.ok()) return file.status();
  const std::string& z = *file;
  // End of central directory: the last "PK\5\6" within the final 64 KiB + 22 bytes.
  if (z.size() < 22) return Bad(path, "not a .npz (zip) file: too short");
  size_t eocd = std::string::npos;
  for (size_t i = z.size() - 22 + 1; i-- > 0 && z.size() - i <= 65557;) {
    if (std::memcmp(z.data() + i, "PK\x05\x06", 4) == 0) {
      eocd = i;
      break;
    }
  }
  if (eocd == std::string::npos) return Bad(path, "not a .npz (zip) file: no end-of-central-directory record");
  uint64_t entries = Load<uint16_t>(z.data() + eocd + 10);
  uint64_t cd_offset = Load<uint32_t>(z.data() + eocd + 16);
  if ((cd_offset == 0xffffffffu || entries == 0xffff) && eocd >= 20 &&
      std::memcmp(z.data() + eocd - 20, "PK\x06\x07", 4) == 0) {
    const uint64_t z64 = Load<uint64_t>(z.data() + eocd - 20 + 8);
    if (z64 + 56 > z.size() || std::memcmp(z.data() + z64, "PK\x06\x06", 4) != 0) {
      return Bad(path, "corrupted zip64 end-of-central-directory record");
    }
    entries = Load<uint64_t>(z.data() + z64 + 32);
    cd_offset = Load<uint64_t>(z.data() + z64 + 48);
  }
  std::map<std::string, NpyArray> out;
  uint64_t pos = cd_offset;
  for (uint64_t e = 0; e < entries; ++e) {
    if (pos + 46 > z.size() || std::memcmp(z.data() + pos, "PK\x01\x02", 4) != 0) {
      return Bad(path, absl::StrCat("corrupted zip central directory at entry ", e));
    }
    const char* c = z.data() + pos;
    const uint16_t method = Load<uint16_t>(c + 10);
    uint64_t comp_size = Load<uint32_t>(c + 20);
    uint64_t size = Load<uint32_t>(c + 24);
    const uint16_t name_len = Load<uint16_t>(c + 28), extra_len = Load<uint16_t>(c + 30),
                   comment_len = Load<uint16_t>(c + 32);
    uint64_t local = Load<uint32_t>(c + 42);
    if (pos + 46 + name_len + extra_len + comment_len > z.size()) return Bad(path, "truncated zip central directory");
    const std::string name(c + 46, name_len);
    // zip64 extra field: the 0xffffffff fields, in order size, compressed size, local offset.
    const char* x = c + 46 + name_len;
    for (size_t xi = 0; xi + 4 <= extra_len;) {
      const uint16_t id = Load<uint16_t>(x + xi), len = Load<uint16_t>(x + xi + 2);
      if (xi + 4 + len > extra_len) break;
      if (id == 0x0001) {
        size_t f = xi + 4;
        if (size == 0xffffffffu && f + 8 <= xi + 4 + len) { size = Load<uint64_t>(x + f); f += 8; }
        if (comp_size == 0xffffffffu && f + 8 <= xi + 4 + len) { comp_size = Load<uint64_t>(x + f); f += 8; }
        if (local == 0xffffffffu && f + 8 <= xi + 4 + len) { local = Load<uint64_t>(x + f); f += 8; }
      }
      xi += 4 + len;
    }
    pos += 46 + uint64_t(name_len) + extra_len + comment_len;
    if (local + 30 > z.size() || std::memcmp(z.data() + local, "PK\x03\x04", 4) != 0) {
      return Bad(path, absl::StrCat("member '", name, "': corrupted local header"));
    }
    const uint64_t data = local + 30 + Load<uint16_t>(z.data() + local + 26) + Load<uint16_t>(z.data() + local + 28);
    if (data > z.size() || comp_size > z.size() - data) {
      return Bad(path, absl::StrCat("member '", name, "': data runs past the end of the file"));
    }
    if (size > (uint64_t(1) << 34)) return Bad(path, absl::StrCat("member '", name, "': ", size, " bytes is too large"));
    std::string bytes;
    if (method == 0) {
      if (comp_size != size) return Bad(path, absl::StrCat("member '", name, "': stored sizes disagree"));
      bytes.assign(z.data() + data, size);
    } else if (method == 8) {
      bytes.resize(size);
      z_stream s{};
      if (inflateInit2(&s, -MAX_WBITS) != Z_OK) return absl::InternalError("zlib inflateInit2 failed");
      s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(z.data() + data));
      s.avail_in = uInt(comp_size);
      s.next_out = reinterpret_cast<Bytef*>(bytes.data());
      s.avail_out = uInt(size);
      const int rc = inflate(&s, Z_FINISH);
      const uint64_t produced = s.total_out;
      inflateEnd(&s);
      if (rc != Z_STREAM_END || produced != size) {
        return Bad(path, absl::StrCat("member '", name, "': deflate data is corrupted"));
      }
    } else {
      return Bad(path, absl::StrCat("member '", name, "': compression method ", method, " is not supported"));
    }
    if (uint32_t(crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), uInt(bytes.size()))) != Load<uint32_t>(c + 16)) {
      return Bad(path, absl::StrCat("member '", name, "': CRC mismatch"));
    }
    absl::StatusOr<NpyArray> array = ParseNpy(bytes, absl::StrCat(path, ":", name));
    if (!array.ok()) return array.status();
    std::string key = name;
    if (absl::EndsWith(key, ".npy")) key.resize(key.size() - 4);
    out[key] = std::move(*array);
  }
  return out;
}

}  // namespace pim::runtime
