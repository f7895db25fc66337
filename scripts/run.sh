#!/usr/bin/env bash
# `make run`: a local broker (unless OCPPGW_KAFKA__SERVERS names one), the reference CSMS, one
# gateway, the web console and one simulated station, all logging to this terminal. Ctrl-C stops
# what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export OCPPGW_CSMS__HEARTBEAT_INTERVAL=${OCPPGW_CSMS__HEARTBEAT_INTERVAL:-10}
export OCPPGW_LOGGING__FORMAT=${OCPPGW_LOGGING__FORMAT:-text}
pids=()
started_kafka=0

cleanup() {
  trap - INT TERM EXIT
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  if [ "$started_kafka" = 1 ]; then bash scripts/kafka/kafka.sh stop; fi
}
trap cleanup INT TERM EXIT

# wait_for_port HOST PORT NAME: return once HOST:PORT accepts connections; give up after 90 s.
wait_for_port() {
  local deadline=$((SECONDS + 90))
  until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then echo "run: the $3 did not open port $2" >&2; exit 1; fi
    sleep 0.2
  done
}

if [ -z "${OCPPGW_KAFKA__SERVERS:-}" ]; then
  if ! bash scripts/kafka/kafka.sh status >/dev/null 2>&1; then
    bash scripts/kafka/kafka.sh start
    started_kafka=1
  fi
  export OCPPGW_KAFKA__SERVERS="127.0.0.1:${KAFKA_PORT:-9092}"
fi

# Each program runs in its own session, so Ctrl-C reaches only this script, which stops them once, in order.
setsid $BIN/csms-server --config config.cfg & pids+=($!)
setsid $BIN/ocpp-gw --config config.cfg & pids+=($!)

wait_for_port 127.0.0.1 "${OCPPGW_OCPP_GATEWAY__LISTENING_PORT:-9000}" gateway

setsid $BIN/csms-server console --config config.cfg & pids+=($!)
setsid $BIN/charge-station --config config.cfg --charge & pids+=($!)

console_host=${OCPPGW_CONSOLE__HOST:-127.0.0.1}
console_port=${OCPPGW_CONSOLE__PORT:-8080}
wait_for_port "$console_host" "$console_port" console
printf '\n  Console: http://%s:%s/\n\n' "$console_host" "$console_port"
wait "${pids[@]}"
