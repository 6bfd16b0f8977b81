#!/usr/bin/env bash
# A private RabbitMQ for interop tests: `bash .ci/rabbitmq.sh start` / `stop` / `status`.
# Installs Debian's rabbitmq-server when missing, enables rabbitmq_stomp and
# rabbitmq_web_stomp, and runs the broker directly in the background (no systemd), with its
# own config, data and log dirs under a temp dir and loopback ports only:
#   AMQP 127.0.0.1:5673, STOMP 127.0.0.1:61614, web-stomp 127.0.0.1:15674, dist 25679.
# Env: STOMPBOX_RABBITMQ_DIR (default ${TMPDIR:-/tmp}/stompbox-rabbitmq).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

dir="${STOMPBOX_RABBITMQ_DIR:-${TMPDIR:-/tmp}/stompbox-rabbitmq}"
bin=/usr/lib/rabbitmq/bin
export RABBITMQ_NODENAME="stompbox@localhost"
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=5673
export RABBITMQ_DIST_PORT=25679
export RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
export RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config"
export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
export RABBITMQ_MNESIA_BASE="$dir/mnesia"
export RABBITMQ_LOG_BASE="$dir/log"
export RABBITMQ_PID_FILE="$dir/rabbitmq.pid"
export RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
export HOME="$dir/home"   # the Erlang cookie lives here, shared by server and CLI

start() {
  if [ ! -x "$bin/rabbitmq-server" ]; then
    echo "installing rabbitmq-server (apt)"
    apt_install rabbitmq-server
  fi
  if status >/dev/null 2>&1; then echo "rabbitmq already running"; return 0; fi
  mkdir -p "$dir/mnesia" "$dir/log" "$HOME"
  : > "$RABBITMQ_CONF_ENV_FILE"
  cat > "$RABBITMQ_CONFIG_FILE" <<CONF
listeners.tcp.default = 127.0.0.1:5673
stomp.listeners.tcp.1 = 127.0.0.1:61614
web_stomp.tcp.ip = 127.0.0.1
web_stomp.tcp.port = 15674
loopback_users.guest = true
log.console = false
log.file.level = info
CONF
  echo "[]." > "$RABBITMQ_ADVANCED_CONFIG_FILE"
  echo "[rabbitmq_stomp,rabbitmq_web_stomp]." > "$RABBITMQ_ENABLED_PLUGINS_FILE"
  echo "starting rabbitmq ($RABBITMQ_NODENAME) in $dir"
  (cd "$dir" && exec nohup "$bin/rabbitmq-server" > "$dir/log/startup.log" 2>&1) &
  echo $! > "$dir/launcher.pid"
  if ! wait_port 61614 120; then
    echo "rabbitmq did not open STOMP port 61614; log tail:" >&2
    tail -n 40 "$dir/log/startup.log" >&2 || true
    return 1
  fi
  echo "rabbitmq STOMP ready on 127.0.0.1:61614"
}

status() {
  "$bin/rabbitmqctl" -q -n "$RABBITMQ_NODENAME" status >/dev/null 2>&1
}

stop() {
  if [ -x "$bin/rabbitmqctl" ]; then
    # With the pid file, `stop` waits until the node's OS process has exited.
    "$bin/rabbitmqctl" -q -n "$RABBITMQ_NODENAME" stop "$RABBITMQ_PID_FILE" >/dev/null 2>&1 || true
  fi
  # Whatever is left of what start launched (the Erlang VM, then the launcher script).
  for pidfile in "$RABBITMQ_PID_FILE" "$dir/launcher.pid"; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
  echo "rabbitmq stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if status; then echo running; else echo stopped; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
