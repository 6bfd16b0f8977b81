//! One test (or table) per broker rule: sessions, routing, acks, redelivery, user
//! destinations, patterns, limits, heart-beats, stats.
#![allow(clippy::many_single_char_names)] // h = host, p = publisher, c = consumer, f = frames

mod common;

use common::{Host, frame};
use stompbox_broker::{
    AuthDecision, Broker, CloseReason, Config, Event, HostError, PublishError, TransportInfo,
    UnknownDestination,
};
use stompbox_stomp::{Command, Frame};

fn msgs(frames: &[Frame]) -> Vec<&Frame> {
    frames
        .iter()
        .filter(|f| f.command() == Command::Message)
        .collect()
}

fn closed(events: &[Event]) -> Vec<CloseReason> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Closed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

// --- Sessions: CONNECT, negotiation, authentication --------------------------------------

#[test]
fn connect_negotiates_version_and_heart_beat() {
    // (accept-version header, expected version)
    for (accept, want) in [
        (None, "1.0"),
        (Some("1.0"), "1.0"),
        (Some("1.0,1.1"), "1.1"),
        (Some("1.1,1.2"), "1.2"),
        (Some("1.2,2.0"), "1.2"),
    ] {
        let mut h = Host::new(Config::default());
        let id = h.open();
        let mut hs = vec![("host", "x"), ("heart-beat", "5000,20000")];
        if let Some(a) = accept {
            hs.push(("accept-version", a));
        }
        h.send(id, "CONNECT", &hs, "");
        let f = h.take(id);
        assert_eq!(f[0].command(), Command::Connected, "{accept:?}");
        assert_eq!(f[0].header("version"), Some(want));
        assert_eq!(f[0].header("server"), Some("stompbox"));
        let (_, hb) = h.broker.session_protocol(id).expect("session");
        if want == "1.0" {
            assert_eq!(
                (hb.send_ms, hb.receive_ms),
                (0, 0),
                "1.0 has no heart-beats"
            );
        } else {
            // Server offers 10000,10000; client can send every 5000, wants every 20000.
            assert_eq!((hb.send_ms, hb.receive_ms), (20_000, 10_000));
        }
    }
}

#[test]
fn connect_with_unsupported_version_gets_error() {
    let mut h = Host::new(Config::default());
    let id = h.open();
    h.send(
        id,
        "CONNECT",
        &[("accept-version", "2.0"), ("host", "x")],
        "",
    );
    let f = h.take(id);
    assert_eq!(f[0].command(), Command::Error);
    assert!(f[0].header("message").unwrap_or("").contains("1.2"));
    assert!(matches!(
        closed(&h.take_events())[..],
        [CloseReason::ProtocolError(_)]
    ));
}

#[test]
fn first_frame_must_be_connect() {
    let mut h = Host::new(Config::default());
    let id = h.open();
    h.publish(id, "/topic/a", "x");
    assert_eq!(h.take(id)[0].command(), Command::Error);
    assert_eq!(h.broker.stats().protocol_errors, 1);
}

#[test]
fn auth_hook_sees_connect_and_transport_and_names_the_user() {
    let broker = Broker::with_authenticator(
        Config::default(),
        |r: &stompbox_broker::ConnectRequest<'_>| {
            if r.login == Some("bob")
                && r.passcode == Some("pw")
                && r.host == Some("vh")
                && r.transport.secure
            {
                AuthDecision::Accept {
                    user: Some("bob".into()),
                }
            } else {
                AuthDecision::Reject {
                    message: "bad credentials".into(),
                }
            }
        },
    );
    let mut h = Host::with_broker(broker);
    let tls = TransportInfo {
        secure: true,
        ..TransportInfo::default()
    };
    let ok = h.broker.open_session(tls.clone(), 0).expect("session");
    let bad = h.broker.open_session(tls, 0).expect("session");
    h.clients.insert(ok, common_client());
    h.clients.insert(bad, common_client());
    let conn = |pw: &str| {
        frame(
            "CONNECT",
            &[
                ("accept-version", "1.2"),
                ("host", "vh"),
                ("login", "bob"),
                ("passcode", pw),
            ],
            "",
        )
    };
    h.feed(ok, &conn("pw"));
    h.feed(bad, &conn("nope"));
    let f = h.take(ok);
    assert_eq!(f[0].header("user-name"), Some("bob"));
    assert_eq!(h.broker.session_user(ok), Some("bob"));
    let f = h.take(bad);
    assert_eq!(f[0].command(), Command::Error);
    assert_eq!(f[0].header("message"), Some("bad credentials"));
    let ev = h.take_events();
    assert!(ev.iter().any(|e| matches!(e, Event::Connected { session, user: Some(u) } if *session == ok && &**u == "bob")));
    assert_eq!(closed(&ev), vec![CloseReason::AuthRejected]);
    assert_eq!(h.broker.stats().auth_failures, 1);
}

fn common_client() -> common::Client {
    let mut h = Host::new(Config::default());
    let id = h.open();
    h.clients.remove(&id).expect("client")
}

#[test]
fn frames_behind_connect_in_one_read_are_processed() {
    let mut h = Host::new(Config::default());
    let id = h.open();
    let mut bytes = frame("CONNECT", &[("accept-version", "1.2"), ("host", "x")], "");
    bytes.extend(frame(
        "SUBSCRIBE",
        &[("id", "0"), ("destination", "/topic/a"), ("receipt", "r")],
        "",
    ));
    h.feed(id, &bytes);
    let f = h.take(id);
    assert_eq!(
        f.iter().map(Frame::command).collect::<Vec<_>>(),
        vec![Command::Connected, Command::Receipt]
    );
}

// --- Application destinations ----------------------------------------------------------

#[test]
fn send_to_app_prefix_is_an_event_with_session_user_headers_body() {
    let mut h = Host::new(Config::default());
    let a = h.connect(None);
    h.send(
        a,
        "SEND",
        &[
            ("destination", "/app/greet"),
            ("receipt", "r1"),
            ("x-k", "v"),
            ("content-type", "text/plain"),
        ],
        "hi",
    );
    let ev = h.take_events();
    let Some(Event::Message(m)) = ev.iter().find(|e| matches!(e, Event::Message(_))) else {
        panic!("no app message: {ev:?}");
    };
    assert_eq!(m.session, a);
    assert_eq!(m.destination, "/app/greet");
    assert_eq!(&m.body[..], b"hi");
    assert_eq!(m.header("x-k"), Some("v"));
    assert_eq!(m.header("content-type"), Some("text/plain"));
    assert_eq!(m.header("receipt"), None, "transport headers stripped");
    let f = h.take(a);
    assert_eq!(f[0].command(), Command::Receipt);
    assert_eq!(f[0].header("receipt-id"), Some("r1"));
}

#[test]
fn subscribe_to_app_prefix_is_an_event_and_the_app_answers_once() {
    let mut h = Host::new(Config::default());
    let a = h.connect(None);
    h.subscribe(a, "s1", "/app/init", "auto");
    let ev = h.take_events();
    let Some(Event::Subscribe(s)) = ev.iter().find(|e| matches!(e, Event::Subscribe(_))) else {
        panic!("no subscribe event");
    };
    assert_eq!(
        (s.session, s.subscription.as_str(), s.destination.as_str()),
        (a, "s1", "/app/init")
    );
    let n = h
        .broker
        .send_to_session(
            a,
            "/app/init",
            &[("content-type", "application/json")],
            "{}",
        )
        .expect("ok");
    assert_eq!(n, 1);
    let f = h.take(a);
    let m = msgs(&f);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].header("subscription"), Some("s1"));
    assert_eq!(m[0].header("destination"), Some("/app/init"));
    assert_eq!(m[0].header("content-type"), Some("application/json"));
}

#[test]
fn app_replies_publish_send_to_session_send_to_user() {
    let mut h = Host::new(Config::default());
    let a = h.connect(Some("alice"));
    let b = h.connect(Some("bob"));
    // Default AcceptAll takes the transport principal, so name users through a hook instead.
    let _ = (a, b);
    let broker = Broker::with_authenticator(
        Config::default(),
        |r: &stompbox_broker::ConnectRequest<'_>| AuthDecision::Accept {
            user: r.login.map(str::to_owned),
        },
    );
    let mut h = Host::with_broker(broker);
    let a = h.connect(Some("alice"));
    let b = h.connect(Some("bob"));
    h.subscribe(a, "t", "/topic/news", "auto");
    h.subscribe(b, "t", "/topic/news", "auto");
    h.subscribe(b, "u", "/user/queue/reply", "auto");
    assert_eq!(h.broker.publish("/topic/news", &[], "n1"), Ok(2));
    assert_eq!(
        h.broker
            .send_to_user("bob", "/queue/reply", &[], "only bob"),
        Ok(1)
    );
    assert_eq!(
        h.broker.send_to_session(a, "/topic/news", &[], "only a"),
        Ok(1)
    );
    assert_eq!(h.bodies(a), vec!["n1", "only a"]);
    assert_eq!(h.bodies(b), vec!["n1", "only bob"]);
    assert_eq!(
        h.broker.publish("/app/x", &[], "x"),
        Err(PublishError::NotABrokerDestination("/app/x".into()))
    );
    assert_eq!(
        h.broker
            .send_to_session(stompbox_broker_session(999), "/topic/news", &[], "x"),
        Err(PublishError::UnknownSession(stompbox_broker_session(999)))
    );
}

fn stompbox_broker_session(n: u64) -> stompbox_broker::SessionId {
    // Session ids are opaque; obtain an unknown one by opening and closing sessions.
    let mut b = Broker::default();
    let mut last = b.open_session(TransportInfo::default(), 0).expect("s");
    while last.get() < n {
        b.transport_closed(last).expect("open");
        last = b.open_session(TransportInfo::default(), 0).expect("s");
    }
    last
}

// --- Topics and patterns -----------------------------------------------------------------

#[test]
fn topic_fan_out_and_message_headers() {
    let mut h = Host::new(Config::default());
    let p = h.connect(None);
    let subs: Vec<_> = (0..3).map(|_| h.connect(None)).collect();
    for (i, &s) in subs.iter().enumerate() {
        h.subscribe(s, &format!("sub-{i}"), "/topic/prices", "auto");
    }
    h.send(
        p,
        "SEND",
        &[
            ("destination", "/topic/prices"),
            ("content-type", "text/plain"),
            ("x-custom", "a\\cb"),
            ("receipt", "r9"),
            ("transaction-like", "kept"),
        ],
        "42",
    );
    let mut ids = Vec::new();
    for (i, &s) in subs.iter().enumerate() {
        let f = h.take(s);
        let m = msgs(&f);
        assert_eq!(m.len(), 1);
        let m = m[0];
        assert_eq!(m.header("destination"), Some("/topic/prices"));
        assert_eq!(m.header("subscription"), Some(format!("sub-{i}").as_str()));
        assert_eq!(m.header("content-type"), Some("text/plain"));
        assert_eq!(m.header("content-length"), Some("2"));
        assert_eq!(
            m.header("x-custom"),
            Some("a:b"),
            "escaped header round-trips"
        );
        assert_eq!(m.header("transaction-like"), Some("kept"));
        assert_eq!(m.header("receipt"), None, "receipt is a transport header");
        assert_eq!(m.header("ack"), None, "auto ack has no ack header");
        assert_eq!(&m.body()[..], b"42");
        ids.push(m.header("message-id").expect("message-id").to_owned());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "message-id unique per delivery");
    assert_eq!(h.take(p)[0].header("receipt-id"), Some("r9"));
    let st = h.broker.stats();
    assert_eq!((st.messages_published, st.messages_delivered), (1, 3));
}

#[test]
fn topic_patterns_slash_and_dot() {
    // (separator, pattern, destinations that must match, destinations that must not)
    let table: &[(char, &str, &[&str], &[&str])] = &[
        (
            '/',
            "/topic/a/*",
            &["/topic/a/b"],
            &["/topic/a", "/topic/a/b/c", "/topic/x/b"],
        ),
        (
            '/',
            "/topic/a/**",
            &["/topic/a", "/topic/a/b", "/topic/a/b/c"],
            &["/topic/b"],
        ),
        ('/', "/topic/*/x", &["/topic/q/x"], &["/topic/q/y"]),
        (
            '.',
            "/topic/stocks.*",
            &["/topic/stocks.ibm"],
            &["/topic/stocks.ibm.x", "/topic/bonds.x"],
        ),
        (
            '.',
            "/topic/stocks.**",
            &["/topic/stocks.ibm.x"],
            &["/topic/bonds"],
        ),
    ];
    for &(sep, pat, yes, no) in table {
        let mut h = Host::new(Config {
            separator: sep,
            ..Config::default()
        });
        let p = h.connect(None);
        let s = h.connect(None);
        h.subscribe(s, "0", pat, "auto");
        for d in yes.iter().chain(no) {
            h.publish(p, d, d);
        }
        assert_eq!(h.bodies(s), yes.to_vec(), "{pat} ({sep})");
    }
}

#[test]
fn publishing_to_a_pattern_is_refused() {
    let mut h = Host::new(Config::default());
    let p = h.connect(None);
    h.send(
        p,
        "SEND",
        &[("destination", "/topic/*"), ("receipt", "r")],
        "x",
    );
    let f = h.take(p);
    assert_eq!(f[0].command(), Command::Error);
    assert_eq!(f[0].header("receipt-id"), Some("r"));
}

// --- Unknown destinations ------------------------------------------------------------------

#[test]
fn unknown_prefix_error_or_drop() {
    let mut h = Host::new(Config::default());
    let p = h.connect(None);
    h.send(
        p,
        "SEND",
        &[("destination", "/nowhere/x"), ("receipt", "r1")],
        "x",
    );
    let f = h.take(p);
    assert_eq!(f[0].command(), Command::Error);
    assert_eq!(f[0].header("receipt-id"), Some("r1"));
    assert!(matches!(
        closed(&h.take_events())[..],
        [CloseReason::ProtocolError(_)]
    ));

    let mut h = Host::new(Config {
        unknown_destination: UnknownDestination::Drop,
        ..Config::default()
    });
    let p = h.connect(None);
    h.send(
        p,
        "SEND",
        &[("destination", "/nowhere/x"), ("receipt", "r1")],
        "x",
    );
    let f = h.take(p);
    assert_eq!(f[0].command(), Command::Receipt);
    assert_eq!(h.broker.stats().messages_dropped, 1);
    // SUBSCRIBE to an unknown prefix is always an error.
    h.subscribe(p, "0", "/nowhere", "auto");
    assert_eq!(h.take(p)[0].command(), Command::Error);
}

// --- Queues ------------------------------------------------------------------------------

#[test]
fn queue_round_robin_exactly_one_subscriber_each() {
    let mut h = Host::new(Config::default());
    let p = h.connect(None);
    let c1 = h.connect(None);
    let c2 = h.connect(None);
    h.subscribe(c1, "0", "/queue/jobs", "auto");
    h.subscribe(c2, "0", "/queue/jobs", "auto");
    for i in 0..6 {
        h.publish(p, "/queue/jobs", &i.to_string());
    }
    assert_eq!(h.bodies(c1), vec!["0", "2", "4"]);
    assert_eq!(h.bodies(c2), vec!["1", "3", "5"]);
}

#[test]
fn queue_holds_messages_until_a_subscriber_comes() {
    let mut h = Host::new(Config::default());
    let p = h.connect(None);
    h.publish(p, "/queue/q", "a");
    h.publish(p, "/queue/q", "b");
    assert_eq!(h.broker.stats().queue_depth_total, 2);
    let c = h.connect(None);
    h.subscribe(c, "0", "/queue/q", "auto");
    assert_eq!(h.bodies(c), vec!["a", "b"]);
    assert_eq!(h.broker.stats().queue_depth_total, 0);
}

#[test]
fn full_queue_answers_send_with_error_and_receipt_id() {
    let mut h = Host::new(Config {
        max_queue_depth: 2,
        ..Config::default()
    });
    let p = h.connect(None);
    h.publish(p, "/queue/q", "1");
    h.publish(p, "/queue/q", "2");
    h.send(
        p,
        "SEND",
        &[("destination", "/queue/q"), ("receipt", "r3")],
        "3",
    );
    let f = h.take(p);
    let e = f
        .iter()
        .find(|f| f.command() == Command::Error)
        .expect("ERROR");
    assert_eq!(e.header("receipt-id"), Some("r3"));
    assert!(e.header("message").unwrap_or("").contains("queue full"));
    let st = h.broker.stats();
    assert_eq!(st.queue_full_rejections, 1);
    assert_eq!(
        st.queue_depth_total, 2,
        "nothing lost, nothing over the bound"
    );
    assert_eq!(
        h.broker.publish("/queue/q", &[], "4"),
        Err(PublishError::QueueFull("/queue/q".into()))
    );
}

#[test]
fn queue_subscription_cannot_be_a_pattern() {
    let mut h = Host::new(Config::default());
    let c = h.connect(None);
    h.subscribe(c, "0", "/queue/*", "auto");
    assert_eq!(h.take(c)[0].command(), Command::Error);
}

// --- Ack modes and redelivery ------------------------------------------------------------

fn ack_ids(frames: &[Frame]) -> Vec<String> {
    msgs(frames)
        .iter()
        .map(|m| m.header("ack").expect("ack header").to_owned())
        .collect()
}

#[test]
fn client_individual_ack_owns_until_acked_and_redelivers_on_disconnect() {
    let mut h = Host::new(Config::default());
    let p = h.connect(None);
    let c1 = h.connect(None);
    h.subscribe(c1, "0", "/queue/q", "client-individual");
    for b in ["a", "b", "c"] {
        h.publish(p, "/queue/q", b);
    }
    let f = h.take(c1);
    let ids = ack_ids(&f);
    assert_eq!(ids.len(), 3);
    // ACK only "b".
    h.send(c1, "ACK", &[("id", &ids[1])], "");
    assert_eq!(h.broker.stats().queues[0].unacked, 2);
    // c2 subscribes, c1 disconnects: a and c go to c2, marked redelivered.
    let c2 = h.connect(None);
    h.subscribe(c2, "0", "/queue/q", "auto");
    h.broker.transport_closed(c1).expect("open");
    h.drain();
    let f = h.take(c2);
    let m = msgs(&f);
    assert_eq!(
        m.iter().map(|m| &m.body()[..]).collect::<Vec<_>>(),
        vec![b"a", b"c"]
    );
    assert!(m.iter().all(|m| m.header("redelivered") == Some("true")));
    assert_eq!(h.broker.stats().messages_redelivered, 2);
}

#[test]
fn client_ack_is_cumulative() {
    let mut h = Host::new(Config::default());
    let p = h.connect(None);
    let c = h.connect(None);
    h.subscribe(c, "0", "/queue/q", "client");
    for b in ["a", "b", "c"] {
        h.publish(p, "/queue/q", b);
    }
    let ids = ack_ids(&h.take(c));
    h.send(c, "ACK", &[("id", &ids[1])], "");
    assert_eq!(
        h.broker.stats().queues[0].unacked,
        1,
        "a and b acked, c owned"
    );
    // Acking an id that is no longer outstanding is an error (with receipt-id).
    h.send(c, "ACK", &[("id", &ids[0]), ("receipt", "r")], "");
    let f = h.take(c);
    assert_eq!(f[0].command(), Command::Error);
    assert_eq!(f[0].header("receipt-id"), Some("r"));
}

#[test]
fn nack_redelivers_to_another_subscriber() {
    let mut h = Host::new(Config::default());
    let p = h.connect(None);
    let c1 = h.connect(None);
    let c2 = h.connect(None);
    h.subscribe(c1, "0", "/queue/q", "client-individual");
    h.subscribe(c2, "0", "/queue/q", "client-individual");
    h.publish(p, "/queue/q", "x"); // round robin: c1
    let ids = ack_ids(&h.take(c1));
    h.send(c1, "NACK", &[("id", &ids[0])], "");
    let f = h.take(c2);
    let m = msgs(&f);
    assert_eq!(&m[0].body()[..], b"x");
    assert_eq!(m[0].header("redelivered"), Some("true"));
}

#[test]
fn unsubscribe_redelivers_unacked() {
    let mut h = Host::new(Config::default());
    let p = h.connect(None);
    let c1 = h.connect(None);
    let c2 = h.connect(None);
    h.subscribe(c1, "0", "/queue/q", "client");
    h.publish(p, "/queue/q", "x");
    assert_eq!(msgs(&h.take(c1)).len(), 1);
    h.subscribe(c2, "0", "/queue/q", "client");
    h.send(c1, "UNSUBSCRIBE", &[("id", "0")], "");
    let f = h.take(c2);
    assert_eq!(msgs(&f)[0].header("redelivered"), Some("true"));
}

#[test]
fn stomp_1_1_acks_by_message_id_and_subscription() {
    let mut h = Host::new(Config::default());
    let p = h.connect(None);
    let c = h.open();
    h.send(
        c,
        "CONNECT",
        &[("accept-version", "1.1"), ("host", "x")],
        "",
    );
    h.subscribe(c, "s", "/queue/q", "client-individual");
    h.publish(p, "/queue/q", "x");
    let f = h.take(c);
    let m = msgs(&f);
    assert_eq!(m[0].header("ack"), None, "no ack header before 1.2");
    let mid = m[0].header("message-id").expect("id").to_owned();
    h.send(
        c,
        "ACK",
        &[
            ("message-id", &mid),
            ("subscription", "s"),
            ("receipt", "r"),
        ],
        "",
    );
    assert_eq!(h.take(c)[0].command(), Command::Receipt);
    assert_eq!(h.broker.stats().queues[0].unacked, 0);
}

#[test]
fn max_unacked_makes_the_queue_skip_a_consumer() {
    let mut h = Host::new(Config {
        max_unacked_per_subscription: 1,
        ..Config::default()
    });
    let p = h.connect(None);
    let c = h.connect(None);
    h.subscribe(c, "0", "/queue/q", "client-individual");
    h.publish(p, "/queue/q", "a");
    h.publish(p, "/queue/q", "b");
    let ids = ack_ids(&h.take(c));
    assert_eq!(ids.len(), 1, "b waits while a is unacked");
    assert_eq!(h.broker.stats().queue_depth_total, 1);
    h.send(c, "ACK", &[("id", &ids[0])], "");
    assert_eq!(h.bodies(c), vec!["b"]);
}

#[test]
fn topic_client_ack_nack_discards() {
    let mut h = Host::new(Config::default());
    let p = h.connect(None);
    let c = h.connect(None);
    h.subscribe(c, "0", "/topic/t", "client");
    h.publish(p, "/topic/t", "x");
    let ids = ack_ids(&h.take(c));
    h.send(c, "NACK", &[("id", &ids[0]), ("receipt", "r")], "");
    assert_eq!(h.take(c)[0].command(), Command::Receipt);
    assert_eq!(
        h.broker.stats().messages_redelivered,
        0,
        "a topic has no other owner"
    );
}

// --- User destinations -------------------------------------------------------------------

#[test]
fn user_destinations_are_private_and_reach_every_session_of_the_user() {
    let broker = Broker::with_authenticator(
        Config::default(),
        |r: &stompbox_broker::ConnectRequest<'_>| AuthDecision::Accept {
            user: r.login.map(str::to_owned),
        },
    );
    let mut h = Host::with_broker(broker);
    let bob1 = h.connect(Some("bob"));
    let bob2 = h.connect(Some("bob"));
    let alice = h.connect(Some("alice"));
    for s in [bob1, bob2, alice] {
        h.subscribe(s, "u", "/user/queue/inbox", "auto");
    }
    h.publish(alice, "/user/bob/queue/inbox", "for bob");
    assert_eq!(h.bodies(bob1), vec!["for bob"]);
    assert_eq!(h.bodies(bob2), vec!["for bob"]);
    assert!(h.bodies(alice).is_empty());
    let f = {
        h.publish(bob1, "/user/alice/queue/inbox", "for alice");
        h.take(alice)
    };
    assert_eq!(msgs(&f)[0].header("destination"), Some("/user/queue/inbox"));
    // A user destination must name a broker destination.
    h.subscribe(bob1, "bad", "/user/app/x", "auto");
    assert_eq!(h.take(bob1)[0].command(), Command::Error);
}

// --- Transactions and receipts -----------------------------------------------------------

#[test]
fn transactions_buffer_until_commit_and_abort_discards() {
    let mut h = Host::new(Config::default());
    let p = h.connect(None);
    let c = h.connect(None);
    h.subscribe(c, "0", "/topic/t", "auto");
    h.send(p, "BEGIN", &[("transaction", "t1")], "");
    h.send(
        p,
        "SEND",
        &[("destination", "/topic/t"), ("transaction", "t1")],
        "a",
    );
    assert!(h.bodies(c).is_empty());
    h.send(p, "COMMIT", &[("transaction", "t1"), ("receipt", "c")], "");
    assert_eq!(h.bodies(c), vec!["a"]);
    h.send(p, "BEGIN", &[("transaction", "t2")], "");
    h.send(
        p,
        "SEND",
        &[("destination", "/topic/t"), ("transaction", "t2")],
        "b",
    );
    h.send(p, "ABORT", &[("transaction", "t2")], "");
    assert!(h.bodies(c).is_empty());
    h.send(
        p,
        "COMMIT",
        &[("transaction", "nope"), ("receipt", "r")],
        "",
    );
    let f = h.take(p);
    let e = f
        .iter()
        .find(|f| f.command() == Command::Error)
        .expect("ERROR");
    assert_eq!(e.header("receipt-id"), Some("r"));
}

#[test]
fn disconnect_receipt_then_closed() {
    let mut h = Host::new(Config::default());
    let c = h.connect(None);
    h.send(c, "DISCONNECT", &[("receipt", "bye")], "");
    let f = h.take(c);
    assert_eq!(f[0].command(), Command::Receipt);
    assert_eq!(f[0].header("receipt-id"), Some("bye"));
    assert_eq!(
        closed(&h.take_events()),
        vec![CloseReason::ClientDisconnect]
    );
    assert_eq!(h.broker.session_count(), 0);
}

// --- Protocol errors ---------------------------------------------------------------------

#[test]
fn client_frame_violations_get_error() {
    // (frame bytes after CONNECT, words the ERROR message must contain)
    let table: &[(Vec<u8>, &str)] = &[
        (b"BOGUS\n\n\0".to_vec(), "unknown command"),
        (frame("SEND", &[], "x"), "destination"),
        (frame("SUBSCRIBE", &[("destination", "/topic/a")], ""), "id"),
        (
            frame(
                "SUBSCRIBE",
                &[
                    ("id", "0"),
                    ("destination", "/topic/a"),
                    ("ack", "sometimes"),
                ],
                "",
            ),
            "ack",
        ),
        (frame("ACK", &[], ""), "id"),
        (frame("BEGIN", &[], ""), "transaction"),
        (frame("MESSAGE", &[], ""), "not a client frame"),
        (
            frame("CONNECT", &[("accept-version", "1.2")], ""),
            "already connected",
        ),
        (
            frame("UNSUBSCRIBE", &[("id", "nope")], ""),
            "no subscription",
        ),
    ];
    for (bytes, want) in table {
        let mut h = Host::new(Config::default());
        h.auto_close = false;
        let c = h.connect(None);
        h.feed(c, bytes);
        let f = h.take(c);
        assert_eq!(f.len(), 1, "{want}");
        assert_eq!(f[0].command(), Command::Error);
        let msg = f[0].header("message").unwrap_or("");
        assert!(msg.contains(want), "{msg:?} should contain {want:?}");
        assert!(matches!(
            closed(&h.take_events())[..],
            [CloseReason::ProtocolError(_)]
        ));
        // Input after the ERROR is ignored.
        h.feed(c, b"garbage");
        assert!(h.take(c).is_empty());
    }
}

#[test]
fn duplicate_subscription_id_is_an_error() {
    let mut h = Host::new(Config::default());
    let c = h.connect(None);
    h.subscribe(c, "0", "/topic/a", "auto");
    h.subscribe(c, "0", "/topic/b", "auto");
    assert_eq!(h.take(c)[0].command(), Command::Error);
}

// --- Bounds ------------------------------------------------------------------------------

#[test]
fn slow_consumer_is_disconnected_and_others_keep_going() {
    let cfg = Config {
        max_output_bytes: 2_000,
        ..Config::default()
    };
    let mut h = Host::new(cfg);
    h.auto_close = false;
    let p = h.connect(None);
    let slow = h.connect(None);
    let fast = h.connect(None);
    h.subscribe(slow, "0", "/topic/t", "auto");
    h.subscribe(fast, "0", "/topic/t", "auto");
    let body = "x".repeat(100);
    let mut got_fast = 0;
    for _ in 0..40 {
        // The fast client drains; the slow one never does.
        h.broker
            .handle_read(p, &frame("SEND", &[("destination", "/topic/t")], &body), 0)
            .expect("ok");
        while let Some(t) = h.broker.poll_transmit(fast) {
            got_fast += usize::from(t.head.starts_with(b"MESSAGE"));
        }
    }
    assert_eq!(got_fast, 40);
    assert!(
        h.broker.queued_bytes(slow) <= 2_000 + 200,
        "bounded (plus the ERROR)"
    );
    let st = h.broker.stats();
    assert_eq!(st.slow_consumer_disconnects, 1);
    let mut last = None;
    while let Some(t) = h.broker.poll_transmit(slow) {
        last = Some(t);
    }
    assert!(last.expect("output").head.starts_with(b"ERROR"));
    let ev = h.take_events();
    assert!(ev.iter().any(|e| matches!(e, Event::Closed { session, reason: CloseReason::SlowConsumer } if *session == slow)));
}

#[test]
fn output_frame_bound_counts_frames() {
    let mut h = Host::new(Config {
        max_output_frames: 5,
        ..Config::default()
    });
    h.auto_close = false;
    let p = h.connect(None);
    let c = h.connect(None);
    h.subscribe(c, "0", "/topic/t", "auto");
    for _ in 0..10 {
        h.broker
            .handle_read(p, &frame("SEND", &[("destination", "/topic/t")], "x"), 0)
            .expect("ok");
    }
    assert_eq!(h.broker.stats().slow_consumer_disconnects, 1);
}

#[test]
fn queue_consumer_with_full_output_is_skipped_not_disconnected() {
    let mut h = Host::new(Config {
        max_output_frames: 8,
        ..Config::default()
    });
    h.auto_close = false;
    let p = h.connect(None);
    let c = h.connect(None);
    h.subscribe(c, "0", "/queue/q", "auto");
    for i in 0..10 {
        h.broker
            .handle_read(
                p,
                &frame("SEND", &[("destination", "/queue/q")], &i.to_string()),
                0,
            )
            .expect("ok");
        while h.broker.poll_transmit(p).is_some() {}
    }
    let st = h.broker.stats();
    assert_eq!(st.slow_consumer_disconnects, 0);
    assert!(
        st.queue_depth_total > 0,
        "backpressure keeps messages queued"
    );
    // Draining resumes delivery; nothing lost, order kept.
    let mut bodies = Vec::new();
    while let Some(t) = h.broker.poll_transmit(c) {
        if t.head.starts_with(b"MESSAGE") {
            bodies.push(String::from_utf8_lossy(&t.body).into_owned());
        }
    }
    assert_eq!(bodies, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[test]
fn session_subscription_and_queue_limits() {
    let mut b = Broker::new(Config {
        max_sessions: 1,
        ..Config::default()
    });
    b.open_session(TransportInfo::default(), 0).expect("first");
    assert_eq!(
        b.open_session(TransportInfo::default(), 0),
        Err(HostError::TooManySessions)
    );
    assert_eq!(b.stats().sessions_refused, 1);

    let mut h = Host::new(Config {
        max_subscriptions_per_session: 2,
        max_queues: 1,
        ..Config::default()
    });
    let c = h.connect(None);
    h.subscribe(c, "0", "/topic/a", "auto");
    h.subscribe(c, "1", "/topic/b", "auto");
    h.subscribe(c, "2", "/topic/c", "auto");
    let f = h.take(c);
    assert!(
        f[0].header("message")
            .unwrap_or("")
            .contains("too many subscriptions")
    );

    let c = h.connect(None);
    h.publish(c, "/queue/one", "x");
    h.send(
        c,
        "SEND",
        &[("destination", "/queue/two"), ("receipt", "r")],
        "x",
    );
    let f = h.take(c);
    assert!(f[0].header("message").unwrap_or("").contains("queue limit"));
}

#[test]
fn transaction_limits() {
    let mut h = Host::new(Config {
        max_transactions_per_session: 1,
        max_frames_per_transaction: 1,
        ..Config::default()
    });
    let c = h.connect(None);
    h.send(c, "BEGIN", &[("transaction", "a")], "");
    h.send(
        c,
        "SEND",
        &[("destination", "/topic/t"), ("transaction", "a")],
        "1",
    );
    h.send(
        c,
        "SEND",
        &[("destination", "/topic/t"), ("transaction", "a")],
        "2",
    );
    assert!(
        h.take(c)[0]
            .header("message")
            .unwrap_or("")
            .contains("transaction too large")
    );
    let c = h.connect(None);
    h.send(c, "BEGIN", &[("transaction", "a")], "");
    h.send(c, "BEGIN", &[("transaction", "b")], "");
    assert!(
        h.take(c)[0]
            .header("message")
            .unwrap_or("")
            .contains("too many transactions")
    );
}

#[test]
fn frame_limits_before_and_after_connect() {
    let mut h = Host::new(Config::default());
    let c = h.open();
    // 64 KiB before CONNECT is accepted.
    let big = "x".repeat(70_000);
    h.feed(c, &frame("CONNECT", &[("accept-version", "1.2")], &big));
    assert_eq!(h.take(c)[0].header("message"), Some("frame body too large"));
}

#[test]
fn host_misuse_is_a_typed_error() {
    let mut b = Broker::default();
    let id = b.open_session(TransportInfo::default(), 0).expect("s");
    b.transport_closed(id).expect("open");
    assert_eq!(
        b.handle_read(id, b"x", 0),
        Err(HostError::UnknownSession(id))
    );
    assert_eq!(b.transport_closed(id), Err(HostError::UnknownSession(id)));
    assert!(b.poll_transmit(id).is_none());
    // Still usable.
    assert!(b.open_session(TransportInfo::default(), 0).is_ok());
}

// --- Heart-beats and the timer -----------------------------------------------------------

#[test]
fn heart_beats_are_sent_and_silence_is_a_timeout() {
    let mut h = Host::new(Config {
        heart_beat: (1_000, 1_000),
        ..Config::default()
    });
    let c = h.open();
    h.send(
        c,
        "CONNECT",
        &[("accept-version", "1.2"), ("heart-beat", "1000,1000")],
        "",
    );
    assert_eq!(h.take(c)[0].command(), Command::Connected);
    assert_eq!(h.broker.poll_timeout(), Some(1_000), "next heart-beat due");
    h.advance(1_000);
    assert_eq!(h.clients[&c].heartbeats, 1);
    // Client heart-beats keep it alive past the grace.
    h.advance(900);
    h.feed(c, b"\n");
    h.advance(1_500);
    assert!(closed(&h.take_events()).is_empty());
    // Silence for 2 x 1000 ms ends the session.
    h.advance(600);
    let ev = h.take_events();
    assert_eq!(closed(&ev), vec![CloseReason::HeartbeatTimeout]);
    assert_eq!(h.broker.stats().heartbeat_timeouts, 1);
    assert_eq!(h.broker.stats().frames_in.heartbeat, 1);
}

#[test]
fn late_wake_up_sends_overdue_heart_beat_first() {
    let mut h = Host::new(Config {
        heart_beat: (1_000, 0),
        ..Config::default()
    });
    let c = h.open();
    h.send(
        c,
        "CONNECT",
        &[("accept-version", "1.2"), ("heart-beat", "0,1000")],
        "",
    );
    h.take(c);
    h.advance(10_000);
    assert_eq!(h.clients[&c].heartbeats, 1);
    assert!(closed(&h.take_events()).is_empty());
    assert_eq!(h.broker.poll_timeout(), Some(11_000));
}

#[test]
fn connect_timeout() {
    let mut h = Host::new(Config {
        connect_timeout_ms: 500,
        ..Config::default()
    });
    let c = h.open();
    assert_eq!(h.broker.poll_timeout(), Some(500));
    h.advance(499);
    assert!(closed(&h.take_events()).is_empty());
    h.advance(1);
    assert!(matches!(
        closed(&h.take_events())[..],
        [CloseReason::ProtocolError(_)]
    ));
    let _ = c;
}

#[test]
fn one_timer_covers_every_session() {
    let mut h = Host::new(Config {
        heart_beat: (1_000, 0),
        ..Config::default()
    });
    let a = h.open();
    h.send(
        a,
        "CONNECT",
        &[("accept-version", "1.2"), ("heart-beat", "0,3000")],
        "",
    );
    h.now = 100;
    let b = h.open();
    h.send(
        b,
        "CONNECT",
        &[("accept-version", "1.2"), ("heart-beat", "0,1000")],
        "",
    );
    assert_eq!(h.broker.poll_timeout(), Some(1_100));
    h.advance(1_000);
    assert_eq!(h.broker.poll_timeout(), Some(2_100));
    h.advance(1_000);
    h.advance(1_000);
    assert_eq!(h.clients[&a].heartbeats, 1);
    assert_eq!(h.clients[&b].heartbeats, 3);
}

// --- Stats -------------------------------------------------------------------------------

#[test]
fn stats_snapshot_counts_frames_and_sessions() {
    let mut h = Host::new(Config::default());
    let p = h.connect(None);
    let c = h.connect(None);
    h.subscribe(c, "0", "/topic/t", "auto");
    h.publish(p, "/topic/t", "x");
    h.publish(p, "/queue/q", "y");
    let st = h.broker.stats();
    assert_eq!(
        (
            st.sessions_current,
            st.sessions_total,
            st.sessions_connected
        ),
        (2, 2, 2)
    );
    assert_eq!(st.frames_in.connect, 2);
    assert_eq!(st.frames_in.subscribe, 1);
    assert_eq!(st.frames_in.send, 2);
    assert_eq!(st.frames_out.connected, 2);
    assert_eq!(st.frames_out.message, 1);
    assert_eq!(st.messages_published, 2);
    assert_eq!(st.topic_subscriptions, 1);
    assert_eq!(st.queues.len(), 1);
    assert_eq!(st.queues[0].depth, 1);
    let j = st.to_json();
    assert!(j.contains("\"sessions_current\":2"));
    assert!(j.contains("\"queues\":[{\"destination\":\"/queue/q\",\"depth\":1"));
    h.broker.transport_closed(p).expect("open");
    assert_eq!(h.broker.stats().sessions_current, 1);
}

#[test]
fn client_mode_nack_is_cumulative_and_redelivers_in_order() {
    let mut h = Host::new(Config::default());
    let p = h.connect(None);
    let c = h.connect(None);
    h.subscribe(c, "0", "/queue/q", "client");
    for b in ["a", "b", "c"] {
        h.publish(p, "/queue/q", b);
    }
    let ids = ack_ids(&h.take(c));
    h.send(c, "NACK", &[("id", &ids[1])], "");
    // a and b come back (the only consumer), in order, redelivered; c stays owned.
    let f = h.take(c);
    let m = msgs(&f);
    assert_eq!(
        m.iter().map(|m| &m.body()[..]).collect::<Vec<_>>(),
        vec![b"a", b"b"]
    );
    assert!(m.iter().all(|m| m.header("redelivered") == Some("true")));
    assert_eq!(h.broker.stats().queues[0].unacked, 3);
}

#[test]
fn topic_subscriber_over_max_unacked_is_a_slow_consumer() {
    let mut h = Host::new(Config {
        max_unacked_per_subscription: 2,
        ..Config::default()
    });
    let p = h.connect(None);
    let c = h.connect(None);
    h.subscribe(c, "0", "/topic/t", "client");
    for _ in 0..3 {
        h.publish(p, "/topic/t", "x");
    }
    assert_eq!(h.broker.stats().slow_consumer_disconnects, 1);
    let ev = h.take_events();
    assert_eq!(closed(&ev), vec![CloseReason::SlowConsumer]);
}

#[test]
fn destination_length_is_bounded() {
    let mut h = Host::new(Config {
        max_destination_len: 16,
        ..Config::default()
    });
    let c = h.connect(None);
    h.subscribe(c, "0", "/topic/aaaaaaaaaaaaaaaaaaaa", "auto");
    let f = h.take(c);
    assert!(
        f[0].header("message")
            .unwrap_or("")
            .contains("invalid destination")
    );
    assert!(matches!(
        h.broker.publish("/topic/aaaaaaaaaaaaaaaaaaaa", &[], "x"),
        Err(PublishError::InvalidDestination(_))
    ));
}

#[test]
fn stomp_1_0_client_gets_unescaped_headers_and_no_heart_beats() {
    let mut h = Host::new(Config::default());
    let p = h.connect(None);
    let c = h.open();
    h.send(c, "CONNECT", &[], "");
    let f = h.take(c);
    assert_eq!(f[0].header("version"), Some("1.0"));
    // 1.0 SUBSCRIBE without id: the destination is the id.
    h.send(c, "SUBSCRIBE", &[("destination", "/topic/a")], "");
    h.send(
        p,
        "SEND",
        &[("destination", "/topic/a"), ("k", "a\\cb")],
        "x",
    );
    let raw = String::from_utf8_lossy(&h.clients[&c].raw).into_owned();
    assert!(raw.contains("\nk:a:b\n"), "1.0 does not escape: {raw}");
    assert!(raw.contains("\nsubscription:/topic/a\n"));
    assert_eq!(
        h.broker.poll_timeout(),
        None,
        "no heart-beats, no CONNECT pending"
    );
}

#[test]
fn unsubscribe_stops_delivery_and_closing_frees_every_subscription() {
    let mut h = Host::new(Config::default());
    let p = h.connect(None);
    let c = h.connect(None);
    h.subscribe(c, "0", "/topic/a", "auto");
    h.subscribe(c, "1", "/topic/**", "auto");
    h.subscribe(c, "2", "/queue/q", "auto");
    assert_eq!(h.broker.stats().subscriptions, 3);
    h.send(c, "UNSUBSCRIBE", &[("id", "1")], "");
    h.publish(p, "/topic/a", "x");
    assert_eq!(
        h.bodies(c),
        vec!["x"],
        "only subscription 0 remains on /topic/a"
    );
    h.broker.transport_closed(c).expect("open");
    let st = h.broker.stats();
    assert_eq!((st.subscriptions, st.topic_subscriptions), (0, 0));
    assert!(
        st.queues.is_empty(),
        "an empty queue with no consumer is dropped"
    );
    assert_eq!(st.messages_unrouted, 0);
    h.publish(p, "/topic/a", "y");
    assert_eq!(h.broker.stats().messages_unrouted, 1);
}

#[test]
fn a_message_that_cannot_fit_any_output_bound_is_refused() {
    let mut h = Host::new(Config {
        max_output_bytes: 1_000,
        ..Config::default()
    });
    let p = h.connect(None);
    let c = h.connect(None);
    h.subscribe(c, "0", "/queue/q", "auto");
    let big = "x".repeat(600);
    assert_eq!(
        h.broker.publish("/queue/q", &[], big.clone()),
        Err(PublishError::TooLarge(600))
    );
    h.send(
        p,
        "SEND",
        &[("destination", "/queue/q"), ("receipt", "r")],
        &big,
    );
    let f = h.take(p);
    assert_eq!(f[0].command(), Command::Error);
    assert_eq!(f[0].header("receipt-id"), Some("r"));
    assert_eq!(
        h.broker.stats().slow_consumer_disconnects,
        0,
        "the consumer is untouched"
    );
}
