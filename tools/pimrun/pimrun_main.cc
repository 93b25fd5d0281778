// pimrun: run a compiled Program on a device and report accuracy, logits and a profile.
//
//   pimrun model.pimb --input t10k-images-idx3-ubyte.gz --labels t10k-labels-idx1-ubyte.gz
//   pimrun model.pimb --device sim:profile=chip.textproto --input x.npy --output logits.npy --json
//
// Exit codes: 0 ok, 1 runtime failure (bad file, bad input shape, device error), 2 usage error.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "pim/backends/register_all_backends.h"
#include "pim/calibration/linearization.h"
#include "pim/runtime/backend_registry.h"
#include "pim/runtime/chip_spec.h"
#include "pim/runtime/dataset.h"
#include "pim/runtime/executor.h"
#include "pim/runtime/npy.h"
#include "pim/runtime/program_file.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace {

using namespace pim;

struct Options {
  std::string model;
  std::string device = "sim";
  std::string input;
  std::string labels;
  std::string output;
  std::string calibration;  // pimcal adc file: linearize codes (docs/calibration.md)
  int batch = 64;
  int64_t limit = -1;
  bool json = false;
  bool profile = false;
  bool list_devices = false;
  bool verbose = false;
};

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.17g", v);
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "pimrun: %s\n", std::string(status.message()).c_str());
  return 1;
}

// Index of the first maximum (numpy argmax).
int64_t ArgMax(const double* v, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (v[i] > v[best]) best = i;
  }
  return best;
}

std::string CounterText(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrCat(int64_t(v));
  return absl::StrFormat("%.4g", v);
}

void PrintProfile(const std::vector<runtime::StepProfile>& profile, double total_seconds) {
  std::set<std::string> names;
  for (const runtime::StepProfile& s : profile) {
    for (const auto& [name, value] : s.counters) names.insert(name);
  }
  std::vector<std::string> header = {"step", "kind", "calls", "host_ms", "share"};
  header.insert(header.end(), names.begin(), names.end());
  std::vector<std::vector<std::string>> rows = {header};
  double host_sum = 0;
  std::map<std::string, double> totals;
  for (const runtime::StepProfile& s : profile) {
    std::vector<std::string> row = {s.name, s.kind, absl::StrCat(s.calls), absl::StrFormat("%.3f", s.host_seconds * 1e3),
                                    absl::StrFormat("%.1f%%", total_seconds > 0 ? 100 * s.host_seconds / total_seconds : 0)};
    for (const std::string& n : names) {
      auto it = s.counters.find(n);
      row.push_back(it == s.counters.end() ? "-" : CounterText(it->second));
      if (it != s.counters.end()) totals[n] += it->second;
    }
    host_sum += s.host_seconds;
    rows.push_back(row);
  }
  std::vector<std::string> total = {"total", "", "", absl::StrFormat("%.3f", host_sum * 1e3),
                                    absl::StrFormat("%.1f%%", total_seconds > 0 ? 100 * host_sum / total_seconds : 0)};
  for (const std::string& n : names) total.push_back(CounterText(totals[n]));
  rows.push_back(total);
  std::vector<size_t> width(header.size(), 0);
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      const std::string& cell = row[i];
      if (i < 2) {
        line += cell + std::string(width[i] - cell.size() + 2, ' ');
      } else {
        line += std::string(width[i] - cell.size(), ' ') + cell + "  ";
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  }
}

std::string ProfileJson(const std::vector<runtime::StepProfile>& profile) {
  std::string out = "[";
  for (size_t i = 0; i < profile.size(); ++i) {
    const runtime::StepProfile& s = profile[i];
    absl::StrAppend(&out, i ? ", " : "", "{\"step\": ", JsonString(s.name), ", \"kind\": ", JsonString(s.kind),
                    ", \"calls\": ", s.calls, ", \"host_seconds\": ", JsonNumber(s.host_seconds), ", \"counters\": {");
    bool first = true;
    for (const auto& [name, value] : s.counters) {
      absl::StrAppend(&out, first ? "" : ", ", JsonString(name), ": ", JsonNumber(value));
      first = false;
    }
    out += "}}";
  }
  return out + "]";
}

int Run(const Options& o) {
  runtime::BackendRegistry registry;
  if (absl::Status s = backends::RegisterAllBackends(registry); !s.ok()) return Fail(s);
  if (o.list_devices) {
    for (const std::string& d : registry.ListDevices()) std::printf("%s\n", d.c_str());
    return 0;
  }
  absl::StatusOr<proto::Program> program = runtime::ReadProgramFile(o.model);
  if (!program.ok()) return Fail(program.status());
  if (program->inputs_size() != 1) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat(o.model, ": the model has ", program->inputs_size(), " inputs; pimrun feeds exactly one")));
  }
  const proto::ValueInfo& model_input = program->inputs(0);
  const std::vector<int64_t> model_shape(model_input.shape().begin(), model_input.shape().end());

  absl::StatusOr<runtime::Tensor> x = runtime::ReadInputFile(o.input);
  if (!x.ok()) return Fail(x.status());
  absl::StatusOr<runtime::Tensor> fitted = runtime::FitToInputShape(std::move(*x), model_shape, o.input);
  if (!fitted.ok()) return Fail(fitted.status());
  runtime::Tensor input = std::move(*fitted);
  std::vector<int64_t> labels;
  if (!o.labels.empty()) {
    absl::StatusOr<std::vector<int64_t>> l = runtime::ReadLabelFile(o.labels);
    if (!l.ok()) return Fail(l.status());
    labels = std::move(*l);
    if (int64_t(labels.size()) != input.batch()) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(o.labels, ": ", labels.size(), " labels for ", input.batch(),
                                                          " inputs in ", o.input)));
    }
  }
  if (o.limit >= 0 && o.limit < input.batch()) {
    input = runtime::SliceBatch(input, 0, o.limit);
    if (!labels.empty()) labels.resize(size_t(o.limit));
  }

  runtime::OpenOptions open;
  absl::StatusOr<runtime::ChipSpec> target = runtime::ChipSpecFromProto(program->target());
  if (target.ok()) open.target = *target;
  absl::StatusOr<std::unique_ptr<runtime::Backend>> backend = registry.Open(o.device, open);
  if (!backend.ok()) return Fail(backend.status());

  runtime::ExecutorOptions options;
  options.batch_size = o.batch;
  std::shared_ptr<calibration::Linearization> linearization;
  if (!o.calibration.empty()) {
    absl::StatusOr<proto::Calibration> cal = calibration::ReadCalibrationFile(o.calibration);
    if (!cal.ok()) return Fail(cal.status());
    absl::StatusOr<calibration::Linearization> lin = calibration::LinearizationFromCalibration(*cal, o.calibration);
    if (!lin.ok()) return Fail(lin.status());
    if (!cal->device_serial().empty() && cal->device_serial() != (*backend)->info().serial_number) {
      spdlog::warn("{}: measured on device serial '{}', running on '{}'", o.calibration, cal->device_serial(),
                   (*backend)->info().serial_number);
    }
    linearization = std::make_shared<calibration::Linearization>(std::move(*lin));
    options.run_layer = [linearization](runtime::Backend& b, const runtime::LayerMapping& layer,
                                        const runtime::InputBatch& in, absl::Span<double> sums) {
      return calibration::RunLayerLinearized(b, layer, in, *linearization, sums);
    };
  }
  options.profile = o.profile;
  const bool tty = isatty(STDERR_FILENO) == 1 && !o.json;
  if (tty) {
    options.progress = [](int64_t done, int64_t total) {
      std::fprintf(stderr, "\r%lld/%lld samples", static_cast<long long>(done), static_cast<long long>(total));
      if (done == total) std::fprintf(stderr, "\n");
    };
  }
  absl::StatusOr<std::unique_ptr<runtime::Executor>> executor =
      runtime::Executor::Create(*program, backend->get(), options);
  if (!executor.ok()) return Fail(executor.status());
  const auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<runtime::RunResult> result = (*executor)->Run({{model_input.name(), input}});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!result.ok()) {
    if (tty) std::fprintf(stderr, "\n");
    return Fail(result.status());
  }
  const runtime::Tensor& logits = result->outputs.at(program->outputs(0));

  double accuracy = -1;
  if (!labels.empty() && logits.batch() > 0) {
    const int64_t classes = logits.sample_size();
    int64_t correct = 0;
    for (int64_t i = 0; i < logits.batch(); ++i) {
      if (labels[size_t(i)] >= classes) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(o.labels, ": label ", i, " is ", labels[size_t(i)],
                                                            ", the model has ", classes, " outputs")));
      }
      correct += ArgMax(logits.data.data() + i * classes, classes) == labels[size_t(i)];
    }
    accuracy = double(correct) / double(logits.batch());
  }
  if (!o.output.empty()) {
    if (absl::Status s = runtime::WriteNpyFloat32(o.output, logits); !s.ok()) return Fail(s);
  }

  const runtime::ChipInfo& info = (*backend)->info();
  if (o.json) {
    std::string out = absl::StrCat("{\"model\": ", JsonString(o.model), ", \"device\": ", JsonString(o.device),
                                   ", \"backend\": ", JsonString(info.backend), ", \"chip\": ", JsonString(info.spec.name),
                                   ", \"samples\": ", logits.batch(), ", \"seconds\": ", JsonNumber(seconds));
    if (accuracy >= 0) absl::StrAppend(&out, ", \"accuracy\": ", JsonNumber(accuracy));
    if (!o.output.empty()) absl::StrAppend(&out, ", \"output\": ", JsonString(o.output));
    if (o.profile) absl::StrAppend(&out, ", \"profile\": ", ProfileJson(result->profile));
    out += "}";
    std::printf("%s\n", out.c_str());
    return 0;
  }
  std::printf("model: %s (%s%s)\n", o.model.c_str(), program->source_model_name().c_str(),
              program->training().empty() ? "" : (", " + program->training()).c_str());
  std::printf("device: %s (%s, chip %s)\n", o.device.c_str(), info.backend.c_str(), info.spec.name.c_str());
  std::printf("samples: %lld in %.3f s (%.1f samples/s)\n", static_cast<long long>(logits.batch()), seconds,
              seconds > 0 ? double(logits.batch()) / seconds : 0.0);
  if (accuracy >= 0) std::printf("accuracy: %.4f\n", accuracy);
  if (o.profile) PrintProfile(result->profile, seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"pimrun: run a compiled PIM Program (.pimb) on the simulator or a chip"};
  app.add_option("model", o.model, "compiled Program (.pimb)");
  app.add_option("--device,-d", o.device, "device URI: sim, sim:profile=<file>[,seed=N], usb0, usb:<vid>:<pid>[:<serial>], "
                                          "serial:<path>[@<baud>], tcp://<host>:<port>")
      ->capture_default_str();
  app.add_option("--input,-i", o.input, "inputs: float32 .npy (NCHW) or IDX images (.gz or plain, uint8 scaled by 1/255)");
  app.add_option("--labels,-l", o.labels, "labels (IDX or integer .npy); prints the top-1 accuracy");
  app.add_option("--output,-o", o.output, "write the model output (logits) as float32 .npy");
  app.add_option("--calibration", o.calibration, "linearize ADC codes with a calibration file (pimcal adc -o FILE)");
  app.add_option("--batch,-b", o.batch, "samples per batch")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  app.add_option("--limit,-n", o.limit, "run only the first N samples")->check(CLI::NonNegativeNumber);
  app.add_flag("--json", o.json, "machine-readable result on stdout");
  app.add_flag("--profile", o.profile, "per-step time and device counters");
  app.add_flag("--list-devices", o.list_devices, "list attached devices and exit");
  app.add_flag("--verbose,-v", o.verbose, "log details to stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (!o.list_devices && (o.model.empty() || o.input.empty())) {
    std::fprintf(stderr, "pimrun: a model and --input are required (see --help)\n");
    return 2;
  }
  auto logger = spdlog::stderr_color_mt("pimrun");
  spdlog::set_default_logger(logger);
  spdlog::set_level(o.verbose ? spdlog::level::debug : spdlog::level::warn);
  return Run(o);
}
