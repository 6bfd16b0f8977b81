//! STOMP codec benches: stompbox-stomp against the Rust STOMP peers that build here, on the
//! same input in the same criterion run, with a memchr NUL scan as the ceiling.
//!
//! - S1: 100,000 MESSAGE frames (destination, message-id, subscription, content-type,
//!   content-length; 100-byte body).
//! - S2: 100,000 SEND frames (destination, content-type) with NUL-terminated 100-byte bodies.
//!
//! Parse is the full work of each library (framing, header decoding, limits where the
//! library has them). The input copy into each library's buffer is done in the untimed setup.
//! async-stomp's codec decodes server frames only (S1) and encodes client frames only (S2).
//! stomp-parser is not incremental: it gets each frame as its own `Vec<u8>` (split in setup).
//!
//! Run: `cargo bench -p stompbox-benches --bench stomp_codec -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, reason = "benches panic on failure by design")]

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use stompbox_stomp::{Command, Frame, Limits, Parser, Version, encode};
use tokio_util::codec::{Decoder, Encoder};

const N: usize = 100_000;

fn body() -> Vec<u8> {
    (0..100u8).map(|i| b'a' + (i % 26)).collect()
}

fn s1_frame(i: usize) -> Vec<u8> {
    let mut f = format!(
        "MESSAGE\ndestination:/topic/prices.eu\nmessage-id:msg-{i}\nsubscription:sub-0\ncontent-type:text/plain\ncontent-length:100\n\n"
    )
    .into_bytes();
    f.extend_from_slice(&body());
    f.push(0);
    f
}

fn s2_frame() -> Vec<u8> {
    let mut f = b"SEND\ndestination:/queue/orders\ncontent-type:text/plain\n\n".to_vec();
    f.extend_from_slice(&body());
    f.push(0);
    f
}

fn stream(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

fn limits() -> Limits {
    Limits::default()
}

fn parse_stompbox(buf: &mut BytesMut) -> usize {
    let mut p = Parser::new(limits());
    p.set_version(Version::V1_2);
    let mut n = 0;
    while let Some(f) = p.parse(buf).unwrap() {
        black_box(&f);
        n += 1;
    }
    n
}

fn parse_async_stomp(buf: &mut BytesMut) -> usize {
    let mut c = async_stomp::client::ClientCodec::new();
    let mut n = 0;
    while let Some(m) = c.decode(buf).unwrap() {
        black_box(&m);
        n += 1;
    }
    n
}

fn parse_stomp_rs<T>(input: &[u8]) -> usize
where
    T: stomp_rs::protocol::Command + Clone + Copy,
{
    let mut p = stomp_rs::protocol::FrameParser::<T>::new();
    let msgs = p.parse(input).unwrap();
    black_box(&msgs);
    msgs.len()
}

fn memchr_nul(input: &[u8]) -> usize {
    memchr::memchr_iter(0, input).count()
}

fn bench_parse(c: &mut Criterion, name: &str, frames: &[Vec<u8>], server_frames: bool) {
    let input = stream(frames);
    // Sanity: every library sees N frames in this input.
    assert_eq!(parse_stompbox(&mut BytesMut::from(&input[..])), N);
    assert_eq!(memchr_nul(&input), N);
    let mut g = c.benchmark_group(format!("stomp_{name}_parse"));
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function("memchr_nul_scan", |b| {
        b.iter(|| memchr_nul(black_box(&input)));
    });
    g.bench_function("stompbox", |b| {
        b.iter_batched(
            || BytesMut::from(&input[..]),
            // return the buffer: its deallocation happens outside the timed region
            |mut buf| (parse_stompbox(&mut buf), buf),
            BatchSize::LargeInput,
        );
    });
    if server_frames {
        assert_eq!(parse_async_stomp(&mut BytesMut::from(&input[..])), N);
        g.bench_function("async-stomp", |b| {
            b.iter_batched(
                || BytesMut::from(&input[..]),
                |mut buf| (parse_async_stomp(&mut buf), buf),
                BatchSize::LargeInput,
            );
        });
    }
    let stomp_rs = if server_frames {
        parse_stomp_rs::<stomp_rs::protocol::ServerCommand>
    } else {
        parse_stomp_rs::<stomp_rs::protocol::ClientCommand>
    };
    assert_eq!(stomp_rs(&input), N);
    g.bench_function("stomp-rs", |b| b.iter(|| stomp_rs(black_box(&input))));
    let split = || frames.to_vec();
    if server_frames {
        let parse = |v: Vec<Vec<u8>>| {
            let mut n = 0;
            for f in v {
                black_box(stomp_parser::server::ServerFrame::try_from(f).unwrap());
                n += 1;
            }
            n
        };
        assert_eq!(parse(split()), N);
        g.bench_function("stomp-parser", |b| {
            b.iter_batched(split, parse, BatchSize::LargeInput);
        });
    } else {
        let parse = |v: Vec<Vec<u8>>| {
            let mut n = 0;
            for f in v {
                black_box(stomp_parser::client::ClientFrame::try_from(f).unwrap());
                n += 1;
            }
            n
        };
        assert_eq!(parse(split()), N);
        g.bench_function("stomp-parser", |b| {
            b.iter_batched(split, parse, BatchSize::LargeInput);
        });
    }
    g.finish();
}

fn s1_frames_stompbox() -> Vec<Frame> {
    let body = Bytes::from(body());
    (0..N)
        .map(|i| {
            Frame::builder(Command::Message)
                .header("destination", "/topic/prices.eu")
                .header("message-id", &format!("msg-{i}"))
                .header("subscription", "sub-0")
                .header("content-type", "text/plain")
                .body(body.clone())
                .build()
        })
        .collect()
}

fn s2_frames_stompbox() -> Vec<Frame> {
    let body = Bytes::from(body());
    (0..N)
        .map(|_| {
            Frame::builder(Command::Send)
                .header("destination", "/queue/orders")
                .header("content-type", "text/plain")
                .body(body.clone())
                .build()
        })
        .collect()
}

fn encode_stompbox(frames: &[Frame]) -> usize {
    let mut out = BytesMut::with_capacity(frames.len() * 256);
    for f in frames {
        encode(f, Version::V1_2, &mut out).unwrap();
    }
    out.len()
}

fn bench_encode_s1(c: &mut Criterion) {
    let frames = s1_frames_stompbox();
    let mut g = c.benchmark_group("stomp_s1_encode");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function("stompbox", |b| {
        b.iter(|| encode_stompbox(black_box(&frames)));
    });
    let body = body();
    let body_str = String::from_utf8(body.clone()).unwrap();
    let rs_frames: Vec<stomp_rs::protocol::Frame<stomp_rs::protocol::ServerCommand>> = (0..N)
        .map(|i| stomp_rs::protocol::Frame {
            command: stomp_rs::protocol::ServerCommand::Message,
            headers: [
                ("destination", "/topic/prices.eu".to_string()),
                ("message-id", format!("msg-{i}")),
                ("subscription", "sub-0".to_string()),
                ("content-type", "text/plain".to_string()),
                ("content-length", "100".to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            body: body_str.clone(),
        })
        .collect();
    g.bench_function("stomp-rs", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(N * 256);
            for f in &rs_frames {
                out.extend_from_slice(&f.to_bytes());
            }
            out.len()
        });
    });
    g.bench_function("stomp-parser", |b| {
        b.iter_batched(
            || (0..N).map(|i| format!("msg-{i}")).collect::<Vec<_>>(),
            |ids| {
                let mut out = Vec::with_capacity(N * 256);
                for id in ids {
                    let f = stomp_parser::server::MessageFrameBuilder::new(
                        id,
                        "/topic/prices.eu".to_string(),
                        "sub-0".to_string(),
                    )
                    .content_type("text/plain".to_string())
                    .body(body.clone())
                    .build();
                    let v: Vec<u8> = f.into();
                    out.extend_from_slice(&v);
                }
                out.len()
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

fn bench_encode_s2(c: &mut Criterion) {
    let frames = s2_frames_stompbox();
    let mut g = c.benchmark_group("stomp_s2_encode");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function("stompbox", |b| {
        b.iter(|| encode_stompbox(black_box(&frames)));
    });
    let body = body();
    g.bench_function("async-stomp", |b| {
        b.iter_batched(
            || {
                (0..N)
                    .map(|_| async_stomp::Message {
                        content: async_stomp::ToServer::Send {
                            destination: "/queue/orders".to_string(),
                            transaction: None,
                            headers: Some(vec![(
                                "content-type".to_string(),
                                "text/plain".to_string(),
                            )]),
                            body: Some(body.clone()),
                        },
                        extra_headers: vec![],
                    })
                    .collect::<Vec<_>>()
            },
            |msgs| {
                let mut codec = async_stomp::client::ClientCodec::new();
                let mut out = BytesMut::with_capacity(N * 256);
                for m in msgs {
                    codec.encode(m, &mut out).unwrap();
                }
                out.len()
            },
            BatchSize::LargeInput,
        );
    });
    let body_str = String::from_utf8(body.clone()).unwrap();
    let rs_frames: Vec<stomp_rs::protocol::Frame<stomp_rs::protocol::ClientCommand>> = (0..N)
        .map(|_| stomp_rs::protocol::Frame {
            command: stomp_rs::protocol::ClientCommand::Send,
            headers: [
                ("destination", "/queue/orders"),
                ("content-type", "text/plain"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            body: body_str.clone(),
        })
        .collect();
    g.bench_function("stomp-rs", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(N * 256);
            for f in &rs_frames {
                out.extend_from_slice(&f.to_bytes());
            }
            out.len()
        });
    });
    g.bench_function("stomp-parser", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(N * 256);
            for _ in 0..N {
                let f = stomp_parser::client::SendFrameBuilder::new("/queue/orders".to_string())
                    .content_type("text/plain".to_string())
                    .body(body.clone())
                    .build();
                let v: Vec<u8> = f.into();
                out.extend_from_slice(&v);
            }
            out.len()
        });
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let s1: Vec<Vec<u8>> = (0..N).map(s1_frame).collect();
    let s2: Vec<Vec<u8>> = (0..N).map(|_| s2_frame()).collect();
    bench_parse(c, "s1", &s1, true);
    bench_parse(c, "s2", &s2, false);
    bench_encode_s1(c);
    bench_encode_s2(c);
}

criterion_group!(stomp_codec, benches);
criterion_main!(stomp_codec);
