#!/usr/bin/env bash
# A local Posteriors cluster on 127.0.0.1: one redis-server (membership and checkpoints) and N silo processes.
#   ./scripts/cluster.sh up N       start redis (installed with apt when missing, as root) and N silos; prints the address
#   ./scripts/cluster.sh down       stop them by their recorded PIDs
#   ./scripts/cluster.sh status     list the recorded processes and whether they run
# Environment: REDIS_PORT (6379), SILO_PORT (11111; silo k listens on SILO_PORT+k), GATEWAY_PORT (30000; +k),
# TORCH_THREADS (1 per silo), LANES (1: members stepped at a time per silo), DASHBOARD_PORT (unset: no dashboard; set: silo 0 serves the Orleans dashboard there),
# SILO_ARGS (more posteriors-silo options, e.g. "--probe-timeout 2 --death-votes 1").
set -euo pipefail
cd "$(dirname "$0")/.."
state=.cluster
redis_port=${REDIS_PORT:-6379}
silo_port=${SILO_PORT:-11111}
gateway_port=${GATEWAY_PORT:-30000}
threads=${TORCH_THREADS:-1}
lanes=${LANES:-1}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds what
  local deadline=$((SECONDS + $2))
  until port_open "$1"; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "$3 did not open port $1 within $2 s (log: $4)." >&2; return 1; fi
    sleep 0.5
  done
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

ensure_redis() {
  command -v redis-server >/dev/null && return
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "Installing redis-server (Debian package)..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    # The package starts a system service on 6379; this cluster runs its own instance.
    if command -v systemctl >/dev/null; then systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
  else
    echo "redis-server is missing: install Debian's redis-server package (apt-get install redis-server) and retry." >&2
    exit 2
  fi
}

up() {
  local n=${1:?usage: cluster.sh up N}
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "N must be a positive integer; got '$n'." >&2; exit 2; }
  if ls "$state"/*.pid >/dev/null 2>&1; then echo "A cluster is recorded in $state/; run ./scripts/cluster.sh down first." >&2; exit 2; fi
  ensure_redis
  mkdir -p "$state"
  if port_open "$redis_port"; then echo "Port $redis_port is taken; set REDIS_PORT." >&2; exit 2; fi
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$PWD/$state" \
    >"$state/redis.log" 2>&1 &
  echo $! >"$state/redis.pid"
  wait_port "$redis_port" 20 redis-server "$state/redis.log"

  dotnet build src/Posteriors.Distributed.Silo -c Release --nologo -v q >"$state/build.log" 2>&1 \
    || { echo "Building the silo failed (log: $state/build.log)." >&2; down; exit 1; }
  local silo=src/Posteriors.Distributed.Silo/bin/Release/net10.0/posteriors-silo.dll
  for ((k = 0; k < n; k++)); do
    local extra=()
    if [ "$k" -eq 0 ] && [ -n "${DASHBOARD_PORT:-}" ]; then extra=(--dashboard "$DASHBOARD_PORT"); fi
    # setsid: each silo leads a session of its own, so the kernel's autogroup scheduler shares the cores between silos
    # (as if on their own machines) rather than between this shell's session and the others.
    setsid dotnet "$silo" --redis "127.0.0.1:$redis_port" --address 127.0.0.1 --silo-port $((silo_port + k)) \
      --gateway-port $((gateway_port + k)) --torch-threads "$threads" --lanes "$lanes" "${extra[@]}" ${SILO_ARGS:-} >"$state/silo-$k.log" 2>&1 &
    echo $! >"$state/silo-$k.pid"
  done
  for ((k = 0; k < n; k++)); do
    wait_port $((gateway_port + k)) 60 "silo $k" "$state/silo-$k.log" || { down; exit 1; }
  done
  echo "Cluster up: redis 127.0.0.1:$redis_port, $n silo(s) (gateways $gateway_port..$((gateway_port + n - 1)))."
  echo "Run the main job on it with: ./scripts/run.sh --cluster 127.0.0.1:$redis_port"
}

down() {
  [ -d "$state" ] || { echo "No cluster recorded."; return 0; }
  local pids=()
  for f in "$state"/silo-*.pid "$state"/redis.pid; do
    [ -f "$f" ] || continue
    local pid; pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; pids+=("$pid"); fi
    rm -f "$f"
  done
  local deadline=$((SECONDS + 15))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  done
  echo "Cluster down (${#pids[@]} process(es) stopped)."
}

status() {
  for f in "$state"/redis.pid "$state"/silo-*.pid; do
    [ -f "$f" ] || continue
    if running "$f"; then echo "$(basename "$f" .pid): running (pid $(cat "$f"))"; else echo "$(basename "$f" .pid): not running"; fi
  done
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up N | down | status" >&2; exit 2 ;;
esac
