#!/usr/bin/env bash
# Fresh machine -> the main job on committed data: install slim into .venv (Python 3.12+),
# fetch the pinned upstream sglang wheel (sha256-checked) and regenerate sglang/ with `slim apply`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  PY=""
  # pyenv shims exist for versions that are not active, so run each candidate to be sure.
  for c in python3.12 python3.13 python3 /root/.pyenv/versions/3.12*/bin/python3 /root/.pyenv/versions/3.13*/bin/python3; do
    if "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then PY=$c; break; fi
  done
  [ -n "$PY" ] || { echo "error: slim needs Python 3.12+ (sys.monitoring); none found" >&2; exit 1; }
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/slim fetch
.venv/bin/slim apply
