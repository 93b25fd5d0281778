#include "pim/calibration/bn_calibration.h"

#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "pim/runtime/executor.h"

namespace pim::calibration {

proto::Program ProgramUpTo(const proto::Program& program, int end_step, const std::string& target) {
  // Walk back from the target: keep a step when it defines a value still needed.
  std::set<std::string> needed = {target};
  std::vector<bool> keep(size_t(end_step), false);
  for (int i = end_step - 1; i >= 0; --i) {
    const proto::Step& step = program.steps(i);
    bool used = false;
    for (const std::string& out : step.outputs()) used = used || needed.count(out) != 0;
    if (!used) continue;
    keep[size_t(i)] = true;
    for (const std::string& in : step.inputs()) needed.insert(in);
  }
  proto::Program out = program;
  out.clear_steps();
  out.clear_outputs();
  out.clear_load_phases();
  out.clear_bn_calibration();
  std::set<std::string> kept_layers;
  for (int i = 0; i < end_step; ++i) {
    if (!keep[size_t(i)]) continue;
    *out.add_steps() = program.steps(i);
    if (program.steps(i).kind_case() == proto::Step::kMatrix) kept_layers.insert(program.steps(i).name());
  }
  for (const proto::LoadPhase& phase : program.load_phases()) {
    proto::LoadPhase* p = out.add_load_phases();
    *p = phase;
    p->clear_layers();
    for (const std::string& name : phase.layers()) {
      if (kept_layers.count(name)) p->add_layers(name);
    }
  }
  out.add_outputs(target);
  return out;
}

absl::StatusOr<BnCalibration> CalibrateBatchNorm(const proto::Program& program, runtime::Backend* backend,
                                                 const std::map<std::string, runtime::Tensor>& inputs,
                                                 const BnCalibrationOptions& options) {
  std::vector<int> bn_steps;
  for (int i = 0; i < program.steps_size(); ++i) {
    if (program.steps(i).kind_case() == proto::Step::kBatchNorm) bn_steps.push_back(i);
  }
  if (bn_steps.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("program '", program.source_model_name(),
                                                      "' has no BatchNormalization step to calibrate"));
  }
  BnCalibration result;
  result.program = program;
  int64_t samples = 0;
  for (size_t b = 0; b < bn_steps.size(); ++b) {
    proto::Step* step = result.program.mutable_steps(bn_steps[b]);
    const std::string& x_name = step->inputs(0);
    const proto::Program prefix = ProgramUpTo(result.program, bn_steps[b], x_name);
    runtime::ExecutorOptions exec_options;
    exec_options.batch_size = options.batch_size;
    exec_options.run_layer = options.run_layer;
    if (options.progress) {
      exec_options.progress = [&, b](int64_t done, int64_t total) {
        options.progress(int(b), int(bn_steps.size()), done, total);
      };
    }
    const std::string at = absl::StrCat("BN calibration of step '", step->name(), "': ");
    absl::StatusOr<std::unique_ptr<runtime::Executor>> exec = runtime::Executor::Create(prefix, backend, exec_options);
    if (!exec.ok()) return absl::Status(exec.status().code(), absl::StrCat(at, exec.status().message()));
    absl::StatusOr<runtime::RunResult> run = (*exec)->Run(inputs);
    if (!run.ok()) return absl::Status(run.status().code(), absl::StrCat(at, run.status().message()));
    const runtime::Tensor& x = run->outputs.at(x_name);
    samples = run->samples;
    proto::BatchNormStep* bn = step->mutable_batch_norm();
    const int64_t channels = x.shape.size() >= 2 ? x.shape[1] : 0;
    if (channels != bn->mean_size() || x.batch() < 1) {
      return absl::InvalidArgumentError(absl::StrCat(at, "input '", x_name, "' has shape ",
                                                     runtime::ShapeToString(x.shape), ", the step has ",
                                                     bn->mean_size(), " channels"));
    }
    int64_t spatial = 1;
    for (size_t d = 2; d < x.shape.size(); ++d) spatial *= x.shape[d];
    // Two-pass mean and variance in double: pre-BN values can have large means.
    std::vector<double> mean(size_t(channels), 0), var(size_t(channels), 0);
    const double count = double(x.batch() * spatial);
    for (int64_t n = 0; n < x.batch(); ++n) {
      for (int64_t c = 0; c < channels; ++c) {
        const double* v = x.data.data() + (n * channels + c) * spatial;
        for (int64_t s = 0; s < spatial; ++s) mean[size_t(c)] += v[s];
      }
    }
    for (double& m : mean) m /= count;
    for (int64_t n = 0; n < x.batch(); ++n) {
      for (int64_t c = 0; c < channels; ++c) {
        const double* v = x.data.data() + (n * channels + c) * spatial;
        for (int64_t s = 0; s < spatial; ++s) var[size_t(c)] += (v[s] - mean[size_t(c)]) * (v[s] - mean[size_t(c)]);
      }
    }
    // Unbiased, as PyTorch's running_var (what training stored in the step).
    for (double& v : var) v /= std::max(count - 1, 1.0);
    BnLayerChange change;
    change.name = step->name();
    change.old_mean.assign(bn->mean().begin(), bn->mean().end());
    change.old_var.assign(bn->var().begin(), bn->var().end());
    change.new_mean = mean;
    change.new_var = var;
    for (int64_t c = 0; c < channels; ++c) {
      bn->set_mean(int(c), mean[size_t(c)]);
      bn->set_var(int(c), var[size_t(c)]);
    }
    result.layers.push_back(std::move(change));
  }
  proto::BnCalibrationRecord* record = result.program.mutable_bn_calibration();
  record->set_device(options.device);
  record->set_device_serial(backend != nullptr ? backend->info().serial_number : "");
  record->set_data(options.data);
  record->set_samples(uint32_t(samples));
  for (const BnLayerChange& c : result.layers) record->add_layers(c.name);
  if (options.adc_calibration) *record->mutable_adc_calibration() = *options.adc_calibration;
  return result;
}

absl::Status CheckLinearizationMatchesBnCalibration(const proto::Program& program,
                                                    const proto::AdcCalibrationRef* linearization,
                                                    const std::string& origin) {
  if (!program.has_bn_calibration()) return absl::OkStatus();
  const proto::BnCalibrationRecord& record = program.bn_calibration();
  auto describe = [](const proto::AdcCalibrationRef& ref) {
    return absl::StrCat("'", ref.path(), "' (sha256 ", ref.sha256().substr(0, 16), "...)");
  };
  if (record.has_adc_calibration() && linearization == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        origin, ": its BN statistics were measured through the ADC calibration ",
        describe(record.adc_calibration()), " (pimcal bn --calibration); run it with --calibration ",
        record.adc_calibration().path(), ", not on raw codes"));
  }
  if (!record.has_adc_calibration() && linearization != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        origin, ": its BN statistics were measured on raw ADC codes (pimcal bn without --calibration); "
        "running it linearized with ", describe(*linearization),
        " corrects the chip's errors twice. Run it without --calibration, or re-run pimcal bn with it"));
  }
  if (record.has_adc_calibration() && linearization->sha256() != record.adc_calibration().sha256()) {
    return absl::FailedPreconditionError(absl::StrCat(
        origin, ": its BN statistics were measured through the ADC calibration ",
        describe(record.adc_calibration()), ", the run linearizes with a different file ",
        describe(*linearization), "; re-run pimcal bn with the new file"));
  }
  return absl::OkStatus();
}

}  // namespace pim::calibration
