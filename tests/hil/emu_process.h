#pragma once

// Runs tools/pim-emu as a child process for the hardware-in-the-loop tests: starts it, reads
// the address it prints ("pty: PATH" / "listening: tcp://HOST:PORT") with a timeout, and kills
// it on destruction. Stop/Continue/Kill simulate a stalled or unplugged board.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace pim::hil {

class EmuProcess {
 public:
  // Starts pim-emu with `args`; address() is empty if it did not announce itself within 10 s.
  explicit EmuProcess(const std::vector<std::string>& args) {
    int out[2];
    if (pipe(out) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    const std::string exe = std::string(PIM_BINARY_DIR) + "/bin/pim-emu";
    static const std::string kExitWithParent = "--exit-with-parent";
    std::vector<char*> argv = {const_cast<char*>(exe.c_str()), const_cast<char*>(kExitWithParent.c_str())};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, exe.c_str(), &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    stdout_ = out[0];
    if (pid_ > 0) ReadAddress();
  }

  ~EmuProcess() { Kill(); }

  const std::string& address() const { return address_; }  // "/dev/pts/3" or "tcp://127.0.0.1:4711"
  pid_t pid() const { return pid_; }

  void Stop() { if (pid_ > 0) kill(pid_, SIGSTOP); }
  void Continue() { if (pid_ > 0) kill(pid_, SIGCONT); }

  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    if (stdout_ >= 0) {
      close(stdout_);
      stdout_ = -1;
    }
  }

 private:
  void ReadAddress() {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{stdout_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char c;
      if (read(stdout_, &c, 1) != 1) return;
      if (c != '\n') {
        line += c;
        continue;
      }
      for (const std::string prefix : {"pty: ", "listening: "}) {
        if (line.rfind(prefix, 0) == 0) {
          address_ = line.substr(prefix.size());
          return;
        }
      }
      line.clear();
    }
  }

  pid_t pid_ = -1;
  int stdout_ = -1;
  std::string address_;
};

}  // namespace pim::hil
