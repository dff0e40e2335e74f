#!/usr/bin/env python3
"""Profile the release daemon on one workload: N jobs through a fresh spool,
jobs/s, the CODEC_THREADS each job got, and optionally a perf profile.
   python3 bench/profile.py probe 1000 [perf.data]
   python3 bench/profile.py tiny 2000 [perf.data]      # the trivial job of the overhead row
   python3 bench/profile.py thumbnail 200 [perf.data]
   BENCH_WORKERS=4 python3 bench/profile.py transcode-rw 4 [perf.data]
   BENCH_WORKERS=1 python3 bench/profile.py package 1 [perf.data]   # bench/ladder.py's ladder (run it once first)
   perf report -i perf.data --no-children --sort dso,sym
Run ./bench/run.sh once first (it builds release and generates the media)."""
import os, re, subprocess, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench

MANIFESTS = {
    "probe": lambda i: '{"version":1,"type":"probe","input":"c720.mp4"}',
    # The overhead row's trivial job: what the durable path and the daemon cost.
    "tiny": lambda i: '{"version":1,"type":"probe","input":"tiny.wav"}',
    "thumbnail": lambda i: f'{{"version":1,"type":"thumbnail","input":"c720.mp4","at":[5],"width":320,"output":{{"path":"out-p{i}.jpg"}}}}',
    "transcode": lambda i: f'{{"version":1,"type":"transcode","input":"c720.mp4","output":{{"path":"out-p{i}.mp4","video":{{"height":480,"crf":23,"preset":"veryfast"}}}}}}',
    # The bench's phone-shaped transcode (1080p portrait by its matrix, 5.1 AAC).
    "transcode-rw": lambda i: f'{{"version":1,"type":"transcode","input":"rw.mp4","output":{{"path":"out-p{i}.mp4","video":{{"height":480,"crf":23,"preset":"veryfast"}},"audio":{{"codec":"aac","bitrateKbps":128}}}}}}',
    # bench/ladder.py's job: the default 4-rung ladder of its 20 s 1080p clip.
    "package": lambda i: f'{{"version":1,"type":"package","input":"ladder1080-20s.mp4","output":{{"path":"out-p{i}"}},"segmentSeconds":4}}',
}

def main():
    if len(sys.argv) < 3 or sys.argv[1] not in MANIFESTS: raise SystemExit(__doc__)
    kind, n = sys.argv[1], int(sys.argv[2])
    d = bench.Daemon(workers=int(os.environ.get("BENCH_WORKERS", bench.CORES)))
    perf = None
    if len(sys.argv) > 3:
        perf = subprocess.Popen(["perf", "record", "-F", "2000", "-g", "-o", sys.argv[3], "-p", str(d.p.pid)], stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    ms = [(f"p{i}", MANIFESTS[kind](i)) for i in range(n)]
    c0 = bench.cpu_seconds(d.p.pid)
    t0 = d.submit_all(ms); t1 = d.wait([i for i, _ in ms])
    cpu = bench.cpu_seconds(d.p.pid) - c0
    if perf: perf.send_signal(2); perf.wait()
    threads = [m.group(1) for m in re.finditer(r"CODEC_THREADS=(\d+)", open(f"{d.spool}/daemon.log").read())]
    print(f"{kind}: {n / (t1 - t0):.1f} jobs/s, {t1 - t0:.2f} s, {cpu:.2f} CPU s (user + system), codec threads per job: {sorted(set(threads))}")
    d.stop()
    for f in os.listdir(bench.media()):
        if f.startswith("out-p"): subprocess.run(["rm", "-rf", f"{bench.media()}/{f}"])

if __name__ == "__main__":
    main()
