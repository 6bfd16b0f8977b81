#!/usr/bin/env bash
# permessage-deflate interop: Python `websockets` (sans-I/O client over a socket) exchanges
# compressed messages with the stompbox-ws Autobahn echo server (STOMPBOX_DEFLATE=1), for
# several offers (default, no context takeover, small windows).
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh

if ! python3 -c 'import websockets' 2>/dev/null; then
  pip_install 'websockets>=13' || true
fi
if ! python3 -c 'import websockets' 2>/dev/null; then
  if [ -n "${CI:-}" ]; then echo "FAILED: python websockets not installable" >&2; exit 1; fi
  echo "SKIPPED: python websockets not available"; exit 0
fi

cargo build -q --release -p stompbox-ws --features deflate --example autobahn_server
port=${DEFLATE_INTEROP_PORT:-19122}
log=$(mktemp)
STOMPBOX_DEFLATE=1 target/release/examples/autobahn_server "127.0.0.1:$port" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
wait_port "$port" 30
if ! python3 .ci/interop/deflate_websockets_client.py "$port"; then
  echo "--- server log"; cat "$log"; exit 1
fi
