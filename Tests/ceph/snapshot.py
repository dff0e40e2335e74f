#!/usr/bin/env python3
"""snapshot.py SPOOL [counts]: the state of a spool as one JSON object, for
the CephFS test (Tests/IntegrationTests/CephSpoolTests.swift), which runs it
under `timeout -s KILL`: a call into a FUSE mount can hang, and a test
process stuck in one cannot be stopped. With `counts`, only the listings.

  dirs:        the names in each spool directory
  results:     id -> {host, attempts, outputs}        (done/ID.result.json)
  errors:      id -> {code, host}                     (failed/ID.error.json)
  events:      every line of events/*.jsonl but progress
  badOutputs:  outputs of a result that are missing or whose sha256 differs
  temporaries: paths under the spool (media too) of temporary files
"""
import hashlib, json, os, sys

spool = sys.argv[1]
counts = len(sys.argv) > 2 and sys.argv[2] == "counts"
DIRS = ["inbox", "retry", "processing", "done", "failed", "state", "locks", "hold", "hosts", "tmp"]


def names(d):
    try:
        return sorted(os.listdir(os.path.join(spool, d)))
    except FileNotFoundError:
        return []


out = {"dirs": {d: names(d) for d in DIRS}}
if not counts:
    media = os.path.join(spool, "media")
    out["results"], out["errors"], out["events"], out["badOutputs"], out["temporaries"] = {}, {}, [], [], []
    for n in out["dirs"]["done"]:
        if n.endswith(".result.json") and not n.startswith("."):
            r = json.load(open(os.path.join(spool, "done", n)))
            out["results"][r["id"]] = {k: r.get(k) for k in ("host", "attempts", "outputs")}
            for o in r.get("outputs") or []:
                p = os.path.join(media, o["path"])
                try:
                    sha = hashlib.sha256(open(p, "rb").read()).hexdigest()
                except OSError as e:
                    sha = str(e)
                if sha != o.get("sha256"):
                    out["badOutputs"].append(o["path"])
    for n in out["dirs"]["failed"]:
        if n.endswith(".error.json") and not n.startswith("."):
            e = json.load(open(os.path.join(spool, "failed", n)))
            out["errors"][e["id"]] = {"code": e.get("code"), "host": e.get("host")}
    for n in names("events"):
        if n.endswith(".jsonl"):
            for line in open(os.path.join(spool, "events", n)):
                if line.strip():
                    try:
                        ev = json.loads(line)
                    except ValueError:  # a line being appended right now
                        continue
                    if ev.get("event") != "progress":
                        out["events"].append(ev)
    for root, dirs, files in os.walk(spool):
        for f in files:
            if f.startswith(".") and ".tmp-" in f:
                out["temporaries"].append(os.path.relpath(os.path.join(root, f), spool))
json.dump(out, sys.stdout)
