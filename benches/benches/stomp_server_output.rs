//! ServerSession output: queueing MESSAGE frames with `send_message` and draining them, as a
//! byte stream (`poll_transmit`: small frames coalesced into one chunk, bodies from 512 bytes
//! shared) or whole frame by whole frame (`poll_transmit_frame`, e.g. one WebSocket message
//! per frame), beside the reference a per-frame host without sharing would do: encode each
//! frame into its own buffer (`stompbox_stomp::encode`, one buffer = one write per frame).
//!
//! 10,000 MESSAGE frames per iteration (destination, message-id, subscription, content-type;
//! body 100 B or 4 KiB, the same `Bytes` for every frame as in a fan-out), drained every 100
//! frames. The number of chunks (writes) each mode hands out is printed once.
//!
//! Run: `cargo bench -p stompbox-benches --bench stomp_server_output -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, reason = "benches panic on failure by design")]

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use stompbox_stomp::server::{Accept, Message, ServerConfig, ServerEvent, ServerSession};
use stompbox_stomp::{Command, Frame, Version, encode};

const N: usize = 10_000;
const BATCH: usize = 100;

fn session() -> ServerSession {
    let mut s = ServerSession::new(ServerConfig::default());
    s.handle_timeout(0);
    s.handle_read(
        b"CONNECT\naccept-version:1.2\nhost:h\n\n\0SUBSCRIBE\nid:sub-0\ndestination:/topic/prices.eu\n\n\0",
    )
    .unwrap();
    while let Some(ev) = s.poll_event() {
        if let ServerEvent::Connect(_) = ev {
            s.accept(&Accept::default()).unwrap();
        }
    }
    while s.poll_transmit().is_some() {}
    s
}

#[derive(Clone, Copy)]
enum Drain {
    Stream,
    Frames,
}

/// Queues N messages in batches, draining after each; returns (bytes, chunks).
fn run(s: &mut ServerSession, body: &Bytes, ids: &[String], drain: Drain) -> (usize, usize) {
    let (mut bytes, mut chunks) = (0, 0);
    for batch in ids.chunks(BATCH) {
        for id in batch {
            s.send_message(&Message {
                subscription: "sub-0",
                destination: "/topic/prices.eu",
                message_id: id,
                headers: &[("content-type", "text/plain")],
                body: body.clone(),
            })
            .unwrap();
        }
        match drain {
            Drain::Stream => {
                while let Some(c) = s.poll_transmit() {
                    bytes += black_box(c).len();
                    chunks += 1;
                }
            }
            Drain::Frames => {
                while let Some(t) = s.poll_transmit_frame() {
                    for p in t.parts() {
                        if !p.is_empty() {
                            chunks += 1;
                        }
                    }
                    bytes += black_box(t).len();
                }
            }
        }
    }
    (bytes, chunks)
}

/// The reference: every frame encoded into its own buffer (body copied), one write each.
fn run_encode_each(body: &Bytes, ids: &[String]) -> (usize, usize) {
    let mut bytes = 0;
    for id in ids {
        let f = Frame::builder(Command::Message)
            .header("destination", "/topic/prices.eu")
            .header("message-id", id)
            .header("subscription", "sub-0")
            .header("content-type", "text/plain")
            .body(body.clone())
            .build();
        let mut out = BytesMut::new();
        encode(&f, Version::V1_2, &mut out).unwrap();
        bytes += black_box(out.freeze()).len();
    }
    (bytes, ids.len())
}

fn bench(c: &mut Criterion) {
    let ids: Vec<String> = (0..N).map(|i| format!("msg-{i}")).collect();
    for (name, len) in [("100B", 100usize), ("4KiB", 4096)] {
        let body = Bytes::from(vec![b'x'; len]);
        let mut g = c.benchmark_group(format!("server_output_{name}"));
        g.throughput(Throughput::Elements(N as u64));
        let mut s = session();
        let stream = run(&mut s, &body, &ids, Drain::Stream);
        let frames = run(&mut s, &body, &ids, Drain::Frames);
        let each = run_encode_each(&body, &ids);
        assert_eq!(stream.0, frames.0);
        assert_eq!(stream.0, each.0);
        eprintln!(
            "server_output_{name}: {N} frames, {} bytes; writes: poll_transmit {}, poll_transmit_frame parts {}, encode each {}",
            stream.0, stream.1, frames.1, each.1
        );
        g.bench_function("stompbox poll_transmit (stream)", |b| {
            b.iter(|| run(&mut s, &body, &ids, Drain::Stream));
        });
        g.bench_function("stompbox poll_transmit_frame", |b| {
            b.iter(|| run(&mut s, &body, &ids, Drain::Frames));
        });
        g.bench_function("reference: encode each frame", |b| {
            b.iter(|| run_encode_each(&body, &ids));
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
