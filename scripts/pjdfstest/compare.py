#!/usr/bin/env python3
"""compare.py [NAMES...]: per-assertion results of pjdfstest runs in /tmp/pjd/out/NAME/; prints counts and C-pass/rs-fail list."""
import os, re, sys
names = sys.argv[1:] or ["local", "c", "rs"]
res, meta = {}, {}
for n in names:
    d = f"/tmp/pjd/out/{n}"; r = {}; m = {}
    for f in sorted(os.listdir(d)):
        t = f[:-4].replace("_", "/", 1)
        lines = open(os.path.join(d, f), errors="replace").read().splitlines()
        rc = [l for l in lines if l.startswith("rc=")]
        m[t] = rc[-1] if rc else "rc=?"
        plan = [l for l in lines if re.match(r"^1\.\.\d+", l)]
        for l in lines:
            mm = re.match(r"^(not ok|ok) (\d+)(.*)$", l)
            if mm:
                ok = mm.group(1) == "ok"
                if "# SKIP" in mm.group(3) or "# skip" in mm.group(3): st = "skip"
                elif "# TODO" in mm.group(3): st = "todo-" + ("pass" if ok else "fail")
                else: st = "pass" if ok else "fail"
                r[(t, int(mm.group(2)))] = st
        if plan:
            total = int(plan[0][3:].split()[0])
            for i in range(1, total + 1):
                r.setdefault((t, i), "missing")
    res[n] = r; meta[n] = m
keys = sorted(set().union(*[set(r) for r in res.values()]))
print("total assertions:", len(keys))
for n in names:
    c = {}
    for k in keys: c[res[n].get(k, "missing")] = c.get(res[n].get(k, "missing"), 0) + 1
    to = [t for t, v in meta[n].items() if v == "rc=124" or v == "rc=137"]
    print(f"{n:6}", " ".join(f"{s}={c.get(s,0)}" for s in ["pass", "fail", "todo-fail", "todo-pass", "skip", "missing"]), "timeouts:", to)
C, RS = names[-2], names[-1]
if len(names) >= 2:
    bad = [k for k in keys if res[C].get(k) == "pass" and res[RS].get(k) != "pass"]
    print(f"\n{C} pass, {RS} not:", len(bad))
    for k in bad: print(f"  {k[0]} {k[1]} rs={res[RS].get(k)}")
    good = [k for k in keys if res[RS].get(k) == "pass" and res[C].get(k) != "pass"]
    print(f"\n{RS} pass, {C} not:", len(good))
    from collections import Counter
    print("  by file:", dict(Counter(k[0] for k in good)))
