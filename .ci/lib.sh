# Shared helpers for .ci/interop/*.sh (source this file).
# apt_install PKG...: installs Debian packages once (apt-get update first).
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "${STOMPBOX_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    export STOMPBOX_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
# pip_install PKG...: installs Python packages for python3 quietly.
pip_install() { python3 -m pip install -q --disable-pip-version-check "$@"; }
# wait_port PORT [SECONDS]: waits until 127.0.0.1:PORT accepts connections.
wait_port() {
  local port=$1 deadline=$(( $(date +%s) + ${2:-30} ))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    [ "$(date +%s)" -ge "$deadline" ] && { echo "port $port not open after ${2:-30}s" >&2; return 1; }
    sleep 0.2
  done
}
