#pragma once

#include <string>
#include <string_view>

namespace pim::compiler {

// SHA-256 (FIPS 180-4) of `data`, as 64 lowercase hex digits. Small and dependency-free; used to
// record the source model's hash in the Program.
std::string Sha256Hex(std::string_view data);

}  // namespace pim::compiler
