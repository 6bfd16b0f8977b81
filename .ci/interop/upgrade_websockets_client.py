"""Drives the stompbox-upgrade `accept_close` example with Python's `websockets` client.

Usage: upgrade_websockets_client.py PORT
Checks: the handshake answers 101 with Sec-WebSocket-Accept, the server chose `v12.stomp`
from the offer, a server-preferred protocol wins over client order, and the client receives the
server's close frame (1000, "bye"). Also checks a bad version gets 426 with
Sec-WebSocket-Version: 13 and a plain GET gets a page. Exits non-zero on any failure.
"""

import socket
import sys

from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect

port = int(sys.argv[1])
url = f"ws://127.0.0.1:{port}/stomp"


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


# 1. Subprotocol negotiation, 101, and the server's close.
for offer, want in [(["v12.stomp"], "v12.stomp"), (["v10.stomp", "v11.stomp", "v12.stomp"], "v12.stomp"),
                    (["mqtt", "v11.stomp"], "v11.stomp")]:
    with connect(url, subprotocols=offer, open_timeout=5, close_timeout=5) as ws:
        check(ws.response.status_code == 101, f"101 for offer {offer}")
        check(ws.response.headers.get("Sec-WebSocket-Accept") is not None, "Sec-WebSocket-Accept present")
        check(ws.subprotocol == want, f"chosen subprotocol {ws.subprotocol!r} == {want!r}")
        try:
            msg = ws.recv(timeout=5)
            check(False, f"expected a close, got a message {msg!r}")
        except ConnectionClosedOK as e:
            check(e.rcvd is not None and e.rcvd.code == 1000, f"received close 1000 ({e.rcvd})")
            check(e.rcvd.reason == "bye", "close reason 'bye'")


def raw(request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data
            data += chunk


# 2. A rejection over the wire: version 8 gets 426 and the version we speak.
resp = raw(b"GET /stomp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n")
check(resp.startswith(b"HTTP/1.1 426 "), "426 for Sec-WebSocket-Version: 8")
check(b"\r\nSec-WebSocket-Version: 13\r\n" in resp, "426 lists Sec-WebSocket-Version: 13")

# 3. A plain HTTP request on the same port.
resp = raw(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
check(resp.startswith(b"HTTP/1.1 200 OK") and b"/stats" in resp, "plain GET served as a page")
print("all websockets interop checks passed")
