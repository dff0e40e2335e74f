#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/check-layers.sh   # who may import whom (docs/architecture.md)
swift build --build-tests
swift build --product generate-manual   # for the man page test (CommandDocsTests)
if [ $# -gt 0 ]; then
  swift test --skip-build "$@"
else
  # The CephFS test (Tests/ceph/, ~5 min, most of it waiting out Ceph's
  # 60 s session timeouts) runs beside the rest, from the test binary
  # itself (a second `swift test` would wait for the first's lock).
  bin="$(swift build --show-bin-path)/mediaspoolPackageTests.xctest"
  ceph_log="$(swift build --show-bin-path)/ceph-test.log"
  # Bounded (a FUSE call can hang), and whatever happens to this script,
  # the background test and its cluster go with it (the test tears down
  # its own; this is for a test killed before it could).
  timeout -k 30 1200 "$bin" IntegrationTests.CephSpoolTests >"$ceph_log" 2>&1 &
  ceph_pid=$!
  cleanup_ceph() {
    kill "$ceph_pid" 2>/dev/null || true
    for f in /var/tmp/mediaspool-ceph-*/run/*.pid; do [ -e "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
    return 0
  }
  trap cleanup_ceph EXIT
  rc=0
  swift test --skip-build --skip CephSpoolTests || rc=$?
  ceph_rc=0
  wait "$ceph_pid" || ceph_rc=$?
  echo "=== the CephFS test (IntegrationTests.CephSpoolTests), run beside the rest: exit $ceph_rc ==="
  grep -E '^\[ceph|error|Test Case|Executed|skipped' "$ceph_log" | tail -60 || true
  [ "$ceph_rc" -eq 0 ] || { echo "--- its whole log: $ceph_log"; tail -200 "$ceph_log"; }
  trap - EXIT
  [ "$rc" -eq 0 ] && [ "$ceph_rc" -eq 0 ] || exit 1
fi
# A short fuzzing run of the manifest parser and the path checks (the long
# one is ./scripts/fuzz.sh alone); skipped when running a filtered subset.
if [ $# -eq 0 ]; then FUZZ_SECONDS="${FUZZ_SECONDS:-20}" ./scripts/fuzz.sh; fi
