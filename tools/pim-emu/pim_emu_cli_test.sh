#!/usr/bin/env bash
# pim-emu command line: each bad option is refused (exit 2) with a message naming it, before the
# emulator serves anything; the accepted --listen forms print the URI a host connects to.
set -u
EMU="$1"
fail() { echo "FAIL: $*"; exit 1; }

expect() {  # expect CODE MESSAGE ARGS...
  local code="$1" message="$2"; shift 2
  local err; err=$(timeout 5 "$EMU" "$@" 2>&1 >/dev/null); local rc=$?
  [ $rc -eq "$code" ] || fail "pim-emu $*: exit $rc, expected $code: $err"
  printf '%s' "$err" | grep -qF -- "$message" || fail "pim-emu $*: expected '$message' in: $err"
}
expect 2 "give --pty or --listen" 
expect 2 "--latency-ms: must be a finite number in [0, 10000], got 'nan'" --listen 127.0.0.1:0 --latency-ms nan
expect 2 "--bandwidth-bps: must be a finite number in [0, 1e+12], got 'inf'" --listen 127.0.0.1:0 --bandwidth-bps inf
expect 2 "--seed: must be a non-negative integer, got '-1'" --listen 127.0.0.1:0 --seed -1
expect 2 "--fault-seed: must be a non-negative integer, got '-1'" --listen 127.0.0.1:0 --fault-seed -1
expect 1 "--faults: fault rates: drop=2 is not a probability" --listen 127.0.0.1:0 --faults drop=2
expect 1 "--faults-in: fault rates 'drop=0.1,drop=0.2': 'drop' given twice" --listen 127.0.0.1:0 --faults-in drop=0.1,drop=0.2
expect 2 "--listen '127.0.0.1:+0' is not HOST:PORT" --listen 127.0.0.1:+0
expect 2 "--listen '127.0.0.1:65536' is not HOST:PORT" --listen 127.0.0.1:65536
expect 2 "--listen ':0' is not HOST:PORT" --listen :0
expect 2 "cannot resolve host 'no-such-host.invalid'" --listen no-such-host.invalid:0

first_line() { timeout 2 "$EMU" "$@" 2>&1 | head -1; }
line=$(first_line --listen localhost:0)
printf '%s' "$line" | grep -qE '^listening: tcp://(127\.0\.0\.1|\[::1\]):[0-9]+$' || fail "localhost:0 printed: $line"
line=$(first_line --listen "[::1]:0")
# A machine without IPv6 refuses the bind; one with it prints the bracketed form pimrun accepts.
printf '%s' "$line" | grep -qE '^listening: tcp://\[::1\]:[0-9]+$|^pim-emu: --listen \[::1\]:0: ' \
  || fail "[::1]:0 printed: $line"
echo "1 passed, 0 failed"
