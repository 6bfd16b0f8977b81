"""stomp.py against stompbox-stomp's ServerSession (example `session_server`, manual receipts).

usage: session_stomppy_test.py HOST PORT CONNECT_TIMEOUT_MS

Checks, each against the real client: connect 1.2 (+ heart-beats); a bad login gets an ERROR;
subscribe with receipt; a SEND's RECEIPT arrives after the MESSAGE it caused (receipts answered
by the host after routing); a SEND inside a transaction gets its RECEIPT before COMMIT (no
deadlock for a client that waits) and is delivered only at COMMIT, whose RECEIPT follows the
MESSAGE; ABORT drops; client-individual ACK with receipt; a 64 KiB binary body round-trips
intact (the shared-body output path); UNSUBSCRIBE with receipt; DISCONNECT with receipt; and a
raw client that never completes CONNECT gets `ERROR message:connect timeout` and is closed.
Exits non-zero on the first failure.
"""
import socket
import sys
import time

import stomp
from stomp.listener import ConnectionListener

HOST, PORT, CONNECT_TIMEOUT_MS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
TIMEOUT = 10
checks = 0


class Recorder(ConnectionListener):
    def __init__(self):
        self.log = []  # ("MESSAGE", body) / ("RECEIPT", id) in arrival order
        self.messages = []
        self.receipts = set()
        self.errors = []

    def on_message(self, frame):
        self.messages.append(frame)
        self.log.append(("MESSAGE", frame.body))

    def on_receipt(self, frame):
        rid = frame.headers.get("receipt-id")
        self.receipts.add(rid)
        self.log.append(("RECEIPT", rid))

    def on_error(self, frame):
        self.errors.append(frame)

    def wait(self, what, pred, timeout=TIMEOUT):
        end = time.time() + timeout
        while time.time() < end:
            if pred():
                return
            time.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}; log={self.log} "
                             f"errors={[e.headers for e in self.errors]}")


def check(name, cond, detail=""):
    global checks
    if not cond:
        raise AssertionError(f"{name}: {detail}")
    checks += 1
    print(f"ok: {name}")


def connect(login="alice"):
    conn = stomp.Connection12([(HOST, PORT)], heartbeats=(1000, 1000), auto_content_length=True)
    rec = Recorder()
    conn.set_listener("rec", rec)
    conn.connect(login, "secret", wait=True, headers={"host": "/"})
    return conn, rec


def index(log, item):
    return log.index(item) if item in log else -1


def main():
    # bad login: ERROR, no session
    bad = stomp.Connection12([(HOST, PORT)], auto_content_length=True)
    bad_rec = Recorder()
    bad.set_listener("rec", bad_rec)
    try:
        bad.connect("bad", "x", wait=True, headers={"host": "/"})
    except Exception:
        pass
    bad_rec.wait("ERROR for a bad login", lambda: bad_rec.errors)
    check("bad login gets ERROR", bad_rec.errors[0].headers.get("message") == "access refused")
    try:
        bad.disconnect()
    except Exception:
        pass

    conn, rec = connect()
    check("connected 1.2", conn.is_connected())

    conn.subscribe("/topic/a", id="s1", ack="auto", headers={"receipt": "sub-1"})
    rec.wait("subscribe receipt", lambda: "sub-1" in rec.receipts)
    check("SUBSCRIBE receipt", True)

    conn.send("/topic/a", "hello", headers={"receipt": "send-1"})
    rec.wait("send receipt", lambda: "send-1" in rec.receipts)
    rec.wait("message", lambda: ("MESSAGE", "hello") in rec.log)
    check("RECEIPT of a SEND follows the MESSAGE it caused",
          index(rec.log, ("MESSAGE", "hello")) < index(rec.log, ("RECEIPT", "send-1")), rec.log)

    # transaction: the held SEND's receipt comes before COMMIT, the message only at COMMIT
    conn.begin("tx1")
    conn.send("/topic/a", "in-tx", transaction="tx1", headers={"receipt": "tx-send"})
    rec.wait("receipt of a held SEND (before COMMIT)", lambda: "tx-send" in rec.receipts)
    check("RECEIPT of a SEND held in a transaction, before COMMIT", True)
    time.sleep(0.2)
    check("nothing delivered before COMMIT", ("MESSAGE", "in-tx") not in rec.log, rec.log)
    conn.commit("tx1", headers={"receipt": "commit-1"})
    rec.wait("commit receipt", lambda: "commit-1" in rec.receipts)
    check("COMMIT delivers, its RECEIPT after the MESSAGE",
          0 <= index(rec.log, ("MESSAGE", "in-tx")) < index(rec.log, ("RECEIPT", "commit-1")),
          rec.log)

    conn.begin("tx2")
    conn.send("/topic/a", "aborted", transaction="tx2")
    conn.abort("tx2", headers={"receipt": "abort-1"})
    rec.wait("abort receipt", lambda: "abort-1" in rec.receipts)
    time.sleep(0.2)
    check("ABORT drops", ("MESSAGE", "aborted") not in rec.log, rec.log)

    # client-individual ack with receipt
    conn.subscribe("/queue/q", id="s2", ack="client-individual", headers={"receipt": "sub-2"})
    rec.wait("subscribe receipt 2", lambda: "sub-2" in rec.receipts)
    conn.send("/queue/q", "ack-me")
    rec.wait("message to ack", lambda: ("MESSAGE", "ack-me") in rec.log)
    m = [f for f in rec.messages if f.body == "ack-me"][0]
    conn.ack(m.headers["ack"], receipt="ack-1")
    rec.wait("ack receipt", lambda: "ack-1" in rec.receipts)
    check("ACK with receipt", True)

    # a large binary body (shared, not copied, by the session) round-trips intact
    conn.subscribe("/topic/big", id="s3", headers={"receipt": "sub-3"})
    rec.wait("subscribe receipt 3", lambda: "sub-3" in rec.receipts)
    big = bytes((i * 7 + (i >> 8)) % 256 for i in range(64 * 1024))
    big_conn = stomp.Connection12([(HOST, PORT)], auto_decode=False, auto_content_length=True)
    big_rec = Recorder()
    big_conn.set_listener("rec", big_rec)
    big_conn.connect("carol", "x", wait=True, headers={"host": "/"})
    big_conn.subscribe("/topic/big", id="b", headers={"receipt": "b-sub"})
    big_rec.wait("big subscriber ready", lambda: b"b-sub" in big_rec.receipts or "b-sub" in big_rec.receipts)
    conn.send("/topic/big", big, headers={"receipt": "big-1", "content-type": "application/octet-stream"})
    rec.wait("big receipt", lambda: "big-1" in rec.receipts)
    big_rec.wait("big message", lambda: big_rec.messages)
    check("64 KiB binary body intact", big_rec.messages[0].body == big,
          f"got {len(big_rec.messages[0].body)} bytes")
    big_conn.disconnect(receipt="b-bye")

    conn.unsubscribe("s1", headers={"receipt": "unsub-1"})
    rec.wait("unsubscribe receipt", lambda: "unsub-1" in rec.receipts)
    check("UNSUBSCRIBE receipt", True)
    conn.disconnect(receipt="bye")
    check("DISCONNECT receipt", "bye" in rec.receipts, rec.log)
    check("no ERROR on the session", not rec.errors, [e.headers for e in rec.errors])

    # connect timeout: a client that never completes CONNECT
    s = socket.create_connection((HOST, PORT))
    s.sendall(b"CONNECT\naccept-version:1.2\n")
    s.settimeout(CONNECT_TIMEOUT_MS / 1000 + 5)
    started = time.time()
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    took = time.time() - started
    check("connect timeout: ERROR then close",
          data.startswith(b"ERROR\n") and b"message:connect timeout\n" in data, data)
    check("connect timeout: in time", took >= CONNECT_TIMEOUT_MS / 1000 - 0.2 and took < CONNECT_TIMEOUT_MS / 1000 + 2,
          f"{took:.2f} s")
    print(f"stomp.py vs ServerSession: {checks}/{checks} checks OK")


if __name__ == "__main__":
    main()
