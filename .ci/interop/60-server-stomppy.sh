#!/usr/bin/env bash
# stomp.py against the stompbox server, over raw STOMP/TCP and over WebSocket (issue 6).
set -euo pipefail
source "$(dirname "$0")/server/common.bash"
pip_install stomp.py websocket-client || skip_or_fail "pip install stomp.py failed"
python3 -c "import stomp, websocket" 2>/dev/null || skip_or_fail "stomp.py is not importable"
build_server
trap stop_server EXIT
start_server stomppy 18601 18602 --user alice:secret --user bob:hunter2
python3 "$(dirname "$0")/server/stomppy_test.py" tcp 127.0.0.1 18602
python3 "$(dirname "$0")/server/stomppy_test.py" ws 127.0.0.1 18601
stop_server
echo "stomp.py interop: OK"
