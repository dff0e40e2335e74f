#!/usr/bin/env bash
# Installs what mediaspool needs to build, test and demo on Debian 12 /
# Ubuntu (only the Swift toolchain is assumed). Safe to run again.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
updated=0

# install WHY [apt-get options] -- PACKAGES: installs those not installed yet.
install() {
  local why=$1; shift
  local opts=() missing=()
  while [ "$1" != "--" ]; do opts+=("$1"); shift; done; shift
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "setup: installing ${missing[*]}$why" >&2
  [ "$updated" = 1 ] || { $SUDO apt-get update -qq; updated=1; }
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${opts[@]}" "${missing[@]}" >/dev/null
}

install "" --no-install-recommends -- pkg-config libavformat-dev libavcodec-dev libavfilter-dev libswscale-dev libswresample-dev \
  libavutil-dev libsystemd-dev systemd ffmpeg webp python3 python3-jsonschema strace util-linux procps curl tmux chromium
# The CephFS test of several hosts on one spool (Tests/ceph/, issue 15): a
# one-node Ceph, installed as the machine note that measured it did (with
# the recommended packages: ceph-mgr's modules). MEDIASPOOL_SKIP_CEPH=1
# leaves it out (the test then skips).
if [ "${MEDIASPOOL_SKIP_CEPH:-0}" != 1 ]; then
  # Best effort: without Ceph the CephFS test skips, saying why.
  ( install " (for the CephFS test)" -- ceph-mon ceph-mgr ceph-osd ceph-mds ceph-fuse ceph-common iptables ) ||
    echo "setup: could not install Ceph; the CephFS test will skip" >&2
fi
command -v swift >/dev/null || { echo "setup: the Swift toolchain (swift) is not on PATH" >&2; exit 1; }
