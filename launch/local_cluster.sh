#!/usr/bin/env bash
# Runs a distrl experiment as a Ray Job on a private, token-authenticated Ray
# cluster on this machine, then stops that cluster (and nothing else).
#
# Usage: launch/local_cluster.sh [options] [--] [distrl train options]
#
#   --workers W          extra worker nodes on this machine (0)
#   --worker-cpus N      CPUs of each worker node (1)
#   --head-cpus N        CPUs of the head node (default: the machine's CPUs minus the workers', at least 1)
#   --object-store-mb M  object store of each node in MiB (256)
#   -h, --help           this message
#
# Everything else (or everything after --) goes to `distrl train`, which runs
# with --mode cluster --address auto (so do not pass --mode or --address).
# Without --agent or --config it trains --agent dqn --env gym:CartPole-v1.
# Run directories go under --run-dir (default: runs/ in the repository; a
# relative path is taken from the current directory; it wins over a run_dir in
# a --config file), which the script prints.
#
# Examples:
#   launch/local_cluster.sh
#   launch/local_cluster.sh --workers 2 -- --agent dqn --env gym:CartPole-v1 --max-env-steps 20000 --seed 1
#   launch/local_cluster.sh -- --config launch/configs/dqn_cartpole.yaml
#
# What it does: starts a Ray head (--node-ip-address 127.0.0.1, dashboard and
# job API bound to 127.0.0.1, free ports, a private --temp-dir) with
# RAY_AUTH_MODE=token and a fresh random token in a private directory (file
# mode 600), plus W worker nodes on this machine; submits
# `python -m distrl train ...` with `ray job submit` (the repository is the
# job's working_dir, without .venv, .git and runs/), streams the job's logs,
# and on exit, failure, Ctrl-C or SIGTERM stops the job and exactly the Ray
# processes it started (see launch/lib/ray_cluster.sh). The exit status is 0
# when the job SUCCEEDED, 1 when it FAILED or was STOPPED, 130 on Ctrl-C.
#
# Env: DISTRL_VENV (default: .venv in the repository), DISTRL_RAY_TMP (where the
# private Ray directory goes; default /tmp, keep it short), DISTRL_KEEP_RAY_DIR=1
# (keep the private Ray directory, with Ray's logs, after the run).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cluster_sh="$repo_root/launch/lib/ray_cluster.sh"
helpers="$repo_root/launch/lib/ray_helpers.py"
venv="${DISTRL_VENV:-$repo_root/.venv}"

log() { echo "local_cluster: $*" >&2; }
die() { log "error: $*"; exit 2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }

# ----------------------------------------------------------------- options
workers=0
cluster_opts=()
while [ $# -gt 0 ]; do
    case "$1" in
        --workers) [ $# -ge 2 ] || die "$1 needs a value"; workers="$2"; shift 2 ;;
        --worker-cpus|--head-cpus|--object-store-mb)
            [ $# -ge 2 ] || die "$1 needs a value"; cluster_opts+=("$1" "$2"); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) break ;;  # the first option we do not know starts the distrl options
    esac
done
[[ "$workers" =~ ^[0-9]+$ ]] || die "--workers wants a non-negative integer, got '$workers'"

# The cluster runs from the project's environment (created or reused, as launch/train.sh does).
bash "$repo_root/launch/setup.sh" >&2
PATH="$venv/bin:$PATH"
python_bin="$venv/bin/python"

# distrl train options: run dir and config file made absolute (the job runs in a copy of the repository).
train_args=()
run_root="$repo_root/runs"
have_agent=0 have_config=0
while [ $# -gt 0 ]; do
    case "$1" in
        --mode|--mode=*|--address|--address=*) die "$1: the script runs distrl with --mode cluster --address auto" ;;
        --run-dir) [ $# -ge 2 ] || die "$1 needs a value"; run_root="$(abspath "$2")"; shift 2 ;;
        --run-dir=*) run_root="$(abspath "${1#*=}")"; shift ;;
        --config) [ $# -ge 2 ] || die "$1 needs a value"; have_config=1; train_args+=(--config "$(abspath "$2")"); shift 2 ;;
        --config=*) have_config=1; train_args+=(--config "$(abspath "${1#*=}")"); shift ;;
        --agent|--agent=*) have_agent=1; train_args+=("$1"); shift ;;
        *) train_args+=("$1"); shift ;;
    esac
done
if [ "$have_agent" = 0 ] && [ "$have_config" = 0 ]; then
    train_args=(--agent dqn --env gym:CartPole-v1 "${train_args[@]}")
fi
mkdir -p "$run_root"

# ----------------------------------------------------------------- cleanup
cluster_dir="" dashboard_url="" job_id=""
cleanup() {
    local rc=$?
    trap - EXIT
    trap 'log "still cleaning up, please wait"' INT TERM
    if [ -n "$job_id" ]; then
        local status
        status="$("$python_bin" "$helpers" job-status --address "$dashboard_url" --job-id "$job_id" 2>/dev/null || echo UNKNOWN)"
        case "$status" in
            SUCCEEDED|FAILED|STOPPED) ;;
            *) log "stopping job $job_id ($status)"
               timeout 60 ray job stop --address "$dashboard_url" "$job_id" >/dev/null 2>&1 \
                   || log "warning: ray job stop did not finish; the cluster goes down anyway" ;;
        esac
    fi
    if [ -f "$cluster_dir/.distrl-ray-cluster" ]; then
        log "stopping the Ray cluster in $cluster_dir"
        DISTRL_LOG_PREFIX=local_cluster bash "$cluster_sh" stop "$cluster_dir" || log "warning: stopping the cluster failed (rc $?)"
    elif [ -n "$cluster_dir" ]; then
        rm -rf -- "$cluster_dir"  # made by mktemp, no cluster started in it
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# ----------------------------------------------------------------- cluster
cluster_dir="$(mktemp -d "${DISTRL_RAY_TMP:-/tmp}/distrl-ray.XXXXXX")"
log "private Ray directory: $cluster_dir"
DISTRL_LOG_PREFIX=local_cluster bash "$cluster_sh" start "$cluster_dir" --workers "$workers" "${cluster_opts[@]}"
# Exports RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH for the ray CLI below; sets DASHBOARD_URL and GCS_ADDRESS.
# shellcheck disable=SC1091
. "$cluster_dir/cluster.env"
# shellcheck disable=SC2153
dashboard_url="$DASHBOARD_URL"
log "Ray cluster up: GCS $GCS_ADDRESS, dashboard and job API $dashboard_url (token in $RAY_AUTH_TOKEN_PATH)"

# ----------------------------------------------------------------- job
runtime_env="$("$python_bin" "$helpers" runtime-env --working-dir "$repo_root")"
job_id="distrl-local-$(date +%Y%m%d-%H%M%S)-$$"
stamp="$cluster_dir/submitted"
touch "$stamp"
log "run directories go under $run_root"
log "submitting job $job_id: python -m distrl train --mode cluster --address auto --run-dir $run_root --no-progress ${train_args[*]}"
ray job submit --address "$dashboard_url" --submission-id "$job_id" --no-wait \
    --runtime-env-json "$runtime_env" \
    -- "$python_bin" -m distrl train --mode cluster --address auto --run-dir "$run_root" --no-progress "${train_args[@]}" \
    >"$cluster_dir/submit.log" 2>&1 || { cat "$cluster_dir/submit.log" >&2; job_id=""; log "error: ray job submit failed"; exit 1; }

log "following the job's logs (Ctrl-C stops the job and the cluster)"
ray job logs --address "$dashboard_url" --follow "$job_id" || log "warning: log streaming ended early"
status="$("$python_bin" "$helpers" job-status --address "$dashboard_url" --job-id "$job_id" --wait)"
log "job $job_id: $status"

run_dir="$(find "$run_root" -mindepth 2 -maxdepth 2 -name summary.json -newer "$stamp" -printf '%h\n' 2>/dev/null | sort | tail -n 1)"
if [ -n "$run_dir" ]; then
    log "run directory: $run_dir"
fi
[ "$status" = SUCCEEDED ]
