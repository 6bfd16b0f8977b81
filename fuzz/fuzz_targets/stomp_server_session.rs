//! Fuzz the STOMP server session: arbitrary client bytes (after an optional valid CONNECT),
//! interleaved with timeouts and host actions. Invariants: no panic; a violation is sticky
//! and leaves an ERROR frame queued; output is bounded by what was put in.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use stompbox_stomp::server::{Accept, Message, ServerConfig, ServerEvent, ServerSession};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let mut s = ServerSession::new(ServerConfig::default());
    let mut now = 0u64;
    let mut subs: Vec<String> = Vec::new();
    if data[0] & 1 == 1 {
        let _ = s.handle_read(b"CONNECT\naccept-version:1.0,1.1,1.2\nhost:h\nheart-beat:100,100\n\n\0");
    }
    let split = usize::from(data[1]).max(1);
    let mut n = 0u64;
    for chunk in data[2..].chunks(split) {
        let res = s.handle_read(chunk);
        if let Err(e) = &res {
            assert!(e.reply.is_some(), "a server violation always queues an ERROR");
            assert!(s.handle_read(b"\n").is_err(), "sticky");
        }
        while let Some(ev) = s.poll_event() {
            match ev {
                ServerEvent::Connect(_) => {
                    if chunk.first().is_some_and(|b| b & 1 == 0) {
                        let _ = s.reject("no");
                    } else {
                        let _ = s.accept(&Accept::default());
                    }
                }
                ServerEvent::Subscribe(sub) => subs.push(sub.id),
                ServerEvent::Send(send) => {
                    for id in &subs {
                        n += 1;
                        let _ = s.send_message_from(id, &n.to_string(), &send.frame);
                    }
                }
                _ => {}
            }
        }
        if let Some(id) = subs.first() {
            n += 1;
            let _ = s.send_message(&Message {
                subscription: id,
                destination: "/d",
                message_id: &n.to_string(),
                headers: &[("k", "v")],
                body: Bytes::from_static(b"x"),
            });
        }
        now += u64::from(chunk[0]) * 10;
        s.handle_timeout(now);
        let mut out = 0usize;
        while let Some(b) = s.poll_transmit() {
            out += b.len();
        }
        assert_eq!(s.pending_output(), 0);
        let _ = out;
    }
});
