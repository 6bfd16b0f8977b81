//! Broker benches: topic fan-out of 100-byte messages to 1, 100 and 10,000 subscribers, and
//! pattern matching with 10,000 distinct subscriptions (against a linear scan of the same
//! patterns as the baseline).

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use stompbox_broker::{Broker, Config, SessionId, TransportInfo, pattern};

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

fn connect(b: &mut Broker) -> SessionId {
    let id = b
        .open_session(TransportInfo::default(), 0)
        .expect("session");
    b.handle_read(
        id,
        &frame(
            "CONNECT",
            &[
                ("accept-version", "1.2"),
                ("host", "b"),
                ("heart-beat", "0,0"),
            ],
            b"",
        ),
        0,
    )
    .expect("open");
    id
}

fn drain(b: &mut Broker) -> usize {
    let mut bytes = 0;
    while let Some(id) = b.poll_ready() {
        while let Some(t) = b.poll_transmit(id) {
            bytes += t.len();
        }
    }
    while b.poll_event().is_some() {}
    bytes
}

fn config() -> Config {
    Config {
        max_sessions: 20_000,
        heart_beat: (0, 0),
        ..Config::default()
    }
}

fn fanout(c: &mut Criterion) {
    let body = [b'x'; 100];
    let send = frame(
        "SEND",
        &[
            ("destination", "/topic/bench"),
            ("content-type", "text/plain"),
        ],
        &body,
    );
    let mut g = c.benchmark_group("broker_fanout");
    for n in [1usize, 100, 10_000] {
        let mut b = Broker::new(config());
        let publisher = connect(&mut b);
        for i in 0..n {
            let s = connect(&mut b);
            let sub = frame(
                "SUBSCRIBE",
                &[("id", &i.to_string()), ("destination", "/topic/bench")],
                b"",
            );
            b.handle_read(s, &sub, 0).expect("open");
        }
        drain(&mut b);
        // Throughput in messages published; deliveries = messages x subscribers.
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("subscribers", n), &n, |bench, _| {
            bench.iter(|| {
                b.handle_read(publisher, &send, 0).expect("open");
                black_box(drain(&mut b))
            });
        });
        assert_eq!(b.stats().slow_consumer_disconnects, 0);
    }
    g.finish();
}

fn patterns(c: &mut Criterion) {
    // 10,000 distinct subscriptions: a mix of exact names, `*` and `**` patterns over a
    // 3-level hierarchy /topic/{region}/{desk}/{symbol}.
    let pats: Vec<String> = (0..10_000)
        .map(|i| match i % 4 {
            0 => format!("/topic/r{}/d{}/s{}", i % 10, i % 100, i),
            1 => format!("/topic/r{}/*/s{}", i % 10, i),
            2 => format!("/topic/r{}/d{}/*", i % 10, i),
            _ => format!("/topic/r{}/d{}/**", i % 10, i),
        })
        .collect::<Vec<_>>();
    // Three broad patterns among them, so a message matches several subscriptions.
    let mut pats = pats;
    pats[9_997] = "/topic/**".into();
    pats[9_998] = "/topic/r4/**".into();
    pats[9_999] = "/topic/*/d44/*".into();
    let dest = "/topic/r4/d44/s4444"; // matches 4 of them
    let body = [b'x'; 100];
    let send = frame("SEND", &[("destination", dest)], &body);

    let mut b = Broker::new(config());
    let publisher = connect(&mut b);
    let s = connect(&mut b);
    // One session may hold at most max_subscriptions_per_session; spread them.
    let mut session = s;
    for (i, p) in pats.iter().enumerate() {
        if i % 200 == 0 {
            session = connect(&mut b);
        }
        let sub = frame(
            "SUBSCRIBE",
            &[("id", &i.to_string()), ("destination", p)],
            b"",
        );
        b.handle_read(session, &sub, 0).expect("open");
    }
    drain(&mut b);
    let matched = pats
        .iter()
        .filter(|p| pattern::matches(p, dest, '/'))
        .count();
    assert_eq!(matched, 4, "bench destination matches {matched}");

    let mut g = c.benchmark_group("broker_patterns");
    g.throughput(Throughput::Elements(1));
    g.bench_function("publish_10000_subscriptions", |bench| {
        bench.iter(|| {
            b.handle_read(publisher, &send, 0).expect("open");
            black_box(drain(&mut b))
        });
    });
    let mut idx = pattern::Index::new('/');
    for (i, p) in pats.iter().enumerate() {
        idx.insert(p, i);
    }
    g.bench_function("match_trie_10000", |bench| {
        bench.iter(|| black_box(idx.matches(black_box(dest)).len()));
    });
    g.bench_function("match_linear_scan_10000", |bench| {
        bench.iter(|| {
            black_box(
                pats.iter()
                    .filter(|p| pattern::matches(p, black_box(dest), '/'))
                    .count(),
            )
        });
    });
    g.finish();
}

criterion_group!(benches, fanout, patterns);
criterion_main!(benches);
