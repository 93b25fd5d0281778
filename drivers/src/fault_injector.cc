#include "pim/drivers/fault_injector.h"

#include <cmath>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pim::drivers {
namespace {

absl::Status CheckRate(const std::string& key, double value) {
  if (!(value >= 0.0 && value <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("fault rates: ", key, "=", value, " is not a probability in [0, 1]"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<FaultRates> ParseFaultRates(const std::string& text) {
  FaultRates rates;
  if (text.empty() || text == "none") return rates;
  double total = -1;
  std::vector<std::string> kinds = {"drop", "corrupt", "duplicate", "truncate", "stall"};
  std::set<std::string> seen;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    if (item.empty()) return absl::InvalidArgumentError(absl::StrCat("fault rates '", text, "': empty item"));
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    const std::string& key = kv.first;
    if (!seen.insert(key).second) {
      return absl::InvalidArgumentError(absl::StrCat("fault rates '", text, "': '", key, "' given twice"));
    }
    if (key == "kinds") {
      kinds = absl::StrSplit(kv.second, '+', absl::SkipEmpty());
      continue;
    }
    double value = 0;
    if (!absl::SimpleAtod(kv.second, &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("fault rates '", text, "': '", item, "' is not key=number"));
    }
    if (key == "stall_ms") {
      if (!(value >= 0 && value <= 600000)) {
        return absl::InvalidArgumentError(
            absl::StrCat("fault rates: stall_ms=", kv.second, " is outside [0, 600000]"));
      }
      rates.stall_duration = absl::Milliseconds(value);
      continue;
    }
    if (absl::Status s = CheckRate(key, value); !s.ok()) return s;
    if (key == "rate") total = value;
    else if (key == "drop") rates.drop = value;
    else if (key == "corrupt") rates.corrupt = value;
    else if (key == "duplicate") rates.duplicate = value;
    else if (key == "truncate") rates.truncate = value;
    else if (key == "stall") rates.stall = value;
    else if (key == "reset") rates.reset = value;
    else {
      return absl::InvalidArgumentError(absl::StrCat(
          "fault rates '", text, "': unknown key '", key,
          "' (expected drop, corrupt, duplicate, truncate, stall, reset, stall_ms, rate, kinds)"));
    }
  }
  if (total >= 0) {
    if (kinds.empty()) return absl::InvalidArgumentError("fault rates: kinds= names no kind");
    const double each = total / double(kinds.size());
    for (const std::string& kind : kinds) {
      if (kind == "drop") rates.drop = each;
      else if (kind == "corrupt") rates.corrupt = each;
      else if (kind == "duplicate") rates.duplicate = each;
      else if (kind == "truncate") rates.truncate = each;
      else if (kind == "stall") rates.stall = each;
      else if (kind == "reset") rates.reset = each;
      else {
        return absl::InvalidArgumentError(absl::StrCat("fault rates: unknown kind '", kind, "'"));
      }
    }
  }
  if (rates.total() > 1.0) {
    return absl::InvalidArgumentError(
        absl::StrCat("fault rates '", text, "': the kinds add up to ", rates.total(), " > 1"));
  }
  return rates;
}

FaultInjector::FaultInjector(const FaultRates& rates, uint64_t seed) : rates_(rates), rng_(seed) {}

void FaultInjector::Feed(absl::Span<const uint8_t> bytes, std::vector<Chunk>* out) {
  for (uint8_t b : bytes) {
    partial_.push_back(b);
    if (b == 0) {
      Frame(std::exchange(partial_, {}), out);
    } else if (partial_.size() >= kMaxHeldBytes) {
      // Longer than any frame: not a frame to damage. Pass it on as it is (the receiver's
      // decoder discards it) instead of holding an unbounded run.
      out->push_back(Chunk{std::exchange(partial_, {})});
    }
  }
}

void FaultInjector::Frame(std::vector<uint8_t> frame, std::vector<Chunk>* out) {
  ++counts_.frames;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  double u = unit(rng_);
  auto take = [&u](double p) {
    if (u < p) return true;
    u -= p;
    return false;
  };
  // Frames are at least the delimiter; damage only applies to the bytes before it.
  const size_t body = frame.size() - 1;
  if (take(rates_.drop)) {
    ++counts_.dropped;
    return;
  }
  if (take(rates_.corrupt)) {
    ++counts_.corrupted;
    if (body > 0) {
      const size_t at = std::uniform_int_distribution<size_t>(0, body - 1)(rng_);
      frame[at] ^= uint8_t(1u << std::uniform_int_distribution<int>(0, 7)(rng_));
    }
    out->push_back(Chunk{std::move(frame)});
    return;
  }
  if (take(rates_.duplicate)) {
    ++counts_.duplicated;
    out->push_back(Chunk{frame});
    out->push_back(Chunk{std::move(frame)});
    return;
  }
  if (take(rates_.truncate)) {
    ++counts_.truncated;
    const size_t keep = body == 0 ? 0 : std::uniform_int_distribution<size_t>(0, body - 1)(rng_);
    frame.resize(keep);
    frame.push_back(0);
    out->push_back(Chunk{std::move(frame)});
    return;
  }
  if (take(rates_.stall)) {
    ++counts_.stalled;
    out->push_back(Chunk{std::move(frame), rates_.stall_duration});
    return;
  }
  if (take(rates_.reset)) {
    ++counts_.resets;
    out->push_back(Chunk{std::move(frame), absl::ZeroDuration(), /*reset=*/true});
    return;
  }
  out->push_back(Chunk{std::move(frame)});
}

}  // namespace pim::drivers
