#include "pim/compiler/compiler.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "emit/program_emitter.h"
#include "pim/runtime/sha256.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "import/onnx_importer.h"
#include "ir/shape_inference.h"
#include "passes/passes.h"
#include "pim/runtime/file_bytes.h"
#include "pim/runtime/program_file.h"

namespace pim::compiler {
namespace {

absl::StatusOr<proto::Program> CompileUnguarded(const std::string& bytes, const std::string& name,
                                                const runtime::ChipSpec& target, const CompileOptions& options) {
  absl::StatusOr<ir::Graph> graph = ImportOnnxModel(bytes, name);
  if (!graph.ok()) return graph.status();
  if (absl::Status s = ir::InferShapes(*graph); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(name, ": ", s.message()));
  }
  absl::StatusOr<ir::Module> module = LowerGraph(*graph);
  if (!module.ok()) return absl::Status(module.status().code(), absl::StrCat(name, ": ", module.status().message()));
  module->source_name = name;
  module->source_sha256 = runtime::Sha256Hex(bytes);
  PassContext context{options, target};
  if (absl::Status s = RunPasses(*module, context); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(name, ": ", s.message()));
  }
  proto::Program program = EmitProgram(*module, target);
  // Self-check with the runtime's loader: a Program it would refuse is a compiler bug.
  if (absl::Status s = runtime::ValidateProgram(program, name); !s.ok()) {
    return absl::InternalError(absl::StrCat("compiler produced an invalid Program (a bug): ", s.message()));
  }
  return program;
}

}  // namespace

std::string ProducerString() { return "pimc 0.1.0"; }

absl::StatusOr<proto::Program> CompileModel(const std::string& onnx_bytes, const std::string& model_name,
                                            const runtime::ChipSpec& target, const CompileOptions& options) {
  // The library boundary: nothing thrown by ONNX, protobuf or the standard library escapes.
  try {
    return CompileUnguarded(onnx_bytes, model_name, target, options);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(model_name, ": internal error: ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(model_name, ": internal error"));
  }
}

absl::StatusOr<proto::Program> CompileFile(const std::string& path, const runtime::ChipSpec& target,
                                           const CompileOptions& options) {
  absl::StatusOr<std::string> bytes = runtime::ReadFileBytes(path, "model file");
  if (!bytes.ok()) return bytes.status();
  const std::string name = std::filesystem::path(path).filename().string();
  absl::StatusOr<proto::Program> program = CompileModel(*bytes, name, target, options);
  if (!program.ok() && name != path) {
    // Errors start with the base name; show the path the user typed instead.
    std::string message(program.status().message());
    if (message.rfind(name, 0) == 0) message = path + message.substr(name.size());
    return absl::Status(program.status().code(), message);
  }
  return program;
}

std::string SerializeProgram(const proto::Program& program) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    program.SerializeToCodedStream(&coded);
  }
  return bytes;
}

absl::Status WriteProgramFile(const proto::Program& program, const std::string& path) {
  const std::string bytes = SerializeProgram(program);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot write (", std::strerror(errno), ")"));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return absl::DataLossError(absl::StrCat(path, ": write failed"));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return absl::PermissionDeniedError(absl::StrCat(path, ": cannot write: ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace pim::compiler
