"""Two stompbox servers relaying to one RabbitMQ (STOMP plugin), exercised with stomp.py:
publish-subscribe across servers, a queue shared by consumers on both servers, client acks and
redelivery, and RabbitMQ restarted mid-run. Each check prints PASS/FAIL; exit 1 on any FAIL.

usage: relay_rabbitmq_test.py PORT_A HTTP_A PORT_B HTTP_B RESTART_CMD
(RESTART_CMD: a shell command that stops and restarts the RabbitMQ both servers relay to)"""
import json
import subprocess
import sys
import time
import urllib.request
import uuid

import stomp

PORT_A, HTTP_A, PORT_B, HTTP_B = (int(x) for x in sys.argv[1:5])
RESTART = sys.argv[5]
RUN = uuid.uuid4().hex[:8]
failures = []


class Listener(stomp.ConnectionListener):
    def __init__(self):
        self.messages = []
        self.errors = []
        self.receipts = []
        self.disconnected = False

    def on_message(self, frame):
        self.messages.append(frame)

    def on_error(self, frame):
        self.errors.append(frame)

    def on_receipt(self, frame):
        self.receipts.append(frame.headers.get("receipt-id"))

    def on_disconnected(self):
        self.disconnected = True


def client(port):
    c = stomp.Connection12([("127.0.0.1", port)], heartbeats=(0, 0), auto_content_length=True,
                           reconnect_attempts_max=1)
    listener = Listener()
    c.set_listener("", listener)
    c.connect("guest", "guest", wait=True)
    return c, listener


def wait_for(cond, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else f": {detail}"), flush=True)
    if not ok:
        failures.append(name)


def relay_stats(http_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/stats", timeout=5) as r:
        doc = json.loads(r.read())

    def find(d):
        if isinstance(d, dict):
            if "relay" in d and isinstance(d["relay"], dict):
                return d["relay"]
            for v in d.values():
                got = find(v)
                if got is not None:
                    return got
        return None

    return find(doc) or {}


def subscribe(c, listener, dest, sub_id, **kw):
    receipt = f"sub-{sub_id}-{uuid.uuid4().hex[:6]}"
    c.subscribe(dest, id=sub_id, receipt=receipt, **kw)
    return wait_for(lambda: receipt in listener.receipts)


# 0. Both servers' system sessions are connected.
check("system sessions connected",
      wait_for(lambda: relay_stats(HTTP_A).get("system_connected") == 1
               and relay_stats(HTTP_B).get("system_connected") == 1, 30),
      (relay_stats(HTTP_A), relay_stats(HTTP_B)))

# 1. Subscribe on A, publish on B: the message arrives through RabbitMQ.
a, la = client(PORT_A)
b, lb = client(PORT_B)
topic = f"/topic/relay.{RUN}.news"
check("SUBSCRIBE on A answered by RabbitMQ's RECEIPT", subscribe(a, la, topic, "news"))
b.send(topic, "hello from B", content_type="text/plain", headers={"x-k": "a:b"}, receipt="s1")
check("SEND receipt on B", wait_for(lambda: "s1" in lb.receipts), lb.receipts)
ok = wait_for(lambda: len(la.messages) == 1)
m = la.messages[0] if la.messages else None
check("subscribe on A, publish on B: delivered", ok and m.body == "hello from B", la.messages)
if m:
    check("MESSAGE headers pass through", m.headers.get("subscription") == "news"
          and m.headers.get("destination") == topic and m.headers.get("x-k") == "a:b"
          and m.headers.get("content-type", "").startswith("text/plain"), m.headers)
time.sleep(0.3)
check("delivered once", len(la.messages) == 1 and not lb.messages, (la.messages, lb.messages))

# 2. A queue shared by consumers on both servers: every message exactly once.
queue = f"/queue/relay-{RUN}-shared"
check("queue consumer on A", subscribe(a, la, queue, "qa"))
check("queue consumer on B", subscribe(b, lb, queue, "qb"))
la.messages.clear()
lb.messages.clear()
n = 40
for i in range(n):
    (a if i % 2 else b).send(queue, f"job-{i}")
wait_for(lambda: len(la.messages) + len(lb.messages) >= n)
time.sleep(0.5)
got = sorted([x.body for x in la.messages] + [x.body for x in lb.messages])
check("shared queue: each message exactly once", got == sorted(f"job-{i}" for i in range(n)),
      (len(la.messages), len(lb.messages)))
check("shared queue: both servers' consumers got some", la.messages and lb.messages,
      (len(la.messages), len(lb.messages)))
a.unsubscribe("qa")
b.unsubscribe("qb")

# 3. Client acks reach RabbitMQ: the acked message is gone, the unacked one is redelivered
#    to a consumer on the other server after the first consumer disconnects.
ackq = f"/queue/relay-{RUN}-acks"
c1, l1 = client(PORT_A)
check("client-individual consumer on A",
      subscribe(c1, l1, ackq, "acks", ack="client-individual", headers={"prefetch-count": "10"}))
b.send(ackq, "first")
b.send(ackq, "second")
check("two messages to ack", wait_for(lambda: len(l1.messages) == 2), l1.messages)
if len(l1.messages) == 2:
    first = l1.messages[0]
    c1.ack(first.headers["ack"], receipt="ack1")
    check("ACK receipt from RabbitMQ", wait_for(lambda: "ack1" in l1.receipts), l1.receipts)
c1.disconnect()
c2, l2 = client(PORT_B)
check("consumer on B", subscribe(c2, l2, ackq, "acks2", ack="client-individual"))
wait_for(lambda: len(l2.messages) >= 1)
time.sleep(0.5)
check("only the unacked message is redelivered", [x.body for x in l2.messages] == ["second"],
      [x.body for x in l2.messages])
if l2.messages:
    check("redelivered flag", l2.messages[0].headers.get("redelivered") == "true",
          l2.messages[0].headers)
    c2.ack(l2.messages[0].headers["ack"])
c2.disconnect()

# 4. RabbitMQ restarted mid-run: clients get ERROR, the system sessions reconnect, new clients
#    work again.
la.errors.clear()
lb.errors.clear()
print(f"restarting RabbitMQ: {RESTART}", flush=True)
subprocess.run(RESTART, shell=True, check=True)
check("client on A got ERROR", wait_for(lambda: la.errors, 30), la.errors)
check("client on B got ERROR", wait_for(lambda: lb.errors, 30), lb.errors)
if la.errors:
    check("ERROR names the upstream",
          "upstream" in la.errors[0].headers.get("message", ""), la.errors[0].headers)
check("client on A disconnected", wait_for(lambda: la.disconnected, 10))
check("system sessions reconnected",
      wait_for(lambda: relay_stats(HTTP_A).get("system_connected") == 1
               and relay_stats(HTTP_B).get("system_connected") == 1, 60),
      (relay_stats(HTTP_A), relay_stats(HTTP_B)))
st = relay_stats(HTTP_A)
check("system session connected twice on A", st.get("system_connects", 0) >= 2, st)
a2, la2 = client(PORT_A)
b2, lb2 = client(PORT_B)
topic2 = f"/topic/relay.{RUN}.after"
check("new subscription after the restart", subscribe(a2, la2, topic2, "after"))
b2.send(topic2, "back again")
check("new clients work again", wait_for(lambda: [x.body for x in la2.messages] == ["back again"]),
      la2.messages)
for c in (a2, b2):
    c.disconnect()

print(f"relay RabbitMQ interop: {len(failures)} failure(s)")
sys.exit(1 if failures else 0)
