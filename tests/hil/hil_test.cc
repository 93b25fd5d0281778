// Hardware in the loop with the virtual chip: whole models through pim-emu over a real TCP
// socket and a real pseudo-terminal give logits identical, bit for bit, to `--device sim` with
// the same chip profile and seed; with damaged frames, resets, stalls and unplugs.

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "emu_process.h"
#include "gtest/gtest.h"
#include "pim/backends/register_all_backends.h"
#include "pim/drivers/device_backend.h"
#include "pim/drivers/serial_transport.h"
#include "pim/drivers/tcp_transport.h"
#include "pim/runtime/backend_registry.h"
#include "pim/runtime/executor.h"
#include "pim/runtime/npy.h"
#include "testing/test_programs.h"

namespace pim {
namespace {

constexpr char kChip[] = "typical";  // non-ideal ADC with noise: first_sample must travel
constexpr char kSeed[] = "7";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

runtime::Tensor Images(int64_t n, int64_t h, int64_t w, int salt) {
  runtime::Tensor x({n, 1, h, w});
  for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = double(float(double((i * 7919 + salt) % 256) / 255.0));
  return x;
}

struct Model {
  std::string name;
  proto::Program program;
  runtime::Tensor input;
};

std::vector<Model> Models(int scale = 1) {
  return {{"small_cnn_native", runtime::testing::SmallCnn(proto::NATIVE), Images(40 * scale, 6, 6, 1)},
          {"small_cnn_differential", runtime::testing::SmallCnn(proto::DIFFERENTIAL), Images(40 * scale, 6, 6, 2)},
          {"small_cnn_bit_serial", runtime::testing::SmallCnn(proto::BIT_SERIAL, 1.0), Images(40 * scale, 6, 6, 3)},
          {"image_mlp", runtime::testing::ImageMlp(), Images(24 * scale, 28, 28, 4)}};
}

class Hil : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/pim_hil";
    std::filesystem::create_directories(dir_);
  }

  // pimrun as a user runs it; returns the exit code, output and errors.
  int Pimrun(const std::string& args, std::string* err = nullptr) {
    const std::string cmd = std::string(PIM_BINARY_DIR) + "/bin/pimrun " + args + " >" + dir_ + "/out.txt 2>" +
                            dir_ + "/err.txt </dev/null";
    const int status = std::system(cmd.c_str());
    if (err) *err = Slurp(dir_ + "/err.txt");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // Writes the model and its input; returns the pimrun arguments up to --device.
  std::string Files(const Model& m) {
    const std::string model = dir_ + "/" + m.name + ".pimb";
    std::ofstream(model, std::ios::binary) << m.program.SerializeAsString();
    EXPECT_TRUE(runtime::WriteNpyFloat32(dir_ + "/" + m.name + ".npy", m.input).ok());
    return model + " --input " + dir_ + "/" + m.name + ".npy --batch 16";
  }

  // Logits of `m` from pimrun on `device`, as the bytes of the .npy file.
  std::string PimrunLogits(const Model& m, const std::string& device) {
    const std::string out = dir_ + "/" + m.name + "_logits.npy";
    std::filesystem::remove(out);
    std::string err;
    const int code = Pimrun(Files(m) + " --device " + device + " --output " + out, &err);
    EXPECT_EQ(code, 0) << "pimrun --device " << device << ": " << err;
    return Slurp(out);
  }

  // Logits in process through `backend` (for the tests that need the link's statistics).
  static absl::StatusOr<runtime::Tensor> Logits(const Model& m, runtime::Backend* backend) {
    runtime::ExecutorOptions options;
    options.batch_size = 16;
    absl::StatusOr<std::unique_ptr<runtime::Executor>> ex = runtime::Executor::Create(m.program, backend, options);
    if (!ex.ok()) return ex.status();
    absl::StatusOr<runtime::RunResult> r = (*ex)->Run({{"input", m.input}});
    if (!r.ok()) return r.status();
    return r->outputs.at("logits");
  }

  static runtime::Tensor SimLogits(const Model& m) {
    runtime::BackendRegistry registry;
    EXPECT_TRUE(backends::RegisterAllBackends(registry).ok());
    auto sim = registry.Open(std::string("sim:profile=") + kChip + ",seed=" + kSeed);
    EXPECT_TRUE(sim.ok()) << sim.status();
    absl::StatusOr<runtime::Tensor> t = Logits(m, sim->get());
    EXPECT_TRUE(t.ok()) << t.status();
    return *t;
  }

  static std::vector<std::string> EmuArgs(std::vector<std::string> extra) {
    std::vector<std::string> args = {"--chip", kChip, "--seed", kSeed};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  static absl::StatusOr<std::unique_ptr<drivers::DeviceBackend>> OpenTcp(const std::string& address,
                                                                        const drivers::DeviceBackendOptions& o) {
    const std::string hostport = address.substr(std::string("tcp://").size());
    const size_t colon = hostport.rfind(':');
    auto t = drivers::TcpTransport::Connect(hostport.substr(0, colon), uint16_t(std::stoi(hostport.substr(colon + 1))),
                                            absl::Seconds(5));
    if (!t.ok()) return t.status();
    return drivers::DeviceBackend::Open(std::move(*t), o);
  }

  std::string dir_;
};

TEST_F(Hil, PimrunOverTcpGivesTheSimulatorsLogitsBitForBit) {
  hil::EmuProcess emu(EmuArgs({"--listen", "127.0.0.1:0"}));
  ASSERT_FALSE(emu.address().empty()) << "pim-emu did not start";
  for (const Model& m : Models()) {
    const std::string sim = PimrunLogits(m, std::string("sim:profile=") + kChip + ",seed=" + kSeed);
    const std::string device = PimrunLogits(m, emu.address());
    ASSERT_GT(sim.size(), 128u) << m.name;
    EXPECT_TRUE(sim == device) << m.name << ": logits over " << emu.address() << " differ from sim";
  }
}

TEST_F(Hil, PimrunOverAPtyGivesTheSimulatorsLogitsBitForBit) {
  hil::EmuProcess emu(EmuArgs({"--pty"}));
  ASSERT_FALSE(emu.address().empty()) << "pim-emu did not start";
  for (const Model& m : Models()) {
    const std::string sim = PimrunLogits(m, std::string("sim:profile=") + kChip + ",seed=" + kSeed);
    const std::string device = PimrunLogits(m, "serial:" + emu.address() + "@921600");
    ASSERT_GT(sim.size(), 128u) << m.name;
    EXPECT_TRUE(sim == device) << m.name << ": logits over the pty differ from sim";
  }
}

// The bundled PIM-QAT model as a user runs it: pimc compiles the ONNX file, pimrun runs the
// Program on the simulator and on pim-emu over TCP and over a pty.
TEST_F(Hil, BundledModelCompiledByPimcGivesTheSameLogitsOverEveryLink) {
  const std::string onnx = std::string(PIM_SOURCE_DIR) + "/tools/qat/models/fmnist-cnn-qat.onnx";
  const std::string pimb = dir_ + "/fmnist-cnn-qat.pimb";
  const std::string cmd = std::string(PIM_BINARY_DIR) + "/bin/pimc compile " + onnx + " -o " + pimb + " >" + dir_ +
                          "/pimc.txt 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << Slurp(dir_ + "/pimc.txt");
  ASSERT_TRUE(runtime::WriteNpyFloat32(dir_ + "/fmnist_x.npy", Images(48, 28, 28, 9)).ok());
  auto logits = [&](const std::string& device) {
    const std::string out = dir_ + "/fmnist_logits.npy";
    std::filesystem::remove(out);
    std::string err;
    EXPECT_EQ(Pimrun(pimb + " --input " + dir_ + "/fmnist_x.npy --batch 16 --device " + device + " --output " + out, &err),
              0)
        << device << ": " << err;
    return Slurp(out);
  };
  const std::string sim = logits(std::string("sim:profile=") + kChip + ",seed=" + kSeed);
  ASSERT_GT(sim.size(), 48u * 10u * 4u);
  hil::EmuProcess tcp(EmuArgs({"--listen", "127.0.0.1:0"}));
  ASSERT_FALSE(tcp.address().empty());
  EXPECT_TRUE(logits(tcp.address()) == sim) << "logits over tcp differ from sim";
  hil::EmuProcess pty(EmuArgs({"--pty"}));
  ASSERT_FALSE(pty.address().empty());
  EXPECT_TRUE(logits("serial:" + pty.address()) == sim) << "logits over the pty differ from sim";
}

TEST_F(Hil, SeedMatters) {
  // The comparison above means something only if another seed gives other logits.
  const Model m = Models()[0];
  const std::string a = PimrunLogits(m, std::string("sim:profile=") + kChip + ",seed=" + kSeed);
  const std::string b = PimrunLogits(m, std::string("sim:profile=") + kChip + ",seed=8");
  EXPECT_NE(a, b);
}

// 1% of frames in each direction damaged, each fault kind (device resets included) equally
// likely; the run finishes and the logits do not change.
TEST_F(Hil, OnePercentFaultsEachWayStillGiveIdenticalLogits) {
  const std::string faults = "rate=0.01,kinds=drop+corrupt+duplicate+truncate+stall+reset,stall_ms=50";
  for (const bool pty : {false, true}) {
    std::vector<std::string> args = {"--faults", faults, "--fault-seed", "11", "--window", "8"};
    if (pty) {
      args.push_back("--pty");
    } else {
      args.insert(args.end(), {"--listen", "127.0.0.1:0"});
    }
    hil::EmuProcess emu(EmuArgs(args));
    ASSERT_FALSE(emu.address().empty());
    drivers::DeviceBackendOptions o;
    o.link.max_frame_bytes = 1200;  // small frames (a tile still fits one), so 1% is many faults
    absl::StatusOr<std::unique_ptr<drivers::DeviceBackend>> device;
    if (pty) {
      auto t = drivers::SerialTransport::Open(emu.address(), 921600);
      ASSERT_TRUE(t.ok()) << t.status();
      device = drivers::DeviceBackend::Open(std::move(*t), o);
    } else {
      device = OpenTcp(emu.address(), o);
    }
    ASSERT_TRUE(device.ok()) << device.status();
    for (const Model& m : Models(/*scale=*/8)) {
      absl::StatusOr<runtime::Tensor> got = Logits(m, device->get());
      ASSERT_TRUE(got.ok()) << m.name << ": " << got.status();
      EXPECT_EQ(got->data, SimLogits(m).data) << m.name << (pty ? " over the pty" : " over tcp");
    }
    const drivers::LinkStats& s = (*device)->link_stats();
    const uint64_t frames = s.requests;
    std::printf("%s: %llu requests, %llu timeout + %llu fast retransmissions, %llu bad frames, %d resets repaired\n",
                pty ? "pty" : "tcp", (unsigned long long)frames, (unsigned long long)s.retransmissions,
                (unsigned long long)s.fast_retransmissions, (unsigned long long)s.bad_frames,
                (*device)->resets_recovered());
    EXPECT_GT(frames, 1000u) << "too few frames for 1% to mean anything";
    EXPECT_GT(s.retransmissions + s.fast_retransmissions, 0u) << "no fault ever hit";
  }
}

TEST_F(Hil, StalledDeviceGivesAClearErrorWithinTheTimeout) {
  hil::EmuProcess emu(EmuArgs({"--listen", "127.0.0.1:0"}));
  ASSERT_FALSE(emu.address().empty());
  drivers::DeviceBackendOptions o;
  o.link.timeout = absl::Milliseconds(500);
  auto device = OpenTcp(emu.address(), o);
  ASSERT_TRUE(device.ok()) << device.status();
  const Model m = Models()[0];
  ASSERT_TRUE(Logits(m, device->get()).ok());
  emu.Stop();  // the board hangs
  const absl::Time start = absl::Now();
  absl::StatusOr<runtime::Tensor> got = Logits(m, device->get());
  const absl::Duration took = absl::Now() - start;
  emu.Continue();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded) << got.status();
  EXPECT_NE(got.status().message().find("no answer from the device for"), std::string::npos) << got.status();
  EXPECT_NE(got.status().message().find(emu.address()), std::string::npos) << got.status();
  EXPECT_LT(took, absl::Milliseconds(500 + 1500));  // the timeout plus slack for a loaded box
}

TEST_F(Hil, UnpluggedDeviceGivesAClearErrorAtOnce) {
  for (const bool pty : {false, true}) {
    hil::EmuProcess emu(EmuArgs(pty ? std::vector<std::string>{"--pty"}
                                     : std::vector<std::string>{"--listen", "127.0.0.1:0"}));
    ASSERT_FALSE(emu.address().empty());
    drivers::DeviceBackendOptions o;
    o.link.timeout = absl::Seconds(3);
    absl::StatusOr<std::unique_ptr<drivers::DeviceBackend>> device;
    if (pty) {
      auto t = drivers::SerialTransport::Open(emu.address(), 921600);
      ASSERT_TRUE(t.ok()) << t.status();
      device = drivers::DeviceBackend::Open(std::move(*t), o);
    } else {
      device = OpenTcp(emu.address(), o);
    }
    ASSERT_TRUE(device.ok()) << device.status();
    const Model m = Models()[0];
    ASSERT_TRUE(Logits(m, device->get()).ok());
    emu.Kill();  // the cable is pulled
    const absl::Time start = absl::Now();
    absl::StatusOr<runtime::Tensor> got = Logits(m, device->get());
    ASSERT_FALSE(got.ok());
    EXPECT_TRUE(got.status().code() == absl::StatusCode::kUnavailable ||
                got.status().code() == absl::StatusCode::kDeadlineExceeded)
        << got.status();
    EXPECT_LT(absl::Now() - start, absl::Milliseconds(3000 + 1500)) << got.status();
    std::printf("%s unplugged: %s\n", pty ? "pty" : "tcp", got.status().ToString().c_str());
  }
}

TEST_F(Hil, DeviceResetMidRunIsRepairedOrStopsClearly) {
  // Resets only (no other damage), seeded: the device power-cycles a few times during the runs.
  for (const bool reload : {true, false}) {
    hil::EmuProcess emu(EmuArgs({"--listen", "127.0.0.1:0", "--faults-in", "reset=0.01", "--fault-seed", "5"}));
    ASSERT_FALSE(emu.address().empty());
    drivers::DeviceBackendOptions o;
    o.link.max_frame_bytes = 2048;
    o.reload_on_reset = reload;
    auto device = OpenTcp(emu.address(), o);
    ASSERT_TRUE(device.ok()) << device.status();
    absl::Status failure;
    for (const Model& m : Models()) {
      absl::StatusOr<runtime::Tensor> got = Logits(m, device->get());
      if (!got.ok()) {
        failure = got.status();
        break;
      }
      EXPECT_EQ(got->data, SimLogits(m).data) << m.name;
    }
    if (reload) {
      EXPECT_TRUE(failure.ok()) << failure;
      EXPECT_GT((*device)->resets_recovered(), 0) << "the emulator never reset: the test proves nothing";
    } else {
      EXPECT_EQ(failure.code(), absl::StatusCode::kAborted) << failure;
      EXPECT_NE(failure.message().find("device reset detected"), std::string::npos) << failure;
    }
  }
}

}  // namespace
}  // namespace pim
