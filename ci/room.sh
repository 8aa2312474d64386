#!/usr/bin/env bash
# Makes room in a device call: the working tree travels with the carried files, 64 MiB in all.
#   bash ci/room.sh out record   before a record call (deps + upstream + JIT cache, ~64 MB): moves out
#                                everything a recording does not read (the generated tree, docs, tests,
#                                notebooks, benchmarks, coverage_db)
#   bash ci/room.sh out verify   before an AGAIN=1 verify/fuzz call (tree tar + plan.json): moves out the
#                                generated tree and docs; coverage_db stays (references, surface inventory)
#   bash ci/room.sh out lean SCENARIO...
#                                before a first-call verify (deps + JIT cache + tree tar, no record call
#                                before it): what `out record` moves, except the named scenarios' recordings
#   bash ci/room.sh out refs     before a first-call verify of any scenario: what `out record` moves, then
#                                coverage_db/ again with only each recording's reference part (outputs,
#                                command, environment: ~3 MB for all, not ~19), which is all verify reads
#   bash ci/room.sh in           puts everything back (run it before any commit)
# Files go to $ROOM (default /tmp/slim-room); `in` refuses to overwrite a path that came back meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOM=${ROOM:-/tmp/slim-room}
RECORD_ONLY="sglang docs notebooks benchmarks slim/tests scenarios/tests tracer/tests coverage_db"
VERIFY_ONLY="sglang docs"
case "${1:-} ${2:-}" in
  "out record") paths=$RECORD_ONLY ;;
  "out lean") shift 2; keep=" $* "  # coverage_db/ goes entry by entry: the named recordings stay
    paths="${RECORD_ONLY% coverage_db}"
    for d in coverage_db/*; do case "$keep" in *" ${d#coverage_db/} "*) ;; *) paths="$paths $d" ;; esac; done ;;
  "out verify") paths=$VERIFY_ONLY ;;
  "out refs") paths=$RECORD_ONLY ;;
  "in "*)
    [ -d "$ROOM" ] || { echo "nothing moved out ($ROOM is absent)"; exit 0; }
    [ -f "$ROOM/.refs" ] && rm -rf coverage_db  # the reference copies `out refs` wrote
    while read -r p; do
      [ -e "$p" ] && { echo "error: $p is back already; move $ROOM/$p by hand" >&2; exit 1; }
      mkdir -p "$(dirname "$p")" && mv "$ROOM/$p" "$p"
    done < "$ROOM/.moved"
    rm -rf "$ROOM"; git status --short | head; exit 0 ;;
  *) sed -n 2,12p "$0" >&2; exit 2 ;;
esac
[ ! -e "$ROOM" ] || { echo "error: $ROOM exists (an earlier 'out' not put back: bash ci/room.sh in)" >&2; exit 1; }
mkdir -p "$ROOM"
for p in $paths; do
  [ -e "$p" ] || continue
  mkdir -p "$ROOM/$(dirname "$p")" && mv "$p" "$ROOM/$p" && echo "$p" >> "$ROOM/.moved"
done
if [ "${2:-}" = refs ]; then  # every run, plan input or waiting, as its reference part only
  touch "$ROOM/.refs"
  python3 - "$ROOM/coverage_db" coverage_db <<'PY'
import gzip, json, sys
from pathlib import Path
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
HEAVY = ("functions", "modules", "processes", "lines", "third_party_modules", "shared_libs", "opened_files", "kernels")
for path in sorted(src.rglob("*.json.gz")):
    data = json.loads(gzip.decompress(path.read_bytes()))
    if "outputs" not in data:
        continue
    out = dst / path.relative_to(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(gzip.compress(json.dumps({k: [] if k in HEAVY else v for k, v in data.items()}).encode()))
PY
fi
echo "working tree now $(git ls-files -co --exclude-standard | xargs -r du -cb 2>/dev/null | awk '/total$/{s+=$1} END{print s}') bytes"
