#!/usr/bin/env bash
# Instructions per MB moved by a rawtcp-bench scenario over a MemLink (no root), counted by
# callgrind: a figure the machine's load blurs far less than a wall-clock one, for
# before/after comparisons of the data path (the engine, the facade and the bench's
# applications together).
#
#   scripts/instructions-per-mb.sh [BINARY] SCENARIO [ARGS...]
#   scripts/instructions-per-mb.sh echo --connections 1
#   scripts/instructions-per-mb.sh target/release/rawtcp-bench proxy --connections 16
#   scripts/instructions-per-mb.sh bulk --direction send --rawtcp-io copy
#
# It runs the scenario twice under callgrind, SHORT and LONG seconds measured with no
# warm-up (default 1 and 4; SHORT=2 LONG=8 for 16 connections, whose start costs more),
# takes the bytes each run's goodput counted (for echo and proxy the echo read back, each
# byte of it having crossed the link twice), and prints the instructions per MB of the
# difference: what the extra seconds' data cost, without the start and the end of a run.
# The runs are timed, so the count still depends a little on how the stacks batch under
# valgrind's slowdown (differences under about 2 % are noise), and a run starved of CPU by
# other work can come out far higher (timers fire over fewer bytes): repeat an outlier. Needs valgrind and python3; build first with
# `cargo build --release -p rawtcp-bench`. Call-graph files stay in $OUT (default a new
# directory under /tmp) for callgrind_annotate.
set -euo pipefail

BIN=target/release/rawtcp-bench
if [ $# -gt 0 ] && [ -x "$1" ] && [ -f "$1" ]; then
  BIN=$1
  shift
fi
if [ $# -eq 0 ]; then
  echo "usage: $0 [BINARY] SCENARIO [ARGS...]" >&2
  exit 2
fi
SHORT=${SHORT:-1}
LONG=${LONG:-4}
OUT=${OUT:-$(mktemp -d /tmp/instructions-per-mb.XXXXXX)}

# Instructions and MB of one run of $1 seconds.
measure() {
  local seconds=$1 prefix=$OUT/run-$1s
  shift
  valgrind --tool=callgrind --callgrind-out-file="$prefix.cg" "$BIN" "$@" \
    --duration "${seconds}s" --warmup 0s --repeat 1 --seed 1 --no-pin --json \
    >"$prefix.json" 2>"$prefix.err"
  local instructions
  instructions=$(awk '/^summary:/ {print $2}' "$prefix.cg")
  python3 - "$prefix.json" "$seconds" "$instructions" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
goodput = next(r for r in doc["results"] if r["metric"] == "goodput")
gbits = next(iter(goodput["pairs"].values()))["samples"][0]
print(sys.argv[3], gbits * 1e9 / 8 * float(sys.argv[2]) / 1e6)
EOF
}

read -r short_ir short_mb < <(measure "$SHORT" "$@")
read -r long_ir long_mb < <(measure "$LONG" "$@")
python3 - "$short_ir" "$short_mb" "$long_ir" "$long_mb" "$*" <<'EOF'
import sys
short_ir, short_mb, long_ir, long_mb = map(float, sys.argv[1:5])
print(f"{sys.argv[5]}: {short_mb:.1f} MB in {short_ir / 1e6:.0f} M instructions, "
      f"{long_mb:.1f} MB in {long_ir / 1e6:.0f} M")
print(f"{(long_ir - short_ir) / (long_mb - short_mb) / 1e6:.2f} M instructions per MB")
EOF
echo "callgrind files: $OUT" >&2
