//! Shared by the ws_* benches: workload inputs (client frames, a fresh random mask key per
//! frame), in-memory streams for the peers, and one receive driver per implementation.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::missing_panics_doc,
    reason = "bench helpers"
)]

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use stompbox_ws::{Config, Connection, Event};

/// Bytes handed over per read (a socket read's worth), the same for every implementation.
pub const READ_CHUNK: usize = 64 * 1024;

/// A workload: the wire bytes and what must come out of them.
pub struct Workload {
    pub name: &'static str,
    pub wire: Vec<u8>,
    pub messages: usize,
    pub payload_bytes: usize,
}

fn put_frame(out: &mut Vec<u8>, rng: &mut fastrand::Rng, fin: bool, opcode: u8, payload: &[u8]) {
    let key: [u8; 4] = rng.u32(..).to_le_bytes();
    let header = stompbox_ws::FrameHeader {
        fin,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode: stompbox_ws::OpCode::from_u8(opcode).expect("data opcode"),
        mask: Some(key),
        payload_len: payload.len() as u64,
    };
    let (h, n) = header.to_bytes();
    out.extend_from_slice(&h[..n]);
    let start = out.len();
    out.extend_from_slice(payload);
    stompbox_ws::apply_mask_reference(&mut out[start..], key, 0);
}

/// W1: 100,000 text messages of 16 bytes.
pub fn w1() -> Workload {
    let mut rng = fastrand::Rng::with_seed(1);
    let mut wire = Vec::new();
    for i in 0..100_000u32 {
        let text = format!("msg {i:>8} ok!");
        assert_eq!(text.len(), 16);
        put_frame(&mut wire, &mut rng, true, 1, text.as_bytes());
    }
    Workload {
        name: "W1 100k x 16 B text",
        wire,
        messages: 100_000,
        payload_bytes: 1_600_000,
    }
}

/// W2: 2,000 binary messages of 64 KiB.
pub fn w2() -> Workload {
    let mut rng = fastrand::Rng::with_seed(2);
    let payload: Vec<u8> = (0..65_536u32).map(|i| (i * 31 + 7) as u8).collect();
    let mut wire = Vec::with_capacity(2_000 * (65_536 + 14));
    for _ in 0..2_000 {
        put_frame(&mut wire, &mut rng, true, 2, &payload);
    }
    Workload {
        name: "W2 2000 x 64 KiB binary",
        wire,
        messages: 2_000,
        payload_bytes: 2_000 * 65_536,
    }
}

/// W3: one 16 MiB binary message in 256 fragments.
pub fn w3() -> Workload {
    let mut rng = fastrand::Rng::with_seed(3);
    let payload: Vec<u8> = (0..(16u32 << 20)).map(|i| (i * 13 + 1) as u8).collect();
    let mut wire = Vec::with_capacity((16 << 20) + 256 * 14);
    for (i, piece) in payload.chunks(65_536).enumerate() {
        put_frame(
            &mut wire,
            &mut rng,
            i == 255,
            if i == 0 { 2 } else { 0 },
            piece,
        );
    }
    Workload {
        name: "W3 16 MiB binary in 256 fragments",
        wire,
        messages: 1,
        payload_bytes: 16 << 20,
    }
}

/// 1 KiB of mixed multi-byte UTF-8 (ASCII, Latin-1, Greek, CJK, emoji).
pub fn mixed_text_1k() -> String {
    let parts = [
        "STOMP ",
        "héllo wörld ",
        "κόσμε ",
        "日本語のテキスト ",
        "🦀🚀 ",
        "Ünïcödé ",
        "ok; ",
    ];
    let mut s = String::new();
    let mut i = 0;
    while s.len() < 1024 {
        let p = parts[i % parts.len()];
        if s.len() + p.len() > 1024 {
            break;
        }
        s.push_str(p);
        i += 1;
    }
    while s.len() < 1024 {
        s.push('.');
    }
    s
}

/// W4: 10,000 text messages of 1 KiB of mixed multi-byte UTF-8.
pub fn w4() -> Workload {
    let mut rng = fastrand::Rng::with_seed(4);
    let text = mixed_text_1k();
    let mut wire = Vec::new();
    for _ in 0..10_000 {
        put_frame(&mut wire, &mut rng, true, 1, text.as_bytes());
    }
    Workload {
        name: "W4 10k x 1 KiB mixed UTF-8 text",
        wire,
        messages: 10_000,
        payload_bytes: 10_000 * 1024,
    }
}

// ------------------------------------------------------------------ stompbox-ws

pub fn stompbox_config() -> Config {
    Config::default()
        .max_frame_size(32 << 20)
        .max_message_size(32 << 20)
        .max_fragments(1 << 20)
}

/// Returns (messages, payload bytes).
pub fn run_stompbox(wire: &[u8]) -> (usize, usize) {
    let mut conn = Connection::server(stompbox_config());
    let (mut n, mut bytes) = (0, 0);
    for chunk in wire.chunks(READ_CHUNK) {
        conn.handle_read(chunk).expect("valid input");
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Text(p) | Event::Binary(p) => {
                    n += 1;
                    bytes += p.len();
                }
                _ => panic!("unexpected event"),
            }
        }
    }
    (n, bytes)
}

// ------------------------------------------------------------------ in-memory streams

/// Hands out `data` in reads of at most `READ_CHUNK` bytes; discards writes.
pub struct MemStream<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> MemStream<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
}

impl Read for MemStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(READ_CHUNK).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for MemStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl tokio::io::AsyncRead for MemStream<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = buf
            .remaining()
            .min(READ_CHUNK)
            .min(self.data.len() - self.pos);
        let pos = self.pos;
        buf.put_slice(&self.data[pos..pos + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for MemStream<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

// ------------------------------------------------------------------ peers

pub fn run_tungstenite(wire: &[u8], messages: usize) -> (usize, usize) {
    use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let mut ws = WebSocket::from_raw_socket(MemStream::new(wire), Role::Server, Some(config));
    let (mut n, mut bytes) = (0, 0);
    while n < messages {
        match ws.read().expect("valid input") {
            tungstenite::Message::Text(t) => bytes += t.len(),
            tungstenite::Message::Binary(b) => bytes += b.len(),
            _ => panic!("unexpected message"),
        }
        n += 1;
    }
    (n, bytes)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

pub fn run_fastwebsockets(
    rt: &tokio::runtime::Runtime,
    wire: &[u8],
    messages: usize,
) -> (usize, usize) {
    rt.block_on(async {
        let mut ws = fastwebsockets::WebSocket::after_handshake(
            MemStream::new(wire),
            fastwebsockets::Role::Server,
        );
        ws.set_max_message_size(64 << 20);
        ws.set_auto_close(false);
        ws.set_auto_pong(false);
        let mut ws = fastwebsockets::FragmentCollector::new(ws);
        let (mut n, mut bytes) = (0, 0);
        while n < messages {
            let frame = ws.read_frame().await.expect("valid input");
            assert!(matches!(
                frame.opcode,
                fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary
            ));
            bytes += frame.payload.len();
            n += 1;
        }
        (n, bytes)
    })
}

pub fn run_tokio_websockets(
    rt: &tokio::runtime::Runtime,
    wire: &[u8],
    messages: usize,
) -> (usize, usize) {
    use futures_util::StreamExt;
    rt.block_on(async {
        let mut ws = tokio_websockets::ServerBuilder::new()
            .limits(tokio_websockets::Limits::unlimited())
            .serve(MemStream::new(wire));
        let (mut n, mut bytes) = (0, 0);
        while n < messages {
            let msg = ws.next().await.expect("a message").expect("valid input");
            assert!(msg.is_text() || msg.is_binary());
            bytes += msg.as_payload().len();
            n += 1;
        }
        (n, bytes)
    })
}

pub fn run_websocket_codec(wire: &[u8]) -> (usize, usize) {
    use tokio_util::codec::Decoder;
    let mut codec = websocket_codec::MessageCodec::server();
    let mut buf = bytes::BytesMut::new();
    let (mut n, mut bytes) = (0, 0);
    for chunk in wire.chunks(READ_CHUNK) {
        buf.extend_from_slice(chunk);
        while let Some(msg) = codec.decode(&mut buf).expect("valid input") {
            bytes += msg.data().len();
            n += 1;
        }
    }
    (n, bytes)
}
