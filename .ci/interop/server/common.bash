# Helpers for the server's interop scripts (.ci/interop/6*.sh); sourced, not run by .ci/run.
# Every script builds the release binary once, starts it on its own ports and stops it on exit.
ROOT=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
# shellcheck source=../../lib.sh
source "$ROOT/.ci/lib.sh"
OUT="$ROOT/target/interop"
mkdir -p "$OUT"
STOMPBOX="$ROOT/target/release/stompbox"
SERVER_PID=""

build_server() {
  (cd "$ROOT" && cargo build --release -q -p stompbox-server)
}

# start_server NAME HTTP_PORT STOMP_PORT [FLAGS...]: starts the binary in the background, logs to
# $OUT/NAME.log, waits for both ports.
start_server() {
  local name=$1 http=$2 stomp=$3; shift 3
  "$STOMPBOX" --http "127.0.0.1:$http" --stomp "127.0.0.1:$stomp" --stats-interval 0 "$@" \
    >>"$OUT/$name.log" 2>&1 &
  SERVER_PID=$!
  wait_port "$http" 30 && wait_port "$stomp" 30
}

# stop_server: SIGTERM, then expects a graceful exit 0 within 5 s.
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  local pid=$SERVER_PID; SERVER_PID=""
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "server $pid did not stop within 5 s of SIGTERM" >&2
    kill -KILL "$pid" 2>/dev/null
    return 1
  fi
  local rc=0; wait "$pid" || rc=$?
  [ "$rc" -eq 0 ] || { echo "server exited with status $rc after SIGTERM" >&2; return 1; }
}

# skip_or_fail WHY: a missing peer fails under CI, prints SKIPPED otherwise.
skip_or_fail() {
  if [ -n "${CI:-}" ]; then echo "FAILED: $1 (CI is set, so a missing peer fails)" >&2; exit 1; fi
  echo "SKIPPED: $1"; exit 0
}

# npm_install PKG...: packages (names only) into one node_modules for the interop peers.
NODE_DIR="$OUT/node"
npm_install() {
  command -v npm >/dev/null || apt_install nodejs npm || skip_or_fail "npm is not available"
  mkdir -p "$NODE_DIR"
  local missing=()
  for p in "$@"; do
    [ -d "$NODE_DIR/node_modules/$p" ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  (cd "$NODE_DIR" && { [ -f package.json ] || echo '{"private":true}' > package.json; } \
    && npm install --silent --no-audit --no-fund "${missing[@]}" >/dev/null) \
    || skip_or_fail "npm install ${missing[*]} failed"
}
