#!/usr/bin/env bash
# stompbox-upgrade against Python's `websockets` client: builds and runs the accept_close
# example, then runs a client that checks the 101, the chosen subprotocol, the received close,
# a 426 rejection and a plain HTTP page.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh

if ! python3 -c 'import websockets' 2>/dev/null; then
  pip_install 'websockets>=12' || true
fi
if ! python3 -c 'import websockets' 2>/dev/null; then
  if [ -n "${CI:-}" ]; then echo "FAIL: python websockets not installable" >&2; exit 1; fi
  echo "SKIPPED: python websockets not available"; exit 0
fi

cargo build -q -p stompbox-upgrade --example accept_close
port=${UPGRADE_INTEROP_PORT:-19101}
log=$(mktemp)
target/debug/examples/accept_close "127.0.0.1:$port" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
wait_port "$port" 30
if ! python3 .ci/interop/upgrade_websockets_client.py "$port"; then
  echo "--- server log"; cat "$log"; exit 1
fi
echo "--- server log"; cat "$log"
