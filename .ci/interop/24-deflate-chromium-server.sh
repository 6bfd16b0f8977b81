#!/usr/bin/env bash
# permessage-deflate between headless Chromium and the stompbox server (issue 9, server part):
# the demo-page chat of 62-server-browser.sh, checking each page's negotiated `ws.extensions`:
# permessage-deflate by default, the same with --deflate-no-context-takeover (which the answer
# must carry), and none with --no-deflate. Chat must work in every mode.
set -euo pipefail
source "$(dirname "$0")/server/common.bash"
[ -x /usr/bin/chromium ] || apt_install chromium || true
[ -x /usr/bin/chromium ] || skip_or_fail "/usr/bin/chromium is not installed (apt package chromium)"
command -v node >/dev/null || apt_install nodejs npm || true
command -v node >/dev/null || skip_or_fail "node is not available"
npm_install playwright-core
build_server
trap stop_server EXIT
run_mode() { # EXPECTED_EXTENSIONS SERVER_FLAGS...
  local want=$1; shift
  start_server deflate-browser 18241 18242 "$@"
  EXPECT_EXTENSIONS="$want" NODE_DIR="$NODE_DIR" \
    node "$(dirname "$0")/server/browser_test.mjs" 18241 "$OUT/deflate-page.png"
  stop_server
}
run_mode "permessage-deflate"
run_mode "permessage-deflate; server_no_context_takeover; client_no_context_takeover" \
  --deflate-no-context-takeover
run_mode none --no-deflate
echo "3 passed, 0 failed: Chromium chats with the server, deflate negotiated as configured"
