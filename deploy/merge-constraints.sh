#!/bin/sh
# merge-constraints.sh BASE OVERLAY: print BASE's pins with every package named in OVERLAY replaced by OVERLAY's
# pin (names compared as pip does: case-insensitive, with -, _ and . alike). Used by deploy/Dockerfile.gpu-worker.
set -eu
[ $# -eq 2 ] && [ -r "$1" ] && [ -r "$2" ] || { echo "usage: $0 BASE OVERLAY (both readable files)" >&2; exit 2; }
awk '
  function key(line,   n) { n = line; sub(/[<>=!~; \t].*$/, "", n); n = tolower(n); gsub(/[-_.]+/, "-", n); return n }
  /^[ \t]*(#|$)/ { next }
  FNR == NR { over[key($0)] = 1; pins[++n] = $0; next }
  !(key($0) in over) { print }
  END { for (i = 1; i <= n; i++) print pins[i] }
' "$2" "$1"
