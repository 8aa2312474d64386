#!/usr/bin/env bash
# Fresh machine -> the main job on committed data: install slim into .venv (Python 3.12+),
# fetch the pinned upstream sglang wheel (sha256-checked) and regenerate sglang/ with `slim apply`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  PY=$(command -v python3.12 || command -v python3.13 || ls -d /root/.pyenv/versions/3.1[23]*/bin/python3 2>/dev/null | head -1)
  [ -n "$PY" ] || { echo "error: slim needs Python 3.12+ (sys.monitoring); none found" >&2; exit 1; }
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/slim fetch
.venv/bin/slim apply
