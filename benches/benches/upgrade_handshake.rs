//! The server side of the opening handshake: parse a ~500-byte browser upgrade request and
//! produce the 101 response, stompbox-upgrade vs tungstenite's `accept` in the same run.
#![allow(clippy::unwrap_used, reason = "a bench that fails should stop loudly")]

use std::hint::black_box;
use std::io::{self, Cursor, Read, Write};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stompbox_upgrade::{
    Accept, Incoming, Limits, ServerEvent, ServerHandshake, Status, parse_request,
};

/// A browser's upgrade request (Chrome-like), as the issue describes it.
const REQUEST: &[u8] = b"GET /stomp?token=abc HTTP/1.1\r\n\
Host: example.com:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: https://example.com\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: session=0123456789abcdef; theme=dark\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Protocol: v12.stomp, v11.stomp\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

const PREFS: &[&str] = &["v12.stomp", "v11.stomp"];

/// An in-memory duplex stream: reads the request, collects what is written.
struct Mem {
    input: Cursor<&'static [u8]>,
    output: Vec<u8>,
}

impl Read for Mem {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Mem {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[allow(clippy::result_large_err, reason = "tungstenite's callback signature")]
fn tungstenite_accept() -> Vec<u8> {
    use tungstenite::handshake::server::{Request, Response};
    let stream = Mem {
        input: Cursor::new(REQUEST),
        output: Vec::with_capacity(256),
    };
    let callback = |req: &Request, mut resp: Response| {
        // Choose the subprotocol as stompbox does, so both answer the same 101.
        let offered = req
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok());
        if let Some(p) = PREFS
            .iter()
            .find(|p| offered.is_some_and(|o| o.split(',').any(|x| x.trim() == **p)))
        {
            resp.headers_mut()
                .insert("sec-websocket-protocol", p.parse().unwrap());
        }
        Ok(resp)
    };
    let ws = tungstenite::accept_hdr(stream, callback).unwrap();
    let mut ws = ws;
    std::mem::take(&mut ws.get_mut().output)
}

fn stompbox_parse_and_accept(out: &mut Vec<u8>) -> usize {
    out.clear();
    let Ok(Status::Complete((Incoming::Upgrade(req), consumed))) =
        parse_request(REQUEST, &Limits::default())
    else {
        panic!("not an upgrade");
    };
    let protocol = req.choose_protocol(PREFS);
    let negotiated = req.accept(Accept::new().protocol(protocol), out).unwrap();
    black_box(negotiated);
    consumed
}

fn stompbox_machine() -> Vec<u8> {
    let mut hs = ServerHandshake::new(Limits::default());
    hs.handle_read(REQUEST).unwrap();
    let Some(ServerEvent::Upgrade(req)) = hs.poll_event() else {
        panic!("no event")
    };
    let protocol = req.choose_protocol(PREFS);
    let up = hs.accept(&req, Accept::new().protocol(protocol)).unwrap();
    black_box(up);
    hs.poll_transmit_vec().unwrap()
}

fn handshake(c: &mut Criterion) {
    // Both produce the same 101 (modulo header order and case).
    let ours = stompbox_machine();
    let theirs = tungstenite_accept();
    for needle in ["s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "v12.stomp"] {
        assert!(String::from_utf8_lossy(&ours).contains(needle));
        assert!(String::from_utf8_lossy(&theirs).contains(needle));
    }

    let mut g = c.benchmark_group("upgrade_handshake");
    g.throughput(Throughput::Bytes(REQUEST.len() as u64));
    let mut out = Vec::with_capacity(256);
    g.bench_function("stompbox_parse_request+accept", |b| {
        b.iter(|| stompbox_parse_and_accept(black_box(&mut out)));
    });
    g.bench_function("stompbox_server_handshake_machine", |b| {
        b.iter(stompbox_machine);
    });
    g.bench_function("tungstenite_accept_hdr", |b| b.iter(tungstenite_accept));
    g.finish();

    // Where the time goes (same input).
    let mut g = c.benchmark_group("upgrade_handshake_parts");
    g.bench_function("httparse_only", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            black_box(req.parse(black_box(REQUEST)).unwrap())
        });
    });
    g.bench_function("accept_key_only", |b| {
        b.iter(|| stompbox_upgrade::accept_key(black_box(b"dGhlIHNhbXBsZSBub25jZQ==")));
    });
    g.bench_function("parse_request_only", |b| {
        b.iter(|| parse_request(black_box(REQUEST), &Limits::default()).unwrap());
    });
    g.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
