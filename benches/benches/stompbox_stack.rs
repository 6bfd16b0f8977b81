//! The stacked server path, in memory: 10,000 masked WebSocket messages, each a STOMP SEND with a
//! 100-byte body, arrive on one `ServerConnection`; the broker routes each to a subscriber on a
//! second `ServerConnection`, which frames the MESSAGE as a WebSocket message; output drained.
//! Beside it, in the same run: tungstenite's server-side `WebSocket` reading the same 10,000
//! frames and writing each payload back (WebSocket work only: no STOMP, no routing), i.e. the
//! floor of a tungstenite-based STOMP server; and the same echo through `ServerConnection`'s echo
//! route (WebSocket work only, like for like with tungstenite).
#![allow(clippy::unwrap_used, reason = "a bench that fails should stop loudly")]

use std::hint::black_box;
use std::io::{self, Cursor, Read, Write};
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stompbox::{Broker, ConnectionConfig, ServerConnection, ServerEvent, SessionId, broker};

const MESSAGES: usize = 10_000;
const UPGRADE: &[u8] =
    b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Protocol: v12.stomp\r\n\r\n";

/// The publisher's bytes after the handshake: CONNECT, then MESSAGES masked SEND frames.
fn publisher_frames() -> (Vec<u8>, Vec<u8>) {
    let mut n = 0u32;
    let mut ws = stompbox::ws::Connection::client(stompbox::ws::Config::default(), move || {
        n = n.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        n.to_le_bytes()
    });
    ws.send_text("CONNECT\naccept-version:1.2\nhost:h\nheart-beat:0,0\n\n\0")
        .unwrap();
    let mut connect = Vec::new();
    while let Some(b) = ws.poll_transmit() {
        connect.extend_from_slice(&b);
    }
    let body = "x".repeat(100);
    let send = format!("SEND\ndestination:/topic/bench\ncontent-type:text/plain\n\n{body}\0");
    let mut frames = Vec::new();
    for _ in 0..MESSAGES {
        ws.send_text(&send).unwrap();
        while let Some(b) = ws.poll_transmit() {
            frames.extend_from_slice(&b);
        }
    }
    (connect, frames)
}

fn open(
    config: &Arc<ConnectionConfig>,
    broker: &mut Broker,
    connect: &[u8],
) -> (ServerConnection, SessionId) {
    let mut c = ServerConnection::websocket(config, 0);
    c.handle_read(UPGRADE);
    let id = broker
        .open_session(broker::TransportInfo::default(), 0)
        .unwrap();
    c.handle_read(connect);
    pump(&mut c, broker, id);
    while c.poll_transmit().is_some() {}
    (c, id)
}

fn pump(c: &mut ServerConnection, broker: &mut Broker, id: SessionId) {
    while let Some(e) = c.poll_event() {
        if let ServerEvent::Stomp(b) = e {
            broker.handle_read(id, &b, 0).unwrap();
        }
    }
}

fn stack(c: &mut Criterion) {
    let (connect, frames) = publisher_frames();
    let mut g = c.benchmark_group("stack_10k_send_100B");
    g.throughput(Throughput::Elements(MESSAGES as u64));
    g.bench_function("stompbox ws->stomp->broker->ws", |b| {
        let config = Arc::new(ConnectionConfig::default());
        b.iter(|| {
            let mut broker = Broker::new(broker::Config::default());
            let (mut publisher, pid) = open(&config, &mut broker, &connect);
            let (mut subscriber, sid) = open(&config, &mut broker, &connect);
            // The subscriber subscribes (its frame is already masked text: reuse the client).
            let mut ws =
                stompbox::ws::Connection::client(stompbox::ws::Config::default(), || [1, 2, 3, 4]);
            ws.send_text("SUBSCRIBE\nid:0\ndestination:/topic/bench\n\n\0")
                .unwrap();
            subscriber.handle_read(&ws.poll_transmit().unwrap());
            pump(&mut subscriber, &mut broker, sid);
            while broker.poll_transmit(sid).is_some() {}
            let mut delivered = 0usize;
            for chunk in frames.chunks(64 * 1024) {
                publisher.handle_read(chunk);
                pump(&mut publisher, &mut broker, pid);
                while let Some(t) = broker.poll_transmit(sid) {
                    subscriber.send_stomp(&t.parts());
                    delivered += 1;
                }
                while let Some(out) = subscriber.poll_transmit() {
                    black_box(out);
                }
            }
            assert_eq!(delivered, MESSAGES);
        });
    });
    g.bench_function("stompbox ws echo only", |b| {
        let config = Arc::new(ConnectionConfig {
            echo_path: Some("/echo".into()),
            ..ConnectionConfig::default()
        });
        let upgrade = String::from_utf8(UPGRADE.to_vec())
            .unwrap()
            .replace("/ws", "/echo");
        b.iter(|| {
            let mut c = ServerConnection::websocket(&config, 0);
            c.handle_read(upgrade.as_bytes());
            let mut out = 0usize;
            for chunk in frames.chunks(64 * 1024) {
                c.handle_read(chunk);
                while let Some(b) = c.poll_transmit() {
                    out += b.len();
                }
            }
            assert!(out > frames.len() - MESSAGES * 4);
            black_box(out);
        });
    });
    g.bench_function("tungstenite ws echo only", |b| {
        b.iter(|| {
            let stream = Mem {
                input: Cursor::new(frames.clone()),
                output: Vec::with_capacity(frames.len()),
            };
            let mut ws = tungstenite::WebSocket::from_raw_socket(
                stream,
                tungstenite::protocol::Role::Server,
                None,
            );
            for _ in 0..MESSAGES {
                let m = ws.read().unwrap();
                ws.write(m).unwrap();
            }
            ws.flush().unwrap();
            black_box(ws.get_ref().output.len());
        });
    });
    g.finish();
}

struct Mem {
    input: Cursor<Vec<u8>>,
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

criterion_group!(benches, stack);
criterion_main!(benches);
