//! permessage-deflate (RFC 7692), W4 (10,000 text messages of 1 KiB, mixed UTF-8): receive
//! (server role: masked compressed client frames in 64 KiB reads, inflated, text validated)
//! and send (server role: compress + frame, output drained every 128 KiB), with context
//! takeover (the default) and without it. In the same run: stompbox-ws and tungstenite on
//! the uncompressed W4 (tungstenite 0.30 has no permessage-deflate, so no compressed peer),
//! and raw zlib-rs (flate2) inflating/deflating the same messages as the floor.
//! Compression ratios (wire bytes / payload bytes) are printed before the measurements.
//!
//! `cargo bench -p stompbox-benches --bench ws_deflate -- --warm-up-time 1 --measurement-time 3`

mod ws_common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use stompbox_ws::{Config, Connection, DeflateConfig, Event, MessageKind};
use ws_common::{READ_CHUNK, mixed_text_1k, run_stompbox, run_tungstenite, stompbox_config, w4};

const MESSAGES: usize = 10_000;
const DRAIN_AT: usize = 128 * 1024;

fn config(d: DeflateConfig) -> Config {
    stompbox_config().deflate(Some(d))
}

fn modes() -> [(&'static str, DeflateConfig); 2] {
    [
        ("context takeover", DeflateConfig::default()),
        (
            "no context takeover",
            DeflateConfig::negotiated(true, true, 15, 15),
        ),
    ]
}

/// The client's wire bytes for W4 with deflate `d`.
fn compressed_wire(d: DeflateConfig, text: &str) -> Vec<u8> {
    let mut n = 0u32;
    let mut client = Connection::client(config(d).max_output_buffer(64 << 20), move || {
        n = n.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        n.to_le_bytes()
    });
    let mut wire = Vec::new();
    for _ in 0..MESSAGES {
        client.send_text(text).expect("room");
        while let Some(b) = client.poll_transmit() {
            wire.extend_from_slice(&b);
        }
    }
    wire
}

/// Receive: (messages, payload bytes).
fn receive(d: DeflateConfig, wire: &[u8]) -> (usize, usize) {
    let mut conn = Connection::server(config(d));
    let (mut n, mut bytes) = (0, 0);
    for chunk in wire.chunks(READ_CHUNK) {
        conn.handle_read(chunk).expect("valid input");
        while let Some(event) = conn.poll_event() {
            if let Event::Text(t) = event {
                n += 1;
                bytes += t.len();
            }
        }
    }
    (n, bytes)
}

/// Send: wire bytes produced.
fn send(d: DeflateConfig, text: &str) -> usize {
    let mut conn = Connection::server(config(d));
    let mut wire = 0;
    for _ in 0..MESSAGES {
        conn.send(MessageKind::Text, text.as_bytes()).expect("room");
        if conn.pending_output() >= DRAIN_AT {
            while let Some(b) = conn.poll_transmit() {
                wire += black_box(b).len();
            }
        }
    }
    while let Some(b) = conn.poll_transmit() {
        wire += black_box(b).len();
    }
    wire
}

/// The floor: zlib-rs deflating every message with a sync flush (context kept), no framing.
fn raw_deflate(text: &[u8], out: &mut Vec<u8>) -> usize {
    let mut c = Compress::new_with_window_bits(Compression::new(6), false, 15);
    let mut total = 0;
    for _ in 0..MESSAGES {
        out.clear();
        c.compress_vec(text, out, FlushCompress::Sync)
            .expect("deflate");
        total += out.len();
    }
    total
}

/// The floor: zlib-rs inflating the per-message streams (context kept), no framing.
fn raw_inflate(messages: &[Vec<u8>], out: &mut Vec<u8>) -> usize {
    let mut d = Decompress::new_with_window_bits(false, 15);
    let mut total = 0;
    for m in messages {
        out.clear();
        d.decompress_vec(m, out, FlushDecompress::Sync)
            .expect("inflate");
        total += out.len();
    }
    total
}

fn bench(c: &mut Criterion) {
    let text = mixed_text_1k();
    let payload = MESSAGES * text.len();
    let plain = w4();
    let mut g = c.benchmark_group("W4 deflate");
    g.throughput(Throughput::Bytes(payload as u64));
    g.sample_size(20);
    for (name, d) in modes() {
        let wire = compressed_wire(d, &text);
        assert_eq!(receive(d, &wire), (MESSAGES, payload), "{name}");
        let sent = send(d, &text);
        eprintln!(
            "W4 deflate, {name}: {} wire bytes for {payload} payload bytes: ratio {}.{:04} \
             (uncompressed W4 frames: {} bytes); server memory {} bytes",
            wire.len(),
            wire.len() / payload,
            wire.len() * 10_000 / payload % 10_000,
            plain.wire.len(),
            Connection::server(config(d)).deflate_memory(),
        );
        assert!(sent < payload, "{name}: compression shrinks W4");
        g.bench_function(format!("stompbox-ws receive, {name}"), |b| {
            b.iter(|| black_box(receive(d, black_box(&wire))));
        });
        g.bench_function(format!("stompbox-ws send, {name}"), |b| {
            b.iter(|| black_box(send(d, black_box(&text))));
        });
    }
    // Uncompressed references on the same W4 text.
    assert_eq!(run_stompbox(&plain.wire), (MESSAGES, payload));
    assert_eq!(run_tungstenite(&plain.wire, MESSAGES), (MESSAGES, payload));
    g.bench_function("stompbox-ws receive, uncompressed", |b| {
        b.iter(|| black_box(run_stompbox(black_box(&plain.wire))));
    });
    g.bench_function(
        "tungstenite receive, uncompressed (no deflate support)",
        |b| {
            b.iter(|| black_box(run_tungstenite(black_box(&plain.wire), MESSAGES)));
        },
    );
    // The zlib floor.
    let mut out = Vec::with_capacity(4096);
    let mut c6 = Compress::new_with_window_bits(Compression::new(6), false, 15);
    let streams: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|_| {
            let mut o = Vec::with_capacity(4096);
            c6.compress_vec(text.as_bytes(), &mut o, FlushCompress::Sync)
                .expect("deflate");
            o
        })
        .collect();
    assert_eq!(raw_inflate(&streams, &mut out), payload);
    g.bench_function("zlib-rs deflate only, context takeover", |b| {
        b.iter(|| black_box(raw_deflate(black_box(text.as_bytes()), &mut out)));
    });
    g.bench_function("zlib-rs inflate only, context takeover", |b| {
        b.iter(|| black_box(raw_inflate(black_box(&streams), &mut out)));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
