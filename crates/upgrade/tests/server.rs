//! Server side, by RFC 6455 section: §4.2.1 (reading the request), §4.2.2 (the response),
//! plus limits, plain HTTP and the state machine.
#![allow(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

use stompbox_upgrade::{
    Accept, Error, Extension, Incoming, Limits, Misuse, RequestError, ServerEvent, ServerHandshake,
    ServerState, Status, UpgradeRequest, parse_request,
};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The ~500-byte browser request the bench uses too.
const BROWSER: &[u8] = b"GET /stomp?token=abc HTTP/1.1\r\n\
Host: example.com:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: https://example.com\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: session=0123456789abcdef; theme=dark\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Protocol: v12.stomp, v11.stomp\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

fn request(lines: &[&str]) -> Vec<u8> {
    let mut s = String::new();
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// A minimal valid request with `extra` header lines.
fn valid_with(extra: &[&str]) -> Vec<u8> {
    let mut lines = vec![
        "GET /chat HTTP/1.1",
        "Host: server.example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ];
    lines.extend_from_slice(extra);
    request(&lines)
}

fn upgrade(buf: &[u8]) -> UpgradeRequest {
    match parse_request(buf, &Limits::default()) {
        Ok(Status::Complete((Incoming::Upgrade(r), _))) => r,
        other => panic!("expected an upgrade, got {other:?}"),
    }
}

fn rejection(buf: &[u8]) -> RequestError {
    match parse_request(buf, &Limits::default()) {
        Err(e) => e,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// RFC 6455 §1.3 / §4.2.2 item 5.4: the worked example, through the whole server path.
#[test]
fn rfc6455_1_3_opening_handshake_example() {
    let req = upgrade(&valid_with(&[
        "Origin: http://example.com",
        "Sec-WebSocket-Protocol: chat, superchat",
    ]));
    assert_eq!(req.key().as_str(), KEY);
    assert_eq!(req.accept_key().as_str(), ACCEPT);
    let mut out = Vec::new();
    let negotiated = req
        .accept(Accept::new().protocol(Some("chat")), &mut out)
        .unwrap();
    assert_eq!(negotiated.protocol.as_deref(), Some("chat"));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
    );
}

type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], RequestError, u16);

/// RFC 6455 §4.2.1: every requirement on the client's request, and its rejection status.
#[test]
fn rfc6455_4_2_1_rejections() {
    let base = [
        "Host: h",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ];
    // (request line, headers to drop by prefix, headers to add, expected error, status)
    let table: &[Case<'_>] = &[
        (
            "POST / HTTP/1.1",
            &[],
            &[],
            RequestError::MethodNotAllowed,
            405,
        ),
        (
            "get / HTTP/1.1",
            &[],
            &[],
            RequestError::MethodNotAllowed,
            405,
        ),
        ("GET / HTTP/1.0", &[], &[], RequestError::HttpVersion, 400),
        (
            "GET / HTTP/1.1",
            &["Host"],
            &[],
            RequestError::MissingHost,
            400,
        ),
        (
            "GET / HTTP/1.1",
            &[],
            &["Host: other"],
            RequestError::DuplicateHost,
            400,
        ),
        (
            "GET / HTTP/1.1",
            &["Upgrade"],
            &[],
            RequestError::MissingUpgrade,
            400,
        ),
        (
            "GET / HTTP/1.1",
            &["Upgrade"],
            &["Upgrade: h2c"],
            RequestError::MissingUpgrade,
            400,
        ),
        (
            "GET / HTTP/1.1",
            &["Connection"],
            &[],
            RequestError::MissingConnectionUpgrade,
            400,
        ),
        (
            "GET / HTTP/1.1",
            &["Connection"],
            &["Connection: keep-alive"],
            RequestError::MissingConnectionUpgrade,
            400,
        ),
        (
            "GET / HTTP/1.1",
            &["Sec-WebSocket-Key"],
            &[],
            RequestError::MissingKey,
            400,
        ),
        (
            "GET / HTTP/1.1",
            &[],
            &["Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA=="],
            RequestError::DuplicateKey,
            400,
        ),
        (
            "GET / HTTP/1.1",
            &["Sec-WebSocket-Key"],
            &["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ"],
            RequestError::InvalidKey,
            400,
        ),
        (
            "GET / HTTP/1.1",
            &["Sec-WebSocket-Key"],
            &["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSBzaXh0ZWVu"],
            RequestError::InvalidKey,
            400,
        ),
        (
            "GET / HTTP/1.1",
            &["Sec-WebSocket-Version"],
            &[],
            RequestError::MissingVersion,
            400,
        ),
        (
            "GET / HTTP/1.1",
            &["Sec-WebSocket-Version"],
            &["Sec-WebSocket-Version: 8"],
            RequestError::UnsupportedVersion,
            426,
        ),
        (
            "GET / HTTP/1.1",
            &[],
            &["Sec-WebSocket-Version: 8"],
            RequestError::UnsupportedVersion,
            426,
        ),
        (
            "GET / HTTP/1.1",
            &[],
            &["Sec-WebSocket-Protocol: chat, super chat"],
            RequestError::InvalidProtocols,
            400,
        ),
        (
            "GET / HTTP/1.1",
            &[],
            &["Sec-WebSocket-Extensions: permessage-deflate; x=\"a b\""],
            RequestError::InvalidExtensions,
            400,
        ),
    ];
    for (line, drop, add, want, status) in table {
        let mut lines = vec![*line];
        lines.extend(
            base.iter()
                .filter(|h| !drop.iter().any(|d| h.starts_with(&format!("{d}:")))),
        );
        lines.extend_from_slice(add);
        let got = rejection(&request(&lines));
        assert_eq!(got, *want, "case {line} -{drop:?} +{add:?}");
        assert_eq!(got.status(), *status, "status of {want:?}");
    }
}

/// A malformed head is a 400 carrying httparse's reason.
#[test]
fn malformed_heads_are_400() {
    let table: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", // a TLS ClientHello
        b"GET /a b HTTP/1.1\r\n\r\n",
    ];
    for input in table {
        let e = rejection(input);
        assert!(matches!(e, RequestError::Malformed(_)), "{input:?}: {e:?}");
        assert_eq!(e.status(), 400);
    }
}

/// Header quirks: odd case, token lists, tokens split over repeated headers, whitespace.
#[test]
fn header_quirks() {
    let ok: &[&[&str]] = &[
        &["HOST: h", "UPGRADE: WebSocket", "CONNECTION: UPGRADE"],
        &[
            "host: h",
            "upgrade: websocket",
            "connection: keep-alive, Upgrade",
        ],
        &[
            "Host: h",
            "Upgrade: websocket",
            "Connection: keep-alive",
            "Connection: Upgrade",
        ],
        &[
            "Host: h",
            "Upgrade: h2c",
            "Upgrade: websocket",
            "Connection: upgrade",
        ],
        &[
            "Host: h",
            "Upgrade: foo/2, websocket",
            "Connection: Upgrade,keep-alive",
        ],
        &["Host: h", "Upgrade:websocket", "Connection:\tUpgrade \t"],
    ];
    for headers in ok {
        let mut lines = vec!["GET /x HTTP/1.1"];
        lines.extend_from_slice(headers);
        lines.push("sec-websocket-key:   dGhlIHNhbXBsZSBub25jZQ==  ");
        lines.push("SEC-WEBSOCKET-VERSION: 13");
        let req = upgrade(&request(&lines));
        assert_eq!(req.accept_key().as_str(), ACCEPT, "{headers:?}");
        assert_eq!(req.host(), "h");
    }
    // HTTP/1.2 would be "or later": httparse only knows 1.0 and 1.1, so 1.1 is the floor.
    let req = upgrade(&valid_with(&[]));
    assert_eq!(req.head().minor_version(), 1);
}

/// §4.2.1 items 7, 8, 9: Origin, offered subprotocols over repeated headers, extensions.
#[test]
fn rfc6455_4_2_1_origin_protocols_extensions() {
    let req = upgrade(&valid_with(&[
        "Origin: https://example.com",
        "Sec-WebSocket-Protocol: v12.stomp, v11.stomp",
        "Sec-WebSocket-Protocol: v10.stomp",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo",
        "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=\"10\"",
        "Cookie: a=b",
    ]));
    assert_eq!(req.origin(), Some("https://example.com"));
    assert_eq!(
        req.protocols().collect::<Vec<_>>(),
        ["v12.stomp", "v11.stomp", "v10.stomp"]
    );
    assert_eq!(
        req.choose_protocol(&["v11.stomp", "v12.stomp"]),
        Some("v11.stomp")
    );
    assert_eq!(req.choose_protocol(&["mqtt"]), None);
    assert_eq!(
        req.extensions(),
        vec![
            Extension::new("permessage-deflate").with_param("client_max_window_bits", None),
            Extension::new("x-foo"),
            Extension::new("permessage-deflate").with_param("server_max_window_bits", Some("10")),
        ]
    );
    assert_eq!(req.head().header("COOKIE"), Some(&b"a=b"[..]));
    assert_eq!(req.head().headers().count(), 11);
    assert_eq!(req.path(), "/chat");
    assert_eq!(req.query(), None);

    let req = upgrade(&request(&[
        "GET /stomp?token=abc&x=1 HTTP/1.1",
        "Host: h",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]));
    assert_eq!(req.path(), "/stomp");
    assert_eq!(req.query(), Some("token=abc&x=1"));
    assert_eq!(req.origin(), None);
    assert_eq!(req.protocols().count(), 0);
    assert!(req.extensions().is_empty());
}

/// §4.2.2: the 101 with subprotocol, extensions and extra headers; host mistakes are typed.
#[test]
fn rfc6455_4_2_2_response() {
    let req = upgrade(&valid_with(&[
        "Sec-WebSocket-Protocol: v12.stomp",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    ]));
    let mut out = Vec::new();
    let pmd = Extension::new("permessage-deflate")
        .with_param("server_no_context_takeover", None)
        .with_param("client_max_window_bits", Some("12"));
    let n = req
        .accept(
            Accept::new()
                .protocol(Some("v12.stomp"))
                .extension(pmd.clone())
                .header("Set-Cookie", b"id=1; HttpOnly"),
            &mut out,
        )
        .unwrap();
    assert_eq!(n.protocol.as_deref(), Some("v12.stomp"));
    assert_eq!(n.extensions, vec![pmd]);
    assert_eq!(
        n.extension("PERMESSAGE-DEFLATE")
            .unwrap()
            .param("client_max_window_bits"),
        Some(Some("12"))
    );
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("\r\nSec-WebSocket-Protocol: v12.stomp\r\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=12\r\n"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("\r\nSet-Cookie: id=1; HttpOnly\r\n\r\n"),
        "{text}"
    );

    let table: &[(Accept<'_>, Misuse)] = &[
        (
            Accept::new().protocol(Some("v11.stomp")),
            Misuse::ProtocolNotOffered,
        ),
        (
            Accept::new().extension(Extension::new("x-other")),
            Misuse::ExtensionNotOffered,
        ),
        (
            Accept::new().extension(Extension::new("permessage-deflate").with_param("a b", None)),
            Misuse::InvalidHeader,
        ),
        (
            Accept::new().header("X-A", b"evil\r\nInjected: 1"),
            Misuse::InvalidHeader,
        ),
        (
            Accept::new().header("Bad Name", b"v"),
            Misuse::InvalidHeader,
        ),
        (
            Accept::new().header("sec-websocket-accept", b"v"),
            Misuse::ReservedHeader,
        ),
        (
            Accept::new().header("Connection", b"close"),
            Misuse::ReservedHeader,
        ),
    ];
    for (accept, want) in table {
        let mut out = Vec::new();
        assert_eq!(req.accept(accept.clone(), &mut out), Err(*want));
        assert!(out.is_empty(), "nothing is written on error");
    }
}

/// Every rejection writes its response: status line, the headers it needs, a body.
#[test]
fn rejection_responses() {
    let table: &[(RequestError, &str, &[&str])] = &[
        (
            RequestError::InvalidKey,
            "HTTP/1.1 400 Bad Request\r\n",
            &["Connection: close"],
        ),
        (
            RequestError::MethodNotAllowed,
            "HTTP/1.1 405 Method Not Allowed\r\n",
            &["Allow: GET"],
        ),
        (
            RequestError::UnsupportedVersion,
            "HTTP/1.1 426 Upgrade Required\r\n",
            &["Sec-WebSocket-Version: 13", "Upgrade: websocket"],
        ),
        (
            RequestError::HeadTooLarge,
            "HTTP/1.1 431 Request Header Fields Too Large\r\n",
            &[],
        ),
        (
            RequestError::TooManyHeaders,
            "HTTP/1.1 431 Request Header Fields Too Large\r\n",
            &[],
        ),
        (
            RequestError::ForbiddenOrigin,
            "HTTP/1.1 403 Forbidden\r\n",
            &[],
        ),
        (
            RequestError::Timeout,
            "HTTP/1.1 408 Request Timeout\r\n",
            &[],
        ),
    ];
    for (e, status_line, headers) in table {
        let mut out = Vec::new();
        e.write_response(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(status_line), "{text}");
        for h in *headers {
            assert!(
                text.contains(&format!("\r\n{h}\r\n")),
                "{e:?} lacks {h}: {text}"
            );
        }
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{text}"
        );
        assert_eq!(body, format!("{e}\n"));
    }
}

/// Limits: head bytes and header count are 431, whether the head is complete or not.
#[test]
fn limits_are_431() {
    let limits = Limits {
        max_head_bytes: 256,
        max_headers: 8,
        handshake_timeout_ms: None,
    };
    let long = format!("X-Long: {}", "a".repeat(300));
    let big = valid_with(&[&long]);
    assert_eq!(
        parse_request(&big, &limits),
        Err(RequestError::HeadTooLarge)
    );
    assert_eq!(
        parse_request(&big[..260], &limits),
        Err(RequestError::HeadTooLarge)
    );
    assert_eq!(parse_request(&big[..200], &limits), Ok(Status::Partial));
    let many = valid_with(&["A: 1", "B: 2", "C: 3", "D: 4"]);
    assert_eq!(
        parse_request(&many, &limits),
        Err(RequestError::TooManyHeaders)
    );
    // Above the stack array size, the header array comes from the heap.
    let limits = Limits {
        max_headers: 200,
        ..Limits::default()
    };
    let lines: Vec<String> = (0..150).map(|i| format!("X-{i}: {i}")).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_eq!(
        upgrade_with(&valid_with(&refs), &limits)
            .head()
            .headers()
            .count(),
        155
    );
    // The machine reports a malformed line when it ends, before the head is complete.
    let mut hs = ServerHandshake::default();
    hs.handle_read(b"\x16\x03\x01 hello").unwrap();
    assert!(matches!(
        hs.handle_read(b"\n"),
        Err(Error::Request(RequestError::Malformed(_)))
    ));
    assert!(
        hs.poll_transmit_vec()
            .unwrap()
            .starts_with(b"HTTP/1.1 400 ")
    );
    // The state machine rejects an endless head without waiting for its end.
    let mut hs = ServerHandshake::new(Limits {
        max_head_bytes: 256,
        ..Limits::default()
    });
    let mut result = Ok(());
    for _ in 0..10 {
        result = hs.handle_read(&[b'a'; 64]);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(Error::Request(RequestError::HeadTooLarge)));
    assert!(
        hs.poll_transmit_vec()
            .unwrap()
            .starts_with(b"HTTP/1.1 431 ")
    );
}

fn upgrade_with(buf: &[u8], limits: &Limits) -> UpgradeRequest {
    match parse_request(buf, limits) {
        Ok(Status::Complete((Incoming::Upgrade(r), _))) => r,
        other => panic!("expected an upgrade, got {other:?}"),
    }
}

/// A request that does not try to upgrade is plain HTTP, whatever its method or version.
#[test]
fn plain_http_requests() {
    let table: &[(&[u8], &str, &str)] = &[
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "/"),
        (b"GET /stats?x=1 HTTP/1.0\r\n\r\n", "GET", "/stats"),
        (
            b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
            "POST",
            "/form",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
            "GET",
            "/",
        ),
    ];
    for (input, method, path) in table {
        match parse_request(input, &Limits::default()) {
            Ok(Status::Complete((Incoming::Http(head), n))) => {
                assert_eq!(head.method(), *method);
                assert_eq!(head.path(), *path);
                assert_eq!(n, input.len());
                assert_eq!(head.as_bytes(), *input);
            }
            other => panic!("{input:?}: {other:?}"),
        }
    }
}

/// Partial heads are a state, never an error; consumed counts exclude what follows.
#[test]
fn partial_and_consumed() {
    let mut buf = valid_with(&[]);
    let head_len = buf.len();
    for cut in 0..head_len {
        assert_eq!(
            parse_request(&buf[..cut], &Limits::default()),
            Ok(Status::Partial),
            "cut {cut}"
        );
    }
    buf.extend_from_slice(b"\x81\x85frame");
    match parse_request(&buf, &Limits::default()) {
        Ok(Status::Complete((Incoming::Upgrade(_), n))) => assert_eq!(n, head_len),
        other => panic!("{other:?}"),
    }
}

/// The state machine: events, accept with leftover bytes, sticky errors, misuse.
#[test]
fn server_machine() {
    let mut input = valid_with(&[
        "Origin: https://evil.example",
        "Sec-WebSocket-Protocol: chat",
    ]);
    let head_len = input.len();
    input.extend_from_slice(b"\x81\x80abcd\x88\x80");

    // Byte by byte: the event appears exactly when the head is complete.
    let mut hs = ServerHandshake::default();
    let mut event = None;
    for (i, b) in input.iter().enumerate() {
        if event.is_some() {
            // Deciding: more input is a misuse, and the bytes are not taken.
            assert_eq!(
                hs.handle_read(&[*b]),
                Err(Error::Misuse(Misuse::WrongState))
            );
            continue;
        }
        hs.handle_read(&[*b]).unwrap();
        event = hs.poll_event();
        assert_eq!(event.is_some(), i + 1 == head_len, "byte {i}");
    }
    assert_eq!(hs.state(), ServerState::Deciding);
    assert!(hs.poll_event().is_none(), "one event only");

    // All at once: accept, get the leftover frame bytes.
    let mut hs = ServerHandshake::default();
    assert_eq!(hs.poll_transmit_vec(), None);
    hs.handle_read(&input).unwrap();
    let Some(ServerEvent::Upgrade(req)) = hs.poll_event() else {
        panic!("no event")
    };
    assert_eq!(
        hs.accept(&req, Accept::new().protocol(Some("nope"))),
        Err(Misuse::ProtocolNotOffered)
    );
    assert_eq!(
        hs.state(),
        ServerState::Deciding,
        "misuse leaves the machine usable"
    );
    let up = hs
        .accept(&req, Accept::new().protocol(Some("chat")))
        .unwrap();
    assert_eq!(up.leftover, b"\x81\x80abcd\x88\x80");
    assert_eq!(up.negotiated.protocol.as_deref(), Some("chat"));
    assert_eq!(hs.state(), ServerState::Upgraded);
    let mut small = [0u8; 10];
    assert_eq!(hs.poll_transmit(&mut small), 10);
    assert_eq!(&small, b"HTTP/1.1 1");
    let rest = hs.poll_transmit_vec().unwrap();
    assert!(rest.starts_with(b"01 Switching Protocols\r\n"));
    assert_eq!(hs.poll_transmit_vec(), None);
    assert_eq!(hs.accept(&req, Accept::new()), Err(Misuse::WrongState));
    assert_eq!(hs.handle_read(b"x"), Err(Error::Misuse(Misuse::WrongState)));

    // Origin check by the host: 403.
    let mut hs = ServerHandshake::default();
    hs.handle_read(&input).unwrap();
    let Some(ServerEvent::Upgrade(req)) = hs.poll_event() else {
        panic!("no event")
    };
    assert_eq!(req.origin(), Some("https://evil.example"));
    hs.reject(RequestError::ForbiddenOrigin).unwrap();
    assert_eq!(
        hs.state(),
        ServerState::Rejected(RequestError::ForbiddenOrigin)
    );
    assert!(
        hs.poll_transmit_vec()
            .unwrap()
            .starts_with(b"HTTP/1.1 403 Forbidden\r\n")
    );
    assert_eq!(
        hs.reject(RequestError::ForbiddenOrigin),
        Err(Misuse::WrongState)
    );

    // A bad request: sticky error, response queued once.
    let mut hs = ServerHandshake::default();
    let bad = request(&["PUT / HTTP/1.1", "Host: h", "Upgrade: websocket"]);
    let e = Error::Request(RequestError::MethodNotAllowed);
    assert_eq!(hs.handle_read(&bad), Err(e.clone()));
    assert_eq!(hs.handle_read(b"more"), Err(e));
    assert!(
        hs.poll_transmit_vec()
            .unwrap()
            .starts_with(b"HTTP/1.1 405 ")
    );
    assert_eq!(hs.poll_transmit_vec(), None);
    assert!(hs.poll_event().is_none());
}

/// Plain HTTP through the machine, with a pipelined request behind it.
#[test]
fn server_machine_http_and_pipelining() {
    let mut hs = ServerHandshake::default();
    hs.handle_read(b"GET /stats HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\n")
        .unwrap();
    let Some(ServerEvent::Http(head)) = hs.poll_event() else {
        panic!("no event")
    };
    assert_eq!(head.target(), "/stats");
    assert_eq!(hs.state(), ServerState::Http);
    assert_eq!(hs.take_leftover(), b"GET / HTTP/1.1\r\n");
    assert_eq!(hs.take_leftover(), b"");
    hs.reject(RequestError::HeadTooLarge).unwrap();
    assert!(
        hs.poll_transmit_vec()
            .unwrap()
            .starts_with(b"HTTP/1.1 431 ")
    );
}

/// The handshake deadline: armed by the first handle_timeout, 408 when it passes.
#[test]
fn server_machine_timeout() {
    let mut hs = ServerHandshake::default();
    assert_eq!(hs.poll_timeout(), None);
    hs.handle_timeout(1_000);
    assert_eq!(hs.poll_timeout(), Some(11_000));
    hs.handle_read(b"GET / HTTP/1.1\r\n").unwrap();
    hs.handle_timeout(10_999);
    assert_eq!(hs.state(), ServerState::Reading);
    hs.handle_timeout(11_000);
    assert_eq!(hs.state(), ServerState::Rejected(RequestError::Timeout));
    assert_eq!(hs.poll_timeout(), None);
    assert!(
        hs.poll_transmit_vec()
            .unwrap()
            .starts_with(b"HTTP/1.1 408 ")
    );
    assert_eq!(
        hs.handle_read(b"\r\n"),
        Err(Error::Request(RequestError::Timeout))
    );

    // A complete head stops the clock; no deadline when disabled.
    let mut hs = ServerHandshake::default();
    hs.handle_timeout(0);
    hs.handle_read(&valid_with(&[])).unwrap();
    assert_eq!(hs.poll_timeout(), None);
    hs.handle_timeout(1_000_000);
    assert_eq!(hs.state(), ServerState::Deciding);
    let mut hs = ServerHandshake::new(Limits {
        handshake_timeout_ms: None,
        ..Limits::default()
    });
    hs.handle_timeout(0);
    assert_eq!(hs.poll_timeout(), None);
}

/// The browser request of the bench parses with everything the issue lists.
#[test]
fn browser_request() {
    let req = upgrade(BROWSER);
    assert!((450..=600).contains(&BROWSER.len()), "{}", BROWSER.len());
    assert_eq!(req.host(), "example.com:8080");
    assert_eq!(
        req.protocols().collect::<Vec<_>>(),
        ["v12.stomp", "v11.stomp"]
    );
    assert_eq!(
        req.extensions()[0].param("client_max_window_bits"),
        Some(None)
    );
    assert_eq!(
        req.head()
            .header_str("user-agent")
            .map(|u| u.starts_with("Mozilla")),
        Some(true)
    );
}
