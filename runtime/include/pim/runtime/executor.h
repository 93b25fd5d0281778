#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pim/proto/program.pb.h"
#include "pim/runtime/backend.h"
#include "pim/runtime/tensor.h"

namespace pim::runtime {

struct ExecutorOptions {
  // Images per batch. Results do not depend on it (noise is keyed by the global sample index).
  int batch_size = 64;
  // The most memory one value of a batch may take (samples x elements per sample x 8 bytes); a
  // larger batch is refused with the batch that fits.
  int64_t max_value_bytes = int64_t(2) << 30;
  // Keep every value by name, and each matrix layer's accumulator as "<step>:S" ([N, O] or
  // [N, O, OH, OW]), for all samples. Costs memory; meant for golden tests and debugging.
  bool keep_values = false;
  // Read Backend counters before and after each PIM layer and each weight load (for
  // RunResult::profile). Host time is always measured.
  bool profile = false;
  // Called after each batch with (samples done, samples total).
  std::function<void(int64_t, int64_t)> progress;
  // When set, PIM layers run through this instead of Backend::RunLayer and their sums are
  // doubles: e.g. ADC codes linearized with a measured calibration (pimrun --calibration,
  // calibration::RunLayerLinearized, docs/calibration.md). Same contract as RunLayer otherwise.
  std::function<absl::Status(Backend&, const LayerMapping&, const InputBatch&, absl::Span<double>)> run_layer;
};

// Time and device counters spent in one step (summed over batches), or in loading one phase.
struct StepProfile {
  std::string name;     // step name, or "load phase <i>"
  std::string kind;     // "pim", "digital", "host", "load"
  int64_t calls = 0;    // batches run (loads done)
  double host_seconds = 0;  // wall time on the host, including the backend calls
  Counters counters;    // Backend::ReadCounters deltas (empty for host steps or without profile)
  int64_t macs = 0;     // matrix layers: multiply-accumulates of the layer, samples x L x O x K
  // A PIM layer's figures exclude the weight loads it triggered; those are in "load phase <i>".
};

struct RunResult {
  int64_t samples = 0;
  std::map<std::string, Tensor> outputs;  // graph outputs
  std::map<std::string, Tensor> values;   // with keep_values
  std::vector<StepProfile> profile;       // steps in Program order, then loads
};

// Runs a validated Program: host steps in double on the host, digital matrix layers exactly on
// the host, PIM matrix layers through a Backend in batches. Weights are loaded per the
// Program's load phases (each phase's layers with Backend::LoadLayer, again whenever a later
// layer needs another phase). PIM layer vector m of image i has global sample index i*L + m'
// (L vectors per image), passed as InputBatch::first_sample.
//
// Owns its plan; borrows the backend, which must outlive it. Not thread-safe.
class Executor {
 public:
  // Validates `program` (ValidateProgram) and checks that the backend's chip can hold it.
  // `backend` may be null when the Program has no PIM layer.
  static absl::StatusOr<std::unique_ptr<Executor>> Create(const proto::Program& program, Backend* backend,
                                                          ExecutorOptions options = {});
  ~Executor();

  // Runs all samples of `inputs` (one tensor per graph input, dimension 0 = samples, the other
  // dimensions equal to the Program's). Errors name the input and the shapes, or the step that
  // failed (e.g. a matrix layer fed values that are not integer codes).
  absl::StatusOr<RunResult> Run(const std::map<std::string, Tensor>& inputs);

  // Shape of a graph input, dimension 0 = -1.
  const std::vector<std::string>& input_names() const;
  std::vector<int64_t> input_shape(const std::string& name) const;
  const proto::Program& program() const;

 private:
  struct Impl;
  explicit Executor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pim::runtime
