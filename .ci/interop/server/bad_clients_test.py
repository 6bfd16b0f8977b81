"""Bad clients against the stompbox server; a healthy client must be unaffected throughout.

usage: bad_clients_test.py HTTP_PORT STOMP_PORT
The server runs with --max-message 65536 --max-output 1048576 --handshake-timeout 1000.
"""
import json
import socket
import sys
import threading
import time

from websockets.sync.client import connect as ws_connect

HTTP, STOMP = int(sys.argv[1]), int(sys.argv[2])
HOST = "127.0.0.1"


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)
    print(f"[bad-clients] ok: {msg}")


def frame(command, headers=None, body=b""):
    head = command + "\n" + "".join(f"{k}:{v}\n" for k, v in (headers or {}).items())
    if body:
        head += f"content-length:{len(body)}\n"
    return head.encode() + b"\n" + body + b"\0"


def read_until_closed(sock, timeout):
    """Reads until EOF (returns data, True) or timeout (data, False)."""
    sock.settimeout(0.2)
    data = b""
    end = time.time() + timeout
    while time.time() < end:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


class Stomp:
    """A tiny raw-TCP STOMP client."""

    def __init__(self, login="healthy"):
        self.s = socket.create_connection((HOST, STOMP), timeout=5)
        self.buf = bytearray()
        self.s.sendall(frame("CONNECT", {"accept-version": "1.2", "host": "localhost", "login": login,
                                         "passcode": "x", "heart-beat": "0,0"}))
        f = self.read()
        assert f[0] == "CONNECTED", f

    def read(self, timeout=5):
        self.s.settimeout(timeout)
        while True:
            i = 0
            while i < len(self.buf) and self.buf[i] in (10, 13):
                i += 1
            if i:
                del self.buf[:i]
            head_end = self.buf.find(b"\n\n")
            if head_end >= 0:
                lines = bytes(self.buf[:head_end]).decode().split("\n")
                headers = dict(l.split(":", 1) for l in lines[1:])
                n = int(headers.get("content-length", "-1"))
                start = head_end + 2
                end = start + n if n >= 0 else self.buf.find(b"\0", start)
                if end >= 0 and len(self.buf) >= end + 1:
                    body = bytes(self.buf[start:end])
                    del self.buf[:end + 1]
                    return lines[0], headers, body
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def send(self, *a, **kw):
        self.s.sendall(frame(*a, **kw))


def healthy_roundtrip(c, n):
    c.send("SEND", {"destination": "/app/echo", "receipt": f"h{n}"}, f"healthy-{n}".encode())
    seen_receipt = seen_echo = False
    while not (seen_receipt and seen_echo):
        cmd, h, body = c.read()
        if cmd == "RECEIPT" and h.get("receipt-id") == f"h{n}":
            seen_receipt = True
        elif cmd == "MESSAGE" and body == f"healthy-{n}".encode():
            seen_echo = True
        elif cmd == "ERROR":
            raise AssertionError(f"healthy client got ERROR {h}")


def main():
    healthy = Stomp()
    healthy.send("SUBSCRIBE", {"destination": "/user/queue/echo", "id": "e", "receipt": "sub"})
    assert healthy.read()[0] == "RECEIPT"
    healthy_roundtrip(healthy, 0)

    # 1. garbage on the HTTP port: a 400 response, then the server closes.
    s = socket.create_connection((HOST, HTTP))
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
    data, closed = read_until_closed(s, 5)
    check(data.startswith(b"HTTP/1.1 400") and closed, f"garbage on HTTP gets 400 and close ({data[:40]!r})")
    healthy_roundtrip(healthy, 1)

    # 2. garbage on the STOMP port: an ERROR frame, then close.
    s = socket.create_connection((HOST, STOMP))
    s.sendall(b"\x00\x01\x02 not stomp at all\n\n\0")
    data, closed = read_until_closed(s, 5)
    check(data.startswith(b"ERROR") and b"message:" in data and closed,
          f"garbage on STOMP/TCP gets ERROR and close ({data[:60]!r})")
    healthy_roundtrip(healthy, 2)

    # 3. a half-sent handshake left open: 408 after the handshake timeout, then close.
    s = socket.create_connection((HOST, HTTP))
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
    t0 = time.time()
    healthy_roundtrip(healthy, 3)
    data, closed = read_until_closed(s, 6)
    check(closed and data.startswith(b"HTTP/1.1 408") and time.time() - t0 < 5,
          f"half-sent handshake closed with 408 after {time.time() - t0:.1f} s ({data[:30]!r})")

    # 4a. an oversized STOMP frame over TCP: ERROR, then close.
    c = Stomp("big")
    c.send("SEND", {"destination": "/topic/big"}, b"x" * 200_000)
    data, closed = read_until_closed(c.s, 5)
    data = bytes(c.buf) + data
    check(b"ERROR" in data and closed, f"oversized frame over TCP gets ERROR and close ({data[:80]!r})")
    # 4b. an oversized WebSocket message: close 1009 (or ERROR then close).
    with ws_connect(f"ws://{HOST}:{HTTP}/ws", subprotocols=["v12.stomp"], max_size=None) as ws:
        ws.send(frame("CONNECT", {"accept-version": "1.2", "host": "localhost"}).decode())
        assert ws.recv(timeout=5).startswith("CONNECTED")
        ws.send(frame("SEND", {"destination": "/topic/big"}, b"y" * 200_000).decode())
        got = []
        try:
            while True:
                got.append(ws.recv(timeout=5))
        except Exception as e:  # ConnectionClosed
            code = getattr(getattr(e, "rcvd", None), "code", None)
        check(code in (1009, 1002, 1000) or any("ERROR" in str(g) for g in got),
              f"oversized WebSocket message refused (close code {code}, frames {[str(g)[:20] for g in got]})")
    healthy_roundtrip(healthy, 4)

    # 5. a slow consumer: subscribes and never reads; the publisher floods the topic.
    slow = Stomp("slow")
    slow.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.send("SUBSCRIBE", {"destination": "/topic/flood", "id": "f", "receipt": "sub-f"})
    assert slow.read()[0] == "RECEIPT"
    fast = Stomp("fast")
    fast.send("SUBSCRIBE", {"destination": "/topic/flood", "id": "f", "receipt": "sub-f"})
    assert fast.read()[0] == "RECEIPT"
    received = []
    done = threading.Event()

    def reader():
        while len(received) < 400:
            cmd, h, body = fast.read(timeout=20)
            if cmd == "MESSAGE":
                received.append(body)
        done.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    pub = Stomp("pub")
    payload = b"z" * 16_000
    for i in range(400):  # 6.4 MB, more than --max-output 1 MiB plus socket buffers
        # A well-behaved publisher: a receipt every 25 messages, waited for (flow control).
        if i % 25 == 24:
            pub.send("SEND", {"destination": "/topic/flood", "receipt": f"p{i}"}, payload)
            while pub.read(timeout=20)[0] != "RECEIPT":
                pass
        else:
            pub.send("SEND", {"destination": "/topic/flood"}, payload)
    pub.send("SEND", {"destination": "/app/echo", "receipt": "pub-done"}, b"done")
    t.join(30)
    check(done.is_set() and len(received) == 400, f"a fast subscriber got all {len(received)} flood messages")
    healthy_roundtrip(healthy, 5)
    # The slow consumer was disconnected by the server (ERROR queued, then closed after the
    # linger deadline since it never reads), and counted in the broker stats.
    end = time.time() + 10
    stats = {}
    while time.time() < end:
        stats = json.loads(http_get("/stats"))
        if stats["broker"]["slow_consumer_disconnects"] >= 1:
            break
        time.sleep(0.2)
    check(stats["broker"]["slow_consumer_disconnects"] >= 1,
          f"slow consumer disconnected (broker slow_consumer_disconnects="
          f"{stats['broker']['slow_consumer_disconnects']})")
    # healthy, fast, pub and this HTTP request remain: 4
    while time.time() < end and stats["server"]["connections_current"] > 4:
        time.sleep(0.2)
        stats = json.loads(http_get("/stats"))
    check(stats["server"]["connections_current"] <= 4,
          f"its connection was closed (connections_current={stats['server']['connections_current']})")
    data, closed = read_until_closed(slow.s, 3)
    print(f"[bad-clients] the slow consumer had {len(data)} bytes left to read; EOF seen: {closed}")

    healthy_roundtrip(healthy, 6)
    check(True, "the healthy client was unaffected throughout")


def http_get(path):
    s = socket.create_connection((HOST, HTTP))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data, _ = read_until_closed(s, 5)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return body


if __name__ == "__main__":
    main()
