#!/usr/bin/env bash
# A private Ray cluster on this machine, with token authentication, that is
# stopped without touching any other Ray on the machine. Used by
# launch/local_cluster.sh and the tests.
#
#   dir="$(mktemp -d /tmp/distrl-ray.XXXXXX)"        # short: Ray's sockets live below it
#   bash launch/lib/ray_cluster.sh start "$dir" [--workers W] [--head-cpus N] [--worker-cpus N] [--object-store-mb M]
#   . "$dir/cluster.env"     # exports RAY_AUTH_MODE, RAY_AUTH_TOKEN_PATH; sets DASHBOARD_URL, GCS_ADDRESS, ...
#   ray job submit --address "$DASHBOARD_URL" ...
#   bash launch/lib/ray_cluster.sh stop "$dir"       # stops exactly this cluster, then removes $dir
#
# start:
#   * writes a fresh random token to $dir/token (mode 600; $dir is mode 700) and
#     starts every node with RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$dir/token,
#     so the GCS, the raylets, the dashboard and the job API all require it;
#   * uses $dir/ray as Ray's --temp-dir (sessions, logs, sockets), never /tmp/ray;
#   * binds the dashboard / job API to 127.0.0.1 and picks free ports for
#     everything (GCS, dashboard, client server, node/object managers, agents,
#     metrics), so it runs next to other Ray instances on the machine;
#   * runs each `ray start` under setsid and records the session ids in
#     $dir/sids: every process of the node (daemons, workers, job drivers)
#     inherits its session.
# stop: terminates the processes in those sessions, those whose command line
#   names $dir, and their descendants (raylets first, the GCS last, SIGKILL
#   after a grace period), never anything else; then deletes $dir (kept when
#   DISTRL_KEEP_RAY_DIR=1, e.g. to read Ray's logs under $dir/ray/session_latest/logs).
#   `ray stop` is not used: it kills every Ray process of the user on the machine.
#
# Ray (2.60) advertises the machine's network address even when given
# --node-ip-address 127.0.0.1, and its gRPC servers (GCS, raylet, object
# manager, workers) listen on all interfaces; only the dashboard / job API
# binds to 127.0.0.1. Token authentication is what guards those ports.
#
# Env: DISTRL_VENV (default: .venv in the repository; its bin/ goes first on PATH when it exists),
# DISTRL_LOG_PREFIX (what progress lines start with; default ray_cluster).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
helpers="$repo_root/launch/lib/ray_helpers.py"
venv="${DISTRL_VENV:-$repo_root/.venv}"
if [ -x "$venv/bin/python" ]; then
    PATH="$venv/bin:$PATH"
fi
marker=".distrl-ray-cluster"

log() { echo "${DISTRL_LOG_PREFIX:-ray_cluster}: $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

check_dir() {
    local dir="$1"
    [ -n "$dir" ] || die "no cluster directory given"
    [ -d "$dir" ] || die "$dir is not a directory (create it with mktemp -d /tmp/distrl-ray.XXXXXX)"
    case "$dir" in /*) ;; *) die "the cluster directory must be an absolute path, got $dir" ;; esac
}

# Runs "$@" in a new session and appends that session's id to $dir/sids.
in_new_session() {
    local sid_file="$1"; shift
    if command -v setsid >/dev/null 2>&1; then
        # setsid --wait: stay in the foreground even when setsid has to fork. The inner shell is the
        # session leader, so its $$ is the session id; it then becomes `ray start` (exec).
        # shellcheck disable=SC2016
        setsid --wait bash -c 'echo "$$" >> "$0"; exec "$@"' "$sid_file" "$@"
    else
        log "warning: setsid not found; stop will find this node's processes by its temp dir only"
        "$@"
    fi
}

start_node() {
    # start_node NAME LOGFILE ray start ARGS...
    local name="$1" logfile="$2"; shift 2
    if ! in_new_session "$dir/sids" "$@" >"$logfile" 2>&1; then
        log "$name failed to start; the end of $logfile:"
        tail -n 30 "$logfile" >&2
        return 1
    fi
}

cmd_start() {
    local workers=0 head_cpus="" worker_cpus=1 object_store_mb=256
    dir="${1:-}"; shift || true
    check_dir "$dir"
    while [ $# -gt 0 ]; do
        case "$1" in
            --workers) workers="$2"; shift 2 ;;
            --head-cpus) head_cpus="$2"; shift 2 ;;
            --worker-cpus) worker_cpus="$2"; shift 2 ;;
            --object-store-mb) object_store_mb="$2"; shift 2 ;;
            *) die "unknown option for start: $1" ;;
        esac
    done
    for value in "$workers" "$worker_cpus" "$object_store_mb" ${head_cpus:+"$head_cpus"}; do
        [[ "$value" =~ ^[0-9]+$ ]] || die "expected a non-negative integer, got '$value'"
    done
    if [ -z "$head_cpus" ]; then
        # What the workers do not take, at least 1.
        head_cpus=$(( $(nproc) - workers * worker_cpus ))
        [ "$head_cpus" -ge 1 ] || head_cpus=1
    fi
    local temp_dir="$dir/ray"
    # Ray keeps Unix sockets under $temp_dir/session_<date>_<pid>/sockets/; the longest must fit in 107 bytes.
    local socket_problem
    socket_problem="$(python "$helpers" socket-check --temp-dir "$temp_dir" 2>&1 >/dev/null)" \
        || die "$socket_problem (choose a shorter DISTRL_RAY_TMP, e.g. /tmp)"
    [ ! -e "$dir/$marker" ] || die "$dir already holds a cluster; stop it first"

    chmod 700 "$dir"
    touch "$dir/$marker" "$dir/sids"
    (umask 077 && python -c 'import secrets; print(secrets.token_hex(32), end="")' > "$dir/token")
    chmod 600 "$dir/token"

    export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$dir/token"
    unset RAY_AUTH_TOKEN RAY_ADDRESS RAY_API_SERVER_ADDRESS  # RAY_AUTH_TOKEN would win over the file
    export RAY_USAGE_STATS_ENABLED=0

    local ports gcs_port dashboard_port attempt
    local object_store_bytes=$(( object_store_mb * 1024 * 1024 ))
    # `ray start` gives a node a fixed 30 s to register its raylet with the GCS; on a busy machine
    # (two clusters starting at once on 2 cores) the head can miss that and exit with "The current
    # node timed out during startup". That failure alone is retried once, on fresh ports, after
    # stopping what the attempt left running; any other failure ends the start.
    for attempt in 1 2; do
        read -r -a ports <<< "$(python "$helpers" free-ports 9)"
        gcs_port="${ports[0]}" dashboard_port="${ports[1]}"
        # Written first, so that stop works even when a node fails to start.
        cat > "$dir/cluster.env" <<EOF
export RAY_AUTH_MODE=token
export RAY_AUTH_TOKEN_PATH='$dir/token'
unset RAY_AUTH_TOKEN
RAY_TEMP_DIR='$temp_dir'
GCS_PORT=$gcs_port
DASHBOARD_PORT=$dashboard_port
DASHBOARD_URL='http://127.0.0.1:$dashboard_port'
EOF

        log "starting the head node (GCS port $gcs_port, dashboard/jobs on 127.0.0.1:$dashboard_port, $head_cpus CPUs, temp dir $temp_dir)"
        if start_node "head node" "$dir/head.log" ray start --head \
            --node-ip-address 127.0.0.1 --port "$gcs_port" \
            --include-dashboard true --dashboard-host 127.0.0.1 --dashboard-port "$dashboard_port" \
            --ray-client-server-port "${ports[2]}" \
            --node-manager-port "${ports[3]}" --object-manager-port "${ports[4]}" \
            --dashboard-agent-listen-port "${ports[5]}" --dashboard-agent-grpc-port "${ports[6]}" \
            --runtime-env-agent-port "${ports[7]}" --metrics-export-port "${ports[8]}" \
            --num-cpus "$head_cpus" --num-gpus 0 --object-store-memory "$object_store_bytes" \
            --temp-dir "$temp_dir" --disable-usage-stats; then
            break
        fi
        if [ "$attempt" -eq 2 ] || ! grep -q "timed out during startup" "$dir/head.log"; then
            exit 1
        fi
        log "the head node's raylet did not register within Ray's 30 s; stopping that attempt and starting it again"
        python "$helpers" stop-scoped --temp-dir "$dir" --sid-file "$dir/sids" >/dev/null
        : > "$dir/sids"
        rm -rf -- "$temp_dir"
        mv -- "$dir/head.log" "$dir/head.attempt1.log"
    done
    # The address the head advertises (Ray replaces 127.0.0.1 by the machine's address).
    local gcs_address
    gcs_address="$(cat "$temp_dir/ray_current_cluster")"
    echo "GCS_ADDRESS='$gcs_address'" >> "$dir/cluster.env"

    local i
    for (( i = 1; i <= workers; i++ )); do
        read -r -a ports <<< "$(python "$helpers" free-ports 6)"
        log "starting worker node $i ($worker_cpus CPUs)"
        start_node "worker node $i" "$dir/worker$i.log" ray start --address "$gcs_address" \
            --node-ip-address 127.0.0.1 \
            --node-manager-port "${ports[0]}" --object-manager-port "${ports[1]}" \
            --dashboard-agent-listen-port "${ports[2]}" --dashboard-agent-grpc-port "${ports[3]}" \
            --runtime-env-agent-port "${ports[4]}" --metrics-export-port "${ports[5]}" \
            --num-cpus "$worker_cpus" --num-gpus 0 --object-store-memory "$object_store_bytes" \
            --temp-dir "$temp_dir" --disable-usage-stats
    done
    local alive
    if ! alive="$(python "$helpers" wait-nodes --address "http://127.0.0.1:$dashboard_port" \
                  --count $(( workers + 1 )) --timeout-s 60)"; then
        die "only $alive of $(( workers + 1 )) nodes came up; see $dir/*.log"
    fi
    log "cluster up: $alive node(s), GCS $gcs_address, sessions $(tr '\n' ' ' < "$dir/sids")"
}

cmd_stop() {
    dir="${1:-}"
    check_dir "$dir"
    [ -f "$dir/$marker" ] || die "$dir was not made by ray_cluster.sh start; not touching it"
    local count
    count="$(python "$helpers" stop-scoped --temp-dir "$dir" --sid-file "$dir/sids")"
    log "stopped $count process(es) of the cluster in $dir"
    if [ "${DISTRL_KEEP_RAY_DIR:-0}" = "1" ]; then
        log "kept $dir (DISTRL_KEEP_RAY_DIR=1)"
    else
        rm -rf -- "$dir"
    fi
}

case "${1:-}" in
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
esac
