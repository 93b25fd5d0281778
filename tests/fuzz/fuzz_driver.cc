// A plain driver for the fuzz targets when libFuzzer is not in the build (GCC): runs seeded
// random and mutated inputs through LLVMFuzzerTestOneInput for a bounded count and time, then
// checks that peak memory stayed bounded. ctest runs it; with clang, configure with
// -DPIM_LIBFUZZER=ON for real coverage-guided fuzzing (docs/protocol.md, section 8).
//
//   pim_fuzz_frame [--seconds S] [--runs N] [--seed K] [--max-rss-mb M] [files...]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "pim/drivers/frame.h"
#include "pim/proto/wire.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

using Bytes = std::vector<uint8_t>;

// Valid-looking starting points: encoded frames of every command, and the raw payloads.
std::vector<Bytes> Seeds() {
  using namespace pim;
  std::vector<proto::wire::Request> requests(6);
  requests[0].mutable_hello()->set_protocol_version(proto::wire::PROTOCOL_VERSION_CURRENT);
  auto* w = requests[1].mutable_write_tile();
  w->mutable_tile()->set_tile_id(1);
  w->mutable_tile()->set_k_end(4);
  w->mutable_tile()->set_out_end(2);
  w->mutable_tile()->set_columns(8);
  w->mutable_tile()->set_scheme(proto::NATIVE);
  w->mutable_tile()->set_weight_bits(4);
  w->set_codes(std::string("\x01\x02\x03\xff\x00\x07\xf9\x01", 8));
  requests[2].mutable_configure_adc()->set_tile_id(1);
  requests[2].mutable_configure_adc()->set_adc_bits(7);
  requests[2].mutable_configure_adc()->set_adc_step(2.0);
  auto* r = requests[3].mutable_run_mvm();
  r->set_tile_id(1);
  r->set_vectors(2);
  r->set_rows(4);
  r->set_input_bits(4);
  r->set_encoding(proto::wire::PACKED);
  r->set_inputs(std::string("\x12\x34\x56\x78", 4));
  requests[4].mutable_read_tile()->set_tile_id(1);
  requests[5].mutable_read_counters();
  std::vector<Bytes> seeds;
  Bytes stream = {7};  // piece size byte for the frame target
  Bytes series;
  for (const auto& q : requests) {
    const std::string p = q.SerializeAsString();
    pim::drivers::EncodeFrame(pim::drivers::Frame{pim::drivers::FrameType::kRequest, 1, 2, p}, &stream);
    series.push_back(uint8_t(p.size()));
    series.push_back(uint8_t(p.size() >> 8));
    series.insert(series.end(), p.begin(), p.end());
  }
  seeds.push_back(stream);
  seeds.push_back(series);
  return seeds;
}

Bytes Mutate(Bytes b, std::mt19937_64& rng) {
  const int edits = 1 + int(rng() % 8);
  for (int e = 0; e < edits; ++e) {
    const size_t at = b.empty() ? 0 : rng() % b.size();
    switch (rng() % 6) {
      case 0: if (!b.empty()) b[at] ^= uint8_t(1u << (rng() % 8)); break;
      case 1: if (!b.empty()) b[at] = uint8_t(rng()); break;
      case 2: b.insert(b.begin() + ptrdiff_t(at), uint8_t(rng() % 4 == 0 ? 0 : rng())); break;
      case 3: if (!b.empty()) b.erase(b.begin() + ptrdiff_t(at)); break;
      case 4: b.resize(at); break;
      case 5: {  // duplicate a slice
        if (b.empty()) break;
        const size_t len = 1 + rng() % std::min<size_t>(64, b.size() - at);
        Bytes slice(b.begin() + ptrdiff_t(at), b.begin() + ptrdiff_t(at + len));
        b.insert(b.begin() + ptrdiff_t(rng() % (b.size() + 1)), slice.begin(), slice.end());
        break;
      }
    }
  }
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5;
  long runs = 1000000;
  uint64_t seed = 1;
  long max_rss_mb = 1024;
  std::vector<Bytes> corpus = Seeds();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : "0"; };
    if (a == "--seconds") seconds = std::atof(next());
    else if (a == "--runs") runs = std::atol(next());
    else if (a == "--seed") seed = std::strtoull(next(), nullptr, 10);
    else if (a == "--max-rss-mb") max_rss_mb = std::atol(next());
    else {
      std::ifstream in(a, std::ios::binary);
      corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  std::mt19937_64 rng(seed);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  long done = 0;
  for (const Bytes& b : corpus) LLVMFuzzerTestOneInput(b.data(), b.size());
  while (done < runs && std::chrono::steady_clock::now() < deadline) {
    Bytes input;
    if (rng() % 4 == 0) {
      input.resize(rng() % 2048);
      for (uint8_t& x : input) x = uint8_t(rng() % 3 == 0 ? 0 : rng());
    } else {
      input = Mutate(corpus[rng() % corpus.size()], rng);
      if (rng() % 16 == 0 && corpus.size() < 256) corpus.push_back(input);
    }
    LLVMFuzzerTestOneInput(input.data(), input.size());
    ++done;
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const long rss_mb = usage.ru_maxrss / 1024;
  std::printf("%ld inputs, seed %llu, peak RSS %ld MB\n", done, (unsigned long long)seed, rss_mb);
  if (rss_mb > max_rss_mb) {
    std::fprintf(stderr, "peak RSS %ld MB exceeds %ld MB: unbounded allocation?\n", rss_mb, max_rss_mb);
    return 1;
  }
  return 0;
}
