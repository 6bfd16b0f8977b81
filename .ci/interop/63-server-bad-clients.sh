#!/usr/bin/env bash
# Bad clients (garbage, half-sent handshake, oversized frames, slow consumer) against the stompbox
# server, while a healthy client keeps working (issue 6).
set -euo pipefail
source "$(dirname "$0")/server/common.bash"
pip_install websockets || skip_or_fail "pip install websockets failed"
python3 -c "import websockets.sync.client" 2>/dev/null || skip_or_fail "python websockets is not importable"
build_server
trap stop_server EXIT
start_server badclients 18631 18632 --max-message 65536 --max-output 1048576 --handshake-timeout 1000
python3 "$(dirname "$0")/server/bad_clients_test.py" 18631 18632
stop_server
echo "bad clients: OK"
