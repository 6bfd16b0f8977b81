"""stomp.py (a real STOMP 1.2 client) against the stompbox broker hosted over plain TCP
(crates/broker/examples/tcp_host.rs). Each check prints PASS/FAIL; exit status 1 on any FAIL."""
import sys
import time

import stomp

HOST, PORT = sys.argv[1], int(sys.argv[2])
failures = []


class Listener(stomp.ConnectionListener):
    def __init__(self):
        self.messages = []
        self.errors = []
        self.receipts = []

    def on_message(self, frame):
        self.messages.append(frame)

    def on_error(self, frame):
        self.errors.append(frame)

    def on_receipt(self, frame):
        self.receipts.append(frame.headers.get("receipt-id"))


def client(user, passcode="pw"):
    c = stomp.Connection12([(HOST, PORT)], heartbeats=(0, 0), auto_content_length=True)
    listener = Listener()
    c.set_listener("", listener)
    c.connect(user, passcode, wait=True)
    return c, listener


def wait_for(cond, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))
    if not ok:
        failures.append(name)


# 1. Topic pattern subscription, user headers, content-type, receipts.
alice, la = client("alice")
bob, lb = client("bob")
bob.subscribe("/topic/prices/**", id="p", receipt="sub-p")
check("receipt for SUBSCRIBE", wait_for(lambda: "sub-p" in lb.receipts), lb.receipts)
alice.send("/topic/prices/nyse/ibm", "101.5", content_type="text/plain", headers={"x-src": "a:b"}, receipt="s1")
check("receipt for SEND", wait_for(lambda: "s1" in la.receipts), la.receipts)
ok = wait_for(lambda: len(lb.messages) == 1)
m = lb.messages[0] if lb.messages else None
check("pattern /topic/prices/** delivers", ok and m.body == "101.5", lb.messages)
if m:
    check("MESSAGE headers", m.headers.get("destination") == "/topic/prices/nyse/ibm"
          and m.headers.get("subscription") == "p" and m.headers.get("x-src") == "a:b"
          and m.headers.get("content-type") == "text/plain" and "message-id" in m.headers
          and "receipt" not in m.headers, m.headers)
bob.unsubscribe("p")

# 2. Queue round robin.
carol, lc = client("carol")
lb.messages.clear()
bob.subscribe("/queue/jobs", id="q", receipt="bq")
wait_for(lambda: "bq" in lb.receipts)
carol.subscribe("/queue/jobs", id="q", receipt="cq")
wait_for(lambda: "cq" in lc.receipts)
for i in range(4):
    alice.send("/queue/jobs", f"job{i}")
wait_for(lambda: len(lb.messages) + len(lc.messages) == 4)
check("queue round robin", sorted(x.body for x in lb.messages) == ["job0", "job2"]
      and sorted(x.body for x in lc.messages) == ["job1", "job3"],
      ([x.body for x in lb.messages], [x.body for x in lc.messages]))
bob.unsubscribe("q")
carol.unsubscribe("q")

# 3. client-individual: unacked message is redelivered to another consumer on disconnect.
dave, ld = client("dave")
dave.subscribe("/queue/work", id="w", ack="client-individual", receipt="dw")
wait_for(lambda: "dw" in ld.receipts)
alice.send("/queue/work", "w1")
wait_for(lambda: len(ld.messages) == 1)
check("client-individual delivers with ack header", ld.messages and "ack" in ld.messages[0].headers, ld.messages)
dave.disconnect()
lc.messages.clear()
carol.subscribe("/queue/work", id="w2", ack="client-individual")
ok = wait_for(lambda: len(lc.messages) == 1)
check("redelivered after disconnect", ok and lc.messages[0].body == "w1"
      and lc.messages[0].headers.get("redelivered") == "true", [x.headers for x in lc.messages])
if lc.messages:
    carol.ack(lc.messages[0].headers["ack"], receipt="ack1")
    check("ACK receipt", wait_for(lambda: "ack1" in lc.receipts), lc.receipts)

# 4. NACK redelivers (to the same, only, consumer).
lc.messages.clear()
alice.send("/queue/work", "w2")
wait_for(lambda: len(lc.messages) == 1)
if lc.messages:
    carol.nack(lc.messages[0].headers["ack"])
ok = wait_for(lambda: len(lc.messages) == 2)
check("NACK redelivers", ok and lc.messages[1].body == "w2" and lc.messages[1].headers.get("redelivered") == "true",
      [x.headers for x in lc.messages])
if len(lc.messages) == 2:
    carol.ack(lc.messages[1].headers["ack"])
carol.unsubscribe("w2")

# 5. User destinations and application destinations.
lb.messages.clear()
bob.subscribe("/user/queue/inbox", id="u")
bob.subscribe("/topic/echo", id="e", receipt="be")
wait_for(lambda: "be" in lb.receipts)
alice.send("/user/bob/queue/inbox", "private")
alice.send("/app/echo", "echoed")
ok = wait_for(lambda: len(lb.messages) == 2)
bodies = sorted(x.body for x in lb.messages)
check("user destination and /app echo", ok and bodies == ["echoed", "private"], bodies)
la.messages.clear()
alice.subscribe("/app/hello", id="h")
ok = wait_for(lambda: len(la.messages) == 1)
check("SUBSCRIBE to /app answered once", ok and la.messages[0].body == "hello alice"
      and la.messages[0].headers.get("subscription") == "h", [x.body for x in la.messages])

# 6. Transactions.
lb.messages.clear()
bob.subscribe("/topic/tx", id="t", receipt="bt")
wait_for(lambda: "bt" in lb.receipts)
tx = alice.begin()
alice.send("/topic/tx", "in-tx", transaction=tx)
time.sleep(0.2)
held = len(lb.messages) == 0
alice.commit(tx)
check("transaction held until COMMIT", held and wait_for(lambda: len(lb.messages) == 1), lb.messages)

# 7. Full queue: ERROR with receipt-id (tcp_host uses max_queue_depth 5).
eve, le = client("eve")
for i in range(5):
    eve.send("/queue/full", f"f{i}")
eve.send("/queue/full", "overflow", receipt="over")
ok = wait_for(lambda: len(le.errors) == 1)
check("full queue -> ERROR with receipt-id", ok and le.errors[0].headers.get("receipt-id") == "over"
      and "queue full" in le.errors[0].headers.get("message", ""), [x.headers for x in le.errors])

# 8. Unknown destination prefix: ERROR.
frank, lf = client("frank")
frank.send("/elsewhere/x", "x", receipt="u1")
ok = wait_for(lambda: len(lf.errors) == 1)
check("unknown prefix -> ERROR", ok and lf.errors[0].headers.get("receipt-id") == "u1", [x.headers for x in lf.errors])

# 9. Authentication hook rejects.
try:
    c, l = client("mallory", "wrong")
    check("bad credentials rejected", False, "connected")
except stomp.exception.ConnectFailedException:
    check("bad credentials rejected", True)

for c in (alice, bob, carol):
    try:
        c.disconnect(receipt="bye")
    except Exception:
        pass

if failures:
    print(f"{len(failures)} FAILED: {failures}")
    sys.exit(1)
print("all broker checks passed")
