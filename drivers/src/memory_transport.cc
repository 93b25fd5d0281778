#include "pim/drivers/memory_transport.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace pim::drivers {
namespace {

struct Pipe {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<uint8_t> bytes;
  bool closed = false;
};

class MemoryTransport : public Transport {
 public:
  MemoryTransport(std::string name, std::shared_ptr<Pipe> in, std::shared_ptr<Pipe> out)
      : name_(std::move(name)), in_(std::move(in)), out_(std::move(out)) {}

  ~MemoryTransport() override {
    for (Pipe* p : {in_.get(), out_.get()}) {
      std::lock_guard<std::mutex> lock(p->mu);
      p->closed = true;
      p->cv.notify_all();
    }
  }

  absl::Status Write(absl::Span<const uint8_t> bytes, absl::Duration) override {
    std::lock_guard<std::mutex> lock(out_->mu);
    if (out_->closed) return absl::UnavailableError(absl::StrCat(name_, ": peer closed"));
    out_->bytes.insert(out_->bytes.end(), bytes.begin(), bytes.end());
    out_->cv.notify_all();
    return absl::OkStatus();
  }

  absl::StatusOr<size_t> Read(absl::Span<uint8_t> buffer, absl::Duration timeout) override {
    std::unique_lock<std::mutex> lock(in_->mu);
    in_->cv.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                     [&] { return !in_->bytes.empty() || in_->closed; });
    if (in_->bytes.empty()) {
      if (in_->closed) return absl::UnavailableError(absl::StrCat(name_, ": peer closed"));
      return size_t{0};
    }
    const size_t n = std::min(buffer.size(), in_->bytes.size());
    std::copy_n(in_->bytes.begin(), n, buffer.begin());
    in_->bytes.erase(in_->bytes.begin(), in_->bytes.begin() + ptrdiff_t(n));
    return n;
  }

  const std::string& name() const override { return name_; }

 private:
  std::string name_;
  std::shared_ptr<Pipe> in_;
  std::shared_ptr<Pipe> out_;
};

}  // namespace

std::pair<std::unique_ptr<Transport>, std::unique_ptr<Transport>> MakeMemoryTransportPair(
    const std::string& name) {
  auto a_to_b = std::make_shared<Pipe>();
  auto b_to_a = std::make_shared<Pipe>();
  return {std::make_unique<MemoryTransport>(name, b_to_a, a_to_b),
          std::make_unique<MemoryTransport>(absl::StrCat(name, "/device"), a_to_b, b_to_a)};
}

}  // namespace pim::drivers
