#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment and installs distrl into it.
# torch==2.13.0 is installed first, on its own, so that pip never resolves an
# unpinned torch (which would pull gigabytes of CUDA wheels on a CPU machine).
# Usage: source launch/setup.sh   (or bash launch/setup.sh)
# Env: DISTRL_VENV (default: .venv in the repository), PYTHON (default: python3).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${DISTRL_VENV:-$repo_root/.venv}"
python_bin="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "distrl setup: creating virtual environment at $venv"
    "$python_bin" -m venv "$venv"
fi
# Reinstall only when the project's requirements changed since the last setup.
stamp="$venv/.distrl-setup-stamp"
want="$(cat "$repo_root/pyproject.toml" "$repo_root/launch/setup.sh" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "torch==2.13.0"
    "$venv/bin/python" -m pip install --quiet -e "$repo_root[dev]"
    echo "$want" > "$stamp"
    echo "distrl setup: installed into $venv"
else
    echo "distrl setup: $venv is up to date"
fi
