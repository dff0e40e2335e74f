#!/usr/bin/env python3
"""A/B of the spool's durable path between two builds of the daemon:
trivial probes (as bench.py's "spool overhead" row) through each build in
turn, at several worker counts, with the daemon's fsync and fdatasync
calls counted by `perf stat` (AB_NOPERF=1 to run without perf).

    python3 bench/ab-overhead.py OLD/mediaspool NEW/mediaspool
    AB_N=1000 AB_REPS=3 AB_W=2,4,8   (defaults)

Run ./bench/run.sh once first (media, bench/floor.c built in BENCH_DIR)."""
import os, sys, subprocess, time, statistics, shutil
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B

bins = {"A": sys.argv[1], "B": sys.argv[2]}
N = int(os.environ.get("AB_N", "1000")); REPS = int(os.environ.get("AB_REPS", "3"))
WS = [int(x) for x in os.environ.get("AB_W", "2,4,8").split(",")]
B.media()
res = {}
for rep in range(REPS):
    fl = f"{B.WORK}/floor-{time.time_ns()}"; os.makedirs(fl)
    res.setdefault("floor", []).append(float(B.sh(f"{B.WORK}/floor", fl, str(N)).stdout)); shutil.rmtree(fl)
    for name, path in bins.items():
        B.BIN = path
        for workers in WS:
            d = B.Daemon(workers=workers)
            perf = None if os.environ.get("AB_NOPERF") else subprocess.Popen(
                ["perf", "stat", "-x,", "-e", "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync", "-p", str(d.p.pid)],
                stderr=subprocess.PIPE, text=True)
            if perf: time.sleep(0.3)
            c0 = B.cpu_seconds(d.p.pid)
            t0 = d.submit_all([(f"o{i}", '{"version":1,"type":"probe","input":"tiny.wav"}') for i in range(N)])
            t = d.wait([f"o{i}" for i in range(N)]) - t0
            cpu = (B.cpu_seconds(d.p.pid) - c0) / N * 1000
            syncs = float("nan")
            if perf:
                perf.send_signal(2); err = perf.communicate()[1]
                syncs = sum(int(l.split(",")[0]) for l in err.splitlines() if "sys_enter_f" in l and l.split(",")[0].isdigit()) / N
            d.stop()
            res.setdefault((name, workers), []).append((N / t, cpu, syncs))
            print(f"rep {rep} {name} {workers} workers: {N / t:.0f} jobs/s, {cpu:.2f} CPU ms/job, {syncs:.2f} fsyncs/job", flush=True)
print(f"C floor loop: median {statistics.median(res['floor']):.0f} jobs/s")
for k, v in res.items():
    if k != "floor":
        print(f"{k[0]} ({bins[k[0]]}) {k[1]} workers: median {statistics.median(x[0] for x in v):.0f} jobs/s, "
              f"{statistics.median(x[1] for x in v):.2f} CPU ms/job, {statistics.median(x[2] for x in v):.2f} fsyncs/job")
