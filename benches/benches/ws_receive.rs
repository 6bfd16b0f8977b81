//! Receive path, server role: masked client frames (a fresh random key per frame) in 64 KiB
//! reads, complete messages out, text validated. stompbox-ws beside tungstenite,
//! fastwebsockets, tokio-websockets and websocket-codec on the same inputs, plus a 16 MiB
//! memcpy as the memory-speed reference and (W2, W3) a memcpy of the wire in the same reads.
//!
//! `cargo bench -p stompbox-benches --bench ws_receive -- --warm-up-time 1 --measurement-time 3`

mod ws_common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ws_common::{
    run_fastwebsockets, run_stompbox, run_tokio_websockets, run_tungstenite, run_websocket_codec,
    runtime, w1, w2, w3, w4,
};

fn receive(c: &mut Criterion) {
    let rt = runtime();
    for w in [w1(), w2(), w3(), w4()] {
        let expected = (w.messages, w.payload_bytes);
        // Every implementation must decode the whole workload before it is timed.
        assert_eq!(run_stompbox(&w.wire), expected, "stompbox-ws {}", w.name);
        assert_eq!(
            run_tungstenite(&w.wire, w.messages),
            expected,
            "tungstenite {}",
            w.name
        );
        assert_eq!(
            run_fastwebsockets(&rt, &w.wire, w.messages),
            expected,
            "fastwebsockets {}",
            w.name
        );
        assert_eq!(
            run_tokio_websockets(&rt, &w.wire, w.messages),
            expected,
            "tokio-websockets {}",
            w.name
        );
        assert_eq!(
            run_websocket_codec(&w.wire),
            expected,
            "websocket-codec {}",
            w.name
        );

        let mut g = c.benchmark_group(w.name);
        g.throughput(Throughput::Bytes(w.payload_bytes as u64));
        if w.messages > 1 {
            g.sample_size(20);
        } else {
            g.sample_size(30);
        }
        let wire = &w.wire[..];
        g.bench_function("stompbox-ws", |b| {
            b.iter(|| black_box(run_stompbox(black_box(wire))));
        });
        g.bench_function("tungstenite", |b| {
            b.iter(|| black_box(run_tungstenite(black_box(wire), w.messages)));
        });
        g.bench_function("fastwebsockets", |b| {
            b.iter(|| black_box(run_fastwebsockets(&rt, black_box(wire), w.messages)));
        });
        g.bench_function("tokio-websockets", |b| {
            b.iter(|| black_box(run_tokio_websockets(&rt, black_box(wire), w.messages)));
        });
        g.bench_function("websocket-codec", |b| {
            b.iter(|| black_box(run_websocket_codec(black_box(wire))));
        });
        if w.payload_bytes >= 16 << 20 {
            // The wire itself copied in the same 64 KiB reads into one reused buffer: the
            // memory traffic floor of reading this input (W2's 131 MB wire does not fit in
            // cache, unlike the 16 MiB memcpy below).
            let mut read_buf = vec![0u8; ws_common::READ_CHUNK];
            g.throughput(Throughput::Bytes(w.wire.len() as u64));
            g.bench_function(BenchmarkId::new("memcpy", "wire in 64 KiB reads"), |b| {
                b.iter(|| {
                    for chunk in black_box(wire).chunks(ws_common::READ_CHUNK) {
                        read_buf[..chunk.len()].copy_from_slice(chunk);
                        black_box(&read_buf);
                    }
                });
            });
            let src = vec![7u8; 16 << 20];
            let mut dst = vec![0u8; 16 << 20];
            g.throughput(Throughput::Bytes(16 << 20));
            g.bench_function(BenchmarkId::new("memcpy", "16 MiB"), |b| {
                b.iter(|| {
                    dst.copy_from_slice(black_box(&src));
                    black_box(&dst);
                });
            });
        }
        g.finish();
    }
}

criterion_group!(benches, receive);
criterion_main!(benches);
