#!/usr/bin/env bash
# Interop: stomp.py (STOMP 1.2 client, PyPI) against stompbox-broker hosted over plain TCP by
# crates/broker/examples/tcp_host.rs: topic patterns, queues (round robin, client-individual
# ack, redelivery on disconnect and NACK, full queue ERROR with receipt-id), user and
# application destinations, transactions, receipts, authentication hook.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh
skip_or_fail() {
  if [ -n "${CI:-}" ]; then echo "FAIL: $*" >&2; exit 1; fi
  echo "SKIPPED: $*"; exit 0
}
pip_install stomp.py || skip_or_fail "pip install stomp.py failed"
python3 -c "import stomp" 2>/dev/null || skip_or_fail "stomp.py is not importable"
cargo build -q -p stompbox-broker --example tcp_host
port=18631
target_dir=$(cargo metadata -q --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
"$target_dir/debug/examples/tcp_host" "$port" &
host_pid=$!
trap 'kill "$host_pid" 2>/dev/null || true' EXIT
wait_port "$port" 30
python3 .ci/interop/broker/stomppy_broker_test.py 127.0.0.1 "$port"
echo "broker stomp.py interop: OK"
