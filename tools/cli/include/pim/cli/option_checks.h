#pragma once

// Option checks the command-line tools share. Each returns CLI11's usage error (exit 2) naming
// the option and the value, e.g. "--latency-ms: must be a finite number in [0, 10000], got 'nan'".

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace pim::cli {

// A path or name given on the command line must not be empty (`-o ''` is a mistake, not "unset").
inline const CLI::Validator kNonEmpty(
    [](std::string& text) -> std::string { return text.empty() ? "must not be empty" : ""; }, "", "non-empty");

// A real number in [lo, hi]; NaN, infinities and trailing characters are refused (CLI::Range lets
// NaN through, since every comparison with NaN is false).
inline CLI::Validator FiniteRange(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || v < lo || v > hi) {
          char range[64];
          std::snprintf(range, sizeof(range), "[%g, %g]", lo, hi);
          return std::string("must be a finite number in ") + range + ", got '" + text + "'";
        }
        return "";
      },
      "", "finite range");
}

// An integer in [lo, hi] written in decimal digits (an optional leading '-'); CLI::Range would call
// "12x" or "abc" out of range.
inline CLI::Validator IntegerRange(long long lo, long long hi) {
  return CLI::Validator(
      [lo, hi](std::string& text) -> std::string {
        const std::string in = "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" +
                               text + "'";
        const size_t digits = text.size() > 0 && text[0] == '-' ? 1 : 0;
        if (text.size() == digits || text.find_first_not_of("0123456789", digits) != std::string::npos) return in;
        errno = 0;
        const long long v = std::strtoll(text.c_str(), nullptr, 10);
        return errno == ERANGE || v < lo || v > hi ? in : "";
      },
      "INT in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", "integer range");
}

// An integer >= 0 written in decimal digits only ("-1" would wrap around in an unsigned option).
inline const CLI::Validator kNonNegativeInteger(
    [](std::string& text) -> std::string {
      if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
        return "must be a non-negative integer, got '" + text + "'";
      }
      return "";
    },
    "", "non-negative integer");

// The first command-line word when it is neither an option nor one of `app`'s subcommands (CLI11
// would only say "A subcommand is required"), else "".
inline std::string UnknownSubcommand(CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return "";
  for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    if (sub->check_name(argv[1])) return "";
  }
  return argv[1];
}

// The first value that occurs twice in `values`, or nullptr.
template <typename T>
const T* FirstDuplicate(const std::vector<T>& values) {
  std::set<T> seen;
  for (const T& v : values) {
    if (!seen.insert(v).second) return &v;
  }
  return nullptr;
}

}  // namespace pim::cli
