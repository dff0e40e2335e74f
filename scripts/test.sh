#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/check-layers.sh   # who may import whom (docs/architecture.md)
swift build --build-tests
swift build --product generate-manual   # for the man page test (CommandDocsTests)
swift test --skip-build "$@"
# A short fuzzing run of the manifest parser and the path checks (the long
# one is ./scripts/fuzz.sh alone); skipped when running a filtered subset.
if [ $# -eq 0 ]; then FUZZ_SECONDS="${FUZZ_SECONDS:-20}" ./scripts/fuzz.sh; fi
