#!/usr/bin/env bash
# Headless Chromium on the demo page: two pages chat through the server (issue 6).
set -euo pipefail
source "$(dirname "$0")/server/common.bash"
[ -x /usr/bin/chromium ] || apt_install chromium || true
[ -x /usr/bin/chromium ] || skip_or_fail "/usr/bin/chromium is not installed (apt package chromium)"
command -v node >/dev/null || apt_install nodejs npm || true
command -v node >/dev/null || skip_or_fail "node is not available"
npm_install playwright-core
build_server
trap stop_server EXIT
start_server browser 18621 18622
NODE_DIR="$NODE_DIR" node "$(dirname "$0")/server/browser_test.mjs" 18621 "$OUT/demo-page.png"
stop_server
echo "browser interop: OK (screenshot artifact: $OUT/demo-page.png)"
