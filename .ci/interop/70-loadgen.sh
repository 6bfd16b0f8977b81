#!/usr/bin/env bash
# The client commands and a short `stompbox bench` smoke run against the stompbox server:
# publish | subscribe over WebSocket and TCP, then pairs (WebSocket), fan-out (TCP) and idle
# connections with heart-beats, a few seconds each, small N. Every message must be delivered and
# no connection lost. (The full side-by-side with RabbitMQ is benches/compare.sh.)
set -euo pipefail
source "$(dirname "$0")/server/common.bash"
build_server
trap stop_server EXIT
ulimit -n 4096 2>/dev/null || true
start_server loadgen 18701 18702 --heartbeat 500
WS="ws://127.0.0.1:18701/ws"
TCP="stomp://127.0.0.1:18702"

echo "--- publish | subscribe"
"$STOMPBOX" subscribe "$WS" /topic/smoke --count 3 --wait 10000 >"$OUT/loadgen-sub.out" 2>"$OUT/loadgen-sub.err" &
sub=$!
for _ in $(seq 100); do grep -q subscribed "$OUT/loadgen-sub.err" && break; sleep 0.1; done
printf 'a\nb\nc\n' | "$STOMPBOX" publish "$TCP" /topic/smoke -
wait "$sub"
[ "$(cat "$OUT/loadgen-sub.out")" = "$(printf 'a\nb\nc')" ] || { echo "subscribe got: $(cat "$OUT/loadgen-sub.out")" >&2; exit 1; }
echo "publish | subscribe: OK"

check() { # check NAME JSON: every message delivered, nothing lost, some connection ready
  local name=$1 json=$2
  echo "$json" > "$OUT/loadgen-$name.json"
  if ! grep -q '"delivery_ratio":1.000000' <<<"$json"; then
    echo "$name: not everything delivered: $json" >&2
    echo "server stats: $(curl -s http://127.0.0.1:18701/stats 2>/dev/null || true)" >&2
    exit 1
  fi
  grep -q '"lost":0,' <<<"$json" || { echo "$name: connections lost: $json" >&2; exit 1; }
  grep -q '"connect_failed":0,' <<<"$json" || { echo "$name: connections failed: $json" >&2; exit 1; }
  echo "$name: OK ($(grep -o '"deliver_rate":[0-9.]*' <<<"$json"), $(grep -o '"p99":[0-9]*' <<<"$json" | head -1) us)"
}
echo "--- bench smoke runs"
check pairs "$("$STOMPBOX" bench "$WS" --scenario pairs --pairs 10 --duration 2 --json -q)"
check fanout "$("$STOMPBOX" bench "$TCP" --scenario fanout --subscribers 50 --rate 200 --duration 2 --json -q)"
check fanin "$("$STOMPBOX" bench "$WS" --scenario fanin --publishers 50 --count 5000 --duration 5 --json -q)"
idle="$("$STOMPBOX" bench "$WS" --scenario idle --connections 300 --heartbeat 500 --duration 3 --json -q)"
check idle "$idle"
grep -q '"heartbeats_received":0,' <<<"$idle" && { echo "idle: no heart-beats from the server: $idle" >&2; exit 1; }
stop_server
echo "loadgen smoke: OK"
