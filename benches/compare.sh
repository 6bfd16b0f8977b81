#!/usr/bin/env bash
# stompbox vs RabbitMQ Web-STOMP, side by side, in one run, with the same load generator
# (`stompbox bench`) and the same scenarios against both, over STOMP over WebSocket on loopback.
#
#   bash benches/compare.sh            # full run (about 4 minutes)
#   QUICK=1 bash benches/compare.sh    # short smoke run (small sizes, 2 s each)
#
# Installs and starts Debian's rabbitmq-server with rabbitmq_web_stomp through .ci/rabbitmq.sh
# (web-stomp on 127.0.0.1:15674; stopped again at the end when this script started it), starts
# the stompbox release binary on 127.0.0.1:18761, runs the scenarios, prints a markdown table
# with the ratio stompbox/RabbitMQ, and leaves the raw JSON results in target/compare/.
# Env: DURATION (s, default 10), IDLE (idle connections, default 10000), SCENARIOS (default all:
# "fanout fanin pairs pairs-rate fanout-rate idle").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source .ci/lib.sh
OUT="$ROOT/target/compare"
mkdir -p "$OUT"
rm -f "$OUT"/*.json
STOMPBOX="$ROOT/target/release/stompbox"
HTTP_PORT=18761
STOMP_PORT=18762
if [ -n "${QUICK:-}" ]; then
  DURATION=${DURATION:-2}; IDLE=${IDLE:-500}; FAN=${FAN:-100}; PAIRS=${PAIRS:-10}
else
  DURATION=${DURATION:-10}; IDLE=${IDLE:-10000}; FAN=${FAN:-1000}; PAIRS=${PAIRS:-100}
fi
SCENARIOS=${SCENARIOS:-"fanout fanin pairs pairs-rate fanout-rate idle"}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((IDLE + 1000)) ]; then
  echo "ulimit -n is $(ulimit -n); $IDLE idle connections need more (raise the hard limit)" >&2
  exit 1
fi

echo "== building the stompbox release binary"
cargo build --release -q -p stompbox-server

started_rabbit=""
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  if [ -n "$started_rabbit" ]; then bash .ci/rabbitmq.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

echo "== RabbitMQ Web-STOMP"
if ! bash .ci/rabbitmq.sh status >/dev/null 2>&1; then
  bash .ci/rabbitmq.sh start
  started_rabbit=1
fi
wait_port 15674 120
RABBIT_VERSION=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo unknown)

start_stompbox() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  "$STOMPBOX" --http "127.0.0.1:$HTTP_PORT" --stomp "127.0.0.1:$STOMP_PORT" --stats-interval 0 \
    --max-connections $((IDLE + 2000)) --heartbeat 10000 --log warn >>"$OUT/stompbox-server.log" 2>&1 &
  SERVER_PID=$!
  wait_port "$HTTP_PORT" 30
}

SB_URL="ws://127.0.0.1:$HTTP_PORT/ws"
RB_URL="ws://127.0.0.1:15674/ws"
RB_FLAGS=(--host / --login guest --passcode guest)

# run NAME FLAGS...: the scenario against both servers; stompbox is restarted first so its RSS
# numbers start from a fresh process.
run() {
  local name=$1; shift
  start_stompbox
  echo "== $name: stompbox"
  "$STOMPBOX" bench "$SB_URL" "$@" --json -q > "$OUT/$name.stompbox.json" \
    || echo "   (stompbox bench exited non-zero; see the JSON)"
  echo "== $name: rabbitmq"
  "$STOMPBOX" bench "$RB_URL" "${RB_FLAGS[@]}" "$@" --json -q > "$OUT/$name.rabbitmq.json" \
    || echo "   (rabbitmq bench exited non-zero; see the JSON)"
  sleep 2   # let both settle (RabbitMQ closes the previous connections lazily)
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for s in $SCENARIOS; do
  case $s in
    fanout) run fanout --scenario fanout --subscribers "$FAN" --duration "$DURATION" ;;
    fanin) run fanin --scenario fanin --publishers "$FAN" --duration "$DURATION" ;;
    pairs) run pairs --scenario pairs --pairs "$PAIRS" --duration "$DURATION" ;;
    # The same offered rate to both, below RabbitMQ's capacity: latency, not throughput.
    pairs-rate) run pairs-rate --scenario pairs --pairs "$PAIRS" --rate 5000 --duration "$DURATION" ;;
    fanout-rate) run fanout-rate --scenario fanout --subscribers "$FAN" --rate 10 --duration "$DURATION" ;;
    idle) run idle --scenario idle --connections "$IDLE" --heartbeat 10000 --duration "$DURATION" \
            --connect-rate-limit 100 --timeout 30000 ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
  esac
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
MEM=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
python3 - "$OUT" "$SCENARIOS" <<PY
import json, sys, os
out, scenarios = sys.argv[1], sys.argv[2].split()
print()
print("Machine: $(nproc) cores ($CPU), $MEM RAM, $(uname -sr); RabbitMQ $RABBIT_VERSION (rabbitmq_web_stomp);")
print("load average before/after: $LOAD_BEFORE / $LOAD_AFTER (shared machine). Load generator: stompbox bench, 2 threads.")
print()
print("| scenario | metric | stompbox | RabbitMQ | stompbox/RabbitMQ |")
print("|---|---|---:|---:|---:|")
def load(n, who):
    p = os.path.join(out, f"{n}.{who}.json")
    try:
        with open(p) as f: return json.loads(f.read())
    except Exception: return None
def fmt(v, unit):
    if v is None: return "n/a"
    if unit == "msg/s": return f"{v:,.0f}"
    if unit == "ms": return f"{v:.2f} ms"
    if unit == "MiB": return f"{v:.1f} MiB"
    if unit == "B": return f"{v:,.0f} B"
    if unit == "%": return f"{v*100:.2f} %"
    return str(v)
for n in scenarios:
    a, b = load(n, "stompbox"), load(n, "rabbitmq")
    if a is None or b is None:
        print(f"| {n} | (run failed) | | | |"); continue
    size = f"{a['publishers']}->{a['subscribers']}" if n != "idle" else f"{a['connections']} conns"
    rate = "max" if a["rate_offered"] == 0 else f"{a['rate_offered']:.0f}/s offered"
    if n == "idle": rate = "heart-beats 10 s"
    rows = []
    if n == "idle":
        mib = lambda j: (j["server_rss_after_kib"] or 0) / 1024
        rows += [("connections held (lost)", f"{a['ready']} ({a['lost']})", f"{b['ready']} ({b['lost']})", None)]
        rows += [("server RSS with all connected", fmt(mib(a), "MiB"), fmt(mib(b), "MiB"), mib(a) / mib(b) if mib(b) else None)]
        pa, pb = a["server_rss_per_connection_bytes"], b["server_rss_per_connection_bytes"]
        rows += [("RSS per idle connection", fmt(pa, "B"), fmt(pb, "B"), (pa / pb) if pa and pb else None)]
        ca, cb = a["connect_us"]["p99"] / 1e3, b["connect_us"]["p99"] / 1e3
        rows += [("connect p99", fmt(ca, "ms"), fmt(cb, "ms"), ca / cb if cb else None)]
    else:
        rows += [("delivered msg/s", fmt(a["deliver_rate"], "msg/s"), fmt(b["deliver_rate"], "msg/s"),
                  a["deliver_rate"] / b["deliver_rate"] if b["deliver_rate"] else None)]
        rows += [("delivery ratio", fmt(a["delivery_ratio"], "%"), fmt(b["delivery_ratio"], "%"), None)]
        for q in ("p50", "p99", "p999"):
            la, lb = a["latency_us"][q] / 1e3, b["latency_us"][q] / 1e3
            rows += [(f"latency {q}", fmt(la, "ms"), fmt(lb, "ms"), la / lb if lb else None)]
    for i, (metric, va, vb, r) in enumerate(rows):
        label = f"{n} ({size}, {rate})" if i == 0 else ""
        rs = "" if r is None else f"{r:.2f}x"
        print(f"| {label} | {metric} | {va} | {vb} | {rs} |")
    errs = [(w, e) for w, j in (("stompbox", a), ("RabbitMQ", b)) for e in j["errors"]]
    for w, e in errs:
        print(f"|  | error ({w}) | {e['message'][:60]} x{e['count']} | | |")
PY
