#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
//! Interop: the ClientSession hosted over `std::net` against a real RabbitMQ STOMP plugin.
//!
//! Needs `STOMPBOX_RABBITMQ_STOMP=127.0.0.1:61614` (`.ci/interop/30-rabbitmq-stomp.sh` starts
//! the broker with `.ci/rabbitmq.sh`, sets it and runs these `#[ignore]`d tests with
//! `--include-ignored`). Run without the variable, a test fails when `CI` is set and prints
//! `SKIPPED: ...` otherwise.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use stompbox_stomp::client::{
    ClientCloseReason, ClientConfig, ClientEvent, ClientSession, MessageEvent, SendOptions,
    SubscribeOptions,
};
use stompbox_stomp::{AckMode, HeartBeat, Version};

fn peer_or_skip() -> Option<String> {
    match std::env::var("STOMPBOX_RABBITMQ_STOMP") {
        Ok(addr) if !addr.is_empty() => Some(addr),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "STOMPBOX_RABBITMQ_STOMP is not set but CI is: the RabbitMQ peer is missing"
            );
            println!(
                "SKIPPED: STOMPBOX_RABBITMQ_STOMP not set (run .ci/interop/30-rabbitmq-stomp.sh)"
            );
            None
        }
    }
}

/// A blocking `std::net` host for a ClientSession.
struct Host {
    sock: TcpStream,
    session: ClientSession,
    start: Instant,
    events: Vec<ClientEvent>,
}

impl Host {
    fn connect(addr: &str, heart_beat: HeartBeat) -> Host {
        let sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        sock.set_nodelay(true).unwrap();
        let session = ClientSession::new(ClientConfig {
            host: "/".into(),
            login: Some("guest".into()),
            passcode: Some("guest".into()),
            heart_beat,
            ..ClientConfig::default()
        });
        Host {
            sock,
            session,
            start: Instant::now(),
            events: Vec::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap()
    }

    /// One turn of the host loop: flush, read (with a short timeout), give time, collect.
    fn turn(&mut self) {
        while let Some(chunk) = self.session.poll_transmit() {
            self.sock.write_all(&chunk).unwrap();
        }
        let mut buf = [0u8; 16 * 1024];
        match self.sock.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => {
                let now = self.now();
                self.session.handle_timeout(now);
                // A server ERROR is reported as an event too; the test asserts on events.
                let _ = self.session.handle_read(&buf[..n]);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
        let now = self.now();
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
        while let Some(ev) = self.session.poll_event() {
            self.events.push(ev);
        }
        while let Some(chunk) = self.session.poll_transmit() {
            self.sock.write_all(&chunk).unwrap();
        }
    }

    /// Runs the loop until an event matches (removing and returning it), or panics after 10 s.
    fn until<T>(&mut self, what: &str, mut pick: impl FnMut(&ClientEvent) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(i) = self.events.iter().position(|e| pick(e).is_some()) {
                let ev = self.events.remove(i);
                return pick(&ev).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; events: {:?}",
                self.events
            );
            self.turn();
        }
    }

    fn receipt(&mut self, id: &str) {
        self.until(&format!("RECEIPT {id}"), |e| match e {
            ClientEvent::Receipt { receipt_id } if receipt_id == id => Some(()),
            _ => None,
        });
    }

    fn message(&mut self) -> MessageEvent {
        self.until("MESSAGE", |e| match e {
            ClientEvent::Message(m) => Some(m.clone()),
            _ => None,
        })
    }

    fn assert_no_message(&mut self) {
        for _ in 0..10 {
            self.turn();
        }
        assert!(
            !self
                .events
                .iter()
                .any(|e| matches!(e, ClientEvent::Message(_))),
            "unexpected message: {:?}",
            self.events
        );
    }
}

#[test]
#[ignore = "needs RabbitMQ: run .ci/interop/30-rabbitmq-stomp.sh"]
fn rabbitmq_stomp_session() {
    let Some(addr) = peer_or_skip() else { return };
    let mut h = Host::connect(
        &addr,
        HeartBeat {
            send_ms: 500,
            receive_ms: 500,
        },
    );
    let (version, hb) = h.until("CONNECTED", |e| match e {
        ClientEvent::Connected {
            version,
            heart_beat,
            ..
        } => Some((*version, *heart_beat)),
        _ => None,
    });
    assert_eq!(version, Version::V1_2);
    assert!(hb.send_ms >= 500 && hb.receive_ms >= 500, "{hb:?}");

    let queue = format!("/queue/stompbox-interop-{}", std::process::id());
    let opts = SubscribeOptions {
        ack: AckMode::ClientIndividual,
        receipt: Some("r-sub"),
        headers: &[("prefetch-count", "10")],
        ..Default::default()
    };
    let sub = h.session.subscribe(&queue, &opts).unwrap();
    h.receipt("r-sub");

    // send + receive + ack, each with a receipt
    let send = |h: &mut Host, body: &str, tx: Option<&str>, receipt: Option<&str>| {
        let opts = SendOptions {
            content_type: Some("text/plain"),
            transaction: tx,
            receipt,
            headers: &[("x-stompbox", "a:b\\c")],
        };
        h.session
            .send(&queue, body.as_bytes().to_vec(), &opts)
            .unwrap();
    };
    send(&mut h, "hello rabbit", None, Some("r-send"));
    h.receipt("r-send");
    let m = h.message();
    assert_eq!(&m.body()[..], b"hello rabbit");
    assert_eq!(m.subscription(), sub);
    assert_eq!(
        m.frame.header("x-stompbox"),
        Some("a:b\\c"),
        "escaped header round trip"
    );
    h.session
        .ack(m.ack.as_ref().unwrap(), None, Some("r-ack"))
        .unwrap();
    h.receipt("r-ack");

    // a binary body with NUL bytes travels by content-length
    h.session
        .send(&queue, &b"bin\0ary"[..], &SendOptions::default())
        .unwrap();
    let m = h.message();
    assert_eq!(&m.body()[..], b"bin\0ary");
    h.session.ack(m.ack.as_ref().unwrap(), None, None).unwrap();

    // transaction: nothing is delivered before COMMIT; both messages after it
    h.session.begin("tx1", Some("r-begin")).unwrap();
    h.receipt("r-begin");
    send(&mut h, "tx-1", Some("tx1"), None);
    send(&mut h, "tx-2", Some("tx1"), None);
    // A receipt round trip outside the transaction proves the SENDs reached the broker
    // (RabbitMQ holds receipts of transactional frames until COMMIT).
    h.session.begin("probe", Some("r-probe")).unwrap();
    h.receipt("r-probe");
    h.session.abort("probe", None).unwrap();
    h.assert_no_message();
    h.session.commit("tx1", Some("r-commit")).unwrap();
    h.receipt("r-commit");
    let first = h.message();
    let second = h.message();
    assert_eq!(
        (&first.body()[..], &second.body()[..]),
        (&b"tx-1"[..], &b"tx-2"[..])
    );
    // ack inside a transaction
    h.session.begin("tx2", None).unwrap();
    h.session
        .ack(first.ack.as_ref().unwrap(), Some("tx2"), None)
        .unwrap();
    h.session
        .ack(second.ack.as_ref().unwrap(), Some("tx2"), None)
        .unwrap();
    h.session.commit("tx2", Some("r-commit2")).unwrap();
    h.receipt("r-commit2");

    // abort: the aborted SEND is never delivered
    h.session.begin("tx3", None).unwrap();
    send(&mut h, "aborted", Some("tx3"), None);
    h.session.abort("tx3", Some("r-abort")).unwrap();
    h.receipt("r-abort");
    send(&mut h, "after-abort", None, None);
    let m = h.message();
    assert_eq!(&m.body()[..], b"after-abort");
    h.session.ack(m.ack.as_ref().unwrap(), None, None).unwrap();

    // heart-beats flow both ways while idle
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        h.turn();
    }
    let (rx, tx) = h.session.heartbeat_counts();
    assert!(rx >= 1 && tx >= 1, "heart-beats received {rx}, sent {tx}");
    assert!(h.session.error().is_none());

    h.session.unsubscribe(&sub, Some("r-unsub")).unwrap();
    h.receipt("r-unsub");
    h.session.disconnect(Some("r-bye")).unwrap();
    h.receipt("r-bye");
    let reason = h.until("Closed", |e| match e {
        ClientEvent::Closed(r) => Some(*r),
        _ => None,
    });
    assert_eq!(reason, ClientCloseReason::Disconnected);
    assert!(h.session.is_finished());
}

#[test]
#[ignore = "needs RabbitMQ: run .ci/interop/30-rabbitmq-stomp.sh"]
fn rabbitmq_rejects_bad_credentials_with_error() {
    let Some(addr) = peer_or_skip() else { return };
    let sock = TcpStream::connect(&addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut h = Host {
        sock,
        session: ClientSession::new(ClientConfig {
            host: "/".into(),
            login: Some("nobody".into()),
            passcode: Some("wrong".into()),
            ..ClientConfig::default()
        }),
        start: Instant::now(),
        events: Vec::new(),
    };
    let msg = h.until("ERROR", |e| match e {
        ClientEvent::Error { message, .. } => Some(message.clone()),
        _ => None,
    });
    assert!(msg.is_some());
    let reason = h.until("Closed", |e| match e {
        ClientEvent::Closed(r) => Some(*r),
        _ => None,
    });
    assert_eq!(reason, ClientCloseReason::ServerError);
}
