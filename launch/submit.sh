#!/usr/bin/env bash
# Submits a distrl experiment as a Ray Job to a running Ray cluster.
#
# Usage: launch/submit.sh [options] [--] [distrl train options]
#
#   --address URL      the cluster's job API, http://HOST:8265 (default: $RAY_API_SERVER_ADDRESS,
#                      then $RAY_ADDRESS)
#   --output DIR       where the run directory goes, on the node that runs the job's driver (the head
#                      node): shared storage on a real cluster (default: /tmp/distrl-runs)
#   --no-wait          return right after submission (default: follow the logs until the job ends)
#   --image IMAGE      run the job in a prebuilt image (Ray's image_uri runtime env; distrl and its
#                      dependencies inside, e.g. docker/Dockerfile) instead of uploading the repository
#   --no-pip           upload the repository but install no pip requirements (the cluster's Python
#                      already has distrl's dependencies)
#   --token-file FILE  the cluster's token (sets RAY_AUTH_TOKEN_PATH and RAY_AUTH_MODE=token)
#   --job-id ID        the job's submission id (default: distrl-<date>-<time>-<pid>)
#   -h, --help         this message
#
# Everything else (or everything after --) goes to `distrl train`, run as
#   python -m distrl train --mode cluster --address auto --run-dir DIR --no-progress ...
# (so do not pass --mode, --address or --run-dir). Without --agent or --config
# it trains --agent dqn --env gym:CartPole-v1. A --config file must lie inside
# the repository (it is uploaded with it), or inside the image with --image.
#
# Runtime environment: by default the repository is the job's working_dir
# (without .venv, .git, runs/, caches and docker/.env) and pip installs
# distrl's dependencies from pyproject.toml EXCEPT torch and ray, which every
# node must already have: torch is gigabytes of wheels that must match the
# node's CUDA, and Ray must be the cluster's exact version. Ray builds that
# pip environment once per node and caches it. With --image, only the image
# is used (Ray allows no working_dir or pip next to image_uri).
#
# Token authentication: the ray CLI reads RAY_AUTH_MODE=token plus the token
# from RAY_AUTH_TOKEN or the file in RAY_AUTH_TOKEN_PATH (or ~/.ray/auth_token).
# When a token is available and RAY_AUTH_MODE is unset, this script sets
# RAY_AUTH_MODE=token, because without it the CLI sends no token.
#
# Exit status: 0 when the job SUCCEEDED, 1 when it FAILED or was STOPPED, 2 for
# a usage error; with --no-wait, 0 once the job is submitted. Ctrl-C while
# following only detaches (exit 130): the job keeps running on the cluster.
#
# Example:
#   RAY_AUTH_TOKEN_PATH=~/secrets/ray_token launch/submit.sh --address http://head:8265 \
#       --output /shared/distrl-runs -- --agent dqn --env gym:CartPole-v1 --max-env-steps 50000 --seed 1
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
helpers="$repo_root/launch/lib/ray_helpers.py"
venv="${DISTRL_VENV:-$repo_root/.venv}"
if [ -x "$venv/bin/python" ]; then
    PATH="$venv/bin:$PATH"
fi
python_bin="$(command -v python || command -v python3)"

log() { echo "submit: $*" >&2; }
die() { log "error: $*"; exit 2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }

# ----------------------------------------------------------------- options
address="${RAY_API_SERVER_ADDRESS:-${RAY_ADDRESS:-}}"
output="/tmp/distrl-runs"
wait_for_job=1 image="" use_pip=1 job_id=""
while [ $# -gt 0 ]; do
    case "$1" in
        --address) [ $# -ge 2 ] || die "$1 needs a value"; address="$2"; shift 2 ;;
        --output) [ $# -ge 2 ] || die "$1 needs a value"; output="$2"; shift 2 ;;
        --no-wait) wait_for_job=0; shift ;;
        --image) [ $# -ge 2 ] || die "$1 needs a value"; image="$2"; shift 2 ;;
        --no-pip) use_pip=0; shift ;;
        --token-file)
            [ $# -ge 2 ] || die "$1 needs a value"
            [ -r "$2" ] || die "cannot read the token file $2"
            export RAY_AUTH_TOKEN_PATH; RAY_AUTH_TOKEN_PATH="$(abspath "$2")"
            export RAY_AUTH_MODE=token; unset RAY_AUTH_TOKEN; shift 2 ;;
        --job-id) [ $# -ge 2 ] || die "$1 needs a value"; job_id="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) break ;;  # the first option we do not know starts the distrl options
    esac
done
[ -n "$address" ] || die "no cluster address: pass --address http://HOST:8265 or set RAY_ADDRESS (see --help)"
case "$address" in http://*|https://*) ;; *) address="http://$address" ;; esac
# A relative path would land in the job's temporary copy of the repository.
case "$output" in /*) ;; *) output="$(abspath "$output")"; log "note: --output is a path on the cluster: $output" ;; esac

train_args=()
have_agent=0 have_config=0
config_arg() {
    # A config file travels inside the uploaded repository: pass its path relative to the repository root.
    local path="$1" full
    if [ -n "$image" ]; then echo "$path"; return; fi
    [ -f "$path" ] || die "--config $path: no such file"
    full="$(cd "$(dirname "$path")" && pwd)/$(basename "$path")"
    case "$full" in
        "$repo_root"/*) echo "${full#"$repo_root"/}" ;;
        *) die "--config $path lies outside the repository $repo_root, which is the job's working_dir" ;;
    esac
}
while [ $# -gt 0 ]; do
    case "$1" in
        --mode|--mode=*|--address|--address=*) die "$1: the job runs distrl with --mode cluster --address auto" ;;
        --run-dir|--run-dir=*) die "$1: use the script's --output DIR instead" ;;
        --config) [ $# -ge 2 ] || die "$1 needs a value"; have_config=1; train_args+=(--config "$(config_arg "$2")"); shift 2 ;;
        --config=*) have_config=1; train_args+=(--config "$(config_arg "${1#*=}")"); shift ;;
        --agent|--agent=*) have_agent=1; train_args+=("$1"); shift ;;
        *) train_args+=("$1"); shift ;;
    esac
done
if [ "$have_agent" = 0 ] && [ "$have_config" = 0 ]; then
    train_args=(--agent dqn --env gym:CartPole-v1 "${train_args[@]}")
fi

# ----------------------------------------------------------------- token
if [ -z "${RAY_AUTH_MODE:-}" ] && { [ -n "${RAY_AUTH_TOKEN:-}" ] || [ -n "${RAY_AUTH_TOKEN_PATH:-}" ] || [ -f "$HOME/.ray/auth_token" ]; }; then
    export RAY_AUTH_MODE=token
fi
if [ "${RAY_AUTH_MODE:-}" = token ]; then
    if [ -n "${RAY_AUTH_TOKEN:-}" ]; then source_desc="RAY_AUTH_TOKEN"
    elif [ -n "${RAY_AUTH_TOKEN_PATH:-}" ]; then source_desc="RAY_AUTH_TOKEN_PATH=$RAY_AUTH_TOKEN_PATH"
    else source_desc="$HOME/.ray/auth_token"; fi
    log "token authentication: on (token from $source_desc)"
else
    log "token authentication: off (no token configured; only a cluster without token auth accepts the job)"
fi

# ----------------------------------------------------------------- runtime env
env_args=()
if [ -n "$image" ]; then
    env_args+=(--image "$image")
    runtime_desc="image $image"
else
    env_args+=(--working-dir "$repo_root")
    runtime_desc="working_dir $repo_root"
    if [ "$use_pip" = 1 ]; then
        env_args+=(--pip-from "$repo_root/pyproject.toml")
        runtime_desc="$runtime_desc + pip (distrl's dependencies without torch and ray)"
    fi
fi
runtime_env="$("$python_bin" "$helpers" runtime-env "${env_args[@]}")"

# ----------------------------------------------------------------- submit
job_id="${job_id:-distrl-$(date +%Y%m%d-%H%M%S)-$$}"
log "cluster: $address"
log "runtime environment: $runtime_desc"
log "submitting job $job_id: python -m distrl train --mode cluster --address auto --run-dir $output --no-progress ${train_args[*]}"
ray job submit --address "$address" --submission-id "$job_id" --no-wait \
    --runtime-env-json "$runtime_env" \
    -- python -m distrl train --mode cluster --address auto --run-dir "$output" --no-progress "${train_args[@]}" \
    >&2 || { log "error: ray job submit failed"; exit 1; }

cat >&2 <<EOF
submit: job id: $job_id
submit: follow its logs:  ray job logs --address $address --follow $job_id
submit: its status:       ray job status --address $address $job_id
submit: stop it:          ray job stop --address $address $job_id
submit: (run these with the same RAY_AUTH_MODE / RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH environment)
submit: results: $output/<env>__<agent>__<seed>__<unix time>/ (metrics.csv, summary.json, config.json,
submit:   checkpoints/) on the node that runs the job's driver (the head node); the job's last
submit:   'distrl summary:' log line names the exact directory
EOF
if [ "$wait_for_job" = 0 ]; then
    exit 0
fi

trap 'log "detached; job $job_id keeps running (stop it with: ray job stop --address $address $job_id)"; exit 130' INT
logs_file="$(mktemp "${TMPDIR:-/tmp}/distrl-submit.XXXXXX")"
trap 'rm -f "$logs_file"' EXIT
log "following the job's logs (Ctrl-C detaches; the job keeps running)"
ray job logs --address "$address" --follow "$job_id" | tee "$logs_file" || log "warning: log streaming ended early"
status="$("$python_bin" "$helpers" job-status --address "$address" --job-id "$job_id" --wait)"
log "job $job_id: $status"
run_dir="$(sed -n 's/^distrl summary: .*; \(\/[^ ]*\)$/\1/p' "$logs_file" | tail -n 1)"
if [ -n "$run_dir" ]; then
    log "run directory (on the driver's node): $run_dir"
fi
[ "$status" = SUCCEEDED ]
