//! Relay benches: the per-message cost of the broker relay, in memory (no sockets). A batch of
//! 100 MESSAGE frames (100-byte bodies) from an upstream broker to one client, and 100 client
//! SENDs to the upstream, against the in-memory broker doing the same job (SEND -> MESSAGE to
//! one subscriber) and against the floor of any relay: the stomp codec parsing and re-encoding
//! the same frames.
#![allow(clippy::many_single_char_names)] // c = criterion, g = group, b/m = brokers, p/s = sessions

use bytes::BytesMut;
use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use stompbox_broker::{
    Broker, Config, RelayConfig, SessionId, TransportInfo, UpstreamCommand, UpstreamId,
};
use stompbox_stomp::{Limits, Parser, Version, encode};

const BATCH: usize = 100;

fn frame(cmd: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(cmd.as_bytes());
    v.push(b'\n');
    for (k, val) in headers {
        v.extend_from_slice(format!("{k}:{val}\n").as_bytes());
    }
    v.push(b'\n');
    v.extend_from_slice(body);
    v.push(0);
    v
}

fn drain(b: &mut Broker) -> usize {
    let mut n = 0;
    while let Some(id) = b.poll_ready() {
        while let Some(t) = b.poll_transmit(id) {
            n += t.len();
        }
    }
    while let Some(id) = b.upstream_ready() {
        while let Some(t) = b.upstream_transmit(id) {
            n += t.len();
        }
    }
    while b.poll_event().is_some() {}
    n
}

const CONNECT: &[u8] = b"CONNECT\naccept-version:1.2\nhost:b\nheart-beat:0,0\n\n\0";

/// A relaying broker with one connected client subscribed to /topic/t (upstream id returned).
fn relay_setup() -> (Broker, SessionId, UpstreamId) {
    let mut b = Broker::new(Config {
        heart_beat: (0, 0),
        relay: Some(RelayConfig {
            heart_beat: (0, 0),
            ..RelayConfig::default()
        }),
        ..Config::default()
    });
    let c = b
        .open_session(TransportInfo::default(), 0)
        .expect("session");
    b.handle_read(c, CONNECT, 0).expect("open");
    let Some(UpstreamCommand::Open(up)) = b.poll_upstream() else {
        panic!("upstream expected");
    };
    b.upstream_read(up, b"CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0", 0)
        .expect("known");
    b.handle_read(
        c,
        &frame(
            "SUBSCRIBE",
            &[("id", "s"), ("destination", "/topic/t")],
            b"",
        ),
        0,
    )
    .expect("open");
    drain(&mut b);
    (b, c, up)
}

fn batch(cmd: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let body = [b'x'; 100];
    let mut v = Vec::new();
    for _ in 0..BATCH {
        v.extend_from_slice(&frame(cmd, headers, &body));
    }
    v
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("broker_relay");
    g.throughput(Throughput::Elements(BATCH as u64));

    let messages = batch(
        "MESSAGE",
        &[
            ("destination", "/topic/t"),
            ("message-id", "T_s@@session-Gx1@@1"),
            ("subscription", "s"),
            ("content-type", "text/plain"),
        ],
    );
    let (mut b, _c, up) = relay_setup();
    g.bench_function("relay MESSAGE upstream->client (100)", |bench| {
        bench.iter(|| {
            b.upstream_read(up, black_box(&messages), 1).expect("known");
            black_box(drain(&mut b))
        });
    });

    let sends = batch(
        "SEND",
        &[("destination", "/topic/t"), ("content-type", "text/plain")],
    );
    let (mut b, c, _up) = relay_setup();
    g.bench_function("relay SEND client->upstream (100)", |bench| {
        bench.iter(|| {
            b.handle_read(c, black_box(&sends), 1).expect("open");
            black_box(drain(&mut b))
        });
    });

    // The in-memory broker doing the same job: SEND in, MESSAGE out to one subscriber.
    let mut m = Broker::new(Config {
        heart_beat: (0, 0),
        ..Config::default()
    });
    let p = m
        .open_session(TransportInfo::default(), 0)
        .expect("session");
    let s = m
        .open_session(TransportInfo::default(), 0)
        .expect("session");
    m.handle_read(p, CONNECT, 0).expect("open");
    m.handle_read(s, CONNECT, 0).expect("open");
    m.handle_read(
        s,
        &frame(
            "SUBSCRIBE",
            &[("id", "s"), ("destination", "/topic/t")],
            b"",
        ),
        0,
    )
    .expect("open");
    drain(&mut m);
    g.bench_function("in-memory SEND->MESSAGE (100)", |bench| {
        bench.iter(|| {
            m.handle_read(p, black_box(&sends), 1).expect("open");
            black_box(drain(&mut m))
        });
    });

    // The floor: parse the MESSAGE frames and encode them again.
    g.bench_function("codec floor: parse+encode MESSAGE (100)", |bench| {
        let mut parser = Parser::new(Limits::default());
        parser.set_version(Version::V1_2);
        let mut out = BytesMut::with_capacity(messages.len() * 2);
        bench.iter(|| {
            let mut input = BytesMut::from(&messages[..]);
            out.clear();
            while let Ok(Some(f)) = parser.parse(&mut input) {
                encode(&f, Version::V1_2, &mut out).expect("encodable");
            }
            black_box(out.len())
        });
    });
    g.finish();
}

criterion_group!(relay, benches);
criterion_main!(relay);
