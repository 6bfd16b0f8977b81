//! Fuzz the STOMP server session: arbitrary client bytes (after an optional valid CONNECT),
//! interleaved with timeouts and host actions, with automatic or manual receipts, output taken
//! as a byte stream or whole frame by whole frame. Invariants: no panic; a violation is sticky
//! and leaves an ERROR frame queued; output is bounded by what was put in; every frame taken
//! with `poll_transmit_frame` is exactly one frame (or a heart-beat EOL); both output views
//! account the same bytes; a subscription key delivers only while its subscription lives;
//! the connect timeout closes a session that is not open in time.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use stompbox_stomp::server::{
    Accept, Message, ServerConfig, ServerEvent, ServerSession, ServerState, SharedMessage,
    SubscriptionKey,
};
use stompbox_stomp::{Limits, Parser, Violation};


fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let flags = data[0];
    let manual = flags & 2 == 2;
    let by_frame = flags & 4 == 4;
    let mut s = ServerSession::new(ServerConfig {
        auto_receipts: !manual,
        connect_timeout_ms: Some(u64::from(flags >> 3) * 100),
        ..ServerConfig::default()
    });
    assert_eq!(s.poll_timeout(), Some(0), "asks for the time");
    let mut now = 0u64;
    s.handle_timeout(now);
    let mut subs: Vec<String> = Vec::new();
    // Every key reported, kept after its UNSUBSCRIBE (stale keys must never deliver).
    let mut keys: Vec<(String, SubscriptionKey)> = Vec::new();
    if flags & 1 == 1 {
        let _ =
            s.handle_read(b"CONNECT\naccept-version:1.0,1.1,1.2\nhost:h\nheart-beat:100,100\n\n\0");
    }
    let split = usize::from(data[1]).max(1);
    let mut n = 0u64;
    for chunk in data[2..].chunks(split) {
        let res = s.handle_read(chunk);
        if let Err(e) = &res {
            assert!(
                e.reply.is_some(),
                "a server violation always queues an ERROR"
            );
            assert!(s.handle_read(b"\n").is_err(), "sticky");
        }
        while let Some(ev) = s.poll_event() {
            if let Some(r) = ev.receipt().filter(|_| manual) {
                let r = r.to_string();
                let _ = s.send_receipt(&r);
            }
            match ev {
                ServerEvent::Connect(_) => {
                    if chunk.first().is_some_and(|b| b & 1 == 0) {
                        let _ = s.reject("no");
                    } else {
                        let _ = s.accept(&Accept::default());
                    }
                }
                ServerEvent::Subscribe(sub) => {
                    keys.push((sub.id.clone(), sub.key));
                    subs.push(sub.id);
                }
                ServerEvent::Send(send) => {
                    for id in &subs {
                        n += 1;
                        let _ = s.send_message_from(id, &n.to_string(), &send.frame);
                    }
                    if let Ok(shared) = SharedMessage::from_send(
                        s.version(),
                        send.destination(),
                        &[],
                        &send.frame,
                        |name| name == b"skip",
                    ) {
                        for (id, key) in &keys {
                            n += 1;
                            if s.send_shared_to(*key, &n.to_string(), &shared).is_ok() {
                                assert_eq!(
                                    s.subscription_key(id),
                                    Some(*key),
                                    "a key delivers only to its own live subscription"
                                );
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(id) = subs.first() {
            n += 1;
            let body = if chunk[0] & 1 == 1 {
                Bytes::from(vec![b'b'; 600])
            } else {
                Bytes::from_static(b"x")
            };
            let _ = s.send_message(&Message {
                subscription: id,
                destination: "/d",
                message_id: &n.to_string(),
                headers: &[("k", "v")],
                body,
            });
        }
        now += u64::from(chunk[0]) * 10;
        let was_connecting = matches!(
            s.state(),
            ServerState::AwaitingConnect | ServerState::Authenticating
        );
        let due = s.poll_timeout().is_some_and(|t| t <= now);
        s.handle_timeout(now);
        if was_connecting && due {
            assert_eq!(s.state(), ServerState::Closed, "connect timeout");
            assert_eq!(
                s.error().map(|e| e.violation),
                Some(Violation::ConnectTimeout)
            );
        }
        let pending = s.pending_output();
        let mut out = 0usize;
        if by_frame {
            let mut p = Parser::new(Limits {
                max_head_bytes: usize::MAX,
                max_headers: usize::MAX,
                max_header_line: usize::MAX,
                max_body_bytes: usize::MAX,
            });
            p.set_version(s.version());
            while let Some(t) = s.poll_transmit_frame() {
                let bytes = t.to_bytes();
                out += bytes.len();
                if bytes[..] != b"\n"[..] {
                    let mut b = BytesMut::from(&bytes[..]);
                    assert!(p.parse(&mut b).ok().flatten().is_some(), "a whole frame");
                    assert!(b.is_empty(), "exactly one frame");
                }
            }
        } else {
            while let Some(b) = s.poll_transmit() {
                out += b.len();
            }
        }
        assert_eq!(out, pending);
        assert_eq!(s.pending_output(), 0);
        assert_eq!(s.pending_frames(), 0);
    }
});
