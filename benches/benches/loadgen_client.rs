//! The load generator's hot path, in memory: a subscriber's `ClientConnection` (handshake done)
//! receives 10,000 unmasked WebSocket messages, each a STOMP MESSAGE with a 100-byte body and
//! the bench's timestamp header, in 16 KiB reads, and hands out every frame. Beside it, in the
//! same run: tungstenite's client `WebSocket` reading the same bytes (WebSocket work only, no
//! STOMP parse): the floor of a tungstenite-based load generator.
#![allow(clippy::unwrap_used, reason = "a bench that fails should stop loudly")]

use std::hint::black_box;
use std::io::{self, Cursor, Read, Write};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stompbox::stomp::HeartBeat;
use stompbox::stomp::client::{ClientConfig, ClientEvent as StompEvent, SubscribeOptions};
use stompbox::{ClientConnection, ClientEvent};

/// The load generator's session: no heart-beats.
fn config() -> ClientConfig {
    ClientConfig {
        host: "h".into(),
        heart_beat: HeartBeat::NONE,
        ..ClientConfig::default()
    }
}

const MESSAGES: usize = 10_000;
const READ: usize = 16 * 1024;

/// The server's bytes: the 101 (for our client's nonce), CONNECTED, then MESSAGES frames.
fn server_bytes(nonce: [u8; 16]) -> (Vec<u8>, Vec<u8>) {
    // Accept our client's request with the server-side handshake machine.
    let mut client = ClientConnection::websocket("h", "/ws", nonce, || [1, 2, 3, 4], config());
    let mut request = Vec::new();
    while let Some(b) = client.poll_transmit() {
        request.extend_from_slice(&b);
    }
    let config = std::sync::Arc::new(stompbox::ConnectionConfig::default());
    let mut server = stompbox::ServerConnection::websocket(&config, 0);
    server.handle_read(&request);
    while server.poll_event().is_some() {}
    let mut head = Vec::new();
    while let Some(b) = server.poll_transmit() {
        head.extend_from_slice(&b);
    }
    server.send_stomp(&[b"CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0"]);
    while let Some(b) = server.poll_transmit() {
        head.extend_from_slice(&b);
    }
    let body = "x".repeat(100);
    let mut frames = Vec::new();
    for i in 0..MESSAGES {
        let m = format!(
            "MESSAGE\ndestination:/topic/bench.1\nmessage-id:{i}\nsubscription:0\nx-bench-ts:{}\ncontent-length:100\n\n{body}\0",
            1_000_000 + i
        );
        server.send_stomp(&[m.as_bytes()]);
        while let Some(b) = server.poll_transmit() {
            frames.extend_from_slice(&b);
        }
    }
    (head, frames)
}

fn bench(c: &mut Criterion) {
    let nonce = [9u8; 16];
    let (head, frames) = server_bytes(nonce);
    let mut g = c.benchmark_group("loadgen_client_receive");
    g.throughput(Throughput::Elements(MESSAGES as u64));
    g.bench_function("stompbox_client_connection", |b| {
        b.iter_batched(
            || {
                let mut c =
                    ClientConnection::websocket("h", "/ws", nonce, || [1, 2, 3, 4], config());
                while c.poll_transmit().is_some() {}
                c.handle_read(&head);
                while c.poll_event().is_some() {}
                let opts = SubscribeOptions {
                    id: Some("0"),
                    ..SubscribeOptions::default()
                };
                c.session().subscribe("/topic/bench.1", &opts).unwrap();
                while c.poll_transmit().is_some() {}
                c
            },
            |mut c| {
                let mut n = 0usize;
                for chunk in frames.chunks(READ) {
                    c.handle_read(chunk);
                    while let Some(ev) = c.poll_event() {
                        if let ClientEvent::Stomp(StompEvent::Message(m)) = ev {
                            n += black_box(m.frame.header("x-bench-ts")).map_or(0, |_| 1);
                        }
                    }
                }
                assert_eq!(n, MESSAGES);
                c
            },
            criterion::BatchSize::LargeInput,
        );
    });
    g.bench_function("tungstenite_client_read", |b| {
        b.iter_batched(
            || {
                let stream = Chunked {
                    data: Cursor::new(frames.clone()),
                };
                tungstenite::WebSocket::from_raw_socket(
                    stream,
                    tungstenite::protocol::Role::Client,
                    None,
                )
            },
            |mut ws| {
                let mut n = 0usize;
                while let Ok(m) = ws.read() {
                    n += black_box(m.len()).min(1);
                }
                assert_eq!(n, MESSAGES);
                ws
            },
            criterion::BatchSize::LargeInput,
        );
    });
    g.finish();
}

/// The same 16 KiB reads for tungstenite; writes are discarded.
struct Chunked {
    data: Cursor<Vec<u8>>,
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(READ);
        let r = self.data.read(&mut buf[..n])?;
        if r == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(r)
    }
}

impl Write for Chunked {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
