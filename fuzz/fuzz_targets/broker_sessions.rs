//! Several broker sessions driven by arbitrary bytes: opens, reads, partial drains, closes,
//! time and application replies interleaved. The broker must never panic and every
//! session's queued output must stay within its bound (plus one ERROR frame).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stompbox_broker::{Broker, Config, Event, SessionId, TransportInfo};

const MAX_OUT: usize = 4096;

/// Frames that get sessions past CONNECT and into routing, chosen by the fuzzer.
const SNIPPETS: &[&[u8]] = &[
    b"CONNECT\naccept-version:1.2\nhost:h\nheart-beat:100,100\n\n\0",
    b"CONNECT\naccept-version:1.0,1.1\n\n\0",
    b"SUBSCRIBE\nid:0\ndestination:/topic/a/**\n\n\0",
    b"SUBSCRIBE\nid:1\ndestination:/queue/q\nack:client\n\n\0",
    b"SUBSCRIBE\nid:2\ndestination:/queue/q\nack:client-individual\n\n\0",
    b"SUBSCRIBE\nid:3\ndestination:/user/queue/u\n\n\0",
    b"SEND\ndestination:/topic/a/b\nreceipt:r\n\nbody\0",
    b"SEND\ndestination:/queue/q\n\nq\0",
    b"SEND\ndestination:/user/u1/queue/u\n\nu\0",
    b"SEND\ndestination:/app/x\n\napp\0",
    b"ACK\nid:1\n\n\0",
    b"NACK\nid:2\n\n\0",
    b"UNSUBSCRIBE\nid:1\n\n\0",
    b"BEGIN\ntransaction:t\n\n\0",
    b"COMMIT\ntransaction:t\n\n\0",
    b"DISCONNECT\nreceipt:d\n\n\0",
    b"\n",
];

fuzz_target!(|data: &[u8]| {
    let config = Config {
        max_sessions: 8,
        max_subscriptions_per_session: 4,
        max_queues: 4,
        max_queue_depth: 8,
        max_unacked_per_subscription: 4,
        max_output_bytes: MAX_OUT,
        max_output_frames: 32,
        ..Config::default()
    };
    let mut n = 0u32;
    let mut broker = Broker::with_authenticator(config, move |_r: &stompbox_broker::ConnectRequest<'_>| {
        n += 1;
        stompbox_broker::AuthDecision::Accept { user: Some(format!("u{}", n % 3)) }
    });
    let mut sessions: Vec<SessionId> = Vec::new();
    let mut now = 0u64;
    let mut i = 0;
    while i + 1 < data.len() {
        let (op, arg) = (data[i], data[i + 1]);
        i += 2;
        let pick = |s: &[SessionId]| (!s.is_empty()).then(|| s[arg as usize % s.len()]);
        match op % 8 {
            0 => {
                if let Ok(id) = broker.open_session(TransportInfo::default(), now) {
                    sessions.push(id);
                }
            }
            1 => {
                // Raw bytes: the next `arg % 64` bytes of input.
                let len = (arg as usize % 64).min(data.len() - i);
                if let Some(id) = pick(&sessions) {
                    let _ = broker.handle_read(id, &data[i..i + len], now);
                }
                i += len;
            }
            2 => {
                if let (Some(id), Some(&k)) = (pick(&sessions), data.get(i)) {
                    let _ = broker.handle_read(id, SNIPPETS[k as usize % SNIPPETS.len()], now);
                    i += 1;
                }
            }
            3 => {
                // Drain some output of one session (a partially slow consumer).
                if let Some(id) = pick(&sessions) {
                    for _ in 0..(arg % 8) {
                        if broker.poll_transmit(id).is_none() {
                            break;
                        }
                    }
                }
            }
            4 => {
                if let Some(id) = pick(&sessions) {
                    let _ = broker.transport_closed(id);
                    sessions.retain(|&s| s != id);
                }
            }
            5 => {
                now += u64::from(arg) * 10;
                broker.handle_timeout(now);
            }
            6 => {
                let dest = ["/topic/a/b", "/queue/q", "/user/u1/queue/u", "/app/x", "/x"][arg as usize % 5];
                let _ = broker.publish(dest, &[("k", "v")], &b"app reply"[..]);
                if let Some(id) = pick(&sessions) {
                    let _ = broker.send_to_session(id, "/topic/a/c", &[], &b"s"[..]);
                }
            }
            _ => {
                while let Some(id) = broker.poll_ready() {
                    while broker.poll_transmit(id).is_some() {}
                }
            }
        }
        while let Some(ev) = broker.poll_event() {
            if let Event::Closed { session, .. } = ev
                && arg % 2 == 0
            {
                let _ = broker.transport_closed(session);
                sessions.retain(|&s| s != session);
            }
        }
        for &id in &sessions {
            assert!(broker.queued_bytes(id) <= MAX_OUT + 1024, "output bound");
        }
        let _ = broker.poll_timeout();
    }
    let st = broker.stats();
    assert!(st.sessions_current <= 8);
    let _ = st.to_json();
});
