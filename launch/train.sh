#!/usr/bin/env bash
# Sets everything up and runs the main job: DQN on CartPole-v1, distributed on an
# embedded local Ray (env actors, a replay server and a learner, all on this machine).
# Extra arguments go to `distrl train`, e.g. launch/train.sh --seed 1 --max-env-steps 20000
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo_root/launch/setup.sh"
venv="${DISTRL_VENV:-$repo_root/.venv}"
cd "$repo_root"
exec "$venv/bin/distrl" train --agent dqn --env gym:CartPole-v1 --mode local --seed 0 "$@"
