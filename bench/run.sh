#!/usr/bin/env bash
# The benchmark command: builds mediaspool (release) and the C peers, generates
# the media, measures everything against its peer, writes bench/results.md.
#   ./bench/run.sh                 # full (about 10 minutes on 2 cores)
#   BENCH_QUICK=1 BENCH_REPS=1 ./bench/run.sh   # a smoke run
# After one full run (release build and media in place):
#   BENCH_ONLY=probe,thumbnail python3 bench/bench.py   # some rows only
#   python3 bench/profile.py probe 1000 perf.data       # one workload, with perf
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
command -v /usr/bin/time >/dev/null || { SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo; $SUDO apt-get install -y -qq time >/dev/null; }
swift build -c release
W="${BENCH_DIR:-/var/tmp/mediaspool-bench}"
mkdir -p "$W"
gcc -O2 -Wno-format-truncation -o "$W/floor" bench/floor.c
gcc -O2 -Wno-format-truncation -o "$W/pickup" bench/pickup.c
gcc -O2 -o "$W/still-floor" bench/still-floor.c $(pkg-config --cflags --libs libavformat libavcodec libavutil)
exec python3 bench/bench.py
