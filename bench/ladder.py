#!/usr/bin/env python3
"""The `package` job (issue 18) against the commands a user would script:
a 4-rendition ladder (1080p/720p/480p/360p at 5000/2800/1400/800 kb/s,
x264 veryfast capped VBR, a forced IDR at every 4 s segment boundary, no
scene-cut keyframes, closed GOPs; one AAC 128 kb/s stereo rendition) of a
1080p30 clip with audio, to HLS + DASH fMP4 segments through FFmpeg's dash
muxer. Goal (issue 18): at least 1.5x (a) four separate ffmpeg commands run
one after another (each decodes the input again) and at least 1.0x (b) one
ffmpeg command with `split=4` and four outputs into one dash muxer, same
settings, same cores.

   python3 bench/ladder.py                           # medians of 3, 20 s clip
   BENCH_SECONDS=4 BENCH_REPS=1 python3 bench/ladder.py   # a smoke run
   BENCH_ONLY=separate python3 bench/ladder.py       # ours and peer (a) only
   BENCH_OUT=/tmp/ladder.md python3 bench/ladder.py  # the table also to a file

Environment, as bench/bench.py: BENCH_BIN (the daemon; default the release
build of this checkout), BENCH_DIR (default /var/tmp/mediaspool-bench, its
media/ is shared with bench.py), BENCH_REPS (BENCH_REPEAT is taken too),
BENCH_ONLY (`separate`, `split`), BENCH_OUT; and BENCH_SECONDS (the clip's
length, default 20), BENCH_KEEP=1 (keep the last run's output directories).

mediaspool runs 1 worker: a job alone gets all cores (codec threads 0, the
libraries' automatic count), as the ffmpeg peers do (their default); none is
pinned (bench.py pins nothing either). Wall time is from the manifest's
rename into inbox/ to its record in done/ (the daemon is started before,
on a fresh spool, as bench.py's run_daemon does); the daemon's CPU is
user + system of its threads and waited-for children from /proc, its peak
RSS VmHWM. A peer's CPU and peak RSS come from wait4() of each ffmpeg.
Peer (a) encodes audio in its first command only: the ladder has one audio
rendition, which the renditions share, so four audio encodes would be work
mediaspool does not do. Every run's output is checked after the timing:
each rendition's init and media segments concatenated and decoded by
ffprobe (-count_frames), sizes, frame and segment counts compared between
mediaspool and each peer."""
import json, os, re, shutil, statistics, subprocess, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench
from bench import WORK, sh, ffmpeg, media, cpu_seconds

REPS = int(os.environ.get("BENCH_REPS") or os.environ.get("BENCH_REPEAT") or "3")
SECONDS = int(os.environ.get("BENCH_SECONDS", "20"))
ONLY = [w for w in os.environ.get("BENCH_ONLY", "").split(",") if w]
KEEP = os.environ.get("BENCH_KEEP") == "1"
FPS, SEG = 30, 4
GOP = 2 * SEG * FPS  # PackageLadder: the encoders' own keyframes two segments apart
# The default ladder's rungs of a 1080p input (Package.defaultLadder): size, kb/s.
LADDER = [(1920, 1080, 5000), (1280, 720, 2800), (854, 480, 1400), (640, 360, 800)]
# What PackageLadder gives the dash muxer, given to the peers too.
DASH = ["-f", "dash", "-seg_duration", str(SEG), "-use_template", "1", "-use_timeline", "1", "-dash_segment_type", "mp4",
        "-hls_playlist", "1", "-init_seg_name", "init-$RepresentationID$.m4s",
        "-media_seg_name", "chunk-$RepresentationID$-$Number%05d$.m4s", "-write_prft", "0"]
X264 = ["-preset", "veryfast", "-g", str(GOP), "-forced-idr", "1", "-force_key_frames:v", f"expr:gte(t,n_forced*{SEG})",
        "-x264-params", "scenecut=0:open_gop=0"]
AUDIO = ["-c:a", "aac", "-b:a", "128k", "-ac", "2"]


def clip():
    """A 1080p30 H.264 clip with stereo AAC, made by lavfi once (cached in
    the bench's media/): testsrc2's moving pattern with a light temporal
    grain (so the encoders have texture to code, as a camera's footage
    gives them), 2 s GOPs with B-frames as phones write."""
    m = media()
    name = f"ladder1080-{SECONDS}s.mp4"
    if not os.path.exists(f"{m}/{name}"):
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate={FPS}", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
               "-vf", "noise=alls=6:allf=t", "-t", str(SECONDS), "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-g", "60", "-bf", "3",
               "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "192k", "-ac", "2", "-shortest", f"{m}/{name}.part.mp4")
        os.rename(f"{m}/{name}.part.mp4", f"{m}/{name}")
    return name


def run_ours(name, out):
    """One package job through a fresh daemon (1 worker): wall s, CPU s,
    peak RSS KiB."""
    manifest = json.dumps({"version": 1, "id": "lad", "type": "package", "input": name, "output": {"path": out}, "segmentSeconds": SEG})
    d = bench.Daemon(workers=1)
    def cpu():  # the daemon's threads and any children it waited for
        f = open(f"/proc/{d.p.pid}/stat").read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")
    c0 = cpu()
    t0 = d.submit_all([("lad", manifest)])
    t1 = d.wait(["lad"])
    c = cpu() - c0
    peak = d.rss_kib("VmHWM")
    if os.path.exists(f"{d.spool}/failed/lad.json"):
        err = open(f"{d.spool}/failed/lad.error.json").read()
        d.stop(keep=True)
        raise SystemExit(f"bench: the package job failed ({d.spool}): {err}")
    d.stop()
    return t1 - t0, c, peak


def run_cmds(cmds):
    """The commands one after another: wall s, CPU s (user + system of
    each, from wait4), the largest peak RSS KiB of them."""
    cpu, peak = 0.0, 0
    t0 = time.monotonic()
    for c in cmds:
        p = subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        err = p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode: raise SystemExit(f"bench: peer failed ({p.returncode}): {' '.join(c)}\n{err.decode()[-800:]}")
        cpu += ru.ru_utime + ru.ru_stime
        peak = max(peak, ru.ru_maxrss)
    return time.monotonic() - t0, cpu, peak


def separate_cmds(src, out):
    """Peer (a): one command per rendition, each decoding the input; audio
    in the first one only (the ladder's one audio rendition)."""
    cmds = []
    for i, (w, h, k) in enumerate(LADDER):
        a = i == 0
        cmds.append(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", src, "-map", "0:v:0", *(["-map", "0:a:0"] if a else []),
                     "-vf", f"scale={w}:{h},format=yuv420p", "-c:v", "libx264", "-b:v", f"{k}k", "-maxrate", f"{k}k", "-bufsize", f"{2 * k}k", *X264,
                     *(AUDIO if a else []), *DASH, "-adaptation_sets", "id=0,streams=v id=1,streams=a" if a else "id=0,streams=v",
                     f"{out}/{i}/manifest.mpd"])
    return cmds


def split_cmd(src, out):
    """Peer (b): one command, the decoded picture split to four scalers
    and encoders, all in one dash muxer (as PackageLadder builds it)."""
    n = len(LADDER)
    graph = f"[0:v]split={n}" + "".join(f"[s{i}]" for i in range(n)) + "".join(f";[s{i}]scale={w}:{h},format=yuv420p[v{i}]" for i, (w, h, _) in enumerate(LADDER))
    rates = [a for i, (_, _, k) in enumerate(LADDER) for a in (f"-b:v:{i}", f"{k}k", f"-maxrate:v:{i}", f"{k}k", f"-bufsize:v:{i}", f"{2 * k}k")]
    return [["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", src, "-filter_complex", graph, *[a for i in range(n) for a in ("-map", f"[v{i}]")], "-map", "0:a:0",
             "-c:v", "libx264", *rates, *X264, *AUDIO, *DASH, "-adaptation_sets", "id=0,streams=v id=1,streams=a", f"{out}/manifest.mpd"]]


def renditions(dirs):
    """Every rendition in the package directories `dirs`: its init segment
    and media segments concatenated (one fragmented MP4) and decoded by
    ffprobe. A sorted list of (kind, width, height, frames decoded,
    segments, kb/s of its segments)."""
    found = []
    for d in dirs:
        files = os.listdir(d)
        for f in sorted(files):
            m = re.fullmatch(r"init-(\d+)\.m4s", f)
            if not m: continue
            rid = m.group(1)
            chunks = sorted(c for c in files if re.fullmatch(rf"chunk-{rid}-\d+\.m4s", c))
            joined = f"{WORK}/ladder-check.mp4"
            with open(joined, "wb") as o:
                for c in [f] + chunks:
                    with open(f"{d}/{c}", "rb") as i: shutil.copyfileobj(i, o)
            j = json.loads(sh("ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", joined).stdout)
            os.unlink(joined)
            s = j["streams"][0]
            dur = float(j["format"].get("duration") or 0)
            size = sum(os.path.getsize(f"{d}/{c}") for c in chunks)
            kbps = round(size * 8 / 1000 / dur) if dur else 0
            if s["codec_type"] == "video":
                found.append(("video", s["width"], s["height"], int(s.get("nb_read_frames", 0)), len(chunks), kbps))
            else:
                found.append(("audio", 0, s.get("channels", 0), int(s.get("nb_read_frames", 0)), len(chunks), kbps))
    return sorted(found, key=lambda r: (r[0] != "video", -r[1], -r[2]))


def describe(rs):
    return ", ".join(f"{w}x{h} {n} fr {k} kb/s" if kind == "video" else f"audio {h} ch {n} fr {k} kb/s" for kind, w, h, n, _, k in rs)


def check(ours, theirs, frames):
    """'match' when both have the same renditions (sizes, frames decoded,
    segments) and every video one decodes to the input's frames."""
    shape = lambda rs: [(r[0], r[1], r[2], r[3], r[4]) for r in rs]
    problems = []
    if shape(ours) != shape(theirs): problems.append(f"ours [{describe(ours)}] vs peer [{describe(theirs)}]")
    for side, rs in (("ours", ours), ("peer", theirs)):
        bad = [r for r in rs if r[0] == "video" and r[3] != frames]
        if bad: problems.append(f"{side}: {describe(bad)} of {frames} input frames")
    return "match" if not problems else "MISMATCH " + "; ".join(problems)


def main():
    os.makedirs(WORK, exist_ok=True)
    name = clip()
    src = f"{media()}/{name}"
    frames = int(json.loads(sh("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=nb_read_packets",
                               "-of", "json", src).stdout)["streams"][0]["nb_read_packets"])
    peers = [("separate", "4 separate ffmpeg commands, one after another", "≥1.5x", lambda out: separate_cmds(src, out)),
             ("split", "one ffmpeg command, split=4, four outputs into one dash muxer", "≥1.0x", lambda out: split_cmd(src, out))]
    peers = [p for p in peers if not ONLY or p[0] in ONLY]
    if not peers: raise SystemExit(f"bench: BENCH_ONLY={','.join(ONLY)} names no peer (separate, split)")
    ours_dir = "out-ladder"   # in the media root (bench.py's outputs are there too)
    peer_dir = {key: f"{WORK}/peer-ladder-{key}" for key, *_ in peers}
    ours, theirs = [], {key: [] for key, *_ in peers}
    for rep in range(REPS):
        shutil.rmtree(f"{media()}/{ours_dir}", ignore_errors=True)
        ours.append(run_ours(name, ours_dir))
        print(f"run {rep + 1}: mediaspool {ours[-1][0]:.2f} s, {ours[-1][1]:.2f} CPU s, {ours[-1][2] // 1024} MiB", flush=True)
        for key, label, _, cmds in peers:
            out = peer_dir[key]
            shutil.rmtree(out, ignore_errors=True)
            for i in range(len(LADDER) if key == "separate" else 1): os.makedirs(f"{out}/{i}" if key == "separate" else out, exist_ok=True)
            theirs[key].append(run_cmds(cmds(out)))
            print(f"run {rep + 1}: {key} {theirs[key][-1][0]:.2f} s, {theirs[key][-1][1]:.2f} CPU s, {theirs[key][-1][2] // 1024} MiB", flush=True)

    # The last run's outputs, decoded.
    ours_r = renditions([f"{media()}/{ours_dir}"])
    print(f"mediaspool renditions: {describe(ours_r)}", flush=True)
    med = lambda runs, k: statistics.median(r[k] for r in runs)
    ow, oc, orss = med(ours, 0), med(ours, 1), max(r[2] for r in ours)
    rows = []
    what = f"package: 4-rendition ladder of a {SECONDS} s 1080p30 clip → HLS + DASH (fMP4, {SEG} s segments), 1 worker"
    for key, label, goal, cmds in peers:
        out = peer_dir[key]
        dirs = [f"{out}/{i}" for i in range(len(LADDER))] if key == "separate" else [out]
        rs = renditions(dirs)
        print(f"{key} renditions: {describe(rs)}", flush=True)
        ok = check(ours_r, rs, frames)
        runs = theirs[key]
        tw, tc, trss = med(runs, 0), med(runs, 1), max(r[2] for r in runs)
        rows.append((f"{what}, vs {label}", f"{ow:.2f} s, {oc:.2f} CPU s, {orss // 1024} MiB peak RSS",
                     f"{tw:.2f} s, {tc:.2f} CPU s, {trss // 1024} MiB peak RSS ({label})",
                     f"{tw / ow:.2f}x (CPU {tc / oc:.2f}x)", goal, ok))
        print(f"{key}: mediaspool {ow:.2f}s, peer {tw:.2f}s, {tw / ow:.2f}x wall, {tc / oc:.2f}x CPU; "
              f"wall runs {[round(r[0], 2) for r in ours]} vs {[round(r[0], 2) for r in runs]}; "
              f"CPU runs {[round(r[1], 2) for r in ours]} vs {[round(r[1], 2) for r in runs]}; outputs {ok}", flush=True)
        if not KEEP: shutil.rmtree(out, ignore_errors=True)
    if not KEEP: shutil.rmtree(f"{media()}/{ours_dir}", ignore_errors=True)

    head = (f"Measured by `bench/ladder.py` on {time.strftime('%Y-%m-%d')}: {bench.CORES} cores, medians of {REPS} runs "
            f"(peak RSS: the largest of the runs; for peer (a) the largest of its commands); ratios are peer time / mediaspool "
            f"time, wall (CPU user + system in brackets). mediaspool fsyncs every file and publishes the directory by one rename; "
            f"the peers do neither. Peer (a) encodes the audio in its first command only. Outputs: every rendition decoded "
            f"(its init and media segments joined), same sizes, frames and segments on both sides, every video rendition "
            f"{frames} frames as the input.\n")
    table = ["| workload | mediaspool | peer | ratio | goal | outputs |", "| --- | --- | --- | --- | --- | --- |"]
    table += [f"| {' | '.join(r)} |" for r in rows]
    text = head + "\n" + "\n".join(table) + "\n"
    print("\n" + text)
    if os.environ.get("BENCH_OUT"): open(os.environ["BENCH_OUT"], "w").write(text)


if __name__ == "__main__":
    main()
