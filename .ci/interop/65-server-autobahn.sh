#!/usr/bin/env bash
# Autobahn|Testsuite (server mode, sections 1-10) against the server's WebSocket layer, through
# the binary's echo route (--ws-echo /echo). Every case must pass (OK, NON-STRICT or INFO).
set -euo pipefail
source "$(dirname "$0")/server/common.bash"
AUTOBAHN="$ROOT/../shared/autobahn"
[ -x "$AUTOBAHN/test-server.sh" ] || AUTOBAHN=/work/shared/autobahn
[ -x "$AUTOBAHN/test-server.sh" ] || skip_or_fail "shared/autobahn is not beside the clone"
build_server
trap stop_server EXIT
start_server autobahn 18651 18652 --ws-echo /echo --log warn
AUTOBAHN_EXCLUDE="12.*,13.*" AUTOBAHN_AGENT=stompbox-server \
  "$AUTOBAHN/test-server.sh" ws://127.0.0.1:18651/echo "$OUT/autobahn-server" "1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*" \
  | tee "$OUT/autobahn-server.txt"
stop_server
echo "Autobahn (server mode, 1-10) against the stompbox server: OK"
