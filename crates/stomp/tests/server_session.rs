#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
//! Server session tests, by STOMP 1.2 spec section.

use bytes::{Bytes, BytesMut};
use stompbox_stomp::server::*;
use stompbox_stomp::*;

fn drain_out(s: &mut ServerSession) -> Vec<Frame> {
    let mut buf = BytesMut::new();
    while let Some(c) = s.poll_transmit() {
        buf.extend_from_slice(&c);
    }
    let mut p = Parser::new(Limits::default());
    p.set_version(s.version());
    let mut frames = Vec::new();
    while let Some(f) = p.parse(&mut buf).unwrap() {
        frames.push(f);
    }
    assert!(buf.is_empty(), "trailing partial output: {buf:?}");
    frames
}

fn events(s: &mut ServerSession) -> Vec<ServerEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn connected(version: &str) -> ServerSession {
    let mut s = ServerSession::new(ServerConfig::default());
    s.handle_read(format!("CONNECT\naccept-version:{version}\nhost:h\n\n\0").as_bytes())
        .unwrap();
    let ev = events(&mut s);
    assert!(matches!(ev.as_slice(), [ServerEvent::Connect(_)]), "{ev:?}");
    s.accept(&Accept::default()).unwrap();
    let out = drain_out(&mut s);
    assert_eq!(out[0].command(), Command::Connected);
    s
}

#[test]
fn connect_subscribe_send_message_ack() {
    let mut s = connected("1.2");
    s.handle_read(b"SUBSCRIBE\nid:0\ndestination:/queue/foo\nack:client\nreceipt:r1\n\n\0")
        .unwrap();
    let ev = events(&mut s);
    assert!(matches!(&ev[0], ServerEvent::Subscribe(e) if e.id == "0" && e.ack == AckMode::Client));
    let out = drain_out(&mut s);
    assert_eq!(out[0].command(), Command::Receipt);
    assert_eq!(out[0].header("receipt-id"), Some("r1"));
    for i in 0..3 {
        s.send_message(&Message {
            subscription: "0",
            destination: "/queue/foo",
            message_id: &format!("m{i}"),
            headers: &[("content-type", "text/plain")],
            body: Bytes::from_static(b"hello"),
        })
        .unwrap();
    }
    let out = drain_out(&mut s);
    assert_eq!(out.len(), 3);
    assert_eq!(out[1].header("ack"), Some("1"));
    assert_eq!(s.pending_acks(), 3);
    s.handle_read(b"ACK\nid:1\n\n\0").unwrap();
    let ev = events(&mut s);
    assert!(
        matches!(&ev[0], ServerEvent::Ack(a) if a.message_ids == ["m0", "m1"]),
        "{ev:?}"
    );
    assert_eq!(s.pending_acks(), 1);
}
