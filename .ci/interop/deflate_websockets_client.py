"""Python `websockets` (sans-I/O ClientProtocol over a plain socket) against the stompbox-ws
echo server with permessage-deflate: for several offers (the default one, every parameter,
small windows), checks the negotiated answer, sends text and binary messages (small, large,
repetitive, random) and checks the echoes, and that repetitive messages really travel
compressed in both directions (raw bytes on the socket vs payload). Exit 1 on any failure."""
import os
import socket
import sys

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

PORT = int(sys.argv[1])
URL = f"ws://127.0.0.1:{PORT}/"

OFFERS = {
    "default (client_max_window_bits)": ClientPerMessageDeflateFactory(),
    "no context takeover both": ClientPerMessageDeflateFactory(
        server_no_context_takeover=True, client_no_context_takeover=True
    ),
    "server_max_window_bits=10, client_max_window_bits=9": ClientPerMessageDeflateFactory(
        server_max_window_bits=10, client_max_window_bits=9
    ),
    "windows 9 without context takeover": ClientPerMessageDeflateFactory(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=9,
        client_max_window_bits=9,
    ),
    # zlib cannot compress raw streams with 8 bits, so stompbox compresses with 9, whose
    # longest distance (250) must fit Python's real 256-byte-window inflater.
    "server_max_window_bits=8 (a 256-byte inflate window here)": ClientPerMessageDeflateFactory(
        server_max_window_bits=8
    ),
}

STOMP = "MESSAGE\ndestination:/topic/prices\nsubscription:sub-0\nmessage-id:{i}\n\n{{\"price\":{i}}}\0"
MESSAGES = (
    [("text", STOMP.format(i=i)) for i in range(50)]
    + [("text", "héllo wörld 🦀 " * 2000), ("binary", bytes(200_000)), ("binary", os.urandom(50_000))]
    + [("text", ""), ("binary", b""), ("text", "x")]
)


def run(name, factory):
    proto = ClientProtocol(parse_uri(URL), extensions=[factory])
    sock = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    proto.send_request(proto.connect())
    wire_out = 0

    def flush():
        nonlocal wire_out
        for data in proto.data_to_send():
            if data:
                wire_out += len(data)
                sock.sendall(data)

    flush()
    wire_in = 0
    echoes = []
    response = None
    # The handshake.
    while response is None:
        data = sock.recv(65536)
        if not data:
            raise SystemExit(f"{name}: closed during the handshake")
        proto.receive_data(data)
        for event in proto.events_received():
            if isinstance(event, Response):
                response = event
    if proto.handshake_exc is not None:
        raise SystemExit(f"{name}: handshake failed: {proto.handshake_exc}")
    answer = response.headers.get("Sec-WebSocket-Extensions", "")
    if "permessage-deflate" not in answer:
        raise SystemExit(f"{name}: server did not accept permessage-deflate: {answer!r}")
    wire_out = 0
    payload = 0
    for kind, msg in MESSAGES:
        if kind == "text":
            proto.send_text(msg.encode())
            payload += len(msg.encode())
        else:
            proto.send_binary(msg)
            payload += len(msg)
        flush()
    # Read the echoes.
    while len(echoes) < len(MESSAGES):
        data = sock.recv(262144)
        if not data:
            raise SystemExit(f"{name}: closed after {len(echoes)} echoes")
        wire_in += len(data)
        proto.receive_data(data)
        for event in proto.events_received():
            if event.opcode == Opcode.TEXT:
                echoes.append(("text", event.data.decode()))
            elif event.opcode == Opcode.BINARY:
                echoes.append(("binary", bytes(event.data)))
        flush()
    if echoes != MESSAGES:
        bad = next(i for i, (a, b) in enumerate(zip(echoes, MESSAGES)) if a != b)
        raise SystemExit(f"{name}: echo {bad} differs")
    proto.send_close(1000, "done")
    flush()
    while True:
        data = sock.recv(65536)
        if not data:
            break
        proto.receive_data(data)
        proto.events_received()
        flush()
    sock.close()
    # 50 KB of random bytes cannot shrink; everything else is very repetitive.
    if not (wire_out < payload * 0.35 and wire_in < payload * 0.35):
        raise SystemExit(
            f"{name}: not compressed: sent {wire_out}, received {wire_in}, payload {payload}"
        )
    print(
        f"ok: {name}: answer {answer!r}; {len(MESSAGES)} messages, payload {payload} bytes, "
        f"wire out {wire_out}, wire in {wire_in}"
    )


for name, factory in OFFERS.items():
    run(name, factory)
print(f"{len(OFFERS)} passed, 0 failed")
