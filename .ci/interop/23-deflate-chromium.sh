#!/usr/bin/env bash
# permessage-deflate with headless Chromium: a page sends 21 text messages (STOMP-like frames,
# 40 KB of mixed UTF-8) and 100 KB of binary zeros to the stompbox-ws echo server with
# STOMPBOX_DEFLATE=1; Chromium offers permessage-deflate by default. Passes when every echo
# matches and the negotiated `ws.extensions` is permessage-deflate.
set -euo pipefail
source "$(dirname "$0")/server/common.bash"
cd "$ROOT"

[ -x /usr/bin/chromium ] || apt_install chromium || true
[ -x /usr/bin/chromium ] || skip_or_fail "/usr/bin/chromium is not installed (apt package chromium)"
command -v node >/dev/null || apt_install nodejs npm || true
command -v node >/dev/null || skip_or_fail "node is not available"
npm_install playwright-core

cargo build -q --release -p stompbox-ws --features deflate --example autobahn_server
port=${DEFLATE_CHROMIUM_PORT:-19123}
log=$(mktemp)
STOMPBOX_DEFLATE=1 target/release/examples/autobahn_server "127.0.0.1:$port" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
wait_port "$port" 30
page="file://$(pwd)/.ci/interop/deflate_chromium.html?port=$port"
# playwright-core waits for the page's verdict (the exchange is real network I/O, which a
# --dump-dom virtual-time budget does not wait for).
result=$(NODE_DIR="$NODE_DIR" timeout 120 node .ci/interop/deflate_chromium_page.mjs "$page" 2>&1 || true)
echo "chromium: $result"
case "$result" in
  *"ECHO-OK extensions=[permessage-deflate"*) echo "1 passed, 0 failed" ;;
  *) echo "--- server log"; cat "$log"; echo "0 passed, 1 failed"; exit 1 ;;
esac
