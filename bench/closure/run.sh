#!/usr/bin/env bash
# bench/closure/run.sh — `releng closure report` and `releng closure why`
# on the big benchmark closure (bench/cache/closures.sh big: 154 paths,
# 1.8 GB of NAR) from the local store, side by side with
# `nix path-info -rS --json` of the same root (what a user runs for the
# closure size), and `nix path-info -r --json` for reference.
#
# Usage: bench/closure/run.sh          RUNS=50 by default
# The commands run interleaved, round after round (so a burst of other
# work on the shared machine hits every tool alike); each row gives the
# median and best wall time of RUNS runs. releng's totals are checked
# against Nix's before timing.
# Needs: nix (nix-bin), go, python3.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${RELENG_BENCH_DIR:-/tmp/releng-closure-bench}
runs=${RUNS:-50}
mkdir -p "$work/nixconf"
printf 'sandbox = false\nsubstituters =\nexperimental-features = nix-command flakes\n' > "$work/nixconf/nix.conf"
getent group nixbld >/dev/null || echo 'build-users-group =' >> "$work/nixconf/nix.conf"
export NIX_CONF_DIR="$work/nixconf"

echo "building releng" >&2
go build -o "$work/releng" "$repo/cmd/releng"
echo "adding the big closure to the store" >&2
root=$("$repo/bench/cache/closures.sh" big)
dep=x86_64-linux-gnu

# The same numbers as Nix, or no benchmark.
nix path-info -rS --json "$root" > "$work/nix.json"
"$work/releng" --json closure report "$root" > "$work/releng.json"
python3 - "$work/nix.json" "$work/releng.json" "$root" <<'PY'
import json, sys
nix = json.load(open(sys.argv[1])); rel = json.load(open(sys.argv[2])); root = sys.argv[3]
items = nix if isinstance(nix, list) else [dict(v, path=k) for k, v in nix.items()]
byp = {i["path"]: i for i in items}
assert rel["paths"] == len(items), (rel["paths"], len(items))
assert rel["closure_size"] == sum(i["narSize"] for i in items)
assert rel["roots"][0]["closure_size"] == byp[root]["closureSize"]
print(f"checked: {len(items)} paths, {rel['closure_size']} bytes, as nix path-info -rS", file=sys.stderr)
PY

python3 - "$runs" "$root" "$dep" "$work/releng" <<'PY'
import os, resource, statistics, subprocess, sys, time
runs, root, dep, releng = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
cmds = [
    ("nix path-info -rS --json ROOT", ["nix", "path-info", "-rS", "--json", root], ""),
    ("nix path-info -r --json ROOT", ["nix", "path-info", "-r", "--json", root], ""),
    ("releng closure report ROOT", [releng, "closure", "report", root], "≤ 1.0"),
    (f"releng closure why ROOT {dep}", [releng, "closure", "why", root, dep], "≤ 1.0"),
]
wall = {c[0]: [] for c in cmds}
cpu = {c[0]: [] for c in cmds}
load_before = open("/proc/loadavg").read().split()[:3]
for _ in range(runs):
    for label, argv, _t in cmds:  # interleaved: other work hits every command alike
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        wall[label].append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu[label].append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
load_after = open("/proc/loadavg").read().split()[:3]
base = statistics.median(wall[cmds[0][0]])
print(f"Load average (1, 5, 15 min) before: {' '.join(load_before)}; after: {' '.join(load_after)}. "
      f"{runs} interleaved runs of each command; wall milliseconds.\n")
print("| command | median | best | CPU (median) | ratio to nix path-info -rS (median wall) | target |")
print("|---|---|---|---|---|---|")
for label, _a, target in cmds:
    m = statistics.median(wall[label])
    print(f"| `{label}` | {m*1e3:.1f} ms | {min(wall[label])*1e3:.1f} ms | {statistics.median(cpu[label])*1e3:.1f} ms | {m/base:.2f} | {target} |")
print(f"\nROOT = {root} (154 paths)")
PY
