#!/usr/bin/env bash
# The demo: builds mediaspool, makes a spool in spool-example/ with generated
# media, starts the daemon on it, submits the example jobs, shows the results.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build -c release --product mediaspool   # the daemon only (the notifier is optional)
BIN="$(swift build -c release --show-bin-path)/mediaspool"
SPOOL="$PWD/spool-example"
MEDIA="$SPOOL/media"

echo "== generating demo media in $MEDIA (ffmpeg's lavfi sources)"
mkdir -p "$MEDIA/clips" "$MEDIA/music" "$MEDIA/talks" "$MEDIA/stills"
gen() { [ -s "$1" ] || ffmpeg -nostdin -v error -y "${@:2}" "$1"; }
gen "$MEDIA/clips/intro.mp4" -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t 5 -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -shortest
gen "$MEDIA/clips/scene2.mov" -f lavfi -i smptebars=size=640x360:rate=25 -f lavfi -i "sine=frequency=660:sample_rate=44100" \
    -t 4 -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -shortest
gen "$MEDIA/music/theme.mp3" -f lavfi -i "sine=frequency=220:sample_rate=44100" -t 8 -c:a libmp3lame -ac 2
gen "$MEDIA/talks/raw.wav" -f lavfi -i "sine=frequency=330:sample_rate=48000" -t 6 -c:a pcm_s16le
gen "$MEDIA/stills/title.png" -f lavfi -i "color=c=navy:size=1280x720" -frames:v 1

echo "== starting the daemon on $SPOOL"
"$BIN" run --spool "$SPOOL" --workers 2 2>"$SPOOL/daemon.log" &
DAEMON=$!
trap 'kill -TERM $DAEMON 2>/dev/null; wait $DAEMON 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -d "$SPOOL/inbox" ] && "$BIN" status --spool "$SPOOL" >/dev/null 2>&1 && break; sleep 0.2; done

echo "== submitting the example jobs"
# A re-run of the demo replaces earlier results.
for f in spool-example/jobs/*.json spool-example/jobs/bad/*.json; do
  id=$(basename "$f" .json)
  rm -f "$SPOOL"/{done,failed}/"$id".{json,result.json,error.json} "$SPOOL"/done/"$id"+*
done
"$BIN" submit --spool "$SPOOL" spool-example/jobs/*.json
# These are refused by `submit` (it validates first); dropped straight into
# inbox/ as a careless producer would, they end in failed/ with a record.
"$BIN" validate spool-example/jobs/bad/*.json || true
cp spool-example/jobs/bad/*.json "$SPOOL/inbox/"

total=$(ls spool-example/jobs/*.json spool-example/jobs/bad/*.json | wc -l)
for _ in $(seq 600); do
  n=$(( $(ls "$SPOOL/done" | grep '\.json$' | grep -vc '\.result\.json$' || true) + $(ls "$SPOOL/failed" | grep '\.json$' | grep -vc '\.error\.json$' || true) ))
  [ "$n" -ge "$total" ] && break
  sleep 0.2
done

echo "== status"
"$BIN" status --spool "$SPOOL" || true
echo "== the live view, one frame (mediaspool watch shows it live)"
"$BIN" watch --once --spool "$SPOOL"
echo "== jobs"
"$BIN" list --spool "$SPOOL"
echo "== outputs written under $MEDIA"
( cd "$MEDIA" && find out thumbs boards previews talks/episode-12.m4a -type f | sort | xargs ls -la )
echo "== a package (HLS + DASH ladder): $MEDIA/streams/intro"
ls "$MEDIA/streams/intro"
cat "$MEDIA/streams/intro/master.m3u8"
echo "== one result: done/transcode-intro-480p.result.json"
cat "$SPOOL/done/transcode-intro-480p.result.json"
echo "== one failure: failed/refused-url.error.json"
cat "$SPOOL/failed/refused-url.error.json"
echo "== the last job ends in the events log (mediaspool events --follow streams them)"
"$BIN" events --spool "$SPOOL" --only done,failed,cancelled | tail -n 3
echo "== gallery"
"$BIN" gallery --spool "$SPOOL" --out "$SPOOL/gallery"
echo "== daemon log ($SPOOL/daemon.log)"
cat "$SPOOL/daemon.log"
