#!/usr/bin/env bash
# pimcal command line: exit codes 0/1/2, one-line errors, a small real sweep on the simulator.
set -u
PIMCAL="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$PIMCAL" >/dev/null 2>&1; [ $? -eq 2 ] || fail "no subcommand should exit 2"
"$PIMCAL" adc >/dev/null 2>&1; [ $? -eq 2 ] || fail "adc without -o should exit 2"
"$PIMCAL" adc -o "$tmp/x.pb" --modes sideways >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --modes should exit 2"
err=$("$PIMCAL" adc --device nosuch:thing -o "$tmp/x.pb" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] || fail "unknown device should exit 1 (got $rc)"
[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || fail "error should be one line: $err"
err=$("$PIMCAL" adc --adc-bits 9 -o "$tmp/x.pb" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && printf '%s' "$err" | grep -q "resolution 9 bits" || fail "9-bit ADC should be refused: $err"
"$PIMCAL" bn "$tmp/missing.pimb" -o "$tmp/y.pimb" >/dev/null 2>&1; [ $? -eq 1 ] || fail "missing model should exit 1"

# Each mistake gets its exit code and one message naming it, before anything is measured.
expect() {  # expect CODE MESSAGE ARGS...
  local code="$1" message="$2"; shift 2
  local err; err=$("$PIMCAL" "$@" 2>&1 >/dev/null); local rc=$?
  [ $rc -eq "$code" ] || fail "pimcal $*: exit $rc, expected $code: $err"
  printf '%s' "$err" | grep -qF -- "$message" || fail "pimcal $*: expected '$message' in: $err"
}
expect 2 "unknown command 'calibrate'" calibrate
expect 2 "--macros lists 0 twice" adc -o "$tmp/x.pb" --macros 0,0
expect 2 "--adc-bits lists 4 twice" adc -o "$tmp/x.pb" --adc-bits 4,4
expect 2 "--modes lists signed twice" adc -o "$tmp/x.pb" --modes signed,signed
expect 2 "--macros: must be an integer in [0, 1048576], got ''" adc -o "$tmp/x.pb" --macros ""
expect 2 "--macros: must be an integer in [0, 1048576], got 'x'" adc -o "$tmp/x.pb" --macros 0,x
expect 2 "is the --output file" adc -o "$tmp/same.pb" --report "$tmp/./same.pb"
expect 2 "do not also give --adc-bits or --modes" adc -o "$tmp/x.pb" --program "$tmp/p.pimb" --modes signed
expect 1 "--output $tmp/no/x.pb: directory '$tmp/no' does not exist" adc -o "$tmp/no/x.pb"
expect 1 "--report $tmp/no/r.html: directory '$tmp/no' does not exist" adc -o "$tmp/x.pb" --report "$tmp/no/r.html"
expect 2 "--repeats: must be an integer in [2, 4096], got '1'" adc -o "$tmp/x.pb" --repeats 1
expect 2 "--repeats: must be an integer in [2, 4096], got '3.5'" adc -o "$tmp/x.pb" --repeats 3.5
[ ! -e "$tmp/x.pb" ] || fail "a refused sweep must write nothing"
echo program > "$tmp/p.pimb"
expect 2 "is the --program file" adc -o "$tmp/p.pimb" --program "$tmp/p.pimb"
expect 2 "is the model file" bn "$tmp/p.pimb" -o "$tmp/./p.pimb"
echo calibration > "$tmp/c.cal.pb"
expect 2 "is the --calibration file" bn "$tmp/p.pimb" --calibration "$tmp/c.cal.pb" -o "$tmp/c.cal.pb"
[ "$(cat "$tmp/p.pimb")" = program ] && [ "$(cat "$tmp/c.cal.pb")" = calibration ] || fail "inputs overwritten"
expect 1 "--output $tmp/no/y.pimb: directory '$tmp/no' does not exist" bn "$tmp/missing.pimb" -o "$tmp/no/y.pimb"

out=$("$PIMCAL" adc --device sim:profile=typical --macros 1 --adc-bits 3 --repeats 4 -o "$tmp/c.pb" --report "$tmp/r.html") \
  || fail "small sweep failed"
printf '%s\n' "$out" | grep -q "3-bit signed    127 columns" || fail "summary: $out"
[ -s "$tmp/c.pb" ] || fail "no calibration file"
grep -q "<svg" "$tmp/r.html" || fail "report has no plot"
! grep -q "<script" "$tmp/r.html" || fail "report must not need scripts"
echo "1 passed, 0 failed"
