#!/usr/bin/env bash
# Benchmark releng's native images against umoci + skopeo, side by side,
# and write bench/images/RESULTS.md (machine, command, figures).
#
# Usage: bench/images/run.sh            (RELENG_BENCH_ROUNDS=N to change the rounds, default 5)
# Needs: nix-bin, docker-registry, umoci, skopeo, Go in /usr/local/go.
set -euo pipefail
cd "$(dirname "$0")/../.."
report=$(mktemp)
notes=$(mktemp)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
trap 'rm -f "$report" "$notes"' EXIT
# The notes under the marker line of RESULTS.md survive a new run.
marker='<!-- run.sh rewrites what is above this line and keeps what follows. -->'
sed -n "/^$marker\$/,\$p" bench/images/RESULTS.md > "$notes" 2>/dev/null || true
[ -s "$notes" ] || echo "$marker" > "$notes"
RELENG_BENCH_REPORT="$report" go test ./bench/images -run '^$' -bench BenchmarkImages -benchtime 1x -count 1 -timeout 60m

ver() { "$@" 2>/dev/null | head -n1 || echo unknown; }
{
  echo "# Image benchmark: releng vs umoci + skopeo"
  echo
  echo "Command: \`bench/images/run.sh\` (runs \`go test ./bench/images -run '^\$' -bench BenchmarkImages -benchtime 1x\`)."
  echo "releng: \`releng image build\`, then \`releng image push --to 127.0.0.1:PORT/repo\`, with an empty layer cache and an empty repository;"
  echo "then the same push again (nothing changed). Baseline: \`umoci init\` + \`umoci new\` + one \`umoci insert\` per store path,"
  echo "then \`skopeo copy oci:… docker://…\`, then the same copy again. Also \`releng image push --from-store\` (build and push in one pass,"
  echo "layers streamed from the store, no intermediate file). Same closure, a fresh local docker-registry per round, page cache warm."
  echo "CPU seconds (user+sys, /usr/bin/time) are those of releng's processes and of umoci's and skopeo's (not the registry's), medians:"
  echo "other work on the machine changes them less than wall times."
  echo
  cat "$report"
  echo
  echo "Layers are gzip, deflate level 7 of klauspost/compress (docs/DECISIONS.md: the fastest level within 1.02× of gzip -6's bytes);"
  echo "the zstd row is the same image with \`compression = \"zstd\"\` (independent zstd frames of 4 MiB of tar each; an OCI image; the registry is the same docker-registry)."
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GB", $2/1e6}' /proc/meminfo) RAM, Linux $(uname -r)."
  echo "Tools: $(ver go version); $(ver nix --version); $(ver umoci --version); $(ver skopeo --version); docker-registry $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null || echo unknown)."
  echo "Load average before the run: $load_before (other jobs on the machine slow both sides; the ratios are per round, side by side)."
  echo "Date: $(date -u +%Y-%m-%d)."
  echo
  cat "$notes"
} > bench/images/RESULTS.md
cat bench/images/RESULTS.md
