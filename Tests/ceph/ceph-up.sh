#!/bin/bash
# From ../shared/notes/cephfs (the machine notes), with mds tick interval = 1.
# ceph-up.sh WORKDIR: a one-node Ceph (Debian 12's Pacific 16.2 packages:
# ceph-mon ceph-mgr ceph-osd ceph-mds ceph-fuse ceph-common) with a CephFS,
# every daemon in network namespace so-dfs (run netns.sh up first), all
# state under WORKDIR (the OSD is a 4 GB bluestore file). Up in ~10 s.
# Stop: kill the ceph-* pids in WORKDIR/run/*.pid, then netns.sh down.
set -euo pipefail
D=$(realpath -m "$1")
NS="nsenter --net=/run/netns/so-dfs"
MON=10.250.77.1
mkdir -p $D/{run,log,mon,osd,mgr,mds}
FSID=$(cat /proc/sys/kernel/random/uuid)
cat > $D/ceph.conf <<CONF
[global]
fsid = $FSID
mon host = v2:$MON:3300
mon initial members = a
public network = 10.250.77.0/24
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
run dir = $D/run
admin socket = $D/run/\$cluster-\$name.asok
log file = $D/log/\$cluster-\$name.log
pid file = $D/run/\$cluster-\$name.pid
mon data = $D/mon/\$cluster-\$id
osd data = $D/osd/\$cluster-\$id
mgr data = $D/mgr/\$cluster-\$id
mds data = $D/mds/\$cluster-\$id
keyring = $D/keyring
[osd]
osd objectstore = bluestore
bluestore block path = $D/osd/osd\$id.img
bluestore block create = true
bluestore block size = 4294967296
bluestore fsck on mkfs = false
osd memory target = 939524096
bluestore cache autotune = false
bluestore cache size = 134217728
osd op num shards = 1
osd op num threads per shard = 1
[mon]
mon osd down out interval = 0
[mds]
# The MDS flushes its journal on its tick: a rename the other client
# watches waits for it (2.5-3.3 s at the default 5 s tick, 0.4-0.8 s at 1 s,
# ../shared/notes/cephfs). docs/scale-out.md recommends the same.
mds tick interval = 1
CONF
export CEPH_CONF=$D/ceph.conf
: > $D/keyring
monmaptool --create --clobber --addv a "[v2:$MON:3300]" --fsid $FSID $D/monmap >/dev/null
$NS ceph-mon --mkfs -i a --monmap $D/monmap
$NS ceph-mon -i a
$NS timeout 60 ceph -s >/dev/null
OSDUUID=$(cat /proc/sys/kernel/random/uuid)
ID=$($NS ceph osd new $OSDUUID)
mkdir -p $D/osd/ceph-$ID
$NS ceph-osd -i $ID --mkfs --osd-uuid $OSDUUID >/dev/null 2>&1
$NS ceph-osd -i $ID
mkdir -p $D/mgr/ceph-x $D/mds/ceph-a
$NS ceph-mgr -i x
$NS ceph osd pool create cephfs_metadata 8 >/dev/null
$NS ceph osd pool create cephfs_data 8 >/dev/null
$NS ceph fs new cephfs cephfs_metadata cephfs_data >/dev/null
$NS ceph-mds -i a
for _ in $(seq 60); do $NS ceph fs status cephfs 2>/dev/null | grep -q active && break; sleep 0.5; done
