#!/usr/bin/env bash
# Interop: two stompbox servers (--relay) relaying /topic and /queue to one RabbitMQ; stomp.py
# clients on both: subscribe on A / publish on B, a queue shared across servers, acks and
# redelivery, RabbitMQ restarted mid-run (clients get ERROR, system sessions reconnect, new
# clients work). Runs its own private RabbitMQ (node stompbox-relay, STOMP 127.0.0.1:61624) via
# .ci/rabbitmq.sh, so it never disturbs the shared one.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/interop/server/common.bash
export STOMPBOX_RABBITMQ_DIR="${TMPDIR:-/tmp}/stompbox-rabbitmq-relay"
export STOMPBOX_RABBITMQ_NODE=stompbox-relay
export STOMPBOX_RABBITMQ_AMQP_PORT=5683
export STOMPBOX_RABBITMQ_STOMP_PORT=61624
export STOMPBOX_RABBITMQ_WEB_STOMP_PORT=15684
export STOMPBOX_RABBITMQ_DIST_PORT=25689
pip_install stomp.py || skip_or_fail "pip install stomp.py failed"
python3 -c "import stomp" 2>/dev/null || skip_or_fail "stomp.py is not importable"
bash .ci/rabbitmq.sh start || skip_or_fail "RabbitMQ could not be started"
build_server
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  bash .ci/rabbitmq.sh stop || true
}
trap cleanup EXIT
relay=(--relay stomp://127.0.0.1:61624 --relay-login guest --relay-passcode guest
       --relay-vhost / --relay-heartbeat 2000 --heartbeat 0)
start_server relay-a 18701 18702 "${relay[@]}"; pids+=("$SERVER_PID")
start_server relay-b 18711 18712 "${relay[@]}"; pids+=("$SERVER_PID")
python3 .ci/interop/relay/relay_rabbitmq_test.py 18702 18701 18712 18711 \
  "bash .ci/rabbitmq.sh stop && bash .ci/rabbitmq.sh start"
echo "relay RabbitMQ interop: OK"
