// Golden end-to-end test: for every tests/data/golden/<model>.npz (written by
// tools/qat/make_golden.py from the numpy reference), compile tools/qat/models/<model>.onnx with
// the pimc binary, run it on the ideal simulator and compare with the reference:
// - every quantized tensor (QuantizeStep outputs, "<node>:S" accumulators) bit for bit;
// - every other tensor the Program also computes to 1e-9 relative (host float ops: numpy's
//   BLAS and libm may order or round differently by an ulp);
// - "logits" to 1e-5 relative.
// Keys the Program does not hold (ONNX values absorbed by a matrix layer, such as a
// DequantizeLinear output) are listed, not compared; every "<node>:S" key must be present.

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "pim/runtime/executor.h"
#include "pim/runtime/npy.h"
#include "pim/runtime/program_file.h"
#include "pim/sim/sim_backend.h"

namespace pim {
namespace {

namespace fs = std::filesystem;

const std::string kGoldenDir = std::string(PIM_SOURCE_DIR) + "/tests/data/golden";
const std::string kModelDir = std::string(PIM_SOURCE_DIR) + "/tools/qat/models";

std::vector<std::string> GoldenModels() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(kGoldenDir, ec)) {
    if (e.path().extension() == ".npz") out.push_back(e.path().stem().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Compares `got` with `want`; tolerance 0 means bit for bit. Returns "" or the first mismatch.
// A golden intermediate may hold only the first samples of the batch (to keep the file small):
// then those leading samples are compared.
std::string Compare(const std::string& key, const runtime::Tensor& got_all, const runtime::NpyArray& want,
                    double rel_tol) {
  runtime::Tensor got = got_all;
  if (!want.shape.empty() && got.shape.size() == want.shape.size() && want.shape[0] < got.shape[0] &&
      std::equal(got.shape.begin() + 1, got.shape.end(), want.shape.begin() + 1)) {
    got = runtime::SliceBatch(got_all, 0, want.shape[0]);
  }
  if (got.shape != want.shape) {
    return absl::StrCat(key, ": shape ", runtime::ShapeToString(got.shape), ", golden ", runtime::ShapeToString(want.shape));
  }
  size_t bad = 0, first = 0;
  double worst = 0;
  for (size_t i = 0; i < want.data.size(); ++i) {
    const double g = got.data[i], w = want.data[i];
    const double err = std::fabs(g - w);
    const bool ok = rel_tol == 0 ? g == w : err <= rel_tol * std::max(std::fabs(w), 1e-30) || err < 1e-300;
    if (!ok) {
      if (bad++ == 0) first = i;
      worst = std::max(worst, err);
    }
  }
  if (bad == 0) return "";
  return absl::StrCat(key, ": ", bad, " of ", want.data.size(), " elements differ (first at ", first, ": got ",
                      got.data[first], ", golden ", want.data[first], "; max abs error ", worst, ")");
}

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, SimMatchesNumpyReference) {
  const std::string model = GetParam();
  const std::string onnx = kModelDir + "/" + model + ".onnx";
  ASSERT_TRUE(fs::exists(onnx)) << "golden file " << model << ".npz has no model " << onnx;
  const std::string pimc = std::string(PIM_BINARY_DIR) + "/bin/pimc";
  ASSERT_TRUE(fs::exists(pimc)) << "pimc not built at " << pimc;
  const std::string pimb = ::testing::TempDir() + "/" + model + ".pimb";
  const std::string log = ::testing::TempDir() + "/" + model + ".pimc.log";
  const int status = std::system((pimc + " compile " + onnx + " -o " + pimb + " >" + log + " 2>&1").c_str());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "pimc failed, see " << log;

  absl::StatusOr<proto::Program> program = runtime::ReadProgramFile(pimb);
  ASSERT_TRUE(program.ok()) << program.status();
  absl::StatusOr<std::map<std::string, runtime::NpyArray>> golden = runtime::ReadNpz(kGoldenDir + "/" + model + ".npz");
  ASSERT_TRUE(golden.ok()) << golden.status();
  ASSERT_TRUE(golden->count("input") && golden->count("logits")) << "golden file lacks 'input' or 'logits'";
  ASSERT_EQ(program->inputs_size(), 1);
  ASSERT_GE(program->outputs_size(), 1);

  runtime::OpenOptions open;
  open.target = *runtime::ChipSpecFromProto(program->target());
  absl::StatusOr<std::unique_ptr<runtime::Backend>> backend = sim::OpenSimBackend(runtime::DeviceUri{}, open);
  ASSERT_TRUE(backend.ok()) << backend.status();
  runtime::ExecutorOptions options;
  options.keep_values = true;
  options.batch_size = 7;  // deliberately not the golden batch: results must not depend on it
  absl::StatusOr<std::unique_ptr<runtime::Executor>> executor = runtime::Executor::Create(*program, backend->get(), options);
  ASSERT_TRUE(executor.ok()) << executor.status();
  const runtime::NpyArray& in = golden->at("input");
  absl::StatusOr<runtime::RunResult> result =
      (*executor)->Run({{program->inputs(0).name(), runtime::Tensor(in.shape, in.data)}});
  ASSERT_TRUE(result.ok()) << result.status();

  std::set<std::string> quantized;
  for (const proto::Step& step : program->steps()) {
    if (step.has_quantize()) quantized.insert(step.outputs(0));
    if (step.has_matrix()) quantized.insert(step.name() + ":S");
  }
  int exact = 0, close = 0;
  std::vector<std::string> absent;
  for (const auto& [key, want] : *golden) {
    if (key == "input") continue;
    if (key == "logits") {
      const runtime::Tensor& logits = result->outputs.at(program->outputs(0));
      EXPECT_EQ(Compare("logits", logits, want, 1e-5), "");
      continue;
    }
    auto it = result->values.find(key);
    if (it == result->values.end()) {
      EXPECT_EQ(key.find(":S"), std::string::npos) << "golden accumulator " << key << " has no matrix layer in the Program";
      absent.push_back(key);
      continue;
    }
    const bool bit_exact = quantized.count(key) != 0;
    EXPECT_EQ(Compare(key, it->second, want, bit_exact ? 0.0 : 1e-9), "");
    (bit_exact ? exact : close)++;
  }
  EXPECT_GT(exact, 0) << "no quantized tensor of the golden file was found in the Program";
  std::string absent_list;
  for (const std::string& k : absent) absl::StrAppend(&absent_list, " ", k);
  std::printf("%s: %d tensors bit-exact, %d float tensors within 1e-9, %zu golden keys not in the Program:%s\n",
              model.c_str(), exact, close, absent.size(), absent_list.c_str());
}

INSTANTIATE_TEST_SUITE_P(Models, Golden, ::testing::ValuesIn(GoldenModels()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Golden);

// Every bundled model (QDQ form) has a golden file, so no model escapes the bit-exact check above.
TEST(GoldenFiles, EveryBundledModelHasOne) {
  const std::vector<std::string> golden = GoldenModels();
  int models = 0;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(kModelDir, ec)) {
    const std::string file = e.path().filename().string();
    const std::string qonnx = ".qonnx.onnx";
    if (e.path().extension() != ".onnx" ||
        (file.size() > qonnx.size() && file.compare(file.size() - qonnx.size(), qonnx.size(), qonnx) == 0)) {
      continue;
    }
    ++models;
    EXPECT_TRUE(std::binary_search(golden.begin(), golden.end(), e.path().stem().string()))
        << file << " has no golden file in " << kGoldenDir << " (tools/qat/make_golden.py)";
  }
  ASSERT_FALSE(ec) << kModelDir << ": " << ec.message();
  EXPECT_GT(models, 0) << "no bundled models in " << kModelDir;
}

}  // namespace
}  // namespace pim
