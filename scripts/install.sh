#!/usr/bin/env bash
# Installs mediaspool: the binary, the systemd units, sysusers.d and
# tmpfiles.d snippets, an example config; creates the user and the spool.
#
#   sudo ./scripts/install.sh                 # build (release, static Swift runtime) and install
#   sudo ./scripts/install.sh --binary PATH   # install an already built binary
#   DESTDIR=/pkgroot ./scripts/install.sh     # stage into a package root; creates nothing live
#   sudo ./scripts/install.sh --shared        # also the drop-in of a spool shared by several
#                                             # hosts on CephFS (docs/scale-out.md), for both units
#
# Then: systemctl enable --now mediaspool.service mediaspool-sweep.timer
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=""
PREFIX=/usr/local
SHARED=0
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BIN="$2"; shift 2 ;;
    --prefix) PREFIX="$2"; shift 2 ;;
    --shared) SHARED=1; shift ;;
    *) echo "usage: $0 [--binary PATH] [--prefix /usr/local] [--shared]" >&2; exit 2 ;;
  esac
done
D="${DESTDIR:-}"
SUDO=""
[ "$(id -u)" -eq 0 ] || [ -n "$D" ] || SUDO="sudo"
if [ -z "$BIN" ]; then
  swift build -c release --static-swift-stdlib
  BIN="$(swift build -c release --show-bin-path)/mediaspool"
fi
$SUDO install -D -m 0755 "$BIN" "$D$PREFIX/bin/mediaspool"
# The optional notifier (completion hooks), built beside the daemon.
NOTIFY="$(dirname "$BIN")/mediaspool-notify"
[ -x "$NOTIFY" ] && $SUDO install -D -m 0755 "$NOTIFY" "$D$PREFIX/bin/mediaspool-notify"
$SUDO install -D -m 0644 notify.example.json "$D$PREFIX/share/doc/mediaspool/notify.example.json"
for u in mediaspool.service mediaspool-sweep.service mediaspool-sweep.timer mediaspool-notify.service; do
  sed "s|/usr/local/bin/mediaspool|$PREFIX/bin/mediaspool|g" "systemd/$u" | $SUDO install -D -m 0644 /dev/stdin "$D/etc/systemd/system/$u"
done
if [ "$SHARED" = 1 ]; then
  for u in mediaspool.service mediaspool-sweep.service; do
    $SUDO install -D -m 0644 systemd/shared-spool.conf "$D/etc/systemd/system/$u.d/shared-spool.conf"
  done
fi
$SUDO install -D -m 0644 systemd/mediaspool.sysusers "$D/etc/sysusers.d/mediaspool.conf"
$SUDO install -D -m 0644 systemd/mediaspool.tmpfiles "$D/etc/tmpfiles.d/mediaspool.conf"
[ -e "$D/etc/mediaspool/config.json" ] || \
  sed 's|"allowRoots": \["/srv/media"\],|"allowRoots": [],|' config.example.json | $SUDO install -D -m 0644 /dev/stdin "$D/etc/mediaspool/config.json"
# Man pages and shell completions, generated from the command definitions.
DOCS="$(mktemp -d)"; trap 'rm -rf "$DOCS"' EXIT
./scripts/gen-docs.sh "$BIN" "$DOCS" >/dev/null
for m in "$DOCS"/man1/*.1; do $SUDO install -D -m 0644 "$m" "$D$PREFIX/share/man/man1/$(basename "$m")"; done
$SUDO install -D -m 0644 "$DOCS/completions/mediaspool.bash" "$D$PREFIX/share/bash-completion/completions/mediaspool"
$SUDO install -D -m 0644 "$DOCS/completions/_mediaspool" "$D$PREFIX/share/zsh/site-functions/_mediaspool"
$SUDO install -D -m 0644 "$DOCS/completions/mediaspool.fish" "$D$PREFIX/share/fish/vendor_completions.d/mediaspool.fish"
$SUDO install -D -m 0644 README.md "$D$PREFIX/share/doc/mediaspool/README.md"
$SUDO install -D -m 0644 schema/manifest-v1.schema.json "$D$PREFIX/share/mediaspool/manifest-v1.schema.json"
if [ -z "$D" ]; then
  $SUDO systemd-sysusers /etc/sysusers.d/mediaspool.conf
  $SUDO systemd-tmpfiles --create /etc/tmpfiles.d/mediaspool.conf
  if [ -d /run/systemd/system ]; then $SUDO systemctl daemon-reload; fi
fi
echo "installed $PREFIX/bin/mediaspool and its units; enable with: systemctl enable --now mediaspool.service mediaspool-sweep.timer"
