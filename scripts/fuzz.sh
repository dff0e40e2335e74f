#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/) and runs each for FUZZ_SECONDS
# (default 600; the test command runs them for 20 s). New corpus entries
# are kept in .fuzz-corpus/ (not committed); a crash leaves its input in
# .fuzz-artifacts/ and exits non-zero: turn it into a regression test
# (Fuzz/regressions/, run by SpoolKitTests/FuzzRegressionTests).
#   ./scripts/fuzz.sh                      # 10 minutes per target
#   FUZZ_SECONDS=3600 ./scripts/fuzz.sh FuzzPaths
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${FUZZ_SECONDS:-600}"
TARGETS=("$@"); [ ${#TARGETS[@]} -gt 0 ] || TARGETS=(FuzzManifest FuzzPaths FuzzSpool)
export MEDIASPOOL_FUZZ=1 SWIFT_BACKTRACE=enable=no
for t in "${TARGETS[@]}"; do
  swift build --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer --product "$t" 2>&1 | grep -E "error|warning: var|Compiling.*error" || true
  [ -x ".build-fuzz/debug/$t" ] || { echo "fuzz: $t did not build" >&2; exit 1; }
done
mkdir -p .fuzz-artifacts
status=0
for t in "${TARGETS[@]}"; do
  case "$t" in
    FuzzManifest) seeds=Fuzz/corpus/manifest; extra=(-dict=Fuzz/manifest.dict -max_len=4096) ;;
    FuzzPaths) seeds=Fuzz/corpus/paths; extra=(-max_len=256) ;;
    FuzzSpool) seeds=Fuzz/corpus/spool; extra=(-max_len=2048) ;;
  esac
  work=".fuzz-corpus/$t"; mkdir -p "$work"
  echo "fuzz: $t for ${SECONDS_EACH}s (seeds $seeds)"
  # -timeout: an input that takes over 30 s is a hang, reported at once
  # (libFuzzer's default waits 20 minutes).
  if ! ".build-fuzz/debug/$t" -max_total_time="$SECONDS_EACH" -timeout=30 -artifact_prefix=.fuzz-artifacts/ -print_final_stats=1 \
       "${extra[@]}" "$work" "$seeds" > ".fuzz-artifacts/$t.log" 2>&1; then
    echo "fuzz: $t FOUND A CRASH; see .fuzz-artifacts/$t.log and the input it names:" >&2
    grep -E "Precondition|Fatal|SUMMARY|Test unit written" ".fuzz-artifacts/$t.log" >&2 || tail -20 ".fuzz-artifacts/$t.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb|DONE" ".fuzz-artifacts/$t.log" | tr '\n' ' '; echo
  fi
done
rm -rf /tmp/mediaspool-fuzz-paths-* /tmp/mediaspool-fuzz-spool-*
exit $status
