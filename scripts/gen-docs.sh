#!/usr/bin/env bash
# Generates the man pages (swift-argument-parser's generate-manual, from the
# command definitions themselves) and the bash, zsh and fish completions of
# a built mediaspool binary.
#   ./scripts/gen-docs.sh [BINARY] [OUTDIR]   # default .build/debug/mediaspool, .build/docs
# Gives OUTDIR/man1/mediaspool*.1 and OUTDIR/completions/{mediaspool.bash,_mediaspool,mediaspool.fish}.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.build/debug/mediaspool}"
OUT="${2:-.build/docs}"
[ -x "$BIN" ] || swift build --product mediaspool
swift build --product generate-manual >/dev/null
GEN="$(swift build --show-bin-path)/generate-manual"
rm -rf "$OUT/man1" "$OUT/completions"; mkdir -p "$OUT/man1" "$OUT/completions"
"$GEN" "$BIN" --multi-page --output-directory "$OUT/man1" --authors "mediaspool developers"
rm -f "$OUT/man1/mediaspool.help.1"
# The notifier, when it was built beside the daemon.
NOTIFY="$(dirname "$BIN")/mediaspool-notify"
if [ -x "$NOTIFY" ]; then "$GEN" "$NOTIFY" --output-directory "$OUT/man1" --authors "mediaspool developers"; fi
"$BIN" --generate-completion-script bash > "$OUT/completions/mediaspool.bash"
"$BIN" --generate-completion-script zsh > "$OUT/completions/_mediaspool"
"$BIN" --generate-completion-script fish > "$OUT/completions/mediaspool.fish"
echo "gen-docs: $(ls "$OUT/man1" | wc -l) man pages in $OUT/man1, completions in $OUT/completions"
