// pim-emu: the virtual chip. The simulator (same chip file, non-ideality profile and seed as
// `--device sim:profile=...,seed=...`) behind the link protocol of docs/protocol.md, on a
// pseudo-terminal or a TCP port, with an optional wire model and fault injection.
//
//   pim-emu --pty --chip typical --seed 7                  # prints "pty: /dev/pts/N"
//   pim-emu --listen 127.0.0.1:5555 --bandwidth-bps 12e6 --latency-ms 1 --half-duplex
//   pim-emu --listen 127.0.0.1:0 --faults rate=0.01 --faults-out rate=0.01 --fault-seed 3
//
// Exit codes: 0 on SIGINT/SIGTERM or --exit-on-disconnect, 1 runtime failure, 2 usage error.

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <utility>  // boost 1.74 asio/awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "pim/cli/option_checks.h"
#include "pim/drivers/device_engine.h"
#include "pim/drivers/fault_injector.h"
#include "pim/runtime/chip_file.h"
#include "pim/runtime/device_uri.h"
#include "pim/sim/sim_backend.h"
#include "virtual_device.h"

namespace {

namespace asio = boost::asio;
using namespace pim;

struct Options {
  std::string chip;       // chip file (spec + profile), or a bundled name
  std::optional<uint64_t> seed;
  bool pty = false;
  std::string listen;     // HOST:PORT
  double bandwidth_bps = 0;
  double latency_ms = 0;
  bool half_duplex = false;
  std::string faults;     // both directions
  std::string faults_in;  // host -> device only
  std::string faults_out; // device -> host only
  uint64_t fault_seed = 1;
  std::string serial = "PIM-EMU-0001";
  uint32_t max_frame = 65536;
  uint32_t window = 32;
  bool exit_on_disconnect = false;
};

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "pim-emu: %s\n", std::string(s.message()).c_str());
  return 1;
}

// One host at a time on an Asio stream (pty master or TCP socket), pumping a VirtualDevice.
class Server {
 public:
  Server(asio::io_context& io, emu::VirtualDevice& device)
      : io_(io), device_(device), timer_(io), backoff_(io) {}

  // Serves `stream` until it closes (then calls `on_close`). `stream` must outlive that.
  template <typename Stream>
  void Serve(Stream& stream, std::function<void()> on_close) {
    pending_.clear();
    writing_ = false;
    read_ = [this, &stream, on_close] {
      stream.async_read_some(asio::buffer(rx_), [this, on_close](boost::system::error_code ec, size_t n) {
        if (ec) {
          write_ = nullptr;
          on_close();
          return;
        }
        device_.Receive(absl::MakeConstSpan(rx_.data(), n), absl::Now());
        Pump();
        ReadWhenDrained();
      });
    };
    write_ = [this, &stream] {
      if (writing_ || pending_.empty()) return;
      writing_ = true;
      sending_ = std::move(pending_);
      pending_.clear();
      asio::async_write(stream, asio::buffer(sending_), [this](boost::system::error_code ec, size_t) {
        writing_ = false;
        if (!ec && write_) write_();
      });
    };
    read_();
    Pump();
  }

  void Pump() {
    std::vector<uint8_t> out;
    if (absl::Status s = device_.Advance(absl::Now(), &out); !s.ok()) {
      std::fprintf(stderr, "pim-emu: %s\n", std::string(s.message()).c_str());
      failed_ = true;
      io_.stop();
      return;
    }
    // With no host attached, what the device says is lost, as on a real wire.
    if (!out.empty() && write_) {
      pending_.insert(pending_.end(), out.begin(), out.end());
      write_();
    }
    const absl::Time next = device_.NextEvent();
    if (next == absl::InfiniteFuture()) return;
    timer_.expires_after(absl::ToChronoNanoseconds(std::max(next - absl::Now(), absl::ZeroDuration())));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) Pump();
    });
  }

  bool failed() const { return failed_; }

  // Reads more from the host only once what the device holds and what waits to be written to the
  // host are below kMaxBacklogBytes: memory stays bounded whatever a peer sends (docs/protocol.md
  // 2.4), and a host that stops reading stops being read.
  void ReadWhenDrained() {
    if (!write_) return;  // the host is gone
    if (device_.Backlog() + pending_.size() + sending_.size() <= kMaxBacklogBytes) {
      read_();
      return;
    }
    backoff_.expires_after(std::chrono::milliseconds(1));
    backoff_.async_wait([this](boost::system::error_code ec) {
      if (!ec) ReadWhenDrained();
    });
  }

 private:
  asio::io_context& io_;
  emu::VirtualDevice& device_;
  asio::steady_timer timer_;
  asio::steady_timer backoff_;
  static constexpr size_t kMaxBacklogBytes = size_t(8) << 20;
  std::array<uint8_t, 65536> rx_{};
  std::vector<uint8_t> pending_;
  std::vector<uint8_t> sending_;
  bool writing_ = false;
  bool failed_ = false;
  std::function<void()> read_;
  std::function<void()> write_;
};

// The rates of one direction: `one` (--faults-in or --faults-out) if given, else `both` (--faults);
// an error names the option the rates came from.
absl::StatusOr<drivers::FaultRates> Rates(const std::string& both, const std::string& one, const char* flag) {
  const bool own = !one.empty();
  absl::StatusOr<drivers::FaultRates> r = drivers::ParseFaultRates(own ? one : both);
  if (!r.ok()) return absl::InvalidArgumentError(absl::StrCat(own ? flag : "--faults", ": ", r.status().message()));
  return r;
}

int Run(const Options& o) {
  runtime::DeviceUri uri;
  uri.text = "sim";
  uri.scheme = "sim";
  uri.profile_path = o.chip;
  uri.seed = o.seed;
  drivers::ChipFactory factory = [uri]() { return sim::OpenSimBackend(uri, runtime::OpenOptions{}); };
  absl::StatusOr<std::unique_ptr<runtime::Backend>> probe = factory();
  if (!probe.ok()) return Fail(probe.status());

  drivers::DeviceIdentity id;
  id.serial_number = o.serial;
  id.firmware_version = "pim-emu 0.1.0";
  if (auto* s = dynamic_cast<sim::SimBackend*>(probe->get())) id.profile = s->params().profile_name;
  id.max_frame_bytes = o.max_frame;
  id.window = o.window;
  id.link_bytes_per_second = uint64_t(o.bandwidth_bps / 8);

  emu::VirtualDeviceOptions vo;
  vo.wire.bandwidth_bps = o.bandwidth_bps;
  vo.wire.latency = absl::Milliseconds(o.latency_ms);
  vo.wire.half_duplex = o.half_duplex;
  vo.fault_seed = o.fault_seed;
  absl::StatusOr<drivers::FaultRates> in = Rates(o.faults, o.faults_in, "--faults-in");
  if (!in.ok()) return Fail(in.status());
  absl::StatusOr<drivers::FaultRates> out = Rates(o.faults, o.faults_out, "--faults-out");
  if (!out.ok()) return Fail(out.status());
  vo.to_device = *in;
  vo.from_device = *out;

  try {
    // Declared before the device: the device's worker thread posts into it until joined.
    asio::io_context io;
    Server* server_ptr = nullptr;
    vo.wake = [&io, &server_ptr] {
      asio::post(io, [&server_ptr] {
        if (server_ptr) server_ptr->Pump();
      });
    };
    emu::VirtualDevice device(std::make_unique<drivers::DeviceEngine>(factory, id, o.seed.value_or(0)), vo);
    if (absl::Status s = device.Boot(absl::Now()); !s.ok()) return Fail(s);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code, int) { io.stop(); });
    Server server(io, device);
    server_ptr = &server;

    std::optional<asio::posix::stream_descriptor> pty;
    int slave = -1;
    std::optional<asio::ip::tcp::acceptor> acceptor;
    std::optional<asio::ip::tcp::socket> socket;
    std::function<void()> accept;

    if (o.pty) {
      const int master = posix_openpt(O_RDWR | O_NOCTTY);
      if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
        return Fail(absl::UnavailableError(absl::StrCat("cannot create a pseudo-terminal: ", std::strerror(errno))));
      }
      const std::string path = ptsname(master);
      // Holding the slave open keeps it raw (no echo, no line editing) before the host opens
      // it, and keeps the master readable when a host closes it.
      slave = open(path.c_str(), O_RDWR | O_NOCTTY);
      termios t{};
      if (slave < 0 || tcgetattr(slave, &t) != 0) {
        return Fail(absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno))));
      }
      cfmakeraw(&t);
      tcsetattr(slave, TCSANOW, &t);
      pty.emplace(io, master);
      std::printf("pty: %s\n", path.c_str());
      std::fflush(stdout);
      server.Serve(*pty, [&] { io.stop(); });
    } else {
      // HOST:PORT, HOST a name, an IPv4 address or a bracketed IPv6 address ([::1]:0).
      const size_t colon = o.listen.rfind(':');
      std::string host = colon == std::string::npos ? "" : o.listen.substr(0, colon);
      const std::string port_text = colon == std::string::npos ? "" : o.listen.substr(colon + 1);
      if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
      uint32_t port = 0;
      if (host.empty() || port_text.empty() || port_text.find_first_not_of("0123456789") != std::string::npos ||
          !absl::SimpleAtoi(port_text, &port) || port > 65535) {
        std::fprintf(stderr, "pim-emu: --listen '%s' is not HOST:PORT (port 0..65535)\n", o.listen.c_str());
        return 2;
      }
      boost::system::error_code ec;
      asio::ip::tcp::resolver resolver(io);
      const auto resolved = resolver.resolve(host, port_text, asio::ip::resolver_base::numeric_service, ec);
      if (ec || resolved.empty()) {
        std::fprintf(stderr, "pim-emu: --listen '%s': cannot resolve host '%s': %s\n", o.listen.c_str(), host.c_str(),
                     ec ? ec.message().c_str() : "no address");
        return 2;
      }
      acceptor.emplace(io);
      const asio::ip::tcp::endpoint endpoint = resolved.begin()->endpoint();
      acceptor->open(endpoint.protocol(), ec);
      if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) acceptor->bind(endpoint, ec);
      if (!ec) acceptor->listen(4, ec);
      if (ec) return Fail(absl::UnavailableError(absl::StrCat("--listen ", o.listen, ": ", ec.message())));
      const auto local = acceptor->local_endpoint();
      const std::string shown = local.address().is_v6() ? "[" + local.address().to_string() + "]" : local.address().to_string();
      std::printf("listening: tcp://%s:%u\n", shown.c_str(), unsigned(local.port()));
      std::fflush(stdout);
      accept = [&] {
        socket.emplace(io);
        acceptor->async_accept(*socket, [&](boost::system::error_code e) {
          if (e) return;
          socket->set_option(asio::ip::tcp::no_delay(true), e);
          server.Serve(*socket, [&] {
            if (o.exit_on_disconnect) {
              io.stop();
            } else {
              asio::post(io, accept);
            }
          });
        });
      };
      accept();
    }
    io.run();
    if (slave >= 0) close(slave);
    return server.failed() ? 1 : 0;
  } catch (const std::exception& e) {
    return Fail(absl::InternalError(e.what()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"pim-emu: the virtual PIM chip behind the link protocol (docs/protocol.md)"};
  app.add_option("--chip,--profile", o.chip,
                 "chip file (spec + non-ideality profile) or bundled name (default, ideal, typical, harsh); "
                 "same meaning as sim:profile=");
  std::optional<uint64_t> seed;
  app.add_option("--seed", seed, "noise seed (as sim:seed=)")->check(cli::kNonNegativeInteger);
  auto* pty = app.add_flag("--pty", o.pty, "serve on a new pseudo-terminal; prints 'pty: PATH'");
  auto* listen = app.add_option("--listen", o.listen, "serve on TCP HOST:PORT (port 0: any); prints 'listening: tcp://HOST:PORT'");
  pty->excludes(listen);
  app.add_option("--bandwidth-bps", o.bandwidth_bps, "wire rate in bits/s (0: unlimited), e.g. 12e6 or 921600")
      ->check(cli::FiniteRange(0.0, 1e12));
  app.add_option("--latency-ms", o.latency_ms, "one-way wire latency in ms")->check(cli::FiniteRange(0.0, 10000.0));
  app.add_flag("--half-duplex", o.half_duplex, "both directions share the wire (USB full speed)");
  app.add_option("--faults", o.faults, "fault rates for both directions: drop=P,corrupt=P,duplicate=P,truncate=P,"
                                       "stall=P,reset=P,stall_ms=MS or rate=P[,kinds=a+b]");
  app.add_option("--faults-in", o.faults_in, "fault rates on frames from the host (overrides --faults)");
  app.add_option("--faults-out", o.faults_out, "fault rates on frames to the host (overrides --faults)");
  app.add_option("--fault-seed", o.fault_seed, "seed of the fault injector")->check(cli::kNonNegativeInteger);
  app.add_option("--serial", o.serial, "serial number the handshake reports");
  app.add_option("--max-frame", o.max_frame, "largest frame the device accepts")->check(cli::IntegerRange(256, 1 << 20));
  app.add_option("--window", o.window, "requests the device buffers and caches")->check(cli::IntegerRange(1, 1024));
  app.add_flag("--exit-on-disconnect", o.exit_on_disconnect, "with --listen: exit when the host disconnects");
  bool exit_with_parent = false;
  app.add_flag("--exit-with-parent", exit_with_parent,
               "terminate when the process that started the emulator dies (tests use it so a crashed "
               "test leaves no emulator behind)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (!o.pty && o.listen.empty()) {
    std::fprintf(stderr, "pim-emu: give --pty or --listen HOST:PORT\n");
    return 2;
  }
  if (exit_with_parent) {
    // A parent that died before prctl has already handed us to init.
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() == 1) return 1;
  }
  o.seed = seed;
  return Run(o);
}
