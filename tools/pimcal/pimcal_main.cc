// pimcal: calibration on the chip (docs/calibration.md).
//
//   pimcal adc --device usb0 -o chip.cal.pb [--repeats N] [--report report.html]
//   pimcal bn model.pimb --device usb0 [--data FILE] [--samples N] [--calibration chip.cal.pb] -o model.bn.pimb
//
// Exit codes: 0 ok, 1 runtime failure (device, file, fit), 2 usage error.

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "pim/backends/register_all_backends.h"
#include "pim/calibration/adc_calibration.h"
#include "pim/calibration/adc_report.h"
#include "pim/calibration/bn_calibration.h"
#include "pim/calibration/calibration_file.h"
#include "pim/calibration/linearization.h"
#include "pim/cli/option_checks.h"
#include "pim/runtime/backend_registry.h"
#include "pim/runtime/chip_spec.h"
#include "pim/runtime/dataset.h"
#include "pim/runtime/output_file.h"
#include "pim/runtime/program_file.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace {

using namespace pim;

constexpr char kDefaultData[] = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";

struct AdcArgs {
  std::string device = "sim";
  std::string output;
  std::string report;
  int repeats = 16;
  int step_settings = 4;
  std::vector<int> adc_bits;
  std::vector<int> macros;
  std::string modes = "signed,unsigned";
  std::string program;  // measure only the resolutions and modes this Program uses
  bool adc_bits_given = false, modes_given = false;  // on the command line (--program excludes them)
};

struct BnArgs {
  std::string model;
  std::string device = "sim";
  std::string data = kDefaultData;
  std::string output;
  int64_t samples = 512;
  int batch = 64;
  std::string calibration;  // pimcal adc file: measure the statistics through linearized codes
};

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "pimcal: %s\n", std::string(s.message()).c_str());
  return 1;
}

bool Tty() { return isatty(STDERR_FILENO) == 1; }

absl::Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot open for writing (", std::strerror(errno), ")"));
  out << text;
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

// Whether `output` names the same file as `input` (an existing one, or the same path).
bool SameFile(const std::string& output, const std::string& input) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(output, ec) && fs::exists(input, ec)) return fs::equivalent(output, input, ec);
  return fs::absolute(output).lexically_normal() == fs::absolute(input).lexically_normal();
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "pimcal adc: %s\n", message.c_str());
  return 2;
}

// The options' own consistency, before anything is measured or written.
int CheckAdcArgs(const AdcArgs& a, const std::vector<std::string>& modes) {
  if (const int* b = cli::FirstDuplicate(a.adc_bits)) return Usage(absl::StrCat("--adc-bits lists ", *b, " twice"));
  if (const int* m = cli::FirstDuplicate(a.macros)) return Usage(absl::StrCat("--macros lists ", *m, " twice"));
  if (const std::string* m = cli::FirstDuplicate(modes)) return Usage(absl::StrCat("--modes lists ", *m, " twice"));
  if (!a.program.empty() && (a.adc_bits_given || a.modes_given)) {
    return Usage("--program chooses the resolutions and modes; do not also give --adc-bits or --modes");
  }
  if (absl::Status s = runtime::CheckOutputFile("--output", a.output); !s.ok()) return Fail(s);
  if (!a.report.empty()) {
    if (absl::Status s = runtime::CheckOutputFile("--report", a.report); !s.ok()) return Fail(s);
    if (SameFile(a.report, a.output)) {
      return Usage(absl::StrCat("--report ", a.report, " is the --output file; give the report its own path"));
    }
  }
  if (!a.program.empty() && SameFile(a.output, a.program)) {
    return Usage(absl::StrCat("--output ", a.output, " is the --program file; writing it would destroy the Program"));
  }
  return 0;
}

int RunAdc(const AdcArgs& a) {
  const std::vector<std::string> modes = absl::StrSplit(a.modes, ',');
  if (int rc = CheckAdcArgs(a, modes); rc != 0) return rc;
  calibration::AdcCalibrationOptions options;
  options.repeats = a.repeats;
  options.step_settings = a.step_settings;
  options.adc_bits = a.adc_bits;
  options.macros = a.macros;
  options.modes.clear();
  for (const std::string& m : modes) {
    if (m == "signed") {
      options.modes.push_back(calibration::AdcMode::kSigned);
    } else if (m == "unsigned") {
      options.modes.push_back(calibration::AdcMode::kUnsigned);
    } else {
      return Usage(absl::StrCat("--modes takes signed and/or unsigned, got '", m, "'"));
    }
  }
  runtime::OpenOptions open;
  if (!a.program.empty()) {
    absl::StatusOr<proto::Program> program = runtime::ReadProgramFile(a.program);
    if (!program.ok()) return Fail(program.status());
    std::set<int> bits;
    std::set<calibration::AdcMode> modes;
    for (const proto::Step& step : program->steps()) {
      if (step.kind_case() != proto::Step::kMatrix || step.matrix().placement() != proto::PIM) continue;
      bits.insert(int(step.matrix().pim().adc_bits()));
      modes.insert(step.matrix().pim().scheme() == proto::DIFFERENTIAL ? calibration::AdcMode::kUnsigned
                                                                        : calibration::AdcMode::kSigned);
    }
    if (bits.empty()) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(a.program, ": no PIM layer, nothing to calibrate")));
    }
    options.adc_bits.assign(bits.begin(), bits.end());
    options.modes.assign(modes.begin(), modes.end());
    if (absl::StatusOr<runtime::ChipSpec> target = runtime::ChipSpecFromProto(program->target()); target.ok()) {
      open.target = *target;
    }
  }
  runtime::BackendRegistry registry;
  if (absl::Status s = backends::RegisterAllBackends(registry); !s.ok()) return Fail(s);
  absl::StatusOr<std::unique_ptr<runtime::Backend>> backend = registry.Open(a.device, open);
  if (!backend.ok()) return Fail(backend.status());
  if (Tty()) {
    options.progress = [last = -1](int64_t done, int64_t total) mutable {
      const int pct = total > 0 ? int(100 * done / total) : 100;
      if (pct == last) return;
      last = pct;
      std::fprintf(stderr, "\rADC sweep %3d%% (%lld/%lld vectors)", pct, static_cast<long long>(done),
                   static_cast<long long>(total));
      if (done == total) std::fprintf(stderr, "\n");
    };
  }
  absl::StatusOr<calibration::AdcCalibration> cal = calibration::CalibrateAdc(**backend, options, a.device);
  if (!cal.ok()) {
    if (Tty()) std::fprintf(stderr, "\n");
    return Fail(cal.status());
  }
  const proto::Calibration written = calibration::CalibrationToProto(*cal);
  // What pimrun and pimcal bn will check when they load it: refuse to write a file they would refuse.
  if (absl::StatusOr<calibration::Linearization> lin = calibration::LinearizationFromCalibration(written, a.output);
      !lin.ok()) {
    return Fail(absl::InternalError(absl::StrCat("the measured calibration does not pass its own checks: ",
                                                 lin.status().message())));
  }
  if (absl::Status s = calibration::WriteCalibrationFile(written, a.output); !s.ok()) {
    return Fail(s);
  }
  if (!a.report.empty()) {
    if (absl::Status s = WriteText(a.report, calibration::AdcReportHtml(*cal)); !s.ok()) return Fail(s);
  }
  std::printf("device: %s (%s, serial %s, chip %s)\n", a.device.c_str(), cal->chip.backend.c_str(),
              cal->chip.serial_number.c_str(), cal->chip.spec.name.c_str());
  std::printf("measured: %zu column curves, %lld conversions\n", cal->columns.size(),
              static_cast<long long>(cal->conversions));
  for (int bits : cal->options.adc_bits) {
    for (calibration::AdcMode mode : cal->options.modes) {
      double inl = 0, dnl = 0, noise = 0, inl_worst = 0, dnl_worst = 0;
      int n = 0;
      for (const calibration::AdcColumnResult& c : cal->columns) {
        if (c.fit.adc_bits != bits || c.fit.mode != mode) continue;
        inl += c.fit.inl_max_lsb;
        dnl += c.fit.dnl_max_lsb;
        noise += c.fit.noise_sigma_lsb;
        inl_worst = std::max(inl_worst, c.fit.inl_max_lsb);
        dnl_worst = std::max(dnl_worst, c.fit.dnl_max_lsb);
        ++n;
      }
      if (n == 0) continue;
      std::printf("%d-bit %-8s %4d columns: INL max %.3f LSB (mean) %.3f (worst), DNL max %.3f / %.3f, noise %.3f LSB\n",
                  bits, calibration::AdcModeName(mode), n, inl / n, inl_worst, dnl / n, dnl_worst, noise / n);
    }
  }
  std::printf("wrote %s%s%s\n", a.output.c_str(), a.report.empty() ? "" : " and ", a.report.c_str());
  return 0;
}

int RunBn(const BnArgs& a) {
  if (absl::Status s = runtime::CheckOutputFile("--output", a.output); !s.ok()) return Fail(s);
  for (const auto& [option, input] : {std::pair<const char*, std::string>{"the model", a.model}, {"the --calibration", a.calibration}}) {
    if (!input.empty() && SameFile(a.output, input)) {
      std::fprintf(stderr, "pimcal bn: --output %s is %s file; writing it would destroy it\n", a.output.c_str(), option);
      return 2;
    }
  }
  absl::StatusOr<proto::Program> program = runtime::ReadProgramFile(a.model);
  if (!program.ok()) return Fail(program.status());
  if (program->inputs_size() != 1) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat(a.model, ": the model has ", program->inputs_size(), " inputs; pimcal bn feeds exactly one")));
  }
  const proto::ValueInfo& model_input = program->inputs(0);
  absl::StatusOr<runtime::Tensor> x = runtime::ReadInputFile(a.data);
  if (!x.ok()) return Fail(x.status());
  absl::StatusOr<runtime::Tensor> fitted = runtime::FitToInputShape(
      std::move(*x), std::vector<int64_t>(model_input.shape().begin(), model_input.shape().end()), a.data);
  if (!fitted.ok()) return Fail(fitted.status());
  runtime::Tensor input = std::move(*fitted);
  if (input.batch() == 0) return Fail(absl::InvalidArgumentError(absl::StrCat(a.data, ": holds no calibration images")));
  if (a.samples < input.batch()) input = runtime::SliceBatch(input, 0, a.samples);
  if (a.samples > input.batch()) {
    spdlog::warn("{} holds {} images, fewer than --samples {}: calibrating on all {}", a.data, input.batch(), a.samples,
                 input.batch());
  }

  runtime::BackendRegistry registry;
  if (absl::Status s = backends::RegisterAllBackends(registry); !s.ok()) return Fail(s);
  runtime::OpenOptions open;
  if (absl::StatusOr<runtime::ChipSpec> target = runtime::ChipSpecFromProto(program->target()); target.ok()) {
    open.target = *target;
  }
  absl::StatusOr<std::unique_ptr<runtime::Backend>> backend = registry.Open(a.device, open);
  if (!backend.ok()) return Fail(backend.status());

  calibration::BnCalibrationOptions options;
  if (!a.calibration.empty()) {
    proto::AdcCalibrationRef ref;
    absl::StatusOr<proto::Calibration> cal = calibration::ReadCalibrationFile(a.calibration, &ref);
    if (!cal.ok()) return Fail(cal.status());
    options.adc_calibration = ref;
    absl::StatusOr<calibration::Linearization> lin = calibration::LinearizationFromCalibration(*cal, a.calibration);
    if (!lin.ok()) return Fail(lin.status());
    if (!cal->device_serial().empty() && cal->device_serial() != (*backend)->info().serial_number) {
      spdlog::warn("{}: measured on device serial '{}', calibrating on '{}'", a.calibration, cal->device_serial(),
                   (*backend)->info().serial_number);
    }
    auto shared = std::make_shared<calibration::Linearization>(std::move(*lin));
    options.run_layer = [shared](runtime::Backend& b, const runtime::LayerMapping& layer,
                                 const runtime::InputBatch& in, absl::Span<double> sums) {
      return calibration::RunLayerLinearized(b, layer, in, *shared, sums);
    };
  }
  options.batch_size = a.batch;
  options.device = a.device;
  options.data = a.data;
  if (Tty()) {
    options.progress = [](int layer, int layers, int64_t done, int64_t total) {
      std::fprintf(stderr, "\rBN layer %d/%d: %lld/%lld images", layer + 1, layers, static_cast<long long>(done),
                   static_cast<long long>(total));
      if (done == total && layer + 1 == layers) std::fprintf(stderr, "\n");
    };
  }
  absl::StatusOr<calibration::BnCalibration> cal =
      calibration::CalibrateBatchNorm(*program, backend->get(), {{model_input.name(), input}}, options);
  if (!cal.ok()) {
    if (Tty()) std::fprintf(stderr, "\n");
    return Fail(cal.status());
  }
  std::string bytes;
  // Statistics that came out NaN or negative would only be refused when the Program is run.
  if (absl::Status s = runtime::ValidateProgram(cal->program, a.output); !s.ok()) {
    return Fail(absl::Status(s.code(), absl::StrCat("the calibrated Program is not valid: ", s.message())));
  }
  if (!cal->program.SerializeToString(&bytes)) return Fail(absl::InternalError("cannot serialize the Program"));
  if (absl::Status s = WriteText(a.output, bytes); !s.ok()) return Fail(s);
  std::printf("device: %s (serial %s)\n", a.device.c_str(), (*backend)->info().serial_number.c_str());
  std::printf("data: %s, %lld samples\n", a.data.c_str(), static_cast<long long>(input.batch()));
  if (options.adc_calibration) {
    std::printf("measured through ADC calibration %s (sha256 %s): run with pimrun --calibration %s\n",
                options.adc_calibration->path().c_str(), options.adc_calibration->sha256().c_str(),
                options.adc_calibration->path().c_str());
  } else {
    std::printf("measured on raw ADC codes: run without pimrun --calibration\n");
  }
  for (const calibration::BnLayerChange& c : cal->layers) {
    double dmean = 0, rvar = 0;
    for (size_t i = 0; i < c.new_mean.size(); ++i) {
      const double sd = std::sqrt(c.old_var[i] + 1e-12);
      dmean = std::max(dmean, std::abs(c.new_mean[i] - c.old_mean[i]) / sd);
      rvar = std::max(rvar, std::abs(std::sqrt(c.new_var[i] / (c.old_var[i] + 1e-12)) - 1));
    }
    std::printf("  %-24s %3zu channels: mean moved up to %.3f sd, sd changed up to %.1f%%\n", c.name.c_str(),
                c.new_mean.size(), dmean, 100 * rvar);
  }
  std::printf("wrote %s\n", a.output.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pimcal: measure a chip's ADCs, or re-estimate a Program's batch-norm statistics on the chip"};
  app.require_subcommand(1);
  AdcArgs adc;
  CLI::App* adc_cmd = app.add_subcommand("adc", "measure every column's ADC transfer curve; write a calibration file");
  adc_cmd->add_option("--device,-d", adc.device, "device URI (sim, sim:profile=<file>[,seed=N], usb0, serial:..., tcp://...)")
      ->capture_default_str()
      ->check(cli::kNonEmpty);
  adc_cmd->add_option("--output,-o", adc.output, "calibration file to write (binary Calibration protobuf)")
      ->required()
      ->check(cli::kNonEmpty);
  adc_cmd->add_option("--repeats,-r", adc.repeats, "conversions per input point (2 or more: the noise is measured from their spread)")
      ->check(cli::IntegerRange(2, 4096))->capture_default_str();
  adc_cmd->add_option("--report", adc.report, "also write a self-contained HTML report")->check(cli::kNonEmpty);
  CLI::Option* adc_bits = adc_cmd->add_option("--adc-bits", adc.adc_bits, "resolutions to measure (default: the chip's ADC bits)")
                              ->delimiter(',')
                              ->check(cli::IntegerRange(1, 32));
  adc_cmd->add_option("--macros", adc.macros, "macros to measure (default: all)")->delimiter(',')->check(cli::IntegerRange(0, 1 << 20));
  CLI::Option* modes = adc_cmd->add_option("--modes", adc.modes, "signed (native, bit_serial) and/or unsigned (differential)")
                           ->capture_default_str()
                           ->check(cli::kNonEmpty);
  adc_cmd->add_option("--program", adc.program, "measure only the ADC resolutions and modes this Program (.pimb) uses")
      ->check(cli::kNonEmpty);
  adc_cmd->add_option("--step-settings", adc.step_settings, "interleaved ADC step settings")->check(cli::IntegerRange(1, 16))->capture_default_str();
  BnArgs bn;
  CLI::App* bn_cmd = app.add_subcommand("bn", "re-estimate every BatchNormalization on the chip; write a new Program");
  bn_cmd->add_option("model", bn.model, "compiled Program (.pimb)")->required();
  bn_cmd->add_option("--device,-d", bn.device, "device URI")->capture_default_str()->check(cli::kNonEmpty);
  bn_cmd->add_option("--data", bn.data, "calibration images (IDX, .gz or plain, or float32 .npy)")
      ->capture_default_str()
      ->check(cli::kNonEmpty);
  bn_cmd->add_option("--samples,-n", bn.samples, "calibration images used (the first N)")->check(cli::IntegerRange(1, int64_t{1} << 30))->capture_default_str();
  bn_cmd->add_option("--output,-o", bn.output, "Program to write")->required()->check(cli::kNonEmpty);
  bn_cmd->add_option("--calibration", bn.calibration,
                     "measure through codes linearized with this calibration file (pimcal adc -o FILE); "
                     "run the result with pimrun --calibration FILE")
      ->check(CLI::ExistingFile);
  bn_cmd->add_option("--batch,-b", bn.batch, "images per batch")->check(cli::IntegerRange(1, 1 << 20))->capture_default_str();
  bool verbose = false;
  app.add_flag("--verbose,-v", verbose, "log details to stderr");
  if (const std::string word = cli::UnknownSubcommand(app, argc, argv); !word.empty()) {
    std::fprintf(stderr, "pimcal: unknown command '%s' (adc or bn; see --help)\n", word.c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  auto logger = spdlog::stderr_color_mt("pimcal");
  spdlog::set_default_logger(logger);
  spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::warn);
  adc.adc_bits_given = adc_bits->count() > 0;
  adc.modes_given = modes->count() > 0;
  if (adc_cmd->parsed()) return RunAdc(adc);
  return RunBn(bn);
}
