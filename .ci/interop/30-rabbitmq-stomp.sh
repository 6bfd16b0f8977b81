#!/usr/bin/env bash
# Interop: stompbox-stomp's ClientSession (hosted over std::net) against RabbitMQ's STOMP
# plugin: connect, subscribe, send, receive, ack, transactions, receipts, heart-beats,
# disconnect, and an ERROR for bad credentials. Starts and stops its own broker.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash .ci/rabbitmq.sh start
trap 'bash .ci/rabbitmq.sh stop' EXIT
export STOMPBOX_RABBITMQ_STOMP=127.0.0.1:61614
cargo test -p stompbox-stomp --test rabbitmq -- --include-ignored --nocapture
