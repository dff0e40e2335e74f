#!/bin/sh
# Boots a real systemd as PID 1 of a fresh PID and mount namespace, for the
# integration tests (see ../shared/notes/systemd-in-a-namespace.md). Run as:
#   setsid unshare --pid --fork --mount --mount-proc --propagation private boot.sh WORKDIR [REPO]
# WORKDIR (not under /tmp or /run) receives the overlays' upper layers and
# holds spool/, bind-mounted at /var/spool/mediaspool inside.
# Everything mounted here dies with the namespace.
set -eu
W="$1"
KEEP="${2:-}"   # the repository: tests need it inside, even when it lives under /tmp
# Private /tmp and /run first: booting runs systemd-tmpfiles, which would
# otherwise clean the host's. A repository under /tmp or /run is bound aside
# and back, so it stays visible at its own path.
case "$KEEP" in
  /tmp/*|/run/*) mkdir -p "$W/keep"; mount --bind "$KEEP" "$W/keep" ;;
  *) KEEP="" ;;
esac
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
if [ -n "$KEEP" ]; then mkdir -p "$KEEP"; mount --bind "$W/keep" "$KEEP"; fi
# /etc, /usr/local and /var/spool as overlays: installing units, creating the
# user and the spool touch only WORKDIR.
for d in etc usr/local var/spool var/lib; do
  key=$(echo "$d" | tr / _)
  mkdir -p "$W/ov/$key/upper" "$W/ov/$key/work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$W/ov/$key/upper,workdir=$W/ov/$key/work" "/$d"
done
# A journal of this boot's own: journald would otherwise write into the
# host's persistent /var/log/journal, growing it with every run, and a later
# boot's journalctl would return the lines of earlier boots too.
mkdir -p /var/log/journal
mount -t tmpfs -o mode=2755 tmpfs /var/log/journal
mkdir -p "$W/spool" /var/spool/mediaspool
mount --bind "$W/spool" /var/spool/mediaspool
mount -t tmpfs tmpfs /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /run/systemd/system
cat > /run/systemd/system/mediaspool-test.target <<'UNIT'
[Unit]
Description=mediaspool integration tests
DefaultDependencies=no
Wants=systemd-journald.socket systemd-journald.service
UNIT
export container=other
exec /lib/systemd/systemd --system --unit=mediaspool-test.target
