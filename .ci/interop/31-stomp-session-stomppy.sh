#!/usr/bin/env bash
# Interop: stomp.py against stompbox-stomp's ServerSession, hosted by the example
# `session_server` (std::net, manual receipts, whole-frame output, connect timeout 1 s):
# receipts in order (RECEIPT after the MESSAGE a SEND caused; a held SEND's receipt before
# COMMIT), transactions, acks, a 64 KiB binary body, disconnect, and the connect timeout.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh
skip_or_fail() {
  if [ -n "${CI:-}" ]; then echo "FAILED: $1 (CI is set, so a missing peer fails)" >&2; exit 1; fi
  echo "SKIPPED: $1"; exit 0
}
python3 -c "import stomp" 2>/dev/null || pip_install stomp.py || skip_or_fail "pip install stomp.py failed"
python3 -c "import stomp" 2>/dev/null || skip_or_fail "stomp.py is not importable"
cargo build -q -p stompbox-stomp --example session_server
PORT=18631
./target/debug/examples/session_server "127.0.0.1:$PORT" 1000 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true' EXIT
wait_port "$PORT" 30
python3 .ci/interop/stomp/session_stomppy_test.py 127.0.0.1 "$PORT" 1000
echo "stomp.py vs ServerSession interop: OK"
