#!/usr/bin/env bash
# Sets everything up and runs the default (fast) test suite.
# Extra arguments go to pytest, e.g. launch/test.sh -m slow   or   launch/test.sh tests/unit
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo_root/launch/setup.sh"
venv="${DISTRL_VENV:-$repo_root/.venv}"
cd "$repo_root"
exec "$venv/bin/python" -m pytest -q "$@"
