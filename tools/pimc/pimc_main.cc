// pimc: compile a PIM-QAT ONNX model into a Program (.pimb), or describe a Program.
//
//   pimc compile model.onnx -o model.pimb [--target FILE] [--scheme S] [--adc-bits B] [--rows R]
//                                         [--adc-step D] [--require-pim] [--json]
//   pimc inspect model.pimb [--json] [--no-tiles]
//
// Exit codes: 0 ok, 1 failure (one message on stderr naming what and where), 2 usage error.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "pim/cli/option_checks.h"
#include "pim/compiler/compiler.h"
#include "pim/compiler/program_report.h"
#include "pim/runtime/chip_file.h"
#include "pim/runtime/chip_spec.h"
#include "pim/runtime/output_file.h"
#include "pim/runtime/program_file.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int Fail(const absl::Status& status) {
  // One line on stderr, even when a name read from a damaged file holds control characters.
  std::string message(status.message());
  for (char& c : message) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  std::cerr << "pimc: " << message << "\n";
  return kExitFailure;
}

absl::StatusOr<pim::runtime::ChipSpec> LoadTarget(const std::string& path) {
  const std::string file = path.empty() ? pim::runtime::DefaultChipFilePath() : path;
  absl::StatusOr<pim::proto::ChipFile> chip = pim::runtime::ReadChipFile(file);
  if (!chip.ok()) return chip.status();
  absl::StatusOr<pim::runtime::ChipSpec> spec = pim::runtime::ChipSpecFromProto(chip->spec());
  if (!spec.ok()) return absl::InvalidArgumentError(absl::StrCat(file, ": ", spec.status().message()));
  return spec;
}

struct CompileArgs {
  std::string model, output, target, scheme;
  std::optional<int> adc_bits, rows;
  std::optional<double> adc_step;
  bool require_pim = false;
  bool json = false;
};

int RunCompile(const CompileArgs& a) {
  if (absl::Status s = pim::runtime::CheckOutputFile("--output", a.output); !s.ok()) return Fail(s);
  absl::StatusOr<pim::runtime::ChipSpec> target = LoadTarget(a.target);
  if (!target.ok()) return Fail(target.status());
  pim::compiler::CompileOptions options;
  if (a.scheme == "native") options.scheme = pim::runtime::Scheme::kNative;
  if (a.scheme == "differential") options.scheme = pim::runtime::Scheme::kDifferential;
  if (a.scheme == "bit_serial") options.scheme = pim::runtime::Scheme::kBitSerial;
  options.adc_bits = a.adc_bits;
  options.rows = a.rows;
  options.adc_step = a.adc_step;
  options.require_pim = a.require_pim;
  absl::StatusOr<pim::proto::Program> program = pim::compiler::CompileFile(a.model, *target, options);
  if (!program.ok()) return Fail(program.status());
  if (absl::Status s = pim::compiler::WriteProgramFile(*program, a.output); !s.ok()) return Fail(s);
  pim::compiler::ReportOptions report;
  report.json = a.json;
  std::cout << pim::compiler::FormatProgramReport(*program, report);
  if (!a.json) std::cout << "wrote " << a.output << "\n";
  return kExitOk;
}

int RunInspect(const std::string& path, bool json, bool tiles) {
  absl::StatusOr<pim::proto::Program> program = pim::runtime::ReadProgramFile(path);
  if (!program.ok()) return Fail(program.status());
  pim::compiler::ReportOptions report;
  report.json = json;
  report.tiles = tiles;
  report.host_steps = true;
  std::cout << pim::compiler::FormatProgramReport(*program, report);
  return kExitOk;
}

int Main(int argc, char** argv) {
  CLI::App app{"pimc: compile PIM-QAT ONNX models for the analog PIM chip, and inspect Programs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", pim::compiler::ProducerString());

  CompileArgs ca;
  CLI::App* compile = app.add_subcommand("compile", "compile model.onnx into a Program (.pimb)");
  compile->add_option("model", ca.model, "ONNX model (PIM-QAT convention)")->required();
  compile->add_option("-o,--output", ca.output, "output Program file (.pimb)")->required()->check(pim::cli::kNonEmpty);
  compile->add_option("--target", ca.target, "chip file (text chip.proto); default: the bundled default chip")
      ->check(pim::cli::kNonEmpty);
  compile->add_option("--scheme", ca.scheme, "native, differential or bit_serial (overrides the model)")
      ->check(CLI::IsMember({"native", "differential", "bit_serial"}));
  compile->add_option("--adc-bits", ca.adc_bits, "ADC resolution b (overrides the model)")->check(pim::cli::IntegerRange(1, 32));
  compile->add_option("--rows", ca.rows, "rows R summed per analog MAC (overrides the model)")
      ->check(pim::cli::IntegerRange(1, 1 << 20));
  compile->add_option("--adc-step", ca.adc_step, "ADC step Delta for every PIM layer (rule: override)")
      ->check(pim::cli::FiniteRange(pim::runtime::kMinAdcStep, pim::runtime::kMaxAdcStep));
  compile->add_flag("--require-pim", ca.require_pim, "fail if a quantized layer cannot be placed on the chip");
  compile->add_flag("--json", ca.json, "print the summary as JSON");

  std::string program_path;
  bool inspect_json = false, no_tiles = false;
  CLI::App* inspect = app.add_subcommand("inspect", "describe a Program (.pimb)");
  inspect->add_option("program", program_path, "Program file (.pimb)")->required();
  inspect->add_flag("--json", inspect_json, "print JSON");
  inspect->add_flag("--no-tiles", no_tiles, "do not list every tile");

  if (const std::string word = pim::cli::UnknownSubcommand(app, argc, argv); !word.empty()) {
    std::cerr << "pimc: unknown command '" << word << "' (compile or inspect; see --help)\n";
    return kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return kExitOk;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return kExitOk;
  } catch (const CLI::CallForVersion&) {
    std::cout << pim::compiler::ProducerString() << "\n";
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    std::cerr << "pimc: " << e.what() << "\nRun 'pimc --help' for usage.\n";
    return kExitUsage;
  }
  if (*compile) return RunCompile(ca);
  if (*inspect) return RunInspect(program_path, inspect_json, !no_tiles);
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  // The tool's edge: nothing escapes as an exception or a crash.
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "pimc: internal error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "pimc: internal error\n";
  }
  return kExitFailure;
}
