#!/usr/bin/env bash
# 1,000 concurrent WebSocket STOMP clients on one topic, each receiving every message of a burst.
set -euo pipefail
source "$(dirname "$0")/server/common.bash"
command -v node >/dev/null || apt_install nodejs npm || true
command -v node >/dev/null || skip_or_fail "node is not available"
npm_install ws
build_server
trap stop_server EXIT
ulimit -n 8192 2>/dev/null || true
start_server fanout 18641 18642
NODE_DIR="$NODE_DIR" node "$(dirname "$0")/server/fanout_test.mjs" 18641 1000 100
stop_server
echo "fan-out to 1,000 WebSocket clients: OK"
