#!/usr/bin/env bash
# A multi-node Ray cluster on this one machine, for tests and demos: one head and N worker
# nodes, each a separate raylet with its own CPUs and a custom resource naming it.
#
#   cluster/local_cluster.sh start [--workers N] [--head-cpus C] [--worker-cpus C] [--port P]
#                                  [--object-store-mb M] [--dashboard] [--temp-dir D]
#   cluster/local_cluster.sh status [--port P] [--temp-dir D]
#   cluster/local_cluster.sh stop   [--port P] [--temp-dir D] [--all]
#
# Then:  tuner sweep FILE --address 127.0.0.1:P      (P is 6390 unless --port says otherwise)
#
# Notes (checked with Ray 2.60.0):
# - Token authentication stays on. `start` makes sure ~/.ray/auth_token exists (it never
#   replaces one) and starts every node with RAY_AUTH_MODE=token. A driver that connects with
#   an explicit address must have RAY_AUTH_MODE=token set before it imports ray; `tuner` does
#   that itself when ~/.ray/auth_token or RAY_AUTH_TOKEN is there.
# - On Linux Ray replaces 127.0.0.1 (in --node-ip-address and --address) with the machine's
#   interface IP, so every node reports that IP; its GCS and raylets listen on all interfaces
#   anyway, so 127.0.0.1:P reaches the head all the same, and the token is what guards them.
#   (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 would keep 127.0.0.1, but then `ray start --address`
#   refuses to add worker nodes, so it is not used.)
# - The nodes keep their sessions under their own temp dir (/tmp/ray-local-P), not /tmp/ray,
#   so a plain `ray.init()` elsewhere on the machine still starts its own local instance
#   instead of joining this cluster, and `stop` ends only this cluster's processes.
# - --dashboard needs the dashboard's packages (pip install "ray[default]"); it listens on
#   127.0.0.1:8265 only.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -x "$REPO/.venv/bin/ray" ]]; then
    RAY="$REPO/.venv/bin/ray"
    PYTHON="$REPO/.venv/bin/python"
else
    RAY="$(command -v ray || true)"
    PYTHON="$(command -v python3 || command -v python || true)"
fi

usage() {
    sed -n '5,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}

die() {
    echo "local_cluster.sh: $*" >&2
    exit 1
}

COMMAND="${1:-}"
[[ -n "$COMMAND" ]] || usage
shift

WORKERS=2
HEAD_CPUS=1
WORKER_CPUS=1
PORT=6390
OBJECT_STORE_MB=""
DASHBOARD=false
TEMP_DIR=""
ALL=false
while [[ $# -gt 0 ]]; do
    case "$1" in
        --workers) WORKERS="${2:?--workers needs a number}"; shift 2 ;;
        --head-cpus) HEAD_CPUS="${2:?--head-cpus needs a number}"; shift 2 ;;
        --worker-cpus) WORKER_CPUS="${2:?--worker-cpus needs a number}"; shift 2 ;;
        --port) PORT="${2:?--port needs a number}"; shift 2 ;;
        --object-store-mb) OBJECT_STORE_MB="${2:?--object-store-mb needs a number}"; shift 2 ;;
        --dashboard) DASHBOARD=true; shift ;;
        --temp-dir) TEMP_DIR="${2:?--temp-dir needs a folder}"; shift 2 ;;
        --all) ALL=true; shift ;;
        -h | --help) usage 0 ;;
        *) echo "local_cluster.sh: unknown option: $1" >&2; usage ;;
    esac
done
for value in "$WORKERS" "$HEAD_CPUS" "$WORKER_CPUS" "$PORT" ${OBJECT_STORE_MB:+"$OBJECT_STORE_MB"}; do
    [[ "$value" =~ ^[0-9]+$ ]] || die "expected a whole number, got '$value'"
done
TEMP_DIR="${TEMP_DIR:-/tmp/ray-local-$PORT}"
ADDRESS="127.0.0.1:$PORT"
LOG="$TEMP_DIR/local_cluster.log"

[[ -n "$RAY" ]] || die "no ray found ($REPO/.venv/bin/ray or on PATH); run 'make install' first"

export RAY_AUTH_MODE=token
export RAY_USAGE_STATS_ENABLED=0

listening() {  # true when something accepts connections on 127.0.0.1:PORT
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

# This cluster's processes: every process whose command line names one of its sessions
# (gcs_server, raylets, monitor, dashboard, log monitor), plus their descendants (the
# agents and Ray workers, which rename themselves). Nothing else is touched.
cluster_pids() {
    ps -eo pid=,ppid=,args= | SESSIONS="$TEMP_DIR/session_" SELF="$$" awk '
        { parent[$1] = $2; if (index($0, ENVIRON["SESSIONS"]) && $1 != ENVIRON["SELF"]) mine[$1] = 1 }
        END {
            do { grew = 0
                 for (p in parent) if (!(p in mine) && (parent[p] in mine)) { mine[p] = 1; grew = 1 }
            } while (grew)
            for (p in mine) print p
        }'
}

print_nodes() {
    "$PYTHON" - "$ADDRESS" <<'EOF'
import sys

import ray

ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR")


def names(node):
    return sorted(k for k in node["Resources"] if k == "head" or k.startswith("worker_"))


nodes = sorted(ray.nodes(), key=lambda n: ("head" not in names(n), names(n)))
for node in nodes:
    resources = node["Resources"]
    print(
        f"  {'alive' if node['Alive'] else 'dead ':5}  {node['NodeID'][:12]}  "
        f"{node['NodeManagerAddress']:15}  CPU={resources.get('CPU', 0):g}  "
        f"{' '.join(names(node)) or '-'}"
    )
alive = sum(1 for n in nodes if n["Alive"])
print(f"{alive} alive node(s) at {sys.argv[1]}")
EOF
}

alive_of() {  # those of the given pids that still run (zombies do not count)
    local pid state
    for pid in "$@"; do
        state="$(ps -o stat= -p "$pid" 2>/dev/null || true)"
        if [[ -n "$state" && "$state" != Z* ]]; then echo "$pid"; fi
    done
}

stop_cluster() {
    # The list is taken once: a raylet's children lose their parent when it exits.
    local pids
    mapfile -t pids < <(cluster_pids)
    if [[ ${#pids[@]} -gt 0 ]]; then
        echo "stopping the local cluster in $TEMP_DIR (${#pids[@]} processes)"
        kill -TERM "${pids[@]}" 2>/dev/null || true
        for _ in $(seq 10); do  # up to 5 s for a clean exit, then SIGKILL
            mapfile -t pids < <(alive_of "${pids[@]}")
            if [[ ${#pids[@]} -eq 0 ]]; then break; fi
            sleep 0.5
        done
        if [[ ${#pids[@]} -gt 0 ]]; then
            kill -KILL "${pids[@]}" 2>/dev/null || true
        fi
    else
        echo "no local cluster running in $TEMP_DIR"
    fi
    rm -f "$TEMP_DIR/ray_current_cluster"
    if $ALL; then
        echo "--all: 'ray stop --force' ends EVERY Ray process of this user on the machine"
        "$RAY" stop --force
    fi
}

start_cluster() {
    if listening; then
        die "something already listens on $ADDRESS; 'local_cluster.sh stop --port $PORT' or pick another --port"
    fi
    if [[ -n "$(cluster_pids)" ]]; then
        die "a cluster is still running in $TEMP_DIR; run 'local_cluster.sh stop' first"
    fi
    mkdir -p "$TEMP_DIR"
    : >"$LOG"
    # If any node fails to start, take down the ones that did and show Ray's output.
    trap 'echo "local_cluster.sh: start failed; Ray output in $LOG:" >&2; tail -n 20 "$LOG" >&2; stop_cluster >&2' ERR

    # A token for the whole cluster; kept if one exists already.
    "$RAY" get-auth-token --generate >/dev/null 2>>"$LOG"

    local common=(--temp-dir "$TEMP_DIR" --disable-usage-stats)
    if [[ -n "$OBJECT_STORE_MB" ]]; then
        common+=(--object-store-memory "$((OBJECT_STORE_MB * 1024 * 1024))")
    fi
    local dashboard=(--include-dashboard=false)
    if $DASHBOARD; then
        dashboard=(--include-dashboard=true)
    fi

    echo "starting head: $HEAD_CPUS CPU, port $PORT"
    "$RAY" start --head --port "$PORT" --num-cpus "$HEAD_CPUS" --node-ip-address 127.0.0.1 \
        --dashboard-host 127.0.0.1 "${dashboard[@]}" --resources '{"head": 1}' \
        "${common[@]}" >>"$LOG" 2>&1
    for i in $(seq 1 "$WORKERS"); do
        echo "starting worker_$i: $WORKER_CPUS CPU"
        "$RAY" start --address "$ADDRESS" --num-cpus "$WORKER_CPUS" \
            --resources "{\"worker_$i\": 1}" "${common[@]}" >>"$LOG" 2>&1
    done
    trap - ERR

    print_nodes
    echo
    echo "Join it with:   tuner sweep FILE --address $ADDRESS"
    echo "Stop it with:   cluster/local_cluster.sh stop --port $PORT"
    if $DASHBOARD; then
        echo "Dashboard:      http://127.0.0.1:8265 (asks for the token in ~/.ray/auth_token)"
    fi
    echo "Ray's logs:     $TEMP_DIR/session_latest/logs"
}

case "$COMMAND" in
    start) start_cluster ;;
    stop) stop_cluster ;;
    status)
        listening || die "no Ray cluster answers at $ADDRESS"
        "$RAY" status --address "$ADDRESS"
        print_nodes
        ;;
    -h | --help | help) usage 0 ;;
    *) echo "local_cluster.sh: unknown command: $COMMAND" >&2; usage ;;
esac
