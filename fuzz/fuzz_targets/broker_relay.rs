//! The broker in relay mode, driven by arbitrary bytes from both sides: client sessions and
//! their upstream transports (opened, fed arbitrary bytes or well-formed upstream frames,
//! closed, drained partially), time, and application publishes. The broker must never panic,
//! client output stays bounded, upstream output stays bounded, and every upstream it asked
//! for is either known or was closed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stompbox_broker::{
    Broker, Config, Event, RelayConfig, SessionId, TransportInfo, UpstreamCommand, UpstreamId,
};

const MAX_OUT: usize = 4096;
const MAX_UP: usize = 4096;

const CLIENT: &[&[u8]] = &[
    b"CONNECT\naccept-version:1.2\nhost:h\nlogin:a\npasscode:b\n\n\0",
    b"CONNECT\naccept-version:1.0,1.1\n\n\0",
    b"SUBSCRIBE\nid:0\ndestination:/topic/a\nreceipt:r0\n\n\0",
    b"SUBSCRIBE\nid:1\ndestination:/queue/q\nack:client-individual\n\n\0",
    b"SUBSCRIBE\nid:2\ndestination:/app/x\n\n\0",
    b"SEND\ndestination:/topic/a\nreceipt:r1\n\nbody\0",
    b"SEND\ndestination:/queue/q\ntransaction:t\n\nq\0",
    b"SEND\ndestination:/app/x\n\napp\0",
    b"ACK\nid:T_1@@x@@1\n\n\0",
    b"ACK\nmessage-id:m1\nsubscription:1\n\n\0",
    b"NACK\nid:5\n\n\0",
    b"UNSUBSCRIBE\nid:0\n\n\0",
    b"BEGIN\ntransaction:t\nreceipt:b\n\n\0",
    b"COMMIT\ntransaction:t\n\n\0",
    b"ABORT\ntransaction:t\n\n\0",
    b"DISCONNECT\nreceipt:d\n\n\0",
    b"\n",
];

const UPSTREAM: &[&[u8]] = &[
    b"CONNECTED\nversion:1.2\nheart-beat:100,100\n\n\0",
    b"CONNECTED\nversion:1.0\n\n\0",
    b"CONNECTED\nversion:1.1\nheart-beat:0,0\n\n\0",
    b"MESSAGE\ndestination:/topic/a\nmessage-id:m1\nsubscription:0\n\nhello\0",
    b"MESSAGE\ndestination:/queue/q\nmessage-id:m2\nsubscription:1\nack:T_1@@x@@1\nk:a\\cb\n\nq\0",
    b"RECEIPT\nreceipt-id:r0\n\n\0",
    b"RECEIPT\nreceipt-id:relay-publish-1\n\n\0",
    b"ERROR\nmessage:nope\nreceipt-id:r1\n\nbad\0",
    b"\n",
];

fuzz_target!(|data: &[u8]| {
    let config = Config {
        max_sessions: 8,
        max_subscriptions_per_session: 4,
        max_output_bytes: MAX_OUT,
        max_output_frames: 32,
        relay: Some(RelayConfig {
            max_unconfirmed_publishes: 4,
            max_upstream_output_bytes: MAX_UP,
            connect_timeout_ms: 500,
            heart_beat: (100, 100),
            ..RelayConfig::default()
        }),
        ..Config::default()
    };
    let mut broker = Broker::new(config);
    let mut sessions: Vec<SessionId> = Vec::new();
    let mut upstreams: Vec<UpstreamId> = Vec::new();
    let mut now = 0u64;
    let mut i = 0;
    while i + 1 < data.len() {
        let (op, arg) = (data[i], data[i + 1]);
        i += 2;
        let pick_s = |s: &[SessionId]| (!s.is_empty()).then(|| s[arg as usize % s.len()]);
        let pick_u = |u: &[UpstreamId]| (!u.is_empty()).then(|| u[arg as usize % u.len()]);
        match op % 10 {
            0 => {
                if let Ok(id) = broker.open_session(TransportInfo::default(), now) {
                    sessions.push(id);
                }
            }
            1 => {
                if let (Some(id), Some(&k)) = (pick_s(&sessions), data.get(i)) {
                    let _ = broker.handle_read(id, CLIENT[k as usize % CLIENT.len()], now);
                    i += 1;
                }
            }
            2 => {
                if let (Some(id), Some(&k)) = (pick_u(&upstreams), data.get(i)) {
                    let _ = broker.upstream_read(id, UPSTREAM[k as usize % UPSTREAM.len()], now);
                    i += 1;
                }
            }
            3 => {
                // Raw bytes to an upstream.
                let len = (arg as usize % 64).min(data.len() - i);
                if let Some(id) = pick_u(&upstreams) {
                    let _ = broker.upstream_read(id, &data[i..i + len], now);
                }
                i += len;
            }
            4 => {
                if let Some(id) = pick_u(&upstreams) {
                    let _ = broker.upstream_closed(id, now);
                    upstreams.retain(|&u| u != id);
                }
            }
            5 => {
                if let Some(id) = pick_s(&sessions) {
                    let _ = broker.transport_closed(id);
                    sessions.retain(|&s| s != id);
                }
            }
            6 => {
                now += u64::from(arg) * 10;
                broker.handle_timeout(now);
            }
            7 => {
                let dest = ["/topic/a", "/queue/q", "/app/x", "/user/u/queue/x"][arg as usize % 4];
                let _ = broker.publish(dest, &[("k", "v")], &b"app"[..]);
            }
            8 => {
                // Partial drains of one upstream.
                if let Some(id) = pick_u(&upstreams) {
                    for _ in 0..(arg % 4) {
                        if broker.upstream_transmit(id).is_none() {
                            break;
                        }
                    }
                }
            }
            _ => {
                while let Some(id) = broker.poll_ready() {
                    while broker.poll_transmit(id).is_some() {}
                }
                while let Some(id) = broker.upstream_ready() {
                    while broker.upstream_transmit(id).is_some() {}
                }
            }
        }
        while let Some(cmd) = broker.poll_upstream() {
            match cmd {
                UpstreamCommand::Open(id) => upstreams.push(id),
                UpstreamCommand::Close(id) => {
                    while broker.upstream_transmit(id).is_some() {}
                    upstreams.retain(|&u| u != id);
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
            assert!(broker.queued_bytes(id) <= MAX_OUT + 1024, "client output bound");
        }
        let _ = broker.poll_timeout();
    }
    let st = broker.stats();
    assert!(st.sessions_current <= 8);
    // Upstreams: at most one per session plus the system session (plus closing ones).
    assert!(st.relay.upstreams_current <= 2 * 8 + 2, "{:?}", st.relay);
    let _ = st.to_json();
});
