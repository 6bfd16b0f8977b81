//! The stacked connection: handshake (RFC 6455 section 4), WebSocket (section 5), STOMP bytes;
//! raw STOMP; the client side; split invariance; an in-memory pair with the broker.
#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]

use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use stompbox::stomp::client::{
    ClientConfig, ClientEvent as StompEvent, MessageEvent, SendOptions, SubscribeOptions,
};
use stompbox::stomp::{HeartBeat, Version};
use stompbox::upgrade::{DeflateOffer, DeflateParams, DeflatePolicy};
use stompbox::ws::{CloseCode, Connection as WsConnection, Event as WsEvent, MessageKind};
use stompbox::{
    Broker, ClientConnection, ClientEvent, ConnectionConfig, Route, ServerConnection, ServerEvent,
    broker,
};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn config() -> Arc<ConnectionConfig> {
    Arc::new(ConnectionConfig::default())
}

fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

fn drain_out(c: &mut ServerConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = c.poll_transmit() {
        out.extend_from_slice(&b);
    }
    out
}

fn events(c: &mut ServerConnection) -> Vec<ServerEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Masked client frames for `messages`, as a browser would send them.
fn client_frames(messages: &[(&[u8], bool)]) -> Vec<u8> {
    let mut ws = WsConnection::client(stompbox::ws::Config::default(), || [9, 8, 7, 6]);
    for (m, text) in messages {
        let kind = if *text {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        ws.send(kind, m).unwrap();
    }
    let mut out = Vec::new();
    while let Some(b) = ws.poll_transmit() {
        out.extend_from_slice(&b);
    }
    out
}

/// Decodes server frames with a client-role connection.
fn decode_server_output(bytes: &[u8]) -> Vec<WsEvent> {
    let mut ws = WsConnection::client(stompbox::ws::Config::default(), || [0; 4]);
    let _ = ws.handle_read(bytes);
    std::iter::from_fn(|| ws.poll_event()).collect()
}

fn split_response(out: &[u8]) -> (String, Vec<u8>) {
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    (
        String::from_utf8(out[..end].to_vec()).unwrap(),
        out[end..].to_vec(),
    )
}

// RFC 6455 section 4.2.2: the 101, the accept key, the subprotocol of our preference.
#[test]
fn upgrade_picks_our_preferred_stomp_subprotocol() {
    let cases: &[(&str, Option<&str>)] = &[
        (
            "Sec-WebSocket-Protocol: v10.stomp, v12.stomp, v11.stomp\r\n",
            Some("v12.stomp"),
        ),
        (
            "Sec-WebSocket-Protocol: v11.stomp\r\nSec-WebSocket-Protocol: v10.stomp\r\n",
            Some("v11.stomp"),
        ),
        ("Sec-WebSocket-Protocol: mqtt\r\n", None),
        ("", None),
    ];
    for (extra, want) in cases {
        let mut c = ServerConnection::websocket(&config(), 0);
        c.handle_read(upgrade_request("/ws", extra).as_bytes());
        let ev = events(&mut c);
        assert_eq!(
            ev,
            vec![ServerEvent::Open(Route::Stomp {
                subprotocol: want.map(str::to_owned)
            })],
            "{extra:?}"
        );
        let (head, rest) = split_response(&drain_out(&mut c));
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
        match want {
            Some(p) => assert!(
                head.contains(&format!("Sec-WebSocket-Protocol: {p}")),
                "{head}"
            ),
            None => assert!(!head.contains("Sec-WebSocket-Protocol"), "{head}"),
        }
        assert!(rest.is_empty());
        assert!(c.was_open() && !c.is_handshaking() && !c.is_finished());
    }
}

#[test]
fn plain_http_is_reported_and_answered_then_closed() {
    let mut c = ServerConnection::websocket(&config(), 0);
    c.handle_read(b"GET /stats?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n");
    let ev = events(&mut c);
    let [ServerEvent::Http(req)] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!((req.method.as_str(), req.path.as_str()), ("GET", "/stats"));
    assert_eq!(req.query.as_deref(), Some("x=1"));
    assert_eq!(req.header("accept"), Some("*/*"));
    c.respond(200, "application/json", b"{}", false);
    let out = String::from_utf8(drain_out(&mut c)).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(
        out.contains("Content-Length: 2\r\n") && out.ends_with("\r\n\r\n{}"),
        "{out}"
    );
    assert!(c.is_finished());
    assert!(!c.was_open());
}

// Every rejection answers with its status and finishes the connection.
#[test]
fn rejections_table() {
    let cases: Vec<(Vec<u8>, Arc<ConnectionConfig>, &str)> = vec![
        (
            b"\x16\x03\x01garbage\r\n\r\n".to_vec(),
            config(),
            "HTTP/1.1 400",
        ),
        (
            upgrade_request("/nope", "").into_bytes(),
            config(),
            "HTTP/1.1 404",
        ),
        (
            upgrade_request("/ws", "Origin: http://evil.example\r\n").into_bytes(),
            Arc::new(ConnectionConfig {
                allowed_origins: vec!["http://good.example".into()],
                ..ConnectionConfig::default()
            }),
            "HTTP/1.1 403",
        ),
        (
            upgrade_request("/ws", "")
                .replace("Version: 13", "Version: 8")
                .into_bytes(),
            config(),
            "HTTP/1.1 426",
        ),
        (
            upgrade_request("/ws", "")
                .replace("GET", "POST")
                .into_bytes(),
            config(),
            "HTTP/1.1 405",
        ),
    ];
    for (input, cfg, want) in cases {
        let mut c = ServerConnection::websocket(&cfg, 0);
        c.handle_read(&input);
        let ev = events(&mut c);
        assert!(
            matches!(ev.last(), Some(ServerEvent::Rejected(_))),
            "{want}: {ev:?}"
        );
        let out = String::from_utf8_lossy(&drain_out(&mut c)).into_owned();
        assert!(out.starts_with(want), "{want}: {out}");
        assert!(c.is_finished(), "{want}");
        // Input after a rejection is ignored.
        c.handle_read(b"more");
        assert!(events(&mut c).is_empty());
    }
}

#[test]
fn allowed_origin_is_accepted() {
    let cfg = Arc::new(ConnectionConfig {
        allowed_origins: vec!["http://good.example".into()],
        ..ConnectionConfig::default()
    });
    let mut c = ServerConnection::websocket(&cfg, 0);
    c.handle_read(upgrade_request("/ws", "Origin: http://GOOD.example\r\n").as_bytes());
    assert!(matches!(events(&mut c)[..], [ServerEvent::Open(_)]));
}

#[test]
fn half_sent_head_times_out_with_408() {
    let mut c = ServerConnection::websocket(&config(), 1_000);
    c.handle_read(b"GET /ws HTTP/1.1\r\nHost: x\r\n");
    assert_eq!(c.poll_timeout(), Some(11_000));
    c.handle_timeout(10_999);
    assert!(events(&mut c).is_empty());
    c.handle_timeout(11_000);
    assert!(matches!(events(&mut c)[..], [ServerEvent::Rejected(_)]));
    assert!(
        String::from_utf8(drain_out(&mut c))
            .unwrap()
            .starts_with("HTTP/1.1 408")
    );
    assert!(c.is_finished());
}

// The bytes behind the head are WebSocket frames and are never dropped.
#[test]
fn bytes_behind_the_head_are_kept() {
    let mut input = upgrade_request("/ws", "Sec-WebSocket-Protocol: v12.stomp\r\n").into_bytes();
    input.extend(client_frames(&[(
        b"CONNECT\naccept-version:1.2\n\n\0",
        true,
    )]));
    let mut c = ServerConnection::websocket(&config(), 0);
    c.handle_read(&input);
    let ev = events(&mut c);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(
        ev[1],
        ServerEvent::Stomp(Bytes::from_static(b"CONNECT\naccept-version:1.2\n\n\0"))
    );
}

#[test]
fn broker_frames_go_out_as_one_message_each_text_or_binary() {
    let mut c = ServerConnection::websocket(&config(), 0);
    c.handle_read(upgrade_request("/ws", "").as_bytes());
    let _ = events(&mut c);
    let (_, _) = split_response(&drain_out(&mut c));
    c.send_stomp(&[b"MESSAGE\ndestination:/t\n\n", b"hi", b"\0"]);
    c.send_stomp(&[b"MESSAGE\ndestination:/t\n\n", &[0xff, 0xfe], b"\0"]);
    c.send_stomp_bytes(Bytes::from_static(b"\n"));
    let ev = decode_server_output(&drain_out(&mut c));
    assert_eq!(
        ev,
        vec![
            WsEvent::Text(Bytes::from_static(b"MESSAGE\ndestination:/t\n\nhi\0")),
            WsEvent::Binary(Bytes::from_static(b"MESSAGE\ndestination:/t\n\n\xff\xfe\0")),
            WsEvent::Text(Bytes::from_static(b"\n")),
        ]
    );
}

// RFC 6455 section 5.1: a server must close on an unmasked frame (1002).
#[test]
fn unmasked_client_frame_is_a_protocol_error_with_close_1002() {
    let mut c = ServerConnection::websocket(&config(), 0);
    c.handle_read(upgrade_request("/ws", "").as_bytes());
    let _ = events(&mut c);
    let _ = drain_out(&mut c);
    c.handle_read(&[0x81, 0x02, b'h', b'i']);
    let ev = events(&mut c);
    assert!(
        ev.iter().any(|e| matches!(e, ServerEvent::Error(_))),
        "{ev:?}"
    );
    let out = decode_server_output(&drain_out(&mut c));
    assert!(
        out.iter()
            .any(|e| matches!(e, WsEvent::Closed(i) if i.code == CloseCode::PROTOCOL_ERROR)),
        "{out:?}"
    );
    assert!(c.is_finished());
}

#[test]
fn close_codes_for_finish_refuse_and_shutdown() {
    for (action, code) in [
        ("finish", CloseCode::NORMAL),
        ("refuse", CloseCode(1013)),
        ("shutdown", CloseCode::GOING_AWAY),
    ] {
        let mut c = ServerConnection::websocket(&config(), 0);
        c.handle_read(upgrade_request("/ws", "").as_bytes());
        let _ = events(&mut c);
        let _ = drain_out(&mut c);
        match action {
            "finish" => c.finish(),
            "refuse" => c.refuse("busy"),
            _ => c.shutdown("server stopping"),
        }
        let out = decode_server_output(&drain_out(&mut c));
        assert!(
            out.iter()
                .any(|e| matches!(e, WsEvent::Closed(i) if i.code == code)),
            "{action}: {out:?}"
        );
        // The peer's Close completes the handshake; then the server closes TCP.
        assert!(!c.is_finished(), "{action}");
        let mut ws = WsConnection::client(stompbox::ws::Config::default(), || [1; 4]);
        ws.close(Some(code), "").unwrap();
        c.handle_read(&ws.poll_transmit().unwrap());
        let _ = drain_out(&mut c);
        assert!(c.is_finished(), "{action}");
        assert!(matches!(
            events(&mut c).last(),
            Some(ServerEvent::Closed(_))
        ));
    }
}

#[test]
fn shutdown_during_handshake_answers_503() {
    let mut c = ServerConnection::websocket(&config(), 0);
    c.handle_read(b"GET / HT");
    c.shutdown("stopping");
    assert!(
        String::from_utf8(drain_out(&mut c))
            .unwrap()
            .starts_with("HTTP/1.1 503")
    );
    assert!(c.is_finished());
}

#[test]
fn raw_stomp_passes_bytes_and_answers_errors_in_stomp() {
    let mut c = ServerConnection::raw_stomp(&config());
    assert!(c.was_open());
    c.handle_read(b"CONNECT\n\n\0");
    assert_eq!(
        events(&mut c),
        vec![ServerEvent::Stomp(Bytes::from_static(b"CONNECT\n\n\0"))]
    );
    c.send_stomp(&[b"CONNECTED\n", b"", b"\n\0"]);
    assert_eq!(drain_out(&mut c), b"CONNECTED\n\n\0");
    c.shutdown("server: shutting down");
    assert_eq!(
        drain_out(&mut c),
        b"ERROR\nmessage:server  shutting down\n\n\0"
    );
    assert!(c.is_finished());
    // After the end, nothing more goes out.
    c.send_stomp(&[b"MESSAGE\n\n\0"]);
    assert!(c.poll_transmit().is_none());
}

#[test]
fn echo_route_echoes_text_and_binary_before_a_close() {
    let cfg = Arc::new(ConnectionConfig {
        echo_path: Some("/echo".into()),
        ..ConnectionConfig::default()
    });
    let mut c = ServerConnection::websocket(&cfg, 0);
    let mut input = upgrade_request("/echo", "").into_bytes();
    input.extend(client_frames(&[(b"abc", true), (&[0, 1, 2], false)]));
    // A protocol violation in the same read: the echoes still leave before the Close.
    input.extend_from_slice(&[0x81, 0x01, b'x']);
    c.handle_read(&input);
    let ev = events(&mut c);
    assert_eq!(ev[0], ServerEvent::Open(Route::Echo));
    let (_, rest) = split_response(&drain_out(&mut c));
    let out = decode_server_output(&rest);
    assert_eq!(out[0], WsEvent::Text(Bytes::from_static(b"abc")));
    assert_eq!(out[1], WsEvent::Binary(Bytes::from_static(&[0, 1, 2])));
    assert!(matches!(out[2], WsEvent::Closed(_)));
}

fn stream_events(input: &[u8], splits: &[usize]) -> (Vec<ServerEvent>, Vec<u8>) {
    let mut c = ServerConnection::websocket(&config(), 0);
    let mut events = Vec::new();
    let mut stomp = Vec::new();
    let mut at = 0;
    let mut cuts: Vec<usize> = splits.iter().map(|s| s % (input.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.push(input.len());
    for cut in cuts {
        if cut < at {
            continue;
        }
        c.handle_read(&input[at..cut]);
        at = cut;
        while let Some(e) = c.poll_event() {
            match e {
                ServerEvent::Stomp(b) => stomp.extend_from_slice(&b),
                other => events.push(other),
            }
        }
    }
    (events, stomp)
}

proptest! {
    // Input split at arbitrary points gives the same events and STOMP bytes as fed whole.
    #[test]
    fn split_invariance(
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..6),
        splits in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut input = upgrade_request("/ws", "Sec-WebSocket-Protocol: v12.stomp\r\n").into_bytes();
        let msgs: Vec<(&[u8], bool)> = bodies.iter().map(|b| (&b[..], false)).collect();
        input.extend(client_frames(&msgs));
        let whole = stream_events(&input, &[]);
        let split = stream_events(&input, &splits);
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(whole.1, bodies.concat());
    }

    // Arbitrary bytes never panic, and the output stays bounded.
    #[test]
    fn arbitrary_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        for mut c in [ServerConnection::websocket(&config(), 0), ServerConnection::raw_stomp(&config())] {
            c.handle_read(&data);
            let _ = events(&mut c);
            c.handle_timeout(u64::MAX / 2);
            let out = drain_out(&mut c);
            prop_assert!(out.len() < 4096);
        }
    }
}

/// Drives a client and the server side (with a broker) until quiet.
struct Pair {
    /// Bytes on the wire, client to server and server to client.
    wire: (usize, usize),
    broker: Broker,
    clients: Vec<(
        ClientConnection,
        ServerConnection,
        Option<stompbox::SessionId>,
    )>,
}

impl Pair {
    fn new(n: usize) -> Self {
        Self::with_deflate(n, &config(), None)
    }

    /// `n` clients, each offering `offer` (permessage-deflate) to servers configured by `cfg`.
    fn with_deflate(n: usize, cfg: &Arc<ConnectionConfig>, offer: Option<DeflateOffer>) -> Self {
        let clients = (0..n)
            .map(|i| {
                let mut nonce = [0u8; 16];
                nonce[0] = i as u8;
                (
                    ClientConnection::websocket_with_deflate(
                        "localhost",
                        "/ws",
                        nonce,
                        || [3, 1, 4, 1],
                        ClientConfig {
                            login: Some(format!("user{i}")),
                            ..ClientConfig::default()
                        },
                        offer,
                    ),
                    ServerConnection::websocket(cfg, 0),
                    None,
                )
            })
            .collect();
        Self {
            wire: (0, 0),
            broker: Broker::new(broker::Config::default()),
            clients,
        }
    }

    fn run(&mut self) -> Vec<Vec<ClientEvent>> {
        let mut got: Vec<Vec<ClientEvent>> = vec![Vec::new(); self.clients.len()];
        for _ in 0..20 {
            for (client, server, session) in &mut self.clients {
                while let Some(b) = client.poll_transmit() {
                    self.wire.0 += b.len();
                    server.handle_read(&b);
                }
                while let Some(e) = server.poll_event() {
                    match e {
                        ServerEvent::Open(_) => {
                            *session = Some(
                                self.broker
                                    .open_session(broker::TransportInfo::default(), 0)
                                    .unwrap(),
                            );
                        }
                        ServerEvent::Stomp(b) => {
                            self.broker.handle_read(session.unwrap(), &b, 0).unwrap();
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
            while let Some(id) = self.broker.poll_ready() {
                let (_, server, _) = self
                    .clients
                    .iter_mut()
                    .find(|(_, _, s)| *s == Some(id))
                    .unwrap();
                while let Some(t) = self.broker.poll_transmit(id) {
                    server.send_stomp(&t.parts());
                }
            }
            for (i, (client, server, _)) in self.clients.iter_mut().enumerate() {
                while let Some(b) = server.poll_transmit() {
                    self.wire.1 += b.len();
                    client.handle_read(&b);
                }
                got[i].extend(std::iter::from_fn(|| client.poll_event()));
            }
        }
        got
    }
}

fn messages(events: &[ClientEvent]) -> Vec<&MessageEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Stomp(StompEvent::Message(m)) => Some(m),
            _ => None,
        })
        .collect()
}

fn receipts(events: &[ClientEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Stomp(StompEvent::Receipt { receipt_id }) => Some(receipt_id.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn two_clients_in_memory_publish_and_subscribe_through_the_broker() {
    let mut pair = Pair::new(2);
    let got = pair.run();
    for g in &got {
        assert!(
            matches!(g[0], ClientEvent::Open { ref subprotocol } if subprotocol.as_deref() == Some("v12.stomp"))
        );
        assert!(
            g.iter().any(|e| matches!(e, ClientEvent::Stomp(StompEvent::Connected { version, .. }) if *version == Version::V1_2)),
            "{g:?}"
        );
    }
    let sub = SubscribeOptions {
        receipt: Some("sub"),
        ..SubscribeOptions::default()
    };
    pair.clients[1]
        .0
        .session()
        .subscribe("/topic/news", &sub)
        .unwrap();
    assert_eq!(receipts(&pair.run()[1]), vec!["sub"]);
    let text = SendOptions {
        content_type: Some("text/plain"),
        ..SendOptions::default()
    };
    let binary = SendOptions {
        content_type: Some("application/octet-stream"),
        receipt: Some("sent"),
        ..SendOptions::default()
    };
    let s0 = pair.clients[0].0.session();
    s0.send("/topic/news", "héllo", &text).unwrap();
    s0.send("/topic/news", vec![0u8, 159, 146, 150], &binary)
        .unwrap();
    let got = pair.run();
    let msgs = messages(&got[1]);
    assert_eq!(msgs.len(), 2, "{:?}", got[1]);
    assert_eq!(&msgs[0].body()[..], "héllo".as_bytes());
    assert_eq!(&msgs[1].body()[..], &[0, 159, 146, 150]);
    assert!(messages(&got[0]).is_empty());
    assert_eq!(receipts(&got[0]), vec!["sent"]);
    // DISCONNECT with a receipt: the session closes gracefully.
    pair.clients[1].0.session().disconnect(Some("bye")).unwrap();
    let got = pair.run();
    assert_eq!(receipts(&got[1]), vec!["bye"]);
    assert!(
        got[1]
            .iter()
            .any(|e| matches!(e, ClientEvent::Stomp(StompEvent::Closed(_))))
    );
}

#[test]
fn client_reports_a_refused_handshake() {
    let mut client = ClientConnection::websocket(
        "localhost",
        "/ws",
        [1; 16],
        || [0; 4],
        ClientConfig::default(),
    );
    let _ = client.poll_transmit();
    client.handle_read(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    let ev: Vec<_> = std::iter::from_fn(|| client.poll_event()).collect();
    assert!(
        matches!(
            ev[..],
            [ClientEvent::Error(stompbox::ClientError::Handshake(_))]
        ),
        "{ev:?}"
    );
    assert!(client.should_close_transport());
}

#[test]
fn raw_client_connects_and_heartbeats_on_time() {
    let mut client = ClientConnection::raw_stomp(ClientConfig {
        host: "localhost".into(),
        heart_beat: HeartBeat {
            send_ms: 100,
            receive_ms: 100,
        },
        ..ClientConfig::default()
    });
    let connect = client.poll_transmit().unwrap();
    assert!(
        connect.starts_with(b"CONNECT\naccept-version:1.0,1.1,1.2\nhost:localhost\n"),
        "{connect:?}"
    );
    client.handle_read(b"CONNECTED\nversion:1.1\nheart-beat:100,100\n\n\0\n\nMESSAGE\ndestination:/a\nmessage-id:1\nsubscription:0\n\nx\0");
    let ev: Vec<_> = std::iter::from_fn(|| client.poll_event()).collect();
    assert!(ev.iter().any(|e| matches!(e, ClientEvent::Stomp(StompEvent::Connected { version, .. }) if *version == Version::V1_1)), "{ev:?}");
    assert_eq!(messages(&ev).len(), 1);
    // Time is the host's: a heart-beat EOL leaves when due.
    let due = client.poll_timeout().unwrap();
    client.handle_timeout(due);
    assert_eq!(client.poll_transmit().as_deref(), Some(&b"\n"[..]));
}

// RFC 7692 section 7: a client offering permessage-deflate gets it (per the server's policy),
// and STOMP messages flow compressed both ways; without an offer or with deflate off, plain.
#[test]
fn permessage_deflate_is_negotiated_and_stomp_flows_compressed_both_ways() {
    let bounded = DeflatePolicy {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflatePolicy::default()
    };
    let both = |nct: bool| DeflateParams {
        server_no_context_takeover: nct,
        client_no_context_takeover: nct,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let browser = Some(DeflateOffer::default());
    let cases: &[(
        Option<DeflatePolicy>,
        Option<DeflateOffer>,
        Option<DeflateParams>,
    )] = &[
        (Some(DeflatePolicy::default()), browser, Some(both(false))),
        (Some(bounded), browser, Some(both(true))),
        (None, browser, None),
        (Some(DeflatePolicy::default()), None, None),
    ];
    // STOMP bodies are small repetitive text: 4 KiB of it compresses far below its size.
    let body = "{\"user\":\"alice\",\"text\":\"hello, world\"} ".repeat(100);
    for (policy, offer, want) in cases {
        let cfg = Arc::new(ConnectionConfig {
            deflate: *policy,
            ..ConnectionConfig::default()
        });
        let mut pair = Pair::with_deflate(2, &cfg, *offer);
        let got = pair.run();
        for (i, (client, server, _)) in pair.clients.iter().enumerate() {
            assert_eq!(server.deflate(), *want, "{policy:?} {offer:?}");
            assert_eq!(client.deflate(), *want, "{policy:?} {offer:?}");
            assert_eq!(server.deflate_memory() > 0, want.is_some());
            assert!(
                got[i]
                    .iter()
                    .any(|e| matches!(e, ClientEvent::Stomp(StompEvent::Connected { .. }))),
                "{:?}",
                got[i]
            );
        }
        for c in 0..2 {
            let sub = SubscribeOptions {
                receipt: Some("sub"),
                ..SubscribeOptions::default()
            };
            pair.clients[c]
                .0
                .session()
                .subscribe("/topic/chat", &sub)
                .unwrap();
        }
        pair.run();
        let opts = SendOptions {
            content_type: Some("application/json"),
            ..SendOptions::default()
        };
        // Both ways: client 0 sends, both receive; then client 1 sends, both receive.
        for sender in 0..2 {
            let before = pair.wire;
            for _ in 0..3 {
                pair.clients[sender]
                    .0
                    .session()
                    .send("/topic/chat", body.clone(), &opts)
                    .unwrap();
            }
            let got = pair.run();
            for g in &got {
                let msgs = messages(g);
                assert_eq!(msgs.len(), 3, "{policy:?} {offer:?}: {g:?}");
                assert!(msgs.iter().all(|m| m.body()[..] == *body.as_bytes()));
            }
            let up = pair.wire.0 - before.0;
            let down = pair.wire.1 - before.1;
            if want.is_some() {
                assert!(
                    up < body.len(),
                    "{policy:?}: {up} bytes up for 3 x {}",
                    body.len()
                );
                assert!(down < 2 * body.len(), "{policy:?}: {down} bytes down");
            } else {
                assert!(up > 3 * body.len(), "{policy:?} {offer:?}: {up} bytes up");
                assert!(
                    down > 6 * body.len(),
                    "{policy:?} {offer:?}: {down} bytes down"
                );
            }
        }
    }
}

#[test]
fn server_answers_the_deflate_offer_in_the_101() {
    let mut c = ServerConnection::websocket(&config(), 0);
    c.handle_read(
        upgrade_request(
            "/ws",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
        )
        .as_bytes(),
    );
    assert!(matches!(events(&mut c)[..], [ServerEvent::Open(_)]));
    let (head, _) = split_response(&drain_out(&mut c));
    assert!(
        head.contains("Sec-WebSocket-Extensions: permessage-deflate"),
        "{head}"
    );
    // A frame with RSV1 is now a compressed message, not a protocol error.
    let mut ws = WsConnection::client(
        stompbox::ws::Config::default().deflate(Some(stompbox::ws::DeflateConfig::default())),
        || [1, 2, 3, 4],
    );
    ws.send(
        MessageKind::Text,
        "SEND\ndestination:/topic/a\n\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\0"
            .as_bytes(),
    )
    .unwrap();
    let frame: Vec<u8> = std::iter::from_fn(|| ws.poll_transmit())
        .flatten()
        .collect();
    assert_ne!(frame[0] & 0x40, 0, "RSV1 set on the compressed frame");
    c.handle_read(&frame);
    let got: Vec<u8> = events(&mut c)
        .into_iter()
        .flat_map(|e| match e {
            ServerEvent::Stomp(b) => b.to_vec(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert!(
        got.starts_with(b"SEND\ndestination:/topic/a\n\nxxx"),
        "{got:?}"
    );
}
