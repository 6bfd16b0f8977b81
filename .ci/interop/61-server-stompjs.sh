#!/usr/bin/env bash
# @stomp/stompjs in Node (with `ws`) against the stompbox server: heart-beats, reconnect (issue 6).
set -euo pipefail
source "$(dirname "$0")/server/common.bash"
command -v node >/dev/null || apt_install nodejs npm || true
command -v node >/dev/null || skip_or_fail "node is not available"
npm_install @stomp/stompjs ws
build_server
trap 'stop_server; exec 3>&- 2>/dev/null || true' EXIT
start_server stompjs 18611 18612 --heartbeat 1000
# The demo page's own client first (parser splits, encoder, live round trip).
NODE_DIR="$NODE_DIR" node "$(dirname "$0")/server/stompbox_js_test.mjs" "$ROOT/crates/server/demo/stompbox.js" 18611
fifo="$OUT/stompjs.fifo"; rm -f "$fifo"; mkfifo "$fifo"
NODE_DIR="$NODE_DIR" node "$(dirname "$0")/server/stompjs_test.mjs" 18611 <"$fifo" >"$OUT/stompjs.out" 2>&1 &
node_pid=$!
exec 3>"$fifo"
# wait for the test to ask for a restart
for _ in $(seq 300); do grep -q '^RESTART' "$OUT/stompjs.out" && break; kill -0 $node_pid 2>/dev/null || break; sleep 0.1; done
if grep -q '^RESTART' "$OUT/stompjs.out"; then
  stop_server
  sleep 1
  start_server stompjs 18611 18612 --heartbeat 1000
  echo go >&3
fi
rc=0; wait $node_pid || rc=$?
cat "$OUT/stompjs.out"
[ $rc -eq 0 ] || { echo "stompjs interop FAILED (server log: $OUT/stompjs.log)"; exit 1; }
stop_server
echo "stompjs interop: OK"
