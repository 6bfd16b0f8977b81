//! Send path, client role (encode + mask with a fresh key per frame): W1 (100,000 text
//! messages of 16 bytes) and W2 (2,000 binary messages of 64 KiB), output drained every
//! 128 KiB as a host writing to a socket would. Peers: tungstenite, fastwebsockets,
//! tokio-websockets, websocket-codec, each writing to a discarding in-memory sink.
//!
//! `cargo bench -p stompbox-benches --bench ws_send -- --warm-up-time 1 --measurement-time 3`

mod ws_common;

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stompbox_ws::{Config, Connection, MessageKind};
use ws_common::{MemStream, runtime};

/// Output is handed to the "socket" whenever this much is pending.
const DRAIN_AT: usize = 128 * 1024;

fn stompbox(kind: MessageKind, payload: &[u8], count: usize) -> usize {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut conn = Connection::client(Config::default(), move || rng.u32(..).to_le_bytes());
    let mut written = 0;
    for _ in 0..count {
        conn.send(kind, payload).expect("room");
        if conn.pending_output() >= DRAIN_AT {
            while let Some(out) = conn.poll_transmit() {
                written += black_box(out).len();
            }
        }
    }
    while let Some(out) = conn.poll_transmit() {
        written += black_box(out).len();
    }
    written
}

fn tungstenite(text: bool, payload: &Bytes, count: usize) {
    use tungstenite::protocol::{Role, WebSocket};
    let mut ws = WebSocket::from_raw_socket(MemStream::new(&[]), Role::Client, None);
    let utf8 = tungstenite::Utf8Bytes::try_from(payload.clone());
    for _ in 0..count {
        let msg = if text {
            tungstenite::Message::Text(utf8.clone().expect("utf-8"))
        } else {
            tungstenite::Message::Binary(payload.clone())
        };
        ws.write(msg).expect("write");
    }
    ws.flush().expect("flush");
}

fn fastwebsockets(rt: &tokio::runtime::Runtime, text: bool, payload: &[u8], count: usize) {
    rt.block_on(async {
        let mut ws = fastwebsockets::WebSocket::after_handshake(
            MemStream::new(&[]),
            fastwebsockets::Role::Client,
        );
        for _ in 0..count {
            let p = fastwebsockets::Payload::Borrowed(payload);
            let frame = if text {
                fastwebsockets::Frame::text(p)
            } else {
                fastwebsockets::Frame::binary(p)
            };
            ws.write_frame(frame).await.expect("write");
        }
        ws.flush().await.expect("flush");
    });
}

fn tokio_websockets(rt: &tokio::runtime::Runtime, text: bool, payload: &Bytes, count: usize) {
    use futures_util::SinkExt;
    rt.block_on(async {
        let mut ws = tokio_websockets::ClientBuilder::new().take_over(MemStream::new(&[]));
        for _ in 0..count {
            let msg = if text {
                tokio_websockets::Message::text(payload.clone())
            } else {
                tokio_websockets::Message::binary(payload.clone())
            };
            ws.feed(msg).await.expect("feed");
        }
        ws.flush().await.expect("flush");
    });
}

fn websocket_codec(text: bool, payload: &Bytes, count: usize) -> usize {
    use tokio_util::codec::Encoder;
    let mut codec = websocket_codec::MessageCodec::client();
    let mut out = BytesMut::new();
    let mut written = 0;
    let msg = if text {
        websocket_codec::Message::text(String::from_utf8(payload.to_vec()).expect("utf-8"))
    } else {
        websocket_codec::Message::binary(payload.clone())
    };
    for _ in 0..count {
        codec.encode(&msg, &mut out).expect("encode");
        if out.len() >= DRAIN_AT {
            written += black_box(out.split()).len();
        }
    }
    written + out.len()
}

fn send(c: &mut Criterion) {
    let rt = runtime();
    let w1 = Bytes::from_static(b"msg 00001234 ok!");
    let w2 = Bytes::from(
        (0..65_536u32)
            .map(|i| (i * 31 + 7) as u8)
            .collect::<Vec<u8>>(),
    );
    for (name, text, payload, count) in [
        ("send W1 100k x 16 B text", true, &w1, 100_000usize),
        ("send W2 2000 x 64 KiB binary", false, &w2, 2_000),
    ] {
        let kind = if text {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        assert!(stompbox(kind, payload, 1) > payload.len());
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes((payload.len() * count) as u64));
        g.sample_size(20);
        g.bench_function("stompbox-ws", |b| {
            b.iter(|| black_box(stompbox(kind, payload, count)));
        });
        g.bench_function("tungstenite", |b| {
            b.iter(|| tungstenite(text, payload, count));
        });
        g.bench_function("fastwebsockets", |b| {
            b.iter(|| fastwebsockets(&rt, text, payload, count));
        });
        g.bench_function("tokio-websockets", |b| {
            b.iter(|| tokio_websockets(&rt, text, payload, count));
        });
        g.bench_function("websocket-codec", |b| {
            b.iter(|| black_box(websocket_codec(text, payload, count)));
        });
        g.finish();
    }
}

criterion_group!(benches, send);
criterion_main!(benches);
