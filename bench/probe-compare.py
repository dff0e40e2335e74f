#!/usr/bin/env python3
"""Probe records of two builds, side by side (issue 16, Matroska from the SPS).

    python3 bench/probe-compare.py OLD_BIN NEW_BIN [FIXTURE_DIR]

Makes Matroska (and a few other) fixtures with ffmpeg, probes each with a
daemon of each build (`mediaspool run`, one spool each) and prints, for
every fixture, whether the two `probe` records are identical (the result
record's `probe`, which has no timings), the fields that differ, and
ffprobe's start time and duration of each stream for reference (the
record has no start time; the decode path's start times are compared in
H264ParameterSetTests). Exit 1 on any difference."""
import json, os, shutil, signal, socket, subprocess, sys, tempfile, time

LAVFI_V = ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"]
LAVFI_A = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
AAC = ["-c:a", "aac"]

# name -> ffmpeg arguments after the inputs (or a callable making the file).
FIXTURES = {
    "bframes-aac.mkv": LAVFI_V + LAVFI_A + ["-t", "2"] + X264 + AAC,
    "no-bframes-aac.mkv": LAVFI_V + LAVFI_A + ["-t", "2"] + X264 + ["-bf", "0"] + AAC,
    "audio-first.mkv": LAVFI_V + LAVFI_A + ["-t", "2", "-map", "1:a", "-map", "0:v"] + X264 + AAC,
    "audio-first-no-bframes.mkv": LAVFI_V + LAVFI_A + ["-t", "2", "-map", "1:a", "-map", "0:v"] + X264 + ["-bf", "0"] + AAC,
    "video-only-bframes.mkv": LAVFI_V + ["-t", "2"] + X264,
    "video-only-no-bframes.mkv": LAVFI_V + ["-t", "2"] + X264 + ["-bf", "0"],
    "pyramid-bf5.mkv": LAVFI_V + LAVFI_A + ["-t", "2"] + X264 + ["-bf", "5", "-x264-params", "b-pyramid=normal"] + AAC,
    "open-gop.mkv": LAVFI_V + LAVFI_A + ["-t", "4"] + X264 + ["-g", "30", "-x264-params", "open-gop=1:scenecut=0"] + AAC,
    "video-late.mkv": ["-itsoffset", "0.5"] + LAVFI_V + LAVFI_A + ["-t", "2"] + X264 + AAC,
    "audio-late.mkv": LAVFI_V + ["-itsoffset", "0.5"] + LAVFI_A + ["-t", "2"] + X264 + AAC,
    "with-subtitle.mkv": None,   # made below: an SRT track beside video and audio
    "three-frames.mkv": LAVFI_V + LAVFI_A + ["-frames:v", "3", "-t", "0.1"] + X264 + AAC,
    "full-range-sar.mkv": LAVFI_V + LAVFI_A + ["-t", "2", "-vf", "setsar=16/11"] + X264[:-2] + ["-pix_fmt", "yuvj420p"] + AAC,
    "10bit-bt2020.mkv": LAVFI_V + LAVFI_A + ["-t", "2", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p10le",
                                             "-x264-params", "colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc"] + AAC,
    "hevc.mkv": LAVFI_V + LAVFI_A + ["-t", "2", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"] + AAC,
    "vp9.webm": LAVFI_V + LAVFI_A + ["-t", "2", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"],
    "interlaced.mkv": LAVFI_V + LAVFI_A + ["-t", "2"] + X264 + ["-flags", "+ildct+ilme", "-x264-params", "tff=1"] + AAC,
    "rotated.mkv": None,         # the bench's rw.mkv when present, else made like it
}


def ffmpeg(*a):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *a], check=True)


def make(d):
    os.makedirs(d, exist_ok=True)
    for name, args in FIXTURES.items():
        out = f"{d}/{name}"
        if os.path.exists(out): continue
        if name == "with-subtitle.mkv":
            srt = f"{d}/sub.srt"
            # Its first cue at 1 s: whether a reading reaches it decides its start time.
            with open(srt, "w") as f: f.write("1\n00:00:01,000 --> 00:00:02,000\nhello\n\n")
            ffmpeg(*LAVFI_V, *LAVFI_A, "-i", srt, "-t", "2", "-map", "0", "-map", "1", "-map", "2", *X264, *AAC, "-c:s", "srt", out)
        elif name == "rotated.mkv":
            rw = "/var/tmp/mediaspool-bench/media/rw.mkv"
            if os.path.exists(rw): shutil.copy(rw, out); continue
            ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30", *LAVFI_A, "-t", "4", "-c:v", "libx264", "-preset", "veryfast",
                   "-g", "300", "-bf", "3", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "6", "-metadata:s:v:0", "rotate=90", out)
        else:
            ffmpeg(*args, out)
    # An open GOP cut at a later (non-IDR) keyframe: its first packet is
    # not its earliest picture.
    cut = f"{d}/open-gop-cut.mkv"
    if not os.path.exists(cut): ffmpeg("-ss", "1.5", "-i", f"{d}/open-gop.mkv", "-c", "copy", cut)
    return sorted(f for f in os.listdir(d) if f.endswith((".mkv", ".webm")))


def records(binary, media, names):
    spool = tempfile.mkdtemp(prefix="probe-compare-")
    os.symlink(media, f"{spool}/media")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(f"{spool}/notify.sock"); sock.settimeout(120)
    log = open(f"{spool}/daemon.log", "w")
    p = subprocess.Popen([binary, "run", "--spool", spool, "--workers", "2"], stderr=log, stdout=subprocess.DEVNULL,
                         env=dict(os.environ, NOTIFY_SOCKET=f"{spool}/notify.sock"))
    try:
        while b"READY=1" not in sock.recv(4096): pass
        os.makedirs(f"{spool}/tmp", exist_ok=True)
        for i, n in enumerate(names):
            with open(f"{spool}/tmp/.j{i}", "w") as f: f.write(json.dumps({"version": 1, "type": "probe", "input": n}))
            os.rename(f"{spool}/tmp/.j{i}", f"{spool}/inbox/j{i}.json")
        out, end = {}, time.monotonic() + 120
        while len(out) < len(names) and time.monotonic() < end:
            for i, n in enumerate(names):
                done, failed = f"{spool}/done/j{i}.result.json", f"{spool}/failed/j{i}.error.json"
                if n in out: continue
                if os.path.exists(done): out[n] = json.load(open(done)).get("probe")
                elif os.path.exists(failed): out[n] = {"failed": json.load(open(failed)).get("code")}
            time.sleep(0.02)
        return out
    finally:
        p.send_signal(signal.SIGTERM); p.wait()
        shutil.rmtree(spool, ignore_errors=True)


def diff(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in diff(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} -> {b!r}"]


def ffprobe_times(path):
    j = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,start_time,duration", "-of", "json", path],
                                  check=True, capture_output=True, text=True).stdout)
    return " ".join(f"{s['codec_name']}@{s.get('start_time', 'N/A')}/{s.get('duration', 'N/A')}" for s in j["streams"])


def main():
    old, new = sys.argv[1], sys.argv[2]
    media = sys.argv[3] if len(sys.argv) > 3 else "/var/tmp/h-mkv-fixtures"
    names = make(media)
    a, b = records(old, media, names), records(new, media, names)
    bad = 0
    for n in names:
        d = diff(a.get(n), b.get(n)) if a.get(n) and b.get(n) else [f"no record: old {a.get(n)!r}, new {b.get(n)!r}"]
        bad += bool(d)
        print(f"{'DIFFERS' if d else 'same   '} {n:32} ffprobe {ffprobe_times(f'{media}/{n}')}")
        for line in d: print(f"        {line}")
    print(f"{len(names) - bad} of {len(names)} records identical")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
