"""stomp.py against the stompbox server, over raw TCP and over WebSocket.

usage: stomppy_test.py tcp|ws HOST PORT

Covers: connect (with login), subscribe, send, receive, client-individual ack with redelivery,
receipts, transactions (commit delivers, abort drops), the /app/echo and /app/chat demo handlers,
a bad login getting an ERROR, and disconnect with a receipt. Exits non-zero on the first failure.
"""
import sys
import time
import uuid

import stomp
from stomp.listener import ConnectionListener

MODE, HOST, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
TIMEOUT = 10


class Recorder(ConnectionListener):
    def __init__(self):
        self.messages = []
        self.receipts = set()
        self.errors = []
        self.connected = None
        self.disconnected = False

    def on_connected(self, frame):
        self.connected = frame

    def on_message(self, frame):
        self.messages.append(frame)

    def on_receipt(self, frame):
        self.receipts.add(frame.headers.get("receipt-id"))

    def on_error(self, frame):
        self.errors.append(frame)

    def on_disconnected(self):
        self.disconnected = True

    def wait(self, what, pred, timeout=TIMEOUT):
        end = time.time() + timeout
        while time.time() < end:
            if pred():
                return
            time.sleep(0.02)
        raise AssertionError(f"[{MODE}] timed out waiting for {what}; messages="
                             f"{[(m.headers.get('destination'), m.body) for m in self.messages]} "
                             f"errors={[e.headers for e in self.errors]}")

    def bodies(self, dest):
        return [m.body for m in self.messages if m.headers.get("destination") == dest]


def connection():
    if MODE == "tcp":
        conn = stomp.Connection12([(HOST, PORT)], heartbeats=(1000, 1000), auto_content_length=True)
    else:
        conn = stomp.WSStompConnection([(HOST, PORT)], ws_path="/ws", heartbeats=(1000, 1000))
    rec = Recorder()
    conn.set_listener("rec", rec)
    return conn, rec


def check(cond, msg):
    if not cond:
        raise AssertionError(f"[{MODE}] {msg}")
    print(f"[{MODE}] ok: {msg}")


def main():
    run = uuid.uuid4().hex[:8]
    a, ra = connection()
    b, rb = connection()
    a.connect("alice", "secret", wait=True, headers={"host": "localhost"})
    b.connect("bob", "hunter2", wait=True, headers={"host": "localhost"})
    # connect(wait=True) returns when stomp.py's own state says connected, which can be
    # before the receiver thread has called this listener's on_connected.
    ra.wait("CONNECTED in the listener", lambda: ra.connected is not None)
    check(ra.connected is not None and ra.connected.headers.get("version") == "1.2",
          f"CONNECTED with version 1.2 ({ra.connected.headers if ra.connected else None})")
    hb = ra.connected.headers.get("heart-beat", "0,0")
    check(hb != "0,0", f"server offers heart-beats ({hb})")

    # Topic pub/sub with a receipt on SUBSCRIBE and on SEND.
    topic = f"/topic/t-{run}"
    b.subscribe(topic, id="s1", ack="auto", headers={"receipt": "sub-1"})
    rb.wait("receipt sub-1", lambda: "sub-1" in rb.receipts)
    check(True, "RECEIPT for SUBSCRIBE")
    a.send(topic, "hello topic", headers={"receipt": "send-1", "x-custom": "v1"})
    ra.wait("receipt send-1", lambda: "send-1" in ra.receipts)
    rb.wait("topic message", lambda: rb.bodies(topic) == ["hello topic"])
    msg = [m for m in rb.messages if m.headers.get("destination") == topic][0]
    check(msg.headers.get("x-custom") == "v1" and msg.headers.get("subscription") == "s1"
          and msg.headers.get("message-id"), f"MESSAGE headers {msg.headers}")

    # Queue with client-individual ack: unacked message is redelivered after UNSUBSCRIBE.
    queue = f"/queue/q-{run}"
    b.subscribe(queue, id="q1", ack="client-individual")
    time.sleep(0.2)
    a.send(queue, "job-1")
    a.send(queue, "job-2")
    rb.wait("two queue messages", lambda: len(rb.bodies(queue)) == 2)
    m1, m2 = [m for m in rb.messages if m.headers.get("destination") == queue]
    check("ack" in m1.headers, f"1.2 MESSAGE carries an ack header ({m1.headers})")
    b.ack(m1.headers["ack"], receipt="ack-1")
    rb.wait("receipt ack-1", lambda: "ack-1" in rb.receipts)
    b.unsubscribe("q1", headers={"receipt": "unsub-q1"})
    rb.wait("receipt unsub-q1", lambda: "unsub-q1" in rb.receipts)
    a.subscribe(queue, id="qa", ack="auto")
    ra.wait("redelivery of job-2", lambda: ra.bodies(queue) == ["job-2"])
    red = [m for m in ra.messages if m.headers.get("destination") == queue][0]
    check(red.headers.get("redelivered") == "true", f"unacked job-2 redelivered ({red.headers})")

    # Transactions: commit delivers, abort drops.
    tx_topic = f"/topic/tx-{run}"
    b.subscribe(tx_topic, id="tx", ack="auto", headers={"receipt": "sub-tx"})
    rb.wait("receipt sub-tx", lambda: "sub-tx" in rb.receipts)
    tx = a.begin()
    a.send(tx_topic, "in-tx-1", transaction=tx)
    a.send(tx_topic, "in-tx-2", transaction=tx)
    time.sleep(0.3)
    check(rb.bodies(tx_topic) == [], "nothing delivered before COMMIT")
    a.commit(tx)
    rb.wait("committed messages", lambda: rb.bodies(tx_topic) == ["in-tx-1", "in-tx-2"])
    check(True, "COMMIT delivers in order")
    tx2 = a.begin()
    a.send(tx_topic, "aborted", transaction=tx2)
    a.abort(tx2)
    a.send(tx_topic, "after-abort", headers={"receipt": "after-abort"})
    ra.wait("receipt after-abort", lambda: "after-abort" in ra.receipts)
    rb.wait("after-abort", lambda: rb.bodies(tx_topic)[-1:] == ["after-abort"])
    check("aborted" not in rb.bodies(tx_topic), "ABORT drops the transaction's SENDs")

    # Application handlers of the binary.
    a.subscribe("/user/queue/echo", id="echo", ack="auto", headers={"receipt": "sub-echo"})
    a.subscribe("/topic/chat", id="chat", ack="auto", headers={"receipt": "sub-chat"})
    ra.wait("receipts sub-echo/sub-chat", lambda: {"sub-echo", "sub-chat"} <= ra.receipts)
    b.subscribe("/user/queue/echo", id="echo-b", ack="auto", headers={"receipt": "sub-echo-b"})
    rb.wait("receipt sub-echo-b", lambda: "sub-echo-b" in rb.receipts)
    a.send("/app/echo", f"ping-{run}")
    ra.wait("echo", lambda: ra.bodies("/user/queue/echo") == [f"ping-{run}"])
    time.sleep(0.2)
    check(rb.bodies("/user/queue/echo") == [], "/app/echo answers the sender only")
    a.send("/app/chat", f"chat-{run}", headers={"nick": "alice"})
    ra.wait("chat", lambda: f"chat-{run}" in ra.bodies("/topic/chat"))
    chat = [m for m in ra.messages if m.body == f"chat-{run}"][0]
    ts = int(chat.headers.get("timestamp", "0"))
    check(abs(ts - time.time() * 1000) < 60_000 and chat.headers.get("nick") == "alice",
          f"/app/chat broadcast with a server timestamp ({chat.headers})")

    # Graceful disconnect with a receipt.
    a.disconnect(receipt="bye-a")
    # stomp.py hands the RECEIPT to listeners on its receiver thread: wait for it rather than
    # race it (a missing receipt still fails, after the wait's timeout).
    ra.wait("receipt bye-a", lambda: "bye-a" in ra.receipts)
    check("bye-a" in ra.receipts, "DISCONNECT receipt")
    b.disconnect(receipt="bye-b")

    # A wrong passcode gets an ERROR (the server runs with --user).
    c, rc = connection()
    try:
        c.connect("alice", "wrong", wait=False)
        rc.wait("ERROR for bad login", lambda: rc.errors)
    finally:
        try:
            c.disconnect()
        except Exception:
            pass
    check("message" in rc.errors[0].headers, f"bad login ERROR {rc.errors[0].headers}")
    print(f"[{MODE}] all stomp.py checks passed")


if __name__ == "__main__":
    main()
