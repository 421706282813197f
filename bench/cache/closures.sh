#!/usr/bin/env bash
# Adds the benchmark closures to the Nix store and prints their roots:
#   small: /usr/local/go + 50 /usr/share/doc dirs, under one root (52 paths)
#   big:   /usr/local/go + /usr/lib/jvm + /usr/lib/x86_64-linux-gnu
#          + 150 /usr/share/doc dirs, under one root (154 paths)
# Usage: closures.sh NAME  (prints the root store path of closure NAME)
set -euo pipefail
name=$1
case $name in
  small) dirs=(/usr/local/go); ndocs=50 ;;
  big) dirs=(/usr/local/go /usr/lib/jvm /usr/lib/x86_64-linux-gnu); ndocs=150 ;;
  *) echo "closures.sh: unknown closure $name (small or big)" >&2; exit 2 ;;
esac
for d in "${dirs[@]}"; do
  [ -d "$d" ] || { echo "closures.sh: $d is missing on this machine" >&2; exit 1; }
done
mapfile -t docs < <(find /usr/share/doc -mindepth 1 -maxdepth 1 -type d | LC_ALL=C sort | head -n "$ndocs")
paths=()
for d in "${dirs[@]}" "${docs[@]}"; do
  paths+=("$(nix-store --add "$d")")
done
expr="derivation { name = \"releng-bench-$name\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo"
for p in "${paths[@]}"; do
  expr+=" \${builtins.storePath \"$p\"}"
done
expr+=" > \$out\" ]; }"
nix-build --no-out-link -E "$expr"
