// pimrun: run a compiled Program on a device and report accuracy, logits and a profile.
//
//   pimrun model.pimb --input t10k-images-idx3-ubyte.gz --labels t10k-labels-idx1-ubyte.gz
//   pimrun model.pimb --device sim:profile=chip.textproto --input x.npy --output logits.npy --json
//
// Exit codes: 0 ok, 1 runtime failure (bad file, bad input shape, device error), 2 usage error.

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "pim/backends/register_all_backends.h"
#include "pim/calibration/bn_calibration.h"
#include "pim/calibration/linearization.h"
#include "pim/cli/option_checks.h"
#include "pim/runtime/backend_registry.h"
#include "pim/runtime/chip_spec.h"
#include "pim/runtime/dataset.h"
#include "pim/runtime/executor.h"
#include "pim/runtime/json.h"
#include "pim/runtime/npy.h"
#include "pim/runtime/output_file.h"
#include "pim/runtime/program_file.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace {

using namespace pim;
using runtime::JsonNumber;
using runtime::JsonString;

struct Options {
  std::string model;
  std::string device = "sim";
  std::string input;
  std::string labels;
  std::string output;
  std::string calibration;  // pimcal adc file: linearize codes (docs/calibration.md)
  bool allow_calibration_mismatch = false;  // run even if --calibration contradicts the BN record
  int batch = 64;
  int64_t limit = -1;
  bool json = false;
  bool profile = false;
  bool list_devices = false;
  bool verbose = false;
};


// One line for people: where and how a Program's BN statistics were measured (pimcal bn).
std::string BnRecordText(const proto::BnCalibrationRecord& r) {
  std::string out = absl::StrCat("bn calibration: ", r.layers_size(), " BatchNorm steps on ", r.device(),
                                 r.device_serial().empty() ? "" : absl::StrCat(" (serial ", r.device_serial(), ")"),
                                 ", ", r.samples(), " samples of ", r.data(), ", ");
  if (r.has_adc_calibration()) {
    absl::StrAppend(&out, "through ADC calibration ", r.adc_calibration().path(), " (sha256 ",
                    r.adc_calibration().sha256(), ")");
  } else {
    absl::StrAppend(&out, "on raw ADC codes");
  }
  return out;
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

// The device report of one step (a PIM layer or a weight load), derived from its counter deltas
// (docs/chip-model.md section 2) at the chip clock.
struct DeviceFigures {
  double cycles = 0, device_cycles = 0, link_cycles = 0;
  double conversions = 0, cell_macs = 0, rows_written = 0;
  double utilization = 0;  // used / available cell-cycles
  double energy_array_pj = 0, energy_adc_pj = 0, energy_digital_pj = 0, energy_io_pj = 0, energy_weight_pj = 0,
         energy_total_pj = 0;
  double link_share = 0;     // cycles.link / cycles
  double seconds = 0;        // cycles at the chip clock
  double macs_per_second = 0;  // layer MACs per device second (no link), 0 without device cycles
};

double CounterOr0(const runtime::Counters& c, const std::string& name) {
  auto it = c.find(name);
  return it == c.end() ? 0.0 : it->second;
}

DeviceFigures Figures(const runtime::Counters& c, int64_t macs, double clock_hz) {
  DeviceFigures f;
  f.cycles = CounterOr0(c, "cycles");
  f.device_cycles = CounterOr0(c, "cycles.device");
  f.link_cycles = CounterOr0(c, "cycles.link");
  f.conversions = CounterOr0(c, "adc.conversions");
  f.cell_macs = CounterOr0(c, "xbar.macs");
  f.rows_written = CounterOr0(c, "weights.rows_written");
  const double available = CounterOr0(c, "array.cell_cycles_available");
  f.utilization = available > 0 ? CounterOr0(c, "array.cell_cycles_used") / available : 0.0;
  f.energy_array_pj = CounterOr0(c, "energy.array_pj");
  f.energy_adc_pj = CounterOr0(c, "energy.adc_pj");
  f.energy_digital_pj = CounterOr0(c, "energy.digital_pj");
  f.energy_io_pj = CounterOr0(c, "energy.io_pj");
  f.energy_weight_pj = CounterOr0(c, "energy.weight_pj");
  f.energy_total_pj = CounterOr0(c, "energy.total_pj");
  f.link_share = f.cycles > 0 ? f.link_cycles / f.cycles : 0.0;
  if (clock_hz > 0) {
    f.seconds = f.cycles / clock_hz;
    f.macs_per_second = f.device_cycles > 0 ? double(macs) / (f.device_cycles / clock_hz) : 0.0;
  }
  return f;
}

// Totals over the whole run: PIM layers and weight loads run one after another on the device.
struct RunTotals {
  DeviceFigures device;
  int64_t macs = 0;        // all matrix layers (PIM and digital)
  int64_t pim_macs = 0;
  int64_t loads = 0;       // weight loads done (phase loads)
  int64_t reloads = 0;     // loads of a phase that had been loaded before
  double host_seconds = 0;
};

RunTotals Totals(const std::vector<runtime::StepProfile>& profile, double clock_hz) {
  RunTotals t;
  runtime::Counters sum;
  for (const runtime::StepProfile& s : profile) {
    for (const auto& [name, value] : s.counters) sum[name] += value;
    t.macs += s.macs;
    if (s.kind == "pim") t.pim_macs += s.macs;
    if (s.kind == "load") {
      t.loads += s.calls;
      t.reloads += std::max<int64_t>(0, s.calls - 1);
    }
    t.host_seconds += s.host_seconds;
  }
  t.device = Figures(sum, t.pim_macs, clock_hz);
  return t;
}

std::string Si(double v, const char* unit) {
  const char* prefixes[] = {"", "k", "M", "G", "T"};
  int i = 0;
  while (std::fabs(v) >= 1000 && i < 4) {
    v /= 1000;
    ++i;
  }
  return absl::StrFormat("%.4g %s%s", v, prefixes[i], unit);
}

void PrintProfile(const std::vector<runtime::StepProfile>& profile, double total_seconds, double clock_hz,
                  int64_t samples) {
  std::vector<std::string> header = {"step",     "kind",     "calls",    "host_ms",   "share",    "cycles",
                                     "link%",    "convs",    "MACs",     "util",      "array_uJ", "adc_uJ",
                                     "dig_uJ",   "io_uJ",    "wt_uJ",    "total_uJ"};
  std::vector<std::vector<std::string>> rows = {header};
  auto uj = [](double pj) { return absl::StrFormat("%.3f", pj * 1e-6); };
  auto device_cells = [&](std::vector<std::string>& row, const DeviceFigures& f, int64_t macs) {
    row.insert(row.end(), {CounterText(f.cycles), absl::StrFormat("%.1f", 100 * f.link_share), CounterText(f.conversions),
                           CounterText(double(macs)), absl::StrFormat("%.3f", f.utilization), uj(f.energy_array_pj),
                           uj(f.energy_adc_pj), uj(f.energy_digital_pj), uj(f.energy_io_pj), uj(f.energy_weight_pj),
                           uj(f.energy_total_pj)});
  };
  for (const runtime::StepProfile& s : profile) {
    std::vector<std::string> row = {s.name, s.kind, absl::StrCat(s.calls), absl::StrFormat("%.3f", s.host_seconds * 1e3),
                                    absl::StrFormat("%.1f%%", total_seconds > 0 ? 100 * s.host_seconds / total_seconds : 0)};
    if (s.counters.empty()) {
      row.insert(row.end(), 11, "-");
      if (s.macs > 0) row[8] = CounterText(double(s.macs));
    } else {
      device_cells(row, Figures(s.counters, s.macs, clock_hz), s.macs);
    }
    rows.push_back(row);
  }
  const RunTotals t = Totals(profile, clock_hz);
  std::vector<std::string> total = {"total", "", "", absl::StrFormat("%.3f", t.host_seconds * 1e3),
                                    absl::StrFormat("%.1f%%", total_seconds > 0 ? 100 * t.host_seconds / total_seconds : 0)};
  device_cells(total, t.device, t.macs);
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
  if (clock_hz <= 0) return;
  const DeviceFigures& d = t.device;
  std::printf("device (at %s): latency %s (%s device + %s link, link %.1f%%), %s per sample\n", Si(clock_hz, "Hz").c_str(),
              Si(d.seconds, "s").c_str(), Si(d.device_cycles / clock_hz, "s").c_str(),
              Si(d.link_cycles / clock_hz, "s").c_str(), 100 * d.link_share,
              Si(samples > 0 ? d.seconds / double(samples) : 0.0, "s").c_str());
  std::printf("throughput: %s (%s on the device alone), PIM %s at %s (device only), array utilization %.3f\n",
              Si(d.seconds > 0 ? double(samples) / d.seconds : 0.0, "samples/s").c_str(),
              Si(d.device_cycles > 0 ? double(samples) / (d.device_cycles / clock_hz) : 0.0, "samples/s").c_str(),
              Si(double(t.pim_macs), "MAC").c_str(), Si(d.macs_per_second, "MAC/s").c_str(), d.utilization);
  std::printf("energy: %s (array %s, ADC %s, digital %s, I/O %s, weight writes %s), %s per sample\n",
              Si(d.energy_total_pj * 1e-12, "J").c_str(), Si(d.energy_array_pj * 1e-12, "J").c_str(),
              Si(d.energy_adc_pj * 1e-12, "J").c_str(), Si(d.energy_digital_pj * 1e-12, "J").c_str(),
              Si(d.energy_io_pj * 1e-12, "J").c_str(), Si(d.energy_weight_pj * 1e-12, "J").c_str(),
              Si(samples > 0 ? d.energy_total_pj * 1e-12 / double(samples) : 0.0, "J").c_str());
  std::printf("weights: %lld loads (%lld reloads), %s rows written\n", static_cast<long long>(t.loads),
              static_cast<long long>(t.reloads), CounterText(d.rows_written).c_str());
}

std::string FiguresJson(const DeviceFigures& f) {
  return absl::StrCat("\"cycles\": ", JsonNumber(f.cycles), ", \"cycles_device\": ", JsonNumber(f.device_cycles),
                      ", \"cycles_link\": ", JsonNumber(f.link_cycles), ", \"link_share\": ", JsonNumber(f.link_share),
                      ", \"seconds\": ", JsonNumber(f.seconds), ", \"conversions\": ", JsonNumber(f.conversions),
                      ", \"cell_macs\": ", JsonNumber(f.cell_macs), ", \"utilization\": ", JsonNumber(f.utilization),
                      ", \"macs_per_second\": ", JsonNumber(f.macs_per_second),
                      ", \"weight_rows_written\": ", JsonNumber(f.rows_written), ", \"energy_pj\": {\"array\": ",
                      JsonNumber(f.energy_array_pj), ", \"adc\": ", JsonNumber(f.energy_adc_pj),
                      ", \"digital\": ", JsonNumber(f.energy_digital_pj), ", \"io\": ", JsonNumber(f.energy_io_pj),
                      ", \"weights\": ", JsonNumber(f.energy_weight_pj), ", \"total\": ", JsonNumber(f.energy_total_pj),
                      "}");
}

std::string ProfileJson(const std::vector<runtime::StepProfile>& profile, double clock_hz, int64_t samples) {
  std::string out = "{\"clock_hz\": " + JsonNumber(clock_hz) + ", \"steps\": [";
  for (size_t i = 0; i < profile.size(); ++i) {
    const runtime::StepProfile& s = profile[i];
    absl::StrAppend(&out, i ? ", " : "", "{\"step\": ", JsonString(s.name), ", \"kind\": ", JsonString(s.kind),
                    ", \"calls\": ", s.calls, ", \"host_seconds\": ", JsonNumber(s.host_seconds), ", \"macs\": ", s.macs);
    if (!s.counters.empty()) absl::StrAppend(&out, ", ", FiguresJson(Figures(s.counters, s.macs, clock_hz)));
    out += ", \"counters\": {";
    bool first = true;
    for (const auto& [name, value] : s.counters) {
      absl::StrAppend(&out, first ? "" : ", ", JsonString(name), ": ", JsonNumber(value));
      first = false;
    }
    out += "}}";
  }
  const RunTotals t = Totals(profile, clock_hz);
  const DeviceFigures& d = t.device;
  absl::StrAppend(&out, "], \"total\": {", FiguresJson(d), ", \"macs\": ", t.macs, ", \"pim_macs\": ", t.pim_macs,
                  ", \"weight_loads\": ", t.loads, ", \"weight_reloads\": ", t.reloads,
                  ", \"host_seconds\": ", JsonNumber(t.host_seconds),
                  ", \"latency_seconds_per_sample\": ", JsonNumber(samples > 0 ? d.seconds / double(samples) : 0.0),
                  ", \"samples_per_second\": ", JsonNumber(d.seconds > 0 ? double(samples) / d.seconds : 0.0),
                  ", \"samples_per_second_device\": ",
                  JsonNumber(d.device_cycles > 0 && clock_hz > 0 ? double(samples) / (d.device_cycles / clock_hz) : 0.0),
                  ", \"energy_pj_per_sample\": ", JsonNumber(samples > 0 ? d.energy_total_pj / double(samples) : 0.0),
                  "}}");
  return out;
}

int Run(const Options& o) {
  runtime::BackendRegistry registry;
  if (absl::Status s = backends::RegisterAllBackends(registry); !s.ok()) return Fail(s);
  if (o.list_devices) {
    for (const std::string& d : registry.ListDevices()) std::printf("%s\n", d.c_str());
    return 0;
  }
  if (!o.output.empty()) {
    if (absl::Status s = runtime::CheckOutputFile("--output", o.output); !s.ok()) return Fail(s);
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
  if (input.batch() == 0) return Fail(absl::InvalidArgumentError(absl::StrCat(o.input, ": holds no samples")));
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
  // Labels are checked against the model's output before the run, not after it.
  absl::StatusOr<runtime::ValueShapes> shapes = runtime::InferValueShapes(*program);
  if (!shapes.ok()) return Fail(shapes.status());
  const std::vector<int64_t>& output_shape = shapes->at(program->outputs(0));
  const int64_t classes = runtime::Tensor::NumElements({output_shape.begin() + 1, output_shape.end()});
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= classes) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat(o.labels, ": label ", i, " is ", labels[i], ", the model has ", classes, " outputs")));
    }
  }

  runtime::OpenOptions open;
  absl::StatusOr<runtime::ChipSpec> target = runtime::ChipSpecFromProto(program->target());
  if (target.ok()) open.target = *target;
  absl::StatusOr<std::unique_ptr<runtime::Backend>> backend = registry.Open(o.device, open);
  if (!backend.ok()) return Fail(backend.status());

  runtime::ExecutorOptions options;
  options.batch_size = o.batch;
  std::shared_ptr<calibration::Linearization> linearization;
  proto::AdcCalibrationRef linearization_ref;
  if (!o.calibration.empty()) {
    absl::StatusOr<proto::Calibration> cal = calibration::ReadCalibrationFile(o.calibration, &linearization_ref);
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
  // A BN-calibrated Program runs only with the linearization its statistics were measured through.
  if (absl::Status s = calibration::CheckLinearizationMatchesBnCalibration(
          *program, o.calibration.empty() ? nullptr : &linearization_ref, o.model);
      !s.ok()) {
    if (!o.allow_calibration_mismatch) {
      return Fail(absl::Status(s.code(), absl::StrCat(s.message(), " (or pass --allow-calibration-mismatch)")));
    }
    spdlog::warn("{} (--allow-calibration-mismatch: running anyway)", std::string(s.message()));
  }
  if (program->has_bn_calibration() && !program->bn_calibration().device_serial().empty() &&
      program->bn_calibration().device_serial() != (*backend)->info().serial_number) {
    spdlog::warn("{}: BN statistics were measured on device serial '{}', running on '{}'", o.model,
                 program->bn_calibration().device_serial(), (*backend)->info().serial_number);
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
    if (logits.sample_size() != classes) {
      return Fail(absl::InternalError(absl::StrCat("output has ", logits.sample_size(), " values per sample, the Program's shape says ",
                                                   classes)));
    }
    int64_t correct = 0;
    for (int64_t i = 0; i < logits.batch(); ++i) {
      correct += ArgMax(logits.data.data() + i * classes, classes) == labels[size_t(i)];
    }
    accuracy = double(correct) / double(logits.batch());
  }
  if (!o.output.empty()) {
    if (absl::Status s = runtime::WriteNpyFloat32(o.output, logits); !s.ok()) return Fail(s);
  }

  const runtime::ChipInfo& info = (*backend)->info();
  const double clock_hz = info.spec.timing.clock_mhz * 1e6;
  if (o.json) {
    std::string out = absl::StrCat("{\"model\": ", JsonString(o.model), ", \"device\": ", JsonString(o.device),
                                   ", \"backend\": ", JsonString(info.backend), ", \"chip\": ", JsonString(info.spec.name),
                                   ", \"samples\": ", logits.batch(), ", \"seconds\": ", JsonNumber(seconds));
    if (accuracy >= 0) absl::StrAppend(&out, ", \"accuracy\": ", JsonNumber(accuracy));
    if (!o.output.empty()) absl::StrAppend(&out, ", \"output\": ", JsonString(o.output));
    if (!o.calibration.empty()) {
      absl::StrAppend(&out, ", \"calibration\": {\"path\": ", JsonString(linearization_ref.path()),
                      ", \"sha256\": ", JsonString(linearization_ref.sha256()), "}");
    }
    if (program->has_bn_calibration()) absl::StrAppend(&out, ", \"bn_calibration\": ", runtime::BnCalibrationRecordJson(program->bn_calibration()));
    if (o.profile) absl::StrAppend(&out, ", \"profile\": ", ProfileJson(result->profile, clock_hz, logits.batch()));
    out += "}";
    std::printf("%s\n", out.c_str());
    return 0;
  }
  std::printf("model: %s (%s%s)\n", o.model.c_str(), program->source_model_name().c_str(),
              program->training().empty() ? "" : (", " + program->training()).c_str());
  std::printf("device: %s (%s, chip %s)\n", o.device.c_str(), info.backend.c_str(), info.spec.name.c_str());
  if (!o.calibration.empty()) {
    std::printf("linearized with: %s (sha256 %s)\n", linearization_ref.path().c_str(),
                linearization_ref.sha256().c_str());
  }
  if (program->has_bn_calibration()) std::printf("%s\n", BnRecordText(program->bn_calibration()).c_str());
  std::printf("samples: %lld in %.3f s (%.1f samples/s)\n", static_cast<long long>(logits.batch()), seconds,
              seconds > 0 ? double(logits.batch()) / seconds : 0.0);
  if (accuracy >= 0) std::printf("accuracy: %.4f\n", accuracy);
  if (o.profile) PrintProfile(result->profile, seconds, clock_hz, logits.batch());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Every batch allocates and frees the same multi-megabyte tensors; by default glibc serves them
  // with fresh mmaps or trims them back to the kernel, and the page faults and page clearing cost
  // more than several host ops. Keep them in the heap.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  Options o;
  CLI::App app{"pimrun: run a compiled PIM Program (.pimb) on the simulator or a chip"};
  app.add_option("model", o.model, "compiled Program (.pimb)");
  app.add_option("--device,-d", o.device, "device URI: sim, sim:profile=<file>[,seed=N], usb0, usb:<vid>:<pid>[:<serial>], "
                                          "serial:<path>[@<baud>], tcp://<host>:<port>")
      ->capture_default_str()
      ->check(cli::kNonEmpty);
  app.add_option("--input,-i", o.input, "inputs: float32 .npy (NCHW) or IDX images (.gz or plain, uint8 scaled by 1/255)")
      ->check(cli::kNonEmpty);
  app.add_option("--labels,-l", o.labels, "labels (IDX or integer .npy); prints the top-1 accuracy")->check(cli::kNonEmpty);
  app.add_option("--output,-o", o.output, "write the model output (logits) as float32 .npy")->check(cli::kNonEmpty);
  app.add_option("--calibration", o.calibration, "linearize ADC codes with a calibration file (pimcal adc -o FILE)")
      ->check(cli::kNonEmpty);
  app.add_flag("--allow-calibration-mismatch", o.allow_calibration_mismatch,
               "run a BN-calibrated Program even when --calibration differs from the file its statistics were "
               "measured through (pimcal bn --calibration), with a warning");
  app.add_option("--batch,-b", o.batch, "samples per batch")->check(cli::IntegerRange(1, 1 << 20))->capture_default_str();
  app.add_option("--limit,-n", o.limit, "run only the first N samples (at most N; the summary prints how many ran)")
      ->check(cli::IntegerRange(1, int64_t{1} << 40));
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
