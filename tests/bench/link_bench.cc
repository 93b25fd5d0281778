// Link benchmark: a model run through pim-emu over an emulated slow link, reporting how much of
// the link's bandwidth carries payload (weights, input vectors, ADC codes) and how many bytes
// the protocol adds. It prints figures; it does not pass or fail.
//
//   build/bin/pim_link_bench [--bandwidth-bps 12e6] [--latency-ms 1] [--full-duplex]
//                            [--samples 1024] [--batch 256] [--window 8] [--max-frame 16384]
//                            [--program model.pimb] [--profile]
// Without --program the model is runtime::testing::ImageMlp (784-32-10 MLP); with it, any
// compiled Program (e.g. pimc compile tools/qat/models/fmnist-cnn-qat.onnx) on synthetic
// inputs of its input shape.
//
// Wire model (pim-emu): --half-duplex by default, i.e. both directions share one 12 Mbit/s
// medium like USB full speed. Payload fraction = payload bytes * 8 / (elapsed s * bandwidth).
// Protocol overhead = (all bytes on the wire - payload bytes) / all bytes on the wire.

#include <cstdio>
#include <cstdlib>
#include <string>

#include "emu_process.h"
#include "pim/drivers/device_backend.h"
#include "pim/drivers/tcp_transport.h"
#include "pim/runtime/executor.h"
#include "pim/runtime/program_file.h"
#include "testing/test_programs.h"

int main(int argc, char** argv) {
  using namespace pim;
  double bandwidth = 12e6, latency_ms = 1;
  bool half_duplex = true;
  bool profile = false;
  int samples = 1024, batch = 256, window = 8, max_frame = 16384;
  std::string program_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : "0"; };
    if (a == "--bandwidth-bps") bandwidth = std::atof(next());
    else if (a == "--latency-ms") latency_ms = std::atof(next());
    else if (a == "--full-duplex") half_duplex = false;
    else if (a == "--profile") profile = true;
    else if (a == "--program") program_path = next();
    else if (a == "--samples") samples = std::atoi(next());
    else if (a == "--batch") batch = std::atoi(next());
    else if (a == "--window") window = std::atoi(next());
    else if (a == "--max-frame") max_frame = std::atoi(next());
    else {
      std::fprintf(stderr, "pim_link_bench: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--chip", "typical", "--seed", "7",
                                   "--bandwidth-bps", std::to_string(bandwidth), "--latency-ms",
                                   std::to_string(latency_ms)};
  if (half_duplex) args.push_back("--half-duplex");
  hil::EmuProcess emu(args);
  if (emu.address().empty()) {
    std::fprintf(stderr, "pim_link_bench: pim-emu did not start\n");
    return 1;
  }
  const std::string hostport = emu.address().substr(6);
  const size_t colon = hostport.rfind(':');
  auto transport = drivers::TcpTransport::Connect(hostport.substr(0, colon),
                                                  uint16_t(std::stoi(hostport.substr(colon + 1))), absl::Seconds(5));
  if (!transport.ok()) return std::fprintf(stderr, "%s\n", transport.status().ToString().c_str()), 1;
  drivers::DeviceBackendOptions o;
  o.backend = "tcp";
  o.link.window = uint32_t(window);
  o.link.max_frame_bytes = uint32_t(max_frame);
  o.link.timeout = absl::Seconds(10);
  auto device = drivers::DeviceBackend::Open(std::move(*transport), o);
  if (!device.ok()) return std::fprintf(stderr, "%s\n", device.status().ToString().c_str()), 1;

  proto::Program program = runtime::testing::ImageMlp();
  if (!program_path.empty()) {
    auto p = runtime::ReadProgramFile(program_path);
    if (!p.ok()) return std::fprintf(stderr, "%s\n", p.status().ToString().c_str()), 1;
    program = *p;
  }
  std::vector<int64_t> shape;
  for (int64_t d : program.inputs(0).shape()) shape.push_back(d < 0 ? samples : d);
  runtime::Tensor x(shape);
  for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = double((i * 7919) % 256) / 255.0;
  runtime::ExecutorOptions eo;
  eo.batch_size = batch;
  eo.profile = profile;
  auto ex = runtime::Executor::Create(program, device->get(), eo);
  if (!ex.ok()) return std::fprintf(stderr, "%s\n", ex.status().ToString().c_str()), 1;

  const drivers::LinkStats before = (*device)->link_stats();
  const uint64_t payload_before = (*device)->tensor_bytes();
  const absl::Time start = absl::Now();
  auto result = (*ex)->Run({{program.inputs(0).name(), x}});
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (!result.ok()) return std::fprintf(stderr, "%s\n", result.status().ToString().c_str()), 1;
  const drivers::LinkStats& after = (*device)->link_stats();
  const double wire = double(after.bytes_out + after.bytes_in - before.bytes_out - before.bytes_in);
  const double payload = double((*device)->tensor_bytes() - payload_before);
  const double messages = double(after.message_bytes_out + after.message_bytes_in - before.message_bytes_out -
                                 before.message_bytes_in);
  // In full duplex each direction has the whole rate, so the busier one is the measure.
  const double capacity = bandwidth / 8 * seconds;
  std::printf("link: %.0f bit/s, %.1f ms one way, %s duplex; model %s, %d samples, batch %d, window %d, "
              "max frame %d\n",
              bandwidth, latency_ms, half_duplex ? "half" : "full",
              program_path.empty() ? "image_mlp" : program_path.c_str(), samples, batch, window, max_frame);
  std::printf("elapsed %.3f s, %llu requests, %llu retransmissions\n", seconds,
              (unsigned long long)(after.requests - before.requests),
              (unsigned long long)(after.retransmissions + after.fast_retransmissions - before.retransmissions -
                                   before.fast_retransmissions));
  std::printf("payload %.0f B, protobuf messages %.0f B, wire %.0f B\n", payload, messages, wire);
  std::printf("payload throughput: %.3f of link bandwidth%s\n", payload / capacity,
              half_duplex ? "" : " (both directions summed over one direction's rate)");
  std::printf("protocol byte overhead: %.2f%% of wire bytes (framing alone: %.2f%%)\n",
              100.0 * (wire - payload) / wire, 100.0 * (wire - messages) / wire);
  if (profile) {
    for (const runtime::StepProfile& p : result->profile) {
      std::printf("  %-16s %-8s calls %3lld  host %.3f s\n", p.name.c_str(), p.kind.c_str(), (long long)p.calls,
                  p.host_seconds);
    }
  }
  return 0;
}
