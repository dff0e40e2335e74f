#!/usr/bin/env python3
"""Several hosts on one spool (issue 15, docs/scale-out.md): jobs per second
with one host and with two hosts sharing a spool on CephFS, and the pickup
latency of a job dropped through the other host's mount, beside the same on
a local disk, measured in one run. Appends its rows to bench/results.md's
"Several hosts" section (and prints them).

The two "hosts" are two ceph-fuse mounts in two network namespaces of this
one machine (Tests/ceph/, the CephFS test's cluster): two Ceph client
sessions, but one machine's cores. So two hosts cannot be faster here for
CPU-bound jobs; what the rows show is the cost of sharing (contended
renames, the 1 s rescan, MDS round trips), not the scaling of real hosts.

Root only. Usage: BENCH_BIN=path/to/release/mediaspool python3 bench/hosts.py
(default: the release build of this checkout)."""
import fcntl, json, os, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CEPH = f"{ROOT}/Tests/ceph"
BIN = os.environ.get("BENCH_BIN") or subprocess.check_output(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, text=True).strip() + "/mediaspool"
WORK = f"/var/tmp/mediaspool-hosts-bench-{os.getpid()}"
N_TRIVIAL = int(os.environ.get("BENCH_TRIVIAL", "300"))
N_TRANSCODE = int(os.environ.get("BENCH_TRANSCODES", "8"))
N_PICKUP = int(os.environ.get("BENCH_PICKUPS", "60"))


def sh(*a, timeout=600, **k):
    return subprocess.run(list(a), check=True, capture_output=True, text=True, timeout=timeout, **k)


def ffmpeg(*a):
    sh("ffmpeg", "-nostdin", "-v", "error", "-y", *a)


class Daemon:
    def __init__(self, spool, host, ns=None, workers=2):
        env = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "MEDIASPOOL_LOG", "MEDIASPOOL_HOSTS", "MEDIASPOOL_FAULTS"):
            env.pop(k, None)
        if ns:  # a Ceph mount: shared mode; the local disk runs as one host does
            env["MEDIASPOOL_HOSTS"] = "shared"
        cmd = (["nsenter", f"--net=/run/netns/so-h{ns}"] if ns else []) + [BIN, "run", "--spool", spool, "--workers", str(workers), "--host-id", host]
        self.log = open(f"{WORK}/daemon-{host}-{time.time_ns()}.log", "w")
        self.p = subprocess.Popen(cmd, env=env, stderr=self.log, stdout=subprocess.DEVNULL)
        self.spool = spool
        deadline = time.time() + 120
        while "ready:" not in open(self.log.name).read():
            if time.time() > deadline or self.p.poll() is not None:
                sys.exit(f"daemon {host} did not start: {open(self.log.name).read()[-2000:]}")
            time.sleep(0.05)

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=120)


def submit(spool, jobs):
    """Stages the manifests in tmp/ (fsynced), then renames them into
    inbox/ in a tight loop: the clock starts at the first rename."""
    staged = []
    for id, body in jobs:
        t = f"{spool}/tmp/{id}.json"
        with open(t, "w") as f:
            f.write(body); f.flush(); os.fsync(f.fileno())
        staged.append((t, f"{spool}/inbox/{id}.json"))
    return staged


def publish(staged):
    t0 = time.monotonic()
    for a, b in staged:
        os.rename(a, b)
    return t0


def wait_done(spool, ids, timeout=1800):
    want = {f"{i}.result.json" for i in ids}
    deadline = time.time() + timeout
    while time.time() < deadline:
        have = set(os.listdir(f"{spool}/done"))
        if want <= have:
            return time.monotonic()
        bad = [i for i in ids if os.path.exists(f"{spool}/failed/{i}.json")]
        if bad:
            sys.exit(f"failed: {bad[:5]}")
        time.sleep(0.05)
    sys.exit(f"timed out waiting for {len(want - set(os.listdir(spool + '/done')))} jobs")


def claimed_times(spool):
    out = {}
    for n in sorted(os.listdir(f"{spool}/events")):
        if n.endswith(".jsonl"):
            for line in open(f"{spool}/events/{n}"):
                if '"claimed"' in line:
                    e = json.loads(line)
                    out[e["id"]] = e["time"]
    return out


def rfc3339(s):
    from datetime import datetime
    return datetime.strptime(s.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def throughput(kind, spools_daemons, jobs):
    """Jobs split over the submitting mounts round-robin; jobs/s from the
    first rename to the last result."""
    parts = [[] for _ in spools_daemons]
    for k, j in enumerate(jobs):
        parts[k % len(parts)].append(j)
    staged = [submit(s, p) for (s, _), p in zip(spools_daemons, parts)]
    t0 = time.monotonic()
    for s in staged:
        publish(s)
    t1 = wait_done(spools_daemons[0][0], [i for i, _ in jobs])
    return len(jobs) / (t1 - t0)


def pickup(drop_spool, watch_spool, prefix, n):
    """One probe at a time dropped through `drop_spool`; the latency is its
    claimed event's time (the daemon's clock, this machine's) minus the
    rename's time."""
    lat = []
    for i in range(n):
        id = f"{prefix}{i}"
        staged = submit(drop_spool, [(id, '{"version":1,"type":"probe","input":"tiny.wav"}')])
        time.sleep(0.05 + (i % 10) * 0.093)  # spread over the rescan's second
        a, b = staged[0]
        t = time.time()
        os.rename(a, b)
        wait_done(watch_spool, [id], timeout=120)
        lat.append(rfc3339(claimed_times(watch_spool)[id]) - t)
    lat.sort()
    return statistics.median(lat), lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))], max(lat)


def main():
    if os.getuid() != 0:
        sys.exit("bench/hosts.py needs root (network namespaces, FUSE)")
    os.makedirs(WORK)
    lock = open("/run/mediaspool-ceph-test.lock", "a")
    fcntl.flock(lock, fcntl.LOCK_EX)  # one Ceph at a time (the CephFS test's lock)
    rows = []
    try:
        subprocess.run([f"{CEPH}/netns.sh", "down"], capture_output=True)
        sh(f"{CEPH}/netns.sh", "up")
        sh(f"{CEPH}/ceph-up.sh", f"{WORK}/ceph", timeout=300)
        for h in "AB":
            sh(f"{CEPH}/ceph-mount.sh", f"{WORK}/ceph", h, f"{WORK}/mnt/{h}", timeout=120)
        local, a, b = f"{WORK}/local/spool", f"{WORK}/mnt/A/spool", f"{WORK}/mnt/B/spool"
        for s in (local, a):
            os.makedirs(f"{s}/media", exist_ok=True)
        m = f"{WORK}/media"
        os.makedirs(m)
        ffmpeg("-f", "lavfi", "-i", "sine=sample_rate=8000", "-t", "0.2", f"{m}/tiny.wav")
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
               "-t", "10", "-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", f"{m}/c720.mp4")
        for s in (local, a):
            sh("cp", f"{m}/tiny.wav", f"{m}/c720.mp4", f"{s}/media/")
        trivial = lambda p: [(f"{p}{i}", '{"version":1,"type":"probe","input":"tiny.wav"}') for i in range(N_TRIVIAL)]
        transcode = lambda p: [(f"{p}{i}", '{"version":1,"type":"transcode","input":"c720.mp4","output":{"path":"out/%s%d.mp4",'
                                '"video":{"codec":"h264","height":480,"crf":23,"preset":"veryfast"},"audio":{"codec":"aac","bitrateKbps":128}}}' % (p, i))
                               for i in range(N_TRANSCODE)]

        results = {}
        # Local disk, one host: the reference.
        d = Daemon(local, "local")
        results["local", "trivial"] = throughput("trivial", [(local, d)], trivial("lt"))
        results["local", "transcode"] = throughput("transcode", [(local, d)], transcode("lx"))
        results["local", "pickup"] = pickup(local, local, "lp", N_PICKUP)
        d.stop()
        # CephFS, one host (A).
        da = Daemon(a, "host-a", "A")
        results["one", "trivial"] = throughput("trivial", [(a, da)], trivial("1t"))
        results["one", "transcode"] = throughput("transcode", [(a, da)], transcode("1x"))
        results["one", "pickup"] = pickup(a, a, "1p", N_PICKUP)
        # CephFS, two hosts: jobs through both mounts.
        db = Daemon(b, "host-b", "B")
        results["two", "trivial"] = throughput("trivial", [(a, da), (b, db)], trivial("2t"))
        results["two", "transcode"] = throughput("transcode", [(a, da), (b, db)], transcode("2x"))
        da.stop()
        # Cross-host pickup: only B runs; jobs dropped through A's mount.
        results["cross", "pickup"] = pickup(a, b, "xp", N_PICKUP)
        db.stop()
    finally:
        for h in "AB":
            subprocess.run(["umount", "-l", f"{WORK}/mnt/{h}"], capture_output=True)
        for f in os.listdir(f"{WORK}/ceph/run") if os.path.isdir(f"{WORK}/ceph/run") else []:
            if f.endswith(".pid"):
                try:
                    os.kill(int(open(f"{WORK}/ceph/run/{f}").read()), 9)
                except (ValueError, ProcessLookupError):
                    pass
        subprocess.run([f"{CEPH}/netns.sh", "down"], capture_output=True)
        if not os.environ.get("BENCH_KEEP"):
            subprocess.run(["rm", "-rf", f"{WORK}/ceph", f"{WORK}/local", f"{WORK}/media"], capture_output=True)
    one_t, one_x = results["one", "trivial"], results["one", "transcode"]
    rows += [
        (f"trivial probes ({N_TRIVIAL}), local disk, 1 host, 2 workers", f"{results['local', 'trivial']:.0f} jobs/s", "", ""),
        (f"trivial probes, CephFS, 1 host, 2 workers", f"{one_t:.0f} jobs/s", "1.00x", "the peer"),
        (f"trivial probes, CephFS, 2 hosts × 2 workers, submitted through both", f"{results['two', 'trivial']:.0f} jobs/s", f"{results['two', 'trivial'] / one_t:.2f}x", ""),
        (f"720p → 480p transcodes ({N_TRANSCODE}), local disk, 1 host", f"{results['local', 'transcode'] * 60:.1f} jobs/min", "", ""),
        (f"720p → 480p transcodes, CephFS, 1 host", f"{one_x * 60:.1f} jobs/min", "1.00x", "the peer"),
        (f"720p → 480p transcodes, CephFS, 2 hosts", f"{results['two', 'transcode'] * 60:.1f} jobs/min", f"{results['two', 'transcode'] / one_x:.2f}x", "one machine's 2 cores either way"),
    ]
    for key, what in [("local", "local disk, inotify"), ("one", "CephFS, the same host's mount (inotify)"), ("cross", "CephFS, dropped through the other host's mount (1 s rescan)")]:
        p50, p99, mx = results[key, "pickup"]
        rows.append((f"pickup latency, {what}, {N_PICKUP} drops", f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (max {mx * 1000:.0f})", "", ""))
    text = "| workload | measured | against CephFS 1 host | note |\n| --- | --- | --- | --- |\n" + "".join(f"| {' | '.join(r)} |\n" for r in rows)
    print(text)
    with open(f"{WORK}/rows.md", "w") as f:
        f.write(text)
    print(f"rows also in {WORK}/rows.md")


if __name__ == "__main__":
    main()
