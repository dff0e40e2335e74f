#!/usr/bin/env bash
# Runs the whole test suite with the daemon and the tests built under a
# sanitizer: ./scripts/sanitize.sh address   (AddressSanitizer + LeakSanitizer)
#            ./scripts/sanitize.sh thread    (ThreadSanitizer)
# Each has its own build folder (.build-address, .build-thread). Extra
# arguments go to `swift test` (--filter ...). A sanitizer report fails the
# run: the integration tests' daemons inherit the options below, and halt_on_error
# makes a report an abnormal exit that the tests see.
set -euo pipefail
cd "$(dirname "$0")/.."
SAN="${1:?usage: scripts/sanitize.sh address|thread [swift test args]}"; shift
case "$SAN" in address|thread) ;; *) echo "sanitize: address or thread" >&2; exit 2 ;; esac
./scripts/setup.sh
LOG="$PWD/.build-$SAN/reports"; mkdir -p "$LOG"; rm -f "$LOG"/*
# Reports also go to files (log_path), so a report from a daemon that a test
# killed or whose stderr nobody read is still seen below. Leaks are checked in
# the mediaspool processes the tests start (MEDIASPOOL_CHILD_ASAN_OPTIONS),
# not in the test runner itself; a small quarantine keeps their memory
# figures meaningful. Under systemd's seccomp filter LeakSanitizer cannot stop
# the world, so the units run without leak checks (MEDIASPOOL_UNIT_ENV).
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:log_path=$LOG/asan-runner"
export MEDIASPOOL_CHILD_ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:quarantine_size_mb=16:${MEDIASPOOL_ASAN_EXTRA:-}log_path=$LOG/asan"
export LSAN_OPTIONS="suppressions=$PWD/scripts/sanitizers/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$LOG/tsan:suppressions=$PWD/scripts/sanitizers/tsan.supp"
export MEDIASPOOL_UNIT_ENV="ASAN_OPTIONS=detect_leaks=0 SWIFT_BACKTRACE=enable=no"
# Daemons that tests abort on purpose (crash points, poison pills) must not
# run Swift's backtracer: it reads other threads' stacks, which the
# sanitizers report. Memory bounds in the tests allow for the shadow memory.
export SWIFT_BACKTRACE=enable=no
# The 100,000- and 10,000-job tests run at a tenth of their size under the
# sanitizers (the full sizes run in the normal suite).
if [ "$SAN" = address ]; then export MEDIASPOOL_TEST_MEMORY_SCALE=4; else export MEDIASPOOL_TEST_MEMORY_SCALE=8; fi
export MEDIASPOOL_TEST_LOAD_SCALE=0.1
swift build --build-tests --sanitize="$SAN" --scratch-path ".build-$SAN"
status=0
swift test --skip-build --sanitize="$SAN" --scratch-path ".build-$SAN" "$@" || status=$?
if ls "$LOG"/* >/dev/null 2>&1; then
  echo "sanitize: $SAN reports:" >&2
  for f in "$LOG"/*; do echo "== $f" >&2; head -60 "$f" >&2; done
  status=1
fi
[ $status -eq 0 ] && echo "sanitize: $SAN clean"
exit $status
