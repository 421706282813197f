#!/usr/bin/env bash
# bench/cache/run.sh — `releng cache push` side by side with what a user
# of Debian's Nix (no S3 support) has instead:
#   (a) cold push to file://     vs  nix copy --to file://DIR?compression=zstd
#   (b) cold push to MinIO (s3://) vs  nix copy to a directory + aws s3 sync,
#                                    and nix copy --to http://HOST/BUCKET
#   (c) second push, nothing new   vs  aws s3 sync of the unchanged directory
#   (d) peak RSS of releng on both closures (/usr/bin/time)
#   (e) the same as (a) with releng built with -tags gozstd (the pure-Go
#       klauspost/compress encoder, what a build without cgo uses, instead
#       of the default libzstd): CPU and bytes; and the two encoders alone
#       on one core (BenchmarkEncoders in internal/binarycache), the
#       measure of the rule that made libzstd the default
# on two closures added with nix-store --add (closures.sh): small (Go
# toolchain + 50 doc dirs, 52 paths) and big (Go + JVM + x86_64-linux-gnu
# libraries + 150 doc dirs, 154 paths). Every tool signs with the same key.
#
# Usage: bench/cache/run.sh [small|big|all]     RUNS=3 by default
# Each time is the best of RUNS runs (the machine is shared: the best run is
# the one least disturbed by other work, for every tool alike); the CPU
# seconds (user+sys, median) show the work done whatever the load.
# Needs: nix (nix-bin), minio (scripts/install-deps.sh), aws (awscli), go.
# Results: a markdown table on stdout and in $RELENG_BENCH_DIR/results.md
# (default /tmp/releng-cache-bench); logs of every command in log/ there.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${RELENG_BENCH_DIR:-/tmp/releng-cache-bench}
runs=${RUNS:-3}
which=${1:-all}
case $which in small) closures=(small) ;; big) closures=(big) ;; all) closures=(small big) ;; *) echo "usage: $0 [small|big|all]" >&2; exit 2 ;; esac

export PATH="$(go env GOPATH)/bin:$PATH"
for tool in nix nix-store minio aws /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (see the header of $0)" >&2; exit 1; }
done

mkdir -p "$work/log" "$work/nixconf"
rm -rf "$work/minio" "$work"/cache-*
printf 'sandbox = false\nsubstituters =\nexperimental-features = nix-command flakes\n' > "$work/nixconf/nix.conf"
getent group nixbld >/dev/null || echo 'build-users-group =' >> "$work/nixconf/nix.conf"
export NIX_CONF_DIR="$work/nixconf"

echo "building releng" >&2
go build -o "$work/releng" "$repo/cmd/releng"
go build -tags gozstd -o "$work/releng-gozstd" "$repo/cmd/releng"
if [ ! -f "$work/key.sec" ]; then
  nix-store --generate-binary-cache-key bench-1 "$work/key.sec" "$work/key.pub"
fi
chmod 600 "$work/key.sec"
key=$work/key.sec

# MinIO on a free port, stopped on exit.
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(freeport)
endpoint=http://127.0.0.1:$port
MINIO_ROOT_USER=releng-bench MINIO_ROOT_PASSWORD=releng-bench-secret MINIO_BROWSER=off MINIO_UPDATE=off \
  minio server "$work/minio" --address "127.0.0.1:$port" --console-address "127.0.0.1:$(freeport)" --quiet >"$work/log/minio.log" 2>&1 &
minio_pid=$!
trap 'kill $minio_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "$endpoint/minio/health/live" >/dev/null && break; sleep 0.1; done
export AWS_ACCESS_KEY_ID=releng-bench AWS_SECRET_ACCESS_KEY=releng-bench-secret AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null
awsep=(aws --endpoint-url "$endpoint")
s3() { "${awsep[@]}" "$@"; }
mkbucket() { # NAME [public-write]
  s3 s3 mb "s3://$1" >/dev/null
  if [ "${2:-}" = public-write ]; then
    s3 s3api put-bucket-policy --bucket "$1" --policy "{\"Version\":\"2012-10-17\",\"Statement\":[
      {\"Effect\":\"Allow\",\"Principal\":{\"AWS\":[\"*\"]},\"Action\":[\"s3:GetObject\",\"s3:PutObject\"],\"Resource\":[\"arn:aws:s3:::$1/*\"]},
      {\"Effect\":\"Allow\",\"Principal\":{\"AWS\":[\"*\"]},\"Action\":[\"s3:ListBucket\",\"s3:GetBucketLocation\"],\"Resource\":[\"arn:aws:s3:::$1\"]}]}"
  fi
}

# measure NAME CMD… runs CMD (output to log/NAME.log) and appends
# "NAME SECONDS MAXRSS_KB USER SYS" to $work/times.
: > "$work/times"
: > "$work/encoders"
measure() {
  local name=$1; shift
  sync # nobody pays for the previous command's dirty pages
  /usr/bin/time -f "%e %M %U %S" -o "$work/time.out" "$@" >"$work/log/$name.log" 2>&1 || {
    echo "run.sh: $name failed: $* (see $work/log/$name.log)" >&2; tail -5 "$work/log/$name.log" >&2; exit 1; }
  echo "$name $(cat "$work/time.out")" >> "$work/times"
  echo "  $name: $(cut -d' ' -f1 "$work/time.out") s" >&2
}
narbytes() { du -sb --apparent-size "$1/nar" | cut -f1; }

echo "load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$work/times"
for c in "${closures[@]}"; do
  echo "closure $c: adding it to the store" >&2
  root=$("$repo/bench/cache/closures.sh" "$c" 2>"$work/log/closure-$c.log")
  npaths=$(nix-store -qR "$root" | wc -l)
  narsize=$(nix path-info -S "$root" | awk '{print $2}')
  echo "$c root $root paths $npaths nar $narsize" >> "$work/times"
  # Warm the page cache so that no tool pays for the first read.
  nix-store -qR "$root" | while read -r p; do nix-store --dump "$p" >/dev/null; done
  for r in $(seq "$runs"); do
    echo "closure $c, run $r" >&2
    nixdir=$work/cache-nix-$c-$r reldir=$work/cache-releng-$c-$r
    # (a) file://
    measure "$c-nix-file" nix copy --to "file://$nixdir?compression=zstd&secret-key=$key" "$root"
    measure "$c-releng-file" "$work/releng" cache push --to "file://$reldir?compression=zstd&secret-key=$key" "$root"
    echo "$c-bytes-nix $(narbytes "$nixdir") 0 0 0" >> "$work/times"
    echo "$c-bytes-releng $(narbytes "$reldir") 0 0 0" >> "$work/times"
    # (e) libzstd build
    cdir=$work/cache-gozstd-$c-$r
    measure "$c-gozstd-file" "$work/releng-gozstd" cache push --to "file://$cdir?compression=zstd&secret-key=$key" "$root"
    echo "$c-bytes-gozstd $(narbytes "$cdir") 0 0 0" >> "$work/times"
    rm -rf "$cdir"
    # (b) MinIO, cold
    mkbucket "sync-$c-$r"; mkbucket "http-$c-$r" public-write; mkbucket "releng-$c-$r"
    measure "$c-aws-sync" "${awsep[@]}" s3 sync --no-progress "$nixdir" "s3://sync-$c-$r"
    measure "$c-nix-http" nix copy --to "$endpoint/http-$c-$r?compression=zstd&secret-key=$key" "$root"
    measure "$c-releng-s3" "$work/releng" cache push --to "s3://releng-$c-$r?endpoint=127.0.0.1:$port&scheme=http&region=us-east-1&compression=zstd&secret-key=$key" "$root"
    # (c) nothing changed
    measure "$c-aws-sync-again" "${awsep[@]}" s3 sync --no-progress "$nixdir" "s3://sync-$c-$r"
    measure "$c-releng-s3-again" "$work/releng" cache push --to "s3://releng-$c-$r?endpoint=127.0.0.1:$port&scheme=http&region=us-east-1&compression=zstd&secret-key=$key" "$root"
    rm -rf "$nixdir" "$reldir"
    for b in "sync-$c-$r" "http-$c-$r" "releng-$c-$r"; do s3 s3 rb --force "s3://$b" >/dev/null 2>&1 || true; done
  done
done

# (e) the encoders alone, one core, on each closure's NARs in memory:
# libzstd as the default build has it against klauspost (BenchmarkEncoders).
for c in "${closures[@]}"; do
  root=$("$repo/bench/cache/closures.sh" "$c" 2>>"$work/log/closure-$c.log")
  echo "closure $c: encoders alone (BenchmarkEncoders)" >&2
  (cd "$repo" && RELENG_BENCH_ROOT=$root go test ./internal/binarycache -run '^$' -bench 'Encoders/(default|klauspost)' -benchtime 3x -count 1) > "$work/log/$c-encoders.log" 2>&1 || {
    echo "run.sh: BenchmarkEncoders failed (see $work/log/$c-encoders.log)" >&2; exit 1; }
  # "BenchmarkEncoders/default-2  3  NS ns/op  MB/s MB/s  BYTES bytes" → "c-enc-default MB/s BYTES"
  awk -v c="$c" '/^BenchmarkEncoders\// { split($1, n, "/"); sub(/-[0-9]+$/, "", n[2]); print c "-enc-" n[2], $5, $7 }' "$work/log/$c-encoders.log" >> "$work/encoders"
done

echo "load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$work/times"
python3 - "$work/times" "$runs" "$work/encoders" <<'EOF' | tee "$work/results.md"
import statistics, sys
from collections import defaultdict
t, rss, cpu, info, load = defaultdict(list), defaultdict(list), defaultdict(list), {}, []
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] == "load":
        load.append(" ".join(f[1:]))
        continue
    if f[1] == "root":
        info[f[0]] = f
        continue
    t[f[0]].append(float(f[1])); rss[f[0]].append(int(f[2])); cpu[f[0]].append(float(f[3]) + float(f[4]))
enc = {f[0]: (float(f[1]), float(f[2])) for f in (l.split() for l in open(sys.argv[3])) if f}
best = lambda k: min(t[k])
cpus = lambda k: statistics.median(cpu[k])
print(f"Best of {sys.argv[2]} runs, wall seconds; ratio = releng / baseline; CPU = user+sys seconds (median).")
print(f"Load average (1, 5, 15 min) before: {load[0]}; after: {load[-1]}.\n")
print("| closure | measure | releng | baseline | ratio | target |")
print("|---|---|---|---|---|---|")
for c in ("small", "big"):
    if c + "-nix-file" not in t:
        continue
    r = info[c]
    label = f"{c} ({r[4]} paths, {int(r[6])/1e6:.0f} MB NAR)"
    a_rel, a_nix = best(c + "-releng-file"), best(c + "-nix-file")
    print(f"| {label} | (a) cold push to file:// vs nix copy --to file://…?compression=zstd | {a_rel:.2f} s (CPU {cpus(c + '-releng-file'):.2f}) | {a_nix:.2f} s (CPU {cpus(c + '-nix-file'):.2f}) | {a_rel/a_nix:.2f} | ≤ 0.5 |")
    b_rel, b_nix = min(t[c + "-bytes-releng"]), min(t[c + "-bytes-nix"])
    print(f"| {label} | (a) NAR bytes written | {b_rel/1e6:.1f} MB | {b_nix/1e6:.1f} MB | {b_rel/b_nix:.3f} | ≤ 1.02 |")
    route1 = min(a + b for a, b in zip(t[c + "-nix-file"], t[c + "-aws-sync"]))
    http = best(c + "-nix-http")
    base = min(route1, http)
    s_rel = best(c + "-releng-s3")
    print(f"| {label} | (b) cold push to MinIO vs min(nix copy to dir + aws s3 sync: {route1:.2f} s, nix copy --to http://: {http:.2f} s) | {s_rel:.2f} s (CPU {cpus(c + '-releng-s3'):.2f}) | {base:.2f} s | {s_rel/base:.2f} | ≤ 0.5 |")
    again_rel, again_aws = best(c + "-releng-s3-again"), best(c + "-aws-sync-again")
    print(f"| {label} | (c) second push, nothing changed vs aws s3 sync of the unchanged dir | {again_rel:.2f} s | {again_aws:.2f} s | {again_rel/again_aws:.2f} | ≤ 0.5 |")
    peak = max(rss[c + "-releng-file"] + rss[c + "-releng-s3"])
    print(f"| {label} | (d) peak RSS of releng (file:// and MinIO pushes) | {peak/1024:.0f} MiB | | | big ≤ 200 MiB |")
    gb = int(r[6]) / 1e9
    print(f"| {label} | CPU-s per GB of NAR, (a) file:// push: releng / nix copy | {cpus(c + '-releng-file')/gb:.2f} | {cpus(c + '-nix-file')/gb:.2f} | {cpus(c + '-releng-file')/cpus(c + '-nix-file'):.2f} | |")
    if c + "-gozstd-file" in t:
        kz, cz = cpus(c + "-gozstd-file"), cpus(c + "-releng-file")
        b_k = min(t[c + "-bytes-gozstd"])
        print(f"| {label} | (e) the whole (a) push: default (libzstd) vs -tags gozstd (klauspost, pure Go), CPU-s | {cz:.2f} | {kz:.2f} ({kz/gb:.2f}/GB, {b_k/1e6:.1f} MB = {b_k/b_nix:.3f}× Nix's) | {cz/kz:.2f} | |")
    if c + "-enc-default" in enc and c + "-enc-klauspost-SpeedDefault" in enc:
        (d_mbs, d_b), (k_mbs, k_b) = enc[c + "-enc-default"], enc[c + "-enc-klauspost-SpeedDefault"]
        print(f"| {label} | (e) the encoders alone, one core, frames of 8 MiB (BenchmarkEncoders): libzstd (default) vs klauspost, CPU-s per GB of NAR | {1000/d_mbs:.2f} ({d_b/b_nix:.3f}× Nix's bytes) | {1000/k_mbs:.2f} ({k_b/b_nix:.3f}×) | {k_mbs/d_mbs:.2f} | ≤ 0.75 and ≤ 1.02× to be the default |")
if "small-nix-file" in t and "big-nix-file" in t:
    ps = max(rss["small-releng-file"] + rss["small-releng-s3"]); pb = max(rss["big-releng-file"] + rss["big-releng-s3"])
    print(f"| both | (d) peak RSS big / small | {pb/1024:.0f} MiB | {ps/1024:.0f} MiB | {pb/ps:.2f} | ≤ 1.5 |")
EOF
