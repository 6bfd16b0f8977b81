#!/usr/bin/env bash
# permessage-deflate with headless Chromium: a page sends 21 text messages (STOMP-like frames,
# 40 KB of mixed UTF-8) and 100 KB of binary zeros to the stompbox-ws echo server with
# STOMPBOX_DEFLATE=1; Chromium offers permessage-deflate by default. Passes when every echo
# matches and the negotiated `ws.extensions` is permessage-deflate.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
  apt_install chromium || true
  CHROMIUM=$(command -v chromium || true)
fi
if [ -z "$CHROMIUM" ]; then
  if [ -n "${CI:-}" ]; then echo "FAILED: chromium not installable" >&2; exit 1; fi
  echo "SKIPPED: chromium not available"; exit 0
fi

cargo build -q --release -p stompbox-ws --features deflate --example autobahn_server
port=${DEFLATE_CHROMIUM_PORT:-19123}
log=$(mktemp)
STOMPBOX_DEFLATE=1 target/release/examples/autobahn_server "127.0.0.1:$port" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
wait_port "$port" 30
page="file://$(pwd)/.ci/interop/deflate_chromium.html?port=$port"
# --dump-dom prints the page once its virtual-time budget is used up; the WebSocket does not
# hold virtual time back, so on a loaded machine the exchange may not be done yet: retry.
result=""
for attempt in 1 2 3 4 5; do
  result=$(timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --virtual-time-budget=60000 \
    --dump-dom "$page" 2>/dev/null | grep -o '<pre id="out">[^<]*</pre>' || true)
  echo "chromium (attempt $attempt): $result"
  case "$result" in *pending*|"") sleep 1 ;; *) break ;; esac
done
case "$result" in
  *"ECHO-OK extensions=[permessage-deflate"*) echo "1 passed, 0 failed" ;;
  *) echo "--- server log"; cat "$log"; echo "0 passed, 1 failed"; exit 1 ;;
esac
