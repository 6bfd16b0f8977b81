//! The broker relay against an in-memory fake upstream broker, in virtual time: the
//! client/upstream session pairing, pass-through of every client frame with ids kept, frames
//! coming back, the system session with its backoff, and every failure path.
#![allow(clippy::many_single_char_names)] // h = host, a/b = clients, f = frames, e = error

mod relay_common;

use relay_common::{Mode, RelayHost, frame, relay_config};
use stompbox_broker::{
    CloseReason, Config, Event, HostError, PublishError, RelayConfig, RelayCredentials, RelayEvent,
    UpstreamCommand, UpstreamOwner,
};
use stompbox_stomp::server::ServerEvent;
use stompbox_stomp::{Command, HeartBeat};

fn sends(h: &RelayHost) -> Vec<(String, String)> {
    h.fake
        .events(None)
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::Send(s) => Some((
                s.destination().to_owned(),
                String::from_utf8_lossy(s.frame.body()).into_owned(),
            )),
            _ => None,
        })
        .collect()
}

fn messages(frames: &[stompbox_stomp::Frame]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f.command() == Command::Message)
        .map(|f| String::from_utf8_lossy(f.body()).into_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Sessions: one upstream per client, CONNECTED after the upstream's.

#[test]
fn system_session_opens_at_first_timeout_with_system_credentials() {
    let mut h = RelayHost::new(relay_config());
    assert_eq!(
        h.broker.poll_timeout(),
        Some(0),
        "the system session is due at once"
    );
    assert!(!h.broker.relay_system_connected());
    h.tick();
    assert!(h.broker.relay_system_connected());
    assert_eq!(h.commands.len(), 1);
    let UpstreamCommand::Open(sys) = h.commands[0] else {
        panic!("open expected: {:?}", h.commands);
    };
    assert_eq!(h.broker.upstream_owner(sys), Some(UpstreamOwner::System));
    let (_, connect) = &h.fake.connects[0];
    assert_eq!(connect.header("login"), Some("system"));
    assert_eq!(connect.header("passcode"), Some("syspass"));
    assert_eq!(connect.header("host"), Some("vh1"));
    assert_eq!(
        h.take_events(),
        vec![Event::Relay(RelayEvent::SystemConnected)]
    );
    assert_eq!(h.broker.stats().relay.system_connects, 1);
}

#[test]
fn connected_waits_for_the_upstream_connected() {
    let mut h = RelayHost::started(relay_config());
    let c = h.open();
    h.broker
        .handle_read(
            c,
            &frame(
                "CONNECT",
                &[
                    ("accept-version", "1.1,1.2"),
                    ("host", "x"),
                    ("login", "alice"),
                ],
                "",
            ),
            h.now,
        )
        .expect("open");
    // Nothing for the client before the upstream answered.
    while let Some(id) = h.broker.poll_ready() {
        assert!(h.broker.poll_transmit(id).is_none());
    }
    let up = h.broker.session_upstream(c).expect("upstream opened");
    assert_eq!(h.broker.poll_upstream(), Some(UpstreamCommand::Open(up)));
    h.commands.push(UpstreamCommand::Open(up));
    // The host opens the transport; the fake answers.
    let mut s =
        stompbox_stomp::server::ServerSession::new(stompbox_stomp::server::ServerConfig::default());
    s.handle_timeout(h.now);
    h.fake.sessions.insert(up, s);
    let f = h.take(c);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].command(), Command::Connected);
    assert_eq!(f[0].header("version"), Some("1.2"));
    // The upstream CONNECT: the relay's credentials, the virtual host, the client's version.
    let (_, connect) = h.fake.connects.last().expect("connect").clone();
    assert_eq!(connect.header("login"), Some("relay"));
    assert_eq!(connect.header("passcode"), Some("secret"));
    assert_eq!(connect.header("host"), Some("vh1"));
    assert_eq!(connect.header("accept-version"), Some("1.2"));
    let connected: Vec<_> = h
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, Event::Connected { .. }))
        .collect();
    assert_eq!(
        connected,
        vec![Event::Connected {
            session: c,
            user: None
        }]
    );
    assert_eq!(h.broker.upstream_owner(up), Some(UpstreamOwner::Session(c)));
}

#[test]
fn client_credentials_are_forwarded_when_configured() {
    let mut cfg = relay_config();
    if let Some(r) = cfg.relay.as_mut() {
        r.credentials = RelayCredentials::Client;
    }
    let mut h = RelayHost::started(cfg);
    let c = h.connect_with(&[("login", "alice"), ("passcode", "pw")]);
    assert_eq!(h.take(c)[0].command(), Command::Connected);
    let up = h.upstream(c);
    let (_, connect) = h
        .fake
        .connects
        .iter()
        .find(|(u, _)| *u == up)
        .expect("connect")
        .clone();
    assert_eq!(connect.header("login"), Some("alice"));
    assert_eq!(connect.header("passcode"), Some("pw"));
}

#[test]
fn upstream_rejecting_the_connect_is_an_error_for_the_client() {
    let mut cfg = relay_config();
    if let Some(r) = cfg.relay.as_mut() {
        r.credentials = RelayCredentials::Client;
    }
    let mut h = RelayHost::started(cfg);
    let c = h.connect_with(&[("login", "bad"), ("receipt", "r")]);
    let f = h.take(c);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].command(), Command::Error);
    assert_eq!(
        f[0].header("message"),
        Some("upstream broker: access refused for user 'bad'")
    );
    let ev = h.take_events();
    assert!(
        ev.iter().any(|e| matches!(e, Event::Closed { session, reason: CloseReason::UpstreamFailed(_) } if *session == c)),
        "{ev:?}"
    );
    assert!(!ev.iter().any(|e| matches!(e, Event::Connected { .. })));
    assert_eq!(h.broker.stats().relay.upstream_failures, 1);
}

#[test]
fn stomp_versions_pass_through_unchanged() {
    // STOMP 1.2 "Protocol Negotiation": the upstream is offered exactly the client's version,
    // so ack ids, headers and escaping need no translation.
    for (offer, want) in [("1.0", "1.0"), ("1.1", "1.1"), ("1.0,1.1,1.2", "1.2")] {
        let mut h = RelayHost::started(relay_config());
        let c = h.connect_with(&[("accept-version", offer)]);
        let f = h.take(c);
        assert_eq!(f[0].command(), Command::Connected, "{offer}");
        assert_eq!(f[0].header("version"), Some(want), "{offer}");
        let up = h.upstream(c);
        let (_, connect) = h
            .fake
            .connects
            .iter()
            .find(|(u, _)| *u == up)
            .expect("c")
            .clone();
        assert_eq!(connect.header("accept-version"), Some(want), "{offer}");
    }
}

// ---------------------------------------------------------------------------------------------
// Pass-through.

#[test]
fn subscribe_send_message_receipt_round_trip_keeps_ids() {
    let mut h = RelayHost::started(relay_config());
    let a = h.connect();
    let b = h.connect();
    h.send(
        a,
        "SUBSCRIBE",
        &[
            ("id", "sub-7"),
            ("destination", "/topic/news"),
            ("receipt", "r1"),
            ("x-custom", "1"),
        ],
        "",
    );
    let f = h.take(a);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].command(), Command::Receipt);
    assert_eq!(f[0].header("receipt-id"), Some("r1"));
    // The upstream saw the same subscription id, destination and extra header.
    let sub = h
        .fake
        .events(Some(h.upstream(a)))
        .into_iter()
        .find_map(|e| match e {
            ServerEvent::Subscribe(s) => Some(s),
            _ => None,
        })
        .expect("subscribe upstream");
    assert_eq!(sub.id, "sub-7");
    assert_eq!(sub.destination, "/topic/news");
    assert_eq!(sub.frame.header("x-custom"), Some("1"));
    h.send(
        b,
        "SEND",
        &[
            ("destination", "/topic/news"),
            ("content-type", "text/plain"),
            ("k", "a:b"),
        ],
        "hello",
    );
    let f = h.take(a);
    assert_eq!(messages(&f), vec!["hello"]);
    let m = &f[0];
    assert_eq!(m.header("subscription"), Some("sub-7"));
    assert_eq!(m.header("destination"), Some("/topic/news"));
    assert_eq!(m.header("content-type"), Some("text/plain"));
    assert_eq!(m.header("k"), Some("a:b"), "escaped header value survives");
    assert!(
        m.header("message-id")
            .is_some_and(|id| id.starts_with("T_sub-7@@"))
    );
    assert!(h.take(b).is_empty(), "no local echo");
    let st = h.broker.stats();
    assert!(
        st.relay.frames_up >= 2 && st.relay.frames_down >= 2,
        "{st:?}"
    );
    assert_eq!(st.messages_delivered, 0, "nothing routed in memory");
}

#[test]
fn unsubscribe_is_forwarded_and_ends_delivery() {
    let mut h = RelayHost::started(relay_config());
    let a = h.connect();
    h.send(
        a,
        "SUBSCRIBE",
        &[("id", "s"), ("destination", "/topic/t")],
        "",
    );
    h.send(a, "UNSUBSCRIBE", &[("id", "s"), ("receipt", "u")], "");
    let f = h.take(a);
    assert_eq!(f[0].header("receipt-id"), Some("u"));
    assert!(
        h.fake
            .events(Some(h.upstream(a)))
            .iter()
            .any(|e| matches!(e, ServerEvent::Unsubscribe(u) if u.id == "s"))
    );
    h.broker.publish("/topic/t", &[], "x").expect("relayed");
    assert!(messages(&h.take(a)).is_empty());
    assert_eq!(h.broker.stats().subscriptions, 0);
}

#[test]
fn acks_and_nacks_reach_the_upstream_with_its_ids() {
    // STOMP 1.2 "ACK" / "NACK": the id is the MESSAGE's ack header, passed through.
    let mut h = RelayHost::started(relay_config());
    let a = h.connect();
    h.send(
        a,
        "SUBSCRIBE",
        &[
            ("id", "q"),
            ("destination", "/queue/jobs"),
            ("ack", "client-individual"),
        ],
        "",
    );
    for body in ["one", "two"] {
        h.broker.publish("/queue/jobs", &[], body).expect("relayed");
    }
    let f = h.take(a);
    assert_eq!(messages(&f), vec!["one", "two"]);
    let ack0 = f[0].header("ack").expect("ack header").to_owned();
    let ack1 = f[1].header("ack").expect("ack header").to_owned();
    let mid0 = f[0].header("message-id").expect("message-id").to_owned();
    h.send(a, "ACK", &[("id", &ack0), ("receipt", "a0")], "");
    assert_eq!(h.take(a)[0].header("receipt-id"), Some("a0"));
    // The upstream resolved its own ack id to its message.
    assert_eq!(h.fake.acked, vec![mid0]);
    // NACK: the upstream redelivers.
    h.send(a, "NACK", &[("id", &ack1)], "");
    let f = h.take(a);
    assert_eq!(messages(&f), vec!["two"]);
    assert_eq!(f[0].header("redelivered"), Some("true"));
}

#[test]
fn stomp_1_1_acks_carry_message_id_and_subscription() {
    let mut h = RelayHost::started(relay_config());
    let a = h.connect_with(&[("accept-version", "1.1")]);
    assert_eq!(h.take(a)[0].command(), Command::Connected);
    h.send(
        a,
        "SUBSCRIBE",
        &[("id", "q"), ("destination", "/queue/x"), ("ack", "client")],
        "",
    );
    h.broker.publish("/queue/x", &[], "m").expect("relayed");
    let f = h.take(a);
    let mid = f[0].header("message-id").expect("id").to_owned();
    assert_eq!(f[0].header("ack"), None, "1.1 has no ack header");
    h.send(a, "ACK", &[("message-id", &mid), ("subscription", "q")], "");
    h.pump();
    assert_eq!(h.fake.acked, vec![mid]);
}

#[test]
fn transactions_are_kept_upstream_and_locally() {
    let mut h = RelayHost::started(relay_config());
    let a = h.connect();
    h.send(a, "BEGIN", &[("transaction", "t1"), ("receipt", "b")], "");
    h.send(
        a,
        "SEND",
        &[("destination", "/queue/q"), ("transaction", "t1")],
        "relayed",
    );
    h.send(
        a,
        "SEND",
        &[("destination", "/app/x"), ("transaction", "t1")],
        "local",
    );
    assert!(sends(&h).is_empty(), "held upstream until COMMIT");
    assert!(
        !h.take_events()
            .iter()
            .any(|e| matches!(e, Event::Message(_)))
    );
    h.send(a, "COMMIT", &[("transaction", "t1"), ("receipt", "c")], "");
    assert_eq!(
        sends(&h),
        vec![("/queue/q".to_owned(), "relayed".to_owned())]
    );
    let ev = h.take_events();
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Message(m) if m.destination == "/app/x"))
    );
    // Each receipt exactly once (from the upstream).
    let receipts: Vec<_> = h
        .take(a)
        .iter()
        .filter_map(|f| f.header("receipt-id").map(str::to_owned))
        .collect();
    assert_eq!(receipts, vec!["b", "c"]);
    // ABORT drops both sides.
    h.send(a, "BEGIN", &[("transaction", "t2")], "");
    h.send(
        a,
        "SEND",
        &[("destination", "/queue/q"), ("transaction", "t2")],
        "gone",
    );
    h.send(
        a,
        "SEND",
        &[("destination", "/app/x"), ("transaction", "t2")],
        "gone",
    );
    h.send(a, "ABORT", &[("transaction", "t2")], "");
    assert_eq!(sends(&h).len(), 1);
    assert!(
        !h.take_events()
            .iter()
            .any(|e| matches!(e, Event::Message(_)))
    );
    assert!(
        h.fake
            .events(Some(h.upstream(a)))
            .iter()
            .all(|e| !matches!(e, ServerEvent::Closed(_)))
    );
}

#[test]
fn app_destinations_stay_local() {
    let mut h = RelayHost::started(relay_config());
    let a = h.connect();
    h.send(
        a,
        "SEND",
        &[("destination", "/app/greet"), ("receipt", "r")],
        "hi",
    );
    let ev = h.take_events();
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Message(m) if m.destination == "/app/greet"))
    );
    assert!(sends(&h).is_empty());
    assert_eq!(
        h.take(a)[0].header("receipt-id"),
        Some("r"),
        "answered locally"
    );
}

#[test]
fn relay_rules_are_per_destination_prefix() {
    // Only /queue is relayed; /topic stays in memory.
    let mut cfg = relay_config();
    if let Some(r) = cfg.relay.as_mut() {
        r.prefixes = vec!["/queue".into()];
    }
    let mut h = RelayHost::started(cfg);
    let a = h.connect();
    let b = h.connect();
    h.send(
        a,
        "SUBSCRIBE",
        &[("id", "t"), ("destination", "/topic/local")],
        "",
    );
    h.send(
        a,
        "SUBSCRIBE",
        &[("id", "q"), ("destination", "/queue/remote")],
        "",
    );
    h.send(b, "SEND", &[("destination", "/topic/local")], "in-memory");
    h.send(b, "SEND", &[("destination", "/queue/remote")], "relayed");
    let f = h.take(a);
    let got: Vec<_> = f
        .iter()
        .map(|f| {
            (
                f.header("subscription").unwrap_or("").to_owned(),
                String::from_utf8_lossy(f.body()).into_owned(),
            )
        })
        .collect();
    assert!(got.contains(&("t".into(), "in-memory".into())), "{got:?}");
    assert!(got.contains(&("q".into(), "relayed".into())), "{got:?}");
    assert_eq!(
        sends(&h),
        vec![("/queue/remote".to_owned(), "relayed".to_owned())]
    );
    // Subscription ids are one namespace across local and relayed subscriptions.
    h.send(
        a,
        "SUBSCRIBE",
        &[("id", "t"), ("destination", "/queue/other")],
        "",
    );
    let f = h.take(a);
    assert_eq!(f[0].command(), Command::Error);
    assert_eq!(f[0].header("message"), Some("duplicate subscription id t"));
}

// ---------------------------------------------------------------------------------------------
// Failures.

#[test]
fn upstream_error_reaches_the_client_with_its_receipt() {
    let mut h = RelayHost::started(relay_config());
    let a = h.connect();
    h.send(
        a,
        "SEND",
        &[("destination", "/queue/forbidden"), ("receipt", "r9")],
        "x",
    );
    let f = h.take(a);
    // (The fake answers receipts on validation, before it decides to refuse.)
    let e = f.last().expect("frames");
    assert_eq!(e.command(), Command::Error, "{f:?}");
    assert_eq!(
        e.header("message"),
        Some("upstream broker: access to /queue/forbidden refused")
    );
    assert_eq!(e.header("receipt-id"), Some("r9"));
    let ev = h.take_events();
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Closed {
            reason: CloseReason::UpstreamFailed(_),
            ..
        }
    )));
    assert_eq!(h.broker.session_count(), 0);
}

#[test]
fn upstream_transport_lost_ends_the_client_with_error() {
    let mut h = RelayHost::started(relay_config());
    let a = h.connect();
    let up = h.upstream(a);
    h.fake.sessions.remove(&up);
    h.broker.upstream_closed(up, h.now).expect("known");
    let f = h.take(a);
    assert_eq!(f[0].command(), Command::Error);
    assert_eq!(f[0].header("message"), Some("upstream connection closed"));
    assert_eq!(
        h.broker.upstream_closed(up, h.now),
        Err(HostError::UnknownUpstream(up)),
        "forgotten"
    );
    assert!(h.commands.contains(&UpstreamCommand::Close(up)));
}

#[test]
fn upstream_connect_timeout_and_refused_connections() {
    let mut h = RelayHost::started(relay_config());
    h.fake.mode = Mode::BlackHole;
    let a = h.connect_with(&[]);
    assert!(h.take(a).is_empty());
    h.advance(9_999);
    assert!(h.take(a).is_empty());
    h.advance(1);
    let f = h.take(a);
    assert_eq!(f[0].command(), Command::Error);
    assert_eq!(
        f[0].header("message"),
        Some("upstream broker did not answer CONNECT in time")
    );
    h.fake.mode = Mode::Refuse;
    let b = h.connect_with(&[]);
    let f = h.take(b);
    assert_eq!(f[0].command(), Command::Error, "{f:?}");
}

#[test]
fn client_disconnect_and_close_release_the_upstream() {
    let mut h = RelayHost::started(relay_config());
    let a = h.connect();
    let up = h.upstream(a);
    h.send(a, "DISCONNECT", &[("receipt", "bye")], "");
    assert_eq!(h.take(a)[0].header("receipt-id"), Some("bye"));
    assert!(h.commands.contains(&UpstreamCommand::Close(up)));
    assert!(
        h.fake
            .events(Some(up))
            .iter()
            .any(|e| matches!(e, ServerEvent::Disconnect { .. }))
    );
    assert_eq!(h.broker.upstream_owner(up), None, "forgotten once flushed");
    // A transport that just drops.
    let b = h.connect();
    let up = h.upstream(b);
    h.broker.transport_closed(b).expect("open");
    h.pump();
    assert!(h.commands.contains(&UpstreamCommand::Close(up)));
    assert_eq!(
        h.broker.stats().relay.upstreams_current,
        1,
        "only the system session"
    );
}

#[test]
fn upstream_heart_beats_are_independent_of_the_clients() {
    let mut cfg = relay_config();
    if let Some(r) = cfg.relay.as_mut() {
        r.heart_beat = (1_000, 1_000);
    }
    let mut h = RelayHost::new(cfg);
    h.fake.heart_beat = HeartBeat {
        send_ms: 1_000,
        receive_ms: 1_000,
    };
    h.tick();
    let a = h.connect(); // heart-beat 0,0 with the client
    let up = h.upstream(a);
    h.advance(10_000);
    let sent = h.fake.received[&up].split(|&b| b == b'\n').count() - 1;
    assert!(sent >= 9, "upstream heart-beats sent: {sent}");
    assert_eq!(h.clients[&a].heartbeats, 0, "none to the client");
    assert!(h.take(a).is_empty(), "both sides alive");
    // The upstream goes silent (its transport stays open): heart-beat timeout.
    h.fake.sessions.remove(&up);
    h.advance(2_001);
    let f = h.take(a);
    assert_eq!(f[0].command(), Command::Error);
    assert_eq!(f[0].header("message"), Some("upstream heart-beat timeout"));
}

// ---------------------------------------------------------------------------------------------
// The system session.

#[test]
fn publishes_fail_visibly_during_an_outage_and_the_system_session_reconnects() {
    let mut h = RelayHost::new(relay_config());
    assert_eq!(
        h.broker.publish("/topic/a", &[], "early"),
        Err(PublishError::RelayUnavailable),
        "before the system session is up"
    );
    h.tick();
    let a = h.connect();
    h.send(
        a,
        "SUBSCRIBE",
        &[("id", "s"), ("destination", "/topic/a")],
        "",
    );
    assert_eq!(
        h.broker
            .publish("/topic/a", &[("content-type", "text/plain")], "one"),
        Ok(0)
    );
    assert_eq!(messages(&h.take(a)), vec!["one"]);
    assert_eq!(h.broker.stats().relay.publishes_confirmed, 1);
    // Unconfirmed publish, then the upstream dies.
    h.fake.mode = Mode::BlackHole;
    assert_eq!(h.broker.publish("/topic/a", &[("k", "v")], "lost?"), Ok(0));
    h.fake.mode = Mode::Refuse;
    h.kill_upstream();
    let ev = h.take_events();
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::Relay(RelayEvent::SystemDown {
                retry_at: 1_000,
                ..
            })
        )),
        "{ev:?}"
    );
    let failed: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Relay(RelayEvent::PublishFailed {
                destination,
                headers,
                body,
                ..
            }) => Some((destination.clone(), headers.clone(), body.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        vec![(
            "/topic/a".to_owned(),
            vec![("k".to_owned(), "v".to_owned())],
            bytes::Bytes::from_static(b"lost?")
        )]
    );
    // The client whose upstream died got ERROR.
    assert!(h.take(a).iter().any(|f| f.command() == Command::Error));
    // During the outage: refused at once.
    assert_eq!(
        h.broker.publish("/topic/a", &[], "x"),
        Err(PublishError::RelayUnavailable)
    );
    // Backoff doubles while the upstream refuses: 1 s, 2 s, 4 s.
    let mut retries = Vec::new();
    for _ in 0..3 {
        let t = h.broker.poll_timeout().expect("retry scheduled");
        retries.push(t);
        h.advance(t - h.now);
    }
    assert_eq!(retries, vec![1_000, 3_000, 7_000]);
    // The upstream is back: the next retry connects and new clients work again.
    h.fake.mode = Mode::Up;
    let t = h.broker.poll_timeout().expect("retry");
    assert_eq!(t, 15_000);
    h.advance(t - h.now);
    assert!(h.broker.relay_system_connected());
    assert!(
        h.take_events()
            .contains(&Event::Relay(RelayEvent::SystemConnected))
    );
    let b = h.connect();
    h.send(
        b,
        "SUBSCRIBE",
        &[("id", "s"), ("destination", "/topic/a")],
        "",
    );
    assert_eq!(h.broker.publish("/topic/a", &[], "again"), Ok(0));
    assert_eq!(messages(&h.take(b)), vec!["again"]);
    let st = h.broker.stats().relay;
    assert_eq!(
        (
            st.system_connects,
            st.publishes_failed,
            st.publishes_refused
        ),
        (2, 1, 2)
    );
}

#[test]
fn unconfirmed_publishes_are_bounded() {
    let mut cfg = relay_config();
    if let Some(r) = cfg.relay.as_mut() {
        r.max_unconfirmed_publishes = 2;
    }
    let mut h = RelayHost::started(cfg);
    h.fake.mode = Mode::BlackHole; // receipts never come back
    h.broker.publish("/topic/a", &[], "1").expect("ok");
    h.broker.publish("/topic/a", &[], "2").expect("ok");
    assert_eq!(
        h.broker.publish("/topic/a", &[], "3"),
        Err(PublishError::RelayBusy)
    );
}

#[test]
fn host_misuse_is_a_typed_error() {
    let mut h = RelayHost::started(relay_config());
    let a = h.connect();
    let up = h.upstream(a);
    let bogus = {
        h.broker.transport_closed(a).expect("open");
        h.pump();
        up
    };
    assert_eq!(
        h.broker.upstream_read(bogus, b"MESSAGE\n\n\0", h.now),
        Err(HostError::UnknownUpstream(bogus))
    );
    assert_eq!(h.broker.upstream_transmit(bogus), None);
    // Without a relay there are no upstreams at all.
    let mut plain = stompbox_broker::Broker::new(Config::default());
    assert_eq!(plain.poll_upstream(), None);
    assert_eq!(plain.poll_timeout(), None);
    assert_eq!(
        plain.upstream_read(up, b"x", 0),
        Err(HostError::UnknownUpstream(up))
    );
    let _ = RelayConfig::default();
}

#[test]
fn a_misbehaving_upstream_is_a_failure_not_a_panic() {
    let mut h = RelayHost::started(relay_config());
    let a = h.connect();
    let up = h.upstream(a);
    h.fake.sessions.remove(&up);
    h.broker
        .upstream_read(up, b"CONNECTED\nversion:1.2\n\n\0", h.now)
        .expect("known");
    h.pump();
    let f = h.take(a);
    assert_eq!(f[0].command(), Command::Error);
    assert!(
        f[0].header("message")
            .is_some_and(|m| m.starts_with("upstream broker:")),
        "{f:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Split invariance: upstream bytes in any pieces give the same client frames.

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]
    #[test]
    fn upstream_bytes_split_anywhere_give_the_same_frames(
        chunk in 1usize..64,
        bodies in proptest::collection::vec("[ -~]{0,40}", 1..6),
    ) {
        let run = |chunk: usize| {
            let mut h = RelayHost::started(relay_config());
            h.fake.chunk = chunk;
            let a = h.connect();
            h.send(a, "SUBSCRIBE", &[("id", "s"), ("destination", "/topic/p"), ("ack", "client")], "");
            for b in &bodies {
                h.broker.publish("/topic/p", &[("h", "x\\cy")], b.clone()).expect("relayed");
            }
            h.take(a)
        };
        let whole = run(usize::MAX);
        let split = run(chunk);
        proptest::prop_assert_eq!(messages(&whole), bodies.clone());
        proptest::prop_assert_eq!(whole, split);
    }
}

#[test]
fn frames_behind_connect_wait_for_the_upstream_and_keep_their_order() {
    let mut h = RelayHost::started(relay_config());
    let c = h.open();
    // CONNECT, SUBSCRIBE and SEND in one read, before any upstream exists.
    let mut bytes = frame("CONNECT", &[("accept-version", "1.2"), ("host", "x")], "");
    bytes.extend(frame(
        "SUBSCRIBE",
        &[
            ("id", "s"),
            ("destination", "/topic/early"),
            ("receipt", "r"),
        ],
        "",
    ));
    bytes.extend(frame("SEND", &[("destination", "/topic/early")], "first"));
    h.feed(c, &bytes);
    let f = h.take(c);
    let commands: Vec<_> = f.iter().map(stompbox_stomp::Frame::command).collect();
    assert_eq!(
        commands,
        vec![Command::Connected, Command::Receipt, Command::Message],
        "{f:?}"
    );
    assert_eq!(messages(&f), vec!["first"]);
}
