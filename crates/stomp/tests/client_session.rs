#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
//! Client session tests, by STOMP 1.2 spec section.

use bytes::BytesMut;
use stompbox_stomp::client::*;
use stompbox_stomp::*;

fn sent(c: &mut ClientSession) -> Vec<Frame> {
    let mut buf = BytesMut::new();
    while let Some(b) = c.poll_transmit() {
        buf.extend_from_slice(&b);
    }
    let mut p = Parser::new(Limits::default());
    p.set_version(c.version());
    let mut out = Vec::new();
    while let Some(f) = p.parse(&mut buf).unwrap() {
        out.push(f);
    }
    out
}

fn events(c: &mut ClientSession) -> Vec<ClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn config() -> ClientConfig {
    ClientConfig {
        host: "vhost".into(),
        login: Some("me".into()),
        passcode: Some("secret".into()),
        ..ClientConfig::default()
    }
}

fn open(connected: &[u8]) -> ClientSession {
    let mut c = ClientSession::new(config());
    let _ = sent(&mut c);
    c.handle_read(connected).unwrap();
    assert!(matches!(
        events(&mut c).as_slice(),
        [ClientEvent::Connected { .. }]
    ));
    c
}

// ---- Connecting ----

#[test]
fn connect_frame_has_required_headers() {
    let mut c = ClientSession::new(config());
    let f = sent(&mut c).remove(0);
    assert_eq!(f.command(), Command::Connect);
    let hs: Vec<_> = f.headers().collect();
    assert_eq!(
        hs,
        [
            ("accept-version", "1.0,1.1,1.2"),
            ("host", "vhost"),
            ("login", "me"),
            ("passcode", "secret"),
            ("heart-beat", "10000,10000")
        ]
    );
    let mut c = ClientSession::new(ClientConfig {
        use_stomp_command: true,
        ..config()
    });
    assert_eq!(sent(&mut c)[0].command(), Command::Stomp);
    assert_eq!(c.state(), ClientState::Connecting);
}

#[test]
fn connected_gives_version_server_session_heartbeat() {
    let mut c = ClientSession::new(config());
    let _ = sent(&mut c);
    c.handle_read(
        b"CONNECTED\nversion:1.1\nserver:Apache/1.3.9\nsession:s-1\nheart-beat:5000,20000\n\n\0",
    )
    .unwrap();
    let ev = events(&mut c);
    assert_eq!(
        ev,
        [ClientEvent::Connected {
            version: Version::V1_1,
            server: Some("Apache/1.3.9".into()),
            session: Some("s-1".into()),
            // we send every max(cx=10000, sy=20000); expect every max(sx=5000, cy=10000)
            heart_beat: Negotiated {
                send_ms: 20_000,
                receive_ms: 10_000
            },
        }]
    );
    assert_eq!(c.state(), ClientState::Open);
    // no version header: 1.0
    let c = open(b"CONNECTED\nsession:x\n\n\0");
    assert_eq!(c.version(), Version::V1_0);
    assert_eq!(c.heartbeat(), Negotiated::default());
}

#[test]
fn connected_errors() {
    for (input, violation) in [
        (
            &b"CONNECTED\nversion:9.9\n\n\0"[..],
            Violation::InvalidHeader(Command::Connected, "version"),
        ),
        (
            b"CONNECTED\nversion:1.2\nheart-beat:x\n\n\0",
            Violation::InvalidHeader(Command::Connected, "heart-beat"),
        ),
        (
            b"MESSAGE\ndestination:/q\nmessage-id:1\nsubscription:0\n\n\0",
            Violation::NotConnected(Command::Message),
        ),
        (b"NOPE\n\n\0", Violation::Parse(ParseError::UnknownCommand)),
    ] {
        let mut c = ClientSession::new(config());
        let err = c.handle_read(input).unwrap_err();
        assert_eq!(err.violation, violation);
        assert_eq!(
            events(&mut c),
            [ClientEvent::Closed(ClientCloseReason::Violation(violation))]
        );
        assert!(c.handle_read(b"\n").is_err(), "sticky");
    }
    // a version we did not offer
    let mut c = ClientSession::new(ClientConfig {
        versions: vec![Version::V1_2],
        ..config()
    });
    assert_eq!(
        c.handle_read(b"CONNECTED\nversion:1.1\n\n\0")
            .unwrap_err()
            .violation,
        Violation::UnsupportedVersion
    );
}

#[test]
fn error_frame_closes_with_event() {
    let mut c = ClientSession::new(config());
    let err = c
        .handle_read(b"ERROR\nmessage:bad login\n\nAccess refused\0")
        .unwrap_err();
    assert_eq!(err.violation, Violation::ServerError);
    assert_eq!(
        err.reply.as_ref().unwrap().header("message"),
        Some("bad login")
    );
    let ev = events(&mut c);
    assert!(matches!(&ev[0], ClientEvent::Error { message: Some(m), .. } if m == "bad login"));
    assert_eq!(ev[1], ClientEvent::Closed(ClientCloseReason::ServerError));
    assert_eq!(
        c.send("/q", "x", &SendOptions::default()),
        Err(UsageError::Closed)
    );
}

#[test]
fn commands_before_connected_are_usage_errors() {
    let mut c = ClientSession::new(config());
    assert_eq!(
        c.send("/q", "x", &SendOptions::default()),
        Err(UsageError::NotConnected)
    );
    assert_eq!(
        c.subscribe("/q", &SubscribeOptions::default()),
        Err(UsageError::NotConnected)
    );
    assert_eq!(c.disconnect(None), Err(UsageError::NotConnected));
    assert_eq!(c.state(), ClientState::Connecting);
}

// ---- SEND / SUBSCRIBE / UNSUBSCRIBE ----

#[test]
fn send_and_subscribe_frames() {
    let mut c = open(b"CONNECTED\nversion:1.2\n\n\0");
    c.send(
        "/queue/a",
        &b"hello"[..],
        &SendOptions {
            content_type: Some("text/plain"),
            receipt: Some("r1"),
            headers: &[("x", "a:b")],
            ..Default::default()
        },
    )
    .unwrap();
    let id = c
        .subscribe(
            "/queue/foo",
            &SubscribeOptions {
                ack: AckMode::Client,
                ..Default::default()
            },
        )
        .unwrap();
    let id2 = c
        .subscribe(
            "/queue/bar",
            &SubscribeOptions {
                id: Some("mine"),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((id.as_str(), id2.as_str()), ("sub-0", "mine"));
    assert_eq!(
        c.subscribe(
            "/q",
            &SubscribeOptions {
                id: Some("mine"),
                ..Default::default()
            }
        ),
        Err(UsageError::DuplicateSubscription)
    );
    c.unsubscribe("mine", None).unwrap();
    assert_eq!(
        c.unsubscribe("mine", None),
        Err(UsageError::UnknownSubscription)
    );
    let f = sent(&mut c);
    let send: Vec<_> = f[0].headers().collect();
    assert_eq!(
        send,
        [
            ("destination", "/queue/a"),
            ("content-type", "text/plain"),
            ("receipt", "r1"),
            ("x", "a:b"),
            ("content-length", "5")
        ]
    );
    assert_eq!(
        f[1].headers().collect::<Vec<_>>(),
        [
            ("id", "sub-0"),
            ("destination", "/queue/foo"),
            ("ack", "client")
        ]
    );
    assert_eq!(f[3].headers().collect::<Vec<_>>(), [("id", "mine")]);
    assert_eq!(c.pending_receipts(), 1);
}

// ---- MESSAGE / ACK / NACK per version ----

#[test]
fn ack_handles_per_version() {
    // 1.2: ACK id = MESSAGE ack header
    let mut c = open(b"CONNECTED\nversion:1.2\n\n\0");
    let id = c
        .subscribe(
            "/q",
            &SubscribeOptions {
                ack: AckMode::ClientIndividual,
                ..Default::default()
            },
        )
        .unwrap();
    let _ = sent(&mut c);
    c.handle_read(
        format!("MESSAGE\ndestination:/q\nmessage-id:007\nsubscription:{id}\nack:a-7\n\nhi\0")
            .as_bytes(),
    )
    .unwrap();
    let Some(ClientEvent::Message(m)) = c.poll_event() else {
        panic!()
    };
    assert_eq!(
        (m.destination(), m.message_id(), m.subscription()),
        ("/q", "007", id.as_str())
    );
    c.ack(m.ack.as_ref().unwrap(), None, None).unwrap();
    c.nack(m.ack.as_ref().unwrap(), None, Some("n")).unwrap();
    let f = sent(&mut c);
    assert_eq!(f[0].headers().collect::<Vec<_>>(), [("id", "a-7")]);
    assert_eq!(
        (f[1].command(), f[1].header("id")),
        (Command::Nack, Some("a-7"))
    );
    // 1.2 MESSAGE on a client-ack subscription without ack header is a violation
    c.handle_read(
        format!("MESSAGE\ndestination:/q\nmessage-id:8\nsubscription:{id}\n\n\0").as_bytes(),
    )
    .unwrap_err();

    // 1.1: message-id + subscription
    let mut c = open(b"CONNECTED\nversion:1.1\n\n\0");
    let id = c
        .subscribe(
            "/q",
            &SubscribeOptions {
                ack: AckMode::Client,
                ..Default::default()
            },
        )
        .unwrap();
    let _ = sent(&mut c);
    c.handle_read(
        format!("MESSAGE\ndestination:/q\nmessage-id:9\nsubscription:{id}\n\n\0").as_bytes(),
    )
    .unwrap();
    let Some(ClientEvent::Message(m)) = c.poll_event() else {
        panic!()
    };
    c.ack(m.ack.as_ref().unwrap(), None, None).unwrap();
    assert_eq!(
        sent(&mut c)[0].headers().collect::<Vec<_>>(),
        [("message-id", "9"), ("subscription", id.as_str())]
    );

    // 1.0: message-id only; no NACK, no client-individual
    let mut c = open(b"CONNECTED\n\n\0");
    let id = c
        .subscribe(
            "/q",
            &SubscribeOptions {
                ack: AckMode::Client,
                ..Default::default()
            },
        )
        .unwrap();
    let _ = sent(&mut c);
    c.handle_read(
        format!("MESSAGE\ndestination:/q\nmessage-id:10\nsubscription:{id}\n\n\0").as_bytes(),
    )
    .unwrap();
    let Some(ClientEvent::Message(m)) = c.poll_event() else {
        panic!()
    };
    let h = m.ack.unwrap();
    c.ack(&h, None, None).unwrap();
    assert_eq!(
        sent(&mut c)[0].headers().collect::<Vec<_>>(),
        [("message-id", "10")]
    );
    assert_eq!(c.nack(&h, None, None), Err(UsageError::NotInVersion));
    assert_eq!(
        c.subscribe(
            "/q",
            &SubscribeOptions {
                ack: AckMode::ClientIndividual,
                ..Default::default()
            }
        ),
        Err(UsageError::NotInVersion)
    );
}

#[test]
fn auto_ack_messages_have_no_handle_and_message_validation() {
    let mut c = open(b"CONNECTED\nversion:1.2\n\n\0");
    let id = c.subscribe("/q", &SubscribeOptions::default()).unwrap();
    c.handle_read(
        format!(
            "MESSAGE\ndestination:/q\nmessage-id:1\nsubscription:{id}\ncontent-length:3\n\na\0b\0"
        )
        .as_bytes(),
    )
    .unwrap();
    let Some(ClientEvent::Message(m)) = c.poll_event() else {
        panic!()
    };
    assert!(m.ack.is_none());
    assert_eq!(&m.body()[..], b"a\0b");
    for (bad, h) in [
        (
            &b"MESSAGE\nmessage-id:1\nsubscription:0\n\n\0"[..],
            "destination",
        ),
        (
            b"MESSAGE\ndestination:/q\nsubscription:0\n\n\0",
            "message-id",
        ),
        (
            b"MESSAGE\ndestination:/q\nmessage-id:1\n\n\0",
            "subscription",
        ),
    ] {
        let mut c = open(b"CONNECTED\nversion:1.2\n\n\0");
        assert_eq!(
            c.handle_read(bad).unwrap_err().violation,
            Violation::MissingHeader(Command::Message, h)
        );
    }
    let mut c = open(b"CONNECTED\nversion:1.2\n\n\0");
    assert_eq!(
        c.handle_read(b"RECEIPT\n\n\0").unwrap_err().violation,
        Violation::MissingHeader(Command::Receipt, "receipt-id")
    );
    let mut c = open(b"CONNECTED\nversion:1.2\n\n\0");
    assert_eq!(
        c.handle_read(b"SEND\ndestination:/q\n\n\0")
            .unwrap_err()
            .violation,
        Violation::UnexpectedCommand(Command::Send)
    );
}

// ---- Transactions ----

#[test]
fn transactions_are_tracked() {
    let mut c = open(b"CONNECTED\nversion:1.2\n\n\0");
    assert_eq!(c.commit("t", None), Err(UsageError::UnknownTransaction));
    assert_eq!(
        c.send(
            "/q",
            "x",
            &SendOptions {
                transaction: Some("t"),
                ..Default::default()
            }
        ),
        Err(UsageError::UnknownTransaction)
    );
    c.begin("t", Some("b")).unwrap();
    assert_eq!(c.begin("t", None), Err(UsageError::DuplicateTransaction));
    c.send(
        "/q",
        "x",
        &SendOptions {
            transaction: Some("t"),
            ..Default::default()
        },
    )
    .unwrap();
    c.commit("t", None).unwrap();
    c.begin("u", None).unwrap();
    c.abort("u", None).unwrap();
    let cmds: Vec<_> = sent(&mut c).iter().map(Frame::command).collect();
    assert_eq!(
        cmds,
        [
            Command::Begin,
            Command::Send,
            Command::Commit,
            Command::Begin,
            Command::Abort
        ]
    );
}

// ---- Receipts and DISCONNECT ----

#[test]
fn graceful_disconnect_waits_for_receipt() {
    let mut c = open(b"CONNECTED\nversion:1.2\n\n\0");
    c.disconnect(Some("77")).unwrap();
    assert_eq!(c.state(), ClientState::Disconnecting);
    assert_eq!(
        c.send("/q", "x", &SendOptions::default()),
        Err(UsageError::Closed)
    );
    assert_eq!(
        sent(&mut c)[0].headers().collect::<Vec<_>>(),
        [("receipt", "77")]
    );
    c.handle_read(b"RECEIPT\nreceipt-id:77\n\n\0").unwrap();
    assert_eq!(
        events(&mut c),
        [
            ClientEvent::Receipt {
                receipt_id: "77".into()
            },
            ClientEvent::Closed(ClientCloseReason::Disconnected)
        ]
    );
    assert!(c.is_finished());
    // without receipt: closed at once
    let mut c = open(b"CONNECTED\nversion:1.2\n\n\0");
    c.disconnect(None).unwrap();
    assert_eq!(
        events(&mut c),
        [ClientEvent::Closed(ClientCloseReason::Disconnected)]
    );
    assert!(!c.is_finished(), "DISCONNECT still to be sent");
    let _ = sent(&mut c);
    assert!(c.is_finished());
}

#[test]
fn send_frame_refuses_server_commands() {
    let mut c = open(b"CONNECTED\nversion:1.2\n\n\0");
    for cmd in [
        Command::Message,
        Command::Connect,
        Command::Error,
        Command::Disconnect,
    ] {
        assert_eq!(
            c.send_frame(&Frame::new(cmd)),
            Err(UsageError::WrongCommand(cmd))
        );
    }
    c.send_frame(
        &Frame::builder(Command::Send)
            .header("destination", "/q")
            .header("receipt", "z")
            .build(),
    )
    .unwrap();
    assert_eq!(c.pending_receipts(), 1);
}

// ---- Heart-beating ----

#[test]
fn heartbeats_and_server_timeout() {
    let mut c = ClientSession::new(ClientConfig {
        heart_beat: HeartBeat {
            send_ms: 1000,
            receive_ms: 1000,
        },
        ..config()
    });
    let _ = sent(&mut c);
    c.handle_timeout(5_000);
    c.handle_read(b"CONNECTED\nversion:1.2\nheart-beat:2000,500\n\n\0")
        .unwrap();
    let _ = events(&mut c);
    // send every max(1000, 500) = 1000; expect every max(2000, 1000) = 2000, x2 grace
    assert_eq!(
        c.heartbeat(),
        Negotiated {
            send_ms: 1000,
            receive_ms: 2000
        }
    );
    assert_eq!(c.poll_timeout(), Some(6_000));
    c.handle_timeout(6_000);
    assert_eq!(c.poll_transmit().as_deref(), Some(&b"\n"[..]));
    // a frame counts as traffic
    c.send("/q", "x", &SendOptions::default()).unwrap();
    let _ = sent(&mut c);
    let mut now = 6_000;
    while c.state() == ClientState::Open {
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
        let _ = sent(&mut c);
        assert!(now <= 10_000);
    }
    // The CONNECTED read at 5000 is credited at the next timer check (6000): reads carry no
    // clock, so liveness errs on the lenient side by at most one timer period.
    assert_eq!(now, 10_000, "dead at last heard (6000) + 2000 * 2");
    let ev = events(&mut c);
    assert_eq!(
        ev,
        [
            ClientEvent::HeartBeatTimeout,
            ClientEvent::Closed(ClientCloseReason::Violation(Violation::HeartBeatTimeout))
        ]
    );
    assert_eq!(
        c.heartbeat_counts().1,
        5,
        "at 6000, 7000, 8000, 9000, 10000"
    );
}

#[test]
fn whole_frames_with_a_shared_send_body() {
    let mut c = open(b"CONNECTED\nversion:1.2\n\n\0");
    let big = bytes::Bytes::from(vec![b'b'; 2048]);
    c.send("/queue/a", big.clone(), &SendOptions::default())
        .unwrap();
    c.send("/queue/a", &b"small"[..], &SendOptions::default())
        .unwrap();
    let t = c.poll_transmit_frame().unwrap();
    assert!(t.head.starts_with(b"SEND\ndestination:/queue/a\n"));
    assert_eq!(t.body.as_ptr(), big.as_ptr(), "not copied");
    assert_eq!(&t.tail[..], b"\0");
    let t2 = c.poll_transmit_frame().unwrap();
    assert!(t2.head.starts_with(b"SEND\n") && t2.head.ends_with(b"small\0"));
    assert!(t2.body.is_empty() && t2.tail.is_empty());
    assert!(c.poll_transmit_frame().is_none());
    assert_eq!(c.pending_output(), 0);
}
