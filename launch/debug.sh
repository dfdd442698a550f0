#!/usr/bin/env bash
# The single-process debug mode (no Ray), for stepping through with a debugger:
#   launch/debug.sh --agent dqn --env gym:CartPole-v1
#   PYTHON_DEBUGGER=pdb launch/debug.sh ...   runs under python -m pdb
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo_root/launch/setup.sh"
venv="${DISTRL_VENV:-$repo_root/.venv}"
cd "$repo_root"
if [ -n "${PYTHON_DEBUGGER:-}" ]; then
    exec "$venv/bin/python" -m "$PYTHON_DEBUGGER" -m distrl train --mode debug "$@"
fi
exec "$venv/bin/python" -m distrl train --mode debug "$@"
