//! Input split at arbitrary points gives the same output and events as fed whole.

mod common;

use common::frame;
use proptest::prelude::*;
use stompbox_broker::{Broker, Config, Event, TransportInfo};

fn script() -> Vec<u8> {
    let mut v = frame(
        "CONNECT",
        &[("accept-version", "1.1,1.2"), ("host", "x")],
        "",
    );
    v.extend(frame(
        "SUBSCRIBE",
        &[("id", "0"), ("destination", "/topic/a/**")],
        "",
    ));
    v.extend(frame(
        "SUBSCRIBE",
        &[("id", "1"), ("destination", "/queue/q"), ("ack", "client")],
        "",
    ));
    v.extend(b"\n\r\n");
    v.extend(frame(
        "SEND",
        &[
            ("destination", "/topic/a/b"),
            ("x\\c", "y\\n"),
            ("receipt", "r1"),
        ],
        "hello",
    ));
    v.extend(frame(
        "SEND",
        &[("destination", "/queue/q"), ("content-length", "3")],
        "a\0b",
    ));
    v.extend(frame("SEND", &[("destination", "/app/x")], "app"));
    v.extend(frame("BEGIN", &[("transaction", "t")], ""));
    v.extend(frame(
        "SEND",
        &[("destination", "/topic/a"), ("transaction", "t")],
        "tx",
    ));
    v.extend(frame(
        "COMMIT",
        &[("transaction", "t"), ("receipt", "r2")],
        "",
    ));
    v.extend(frame("DISCONNECT", &[("receipt", "bye")], ""));
    v
}

/// Runs the script through one session, split into chunks at `cuts`; returns the output
/// bytes and the events.
fn run(input: &[u8], cuts: &[usize]) -> (Vec<u8>, Vec<Event>) {
    let mut b = Broker::new(Config::default());
    let id = b
        .open_session(TransportInfo::default(), 0)
        .expect("session");
    let mut out = Vec::new();
    let mut events = Vec::new();
    let mut start = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.push(input.len());
    points.sort_unstable();
    for p in points {
        if p <= start {
            continue;
        }
        b.handle_read(id, &input[start..p], 0).expect("open");
        start = p;
        while let Some(t) = b.poll_transmit(id) {
            t.write_to(&mut out);
        }
        events.extend(std::iter::from_fn(|| b.poll_event()));
    }
    (out, events)
}

#[test]
fn byte_at_a_time_equals_whole() {
    let s = script();
    let whole = run(&s, &[]);
    let cuts: Vec<usize> = (0..s.len()).collect();
    assert_eq!(run(&s, &cuts), whole);
    let out = String::from_utf8_lossy(&whole.0);
    assert!(out.contains("receipt-id:bye"), "{out}");
    assert_eq!(
        whole.1.len(),
        3,
        "Connected, Message, Closed: {:?}",
        whole.1
    );
}

proptest! {
    #[test]
    fn arbitrary_splits_equal_whole(cuts in prop::collection::vec(any::<usize>(), 0..20)) {
        let s = script();
        prop_assert_eq!(run(&s, &cuts), run(&s, &[]));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut input = frame("CONNECT", &[("accept-version", "1.2"), ("host", "x")], "");
        input.extend(data);
        let (out, _) = run(&input, &[7, 40]);
        prop_assert!(out.starts_with(b"CONNECTED"));
    }
}
