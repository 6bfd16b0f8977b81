//! Probe for switching the broker to `ServerSession`: the per-delivery cost of a topic fan-out
//! (one 100-byte MESSAGE to each of N sessions, then every session drained frame by frame),
//! done the way the broker does it today (a per-subscriber head built from a pre-encoded common
//! part, the body shared, queued as a three-part transmit) and the way it would through
//! `ServerSession::send_message` + `poll_transmit_frame` (one session machine per client).
//!
//! Routing (trie, session lookup) is left out of both: it would be the same after a switch.
//!
//! Run: `cargo bench -p stompbox-benches --bench broker_delivery_probe -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, reason = "benches panic on failure by design")]

use std::collections::VecDeque;
use std::hint::black_box;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use stompbox_stomp::server::{Accept, Message, ServerConfig, ServerEvent, ServerSession, Transmit};

/// Today's broker: a session's queue of three-part transmits.
struct WireSession {
    sub: String,
    out: VecDeque<(Bytes, Bytes, &'static [u8])>,
    out_bytes: usize,
}

fn put_u64(out: &mut BytesMut, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&buf[i..]);
}

/// As `crates/broker/src/wire.rs` `message_head` (no escaping needed for these values).
fn message_head(dest: &str, id: u64, sub: &str, common: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(48 + dest.len() + sub.len() * 2 + common.len());
    out.put_slice(b"MESSAGE\ndestination:");
    out.put_slice(dest.as_bytes());
    out.put_slice(b"\nmessage-id:");
    put_u64(&mut out, id);
    out.put_slice(b"\nsubscription:");
    out.put_slice(sub.as_bytes());
    out.put_u8(b'\n');
    out.put_slice(common);
    out.freeze()
}

fn wire_round(sessions: &mut [WireSession], next_id: &mut u64, body: &Bytes) -> usize {
    // The broker encodes the user headers + content-length once per message.
    let mut common = BytesMut::new();
    common.put_slice(b"content-type:text/plain\ncontent-length:");
    put_u64(&mut common, body.len() as u64);
    common.put_slice(b"\n\n");
    let common = common.freeze();
    for s in sessions.iter_mut() {
        let head = message_head("/topic/bench", *next_id, &s.sub, &common);
        *next_id += 1;
        let len = head.len() + body.len() + 1;
        s.out.push_back((head, body.clone(), b"\0"));
        s.out_bytes += len;
    }
    let mut bytes = 0;
    for s in sessions.iter_mut() {
        while let Some(t) = s.out.pop_front() {
            let len = t.0.len() + t.1.len() + t.2.len();
            s.out_bytes -= len;
            bytes += black_box(len);
        }
    }
    bytes
}

fn server_session(sub: &str) -> ServerSession {
    let mut s = ServerSession::new(ServerConfig {
        require_host: false,
        auto_receipts: false,
        ..ServerConfig::default()
    });
    s.handle_timeout(0);
    let mut input = b"CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\0".to_vec();
    input.extend_from_slice(
        format!("SUBSCRIBE\nid:{sub}\ndestination:/topic/bench\n\n\0").as_bytes(),
    );
    s.handle_read(&input).unwrap();
    while let Some(ev) = s.poll_event() {
        if let ServerEvent::Connect(_) = ev {
            s.accept(&Accept::default()).unwrap();
        }
    }
    while s.poll_transmit().is_some() {}
    s
}

/// Through `ServerSession`: send_message, then the broker moves each whole frame into its own
/// per-session queue (as it must, to keep its byte/frame bounds and `poll_ready` contract).
fn session_round(
    sessions: &mut [(String, ServerSession, VecDeque<Transmit>)],
    next_id: &mut u64,
    body: &Bytes,
) -> usize {
    let mut id_buf = itoa_buf();
    for (sub, s, q) in sessions.iter_mut() {
        let id = fmt_id(*next_id, &mut id_buf);
        *next_id += 1;
        s.send_message(&Message {
            subscription: sub,
            destination: "/topic/bench",
            message_id: id,
            headers: &[("content-type", "text/plain")],
            body: body.clone(),
        })
        .unwrap();
        while let Some(t) = s.poll_transmit_frame() {
            q.push_back(t);
        }
    }
    let mut bytes = 0;
    for (_, _, q) in sessions.iter_mut() {
        while let Some(t) = q.pop_front() {
            bytes += black_box(t.len());
        }
    }
    bytes
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

fn fmt_id(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap()
}

fn probe(c: &mut Criterion) {
    let body = Bytes::from(vec![b'x'; 100]);
    let mut g = c.benchmark_group("delivery_probe");
    for n in [1usize, 100, 10_000] {
        g.throughput(Throughput::Elements(1));
        let mut wire: Vec<WireSession> = (0..n)
            .map(|i| WireSession {
                sub: i.to_string(),
                out: VecDeque::new(),
                out_bytes: 0,
            })
            .collect();
        let mut sess: Vec<(String, ServerSession, VecDeque<Transmit>)> = (0..n)
            .map(|i| {
                let sub = i.to_string();
                let s = server_session(&sub);
                (sub, s, VecDeque::new())
            })
            .collect();
        let (mut id_a, mut id_b) = (1u64, 1u64);
        let a = wire_round(&mut wire, &mut id_a, &body);
        let b = session_round(&mut sess, &mut id_b, &body);
        assert_eq!(a, b, "same bytes either way");
        g.bench_with_input(BenchmarkId::new("broker_wire", n), &n, |bench, _| {
            bench.iter(|| wire_round(&mut wire, &mut id_a, &body));
        });
        g.bench_with_input(BenchmarkId::new("server_session", n), &n, |bench, _| {
            bench.iter(|| session_round(&mut sess, &mut id_b, &body));
        });
    }
    g.finish();
}

criterion_group!(benches, probe);
criterion_main!(benches);
