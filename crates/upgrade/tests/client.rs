//! Client side, by RFC 6455 section: §4.1 (the request, and the checks on the response).
#![allow(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

use stompbox_upgrade::{
    ClientEvent, ClientHandshake, ClientRequest, ClientState, Error, Extension, Limits, Misuse,
    Offer, ResponseError, Status, accept_key, parse_response,
};

const NONCE: [u8; 16] = *b"the sample nonce";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn offer() -> ClientRequest<'static> {
    ClientRequest::new("example.com", "/chat")
        .protocols(&["chat", "superchat"])
        .extension(Extension::new("permessage-deflate").with_param("client_max_window_bits", None))
}

fn response(lines: &[&str]) -> Vec<u8> {
    let mut s = String::new();
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

fn ok_lines() -> Vec<String> {
    vec![
        "HTTP/1.1 101 Switching Protocols".into(),
        "Upgrade: websocket".into(),
        "Connection: Upgrade".into(),
        format!("Sec-WebSocket-Accept: {ACCEPT}"),
    ]
}

fn check(
    lines: &[String],
) -> Result<
    Status<(
        stompbox_upgrade::ResponseHead,
        stompbox_upgrade::Negotiated,
        usize,
    )>,
    ResponseError,
> {
    let req = offer();
    let mut sink = Vec::new();
    let key = req.write(NONCE, &mut sink).unwrap();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    parse_response(&response(&refs), &Offer::new(&req, key), &Limits::default())
}

/// RFC 6455 §4.1: the request a client sends.
#[test]
fn rfc6455_4_1_request() {
    let mut out = Vec::new();
    let key = ClientRequest::new("server.example.com", "/chat?x=1")
        .origin("http://example.com")
        .protocols(&["chat", "superchat"])
        .extension(Extension::new("permessage-deflate").with_param("client_max_window_bits", None))
        .extension(Extension::new("x-foo"))
        .header("Cookie", b"a=b")
        .write(NONCE, &mut out)
        .unwrap();
    assert_eq!(key.as_str(), "dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n\
         Sec-WebSocket-Protocol: chat, superchat\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo\r\n\
         Cookie: a=b\r\n\r\n"
    );
}

/// Bad builder input is a typed misuse and writes nothing.
#[test]
fn request_misuse() {
    let table: &[(ClientRequest<'_>, Misuse)] = &[
        (ClientRequest::new("", "/"), Misuse::InvalidTarget),
        (ClientRequest::new("a b", "/"), Misuse::InvalidTarget),
        (ClientRequest::new("h", "chat"), Misuse::InvalidTarget),
        (ClientRequest::new("h", "/a b"), Misuse::InvalidTarget),
        (ClientRequest::new("h", "/\r\nX: 1"), Misuse::InvalidTarget),
        (
            ClientRequest::new("h", "/").protocols(&["a b"]),
            Misuse::InvalidHeader,
        ),
        (
            ClientRequest::new("h", "/").origin("o\r\nX: 1"),
            Misuse::InvalidHeader,
        ),
        (
            ClientRequest::new("h", "/").extension(Extension::new("")),
            Misuse::InvalidHeader,
        ),
        (
            ClientRequest::new("h", "/").header("X", b"\n"),
            Misuse::InvalidHeader,
        ),
        (
            ClientRequest::new("h", "/").header("Sec-WebSocket-Key", b"x"),
            Misuse::ReservedHeader,
        ),
        (
            ClientRequest::new("h", "/")
                .origin("o")
                .header("Origin", b"p"),
            Misuse::ReservedHeader,
        ),
    ];
    for (req, want) in table {
        let mut out = Vec::new();
        assert_eq!(req.write(NONCE, &mut out), Err(*want), "{req:?}");
        assert!(out.is_empty());
    }
}

/// RFC 6455 §4.1, the client's checks of the server's response.
#[test]
fn rfc6455_4_1_response_checks() {
    let with = |drop: &str, add: &[&str]| {
        let mut l: Vec<String> = ok_lines()
            .into_iter()
            .filter(|h| drop.is_empty() || !h.starts_with(drop))
            .collect();
        l.extend(add.iter().map(|s| String::from(*s)));
        l
    };
    let table: Vec<(Vec<String>, Option<ResponseError>)> = vec![
        (with("", &[]), None),
        (with("Upgrade", &[]), Some(ResponseError::MissingUpgrade)),
        (
            with("Upgrade", &["Upgrade: h2c"]),
            Some(ResponseError::MissingUpgrade),
        ),
        (
            with("Connection", &[]),
            Some(ResponseError::MissingConnectionUpgrade),
        ),
        (
            with("Sec-WebSocket-Accept", &[]),
            Some(ResponseError::BadAccept),
        ),
        (
            with(
                "Sec-WebSocket-Accept",
                &["Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA="],
            ),
            Some(ResponseError::BadAccept),
        ),
        (
            with("", &[&format!("Sec-WebSocket-Accept: {ACCEPT}")]),
            Some(ResponseError::BadAccept),
        ),
        (with("", &["Sec-WebSocket-Protocol: superchat"]), None),
        (
            with("", &["Sec-WebSocket-Protocol: mqtt"]),
            Some(ResponseError::ProtocolNotOffered),
        ),
        (
            with("", &["Sec-WebSocket-Protocol: chat, superchat"]),
            Some(ResponseError::ProtocolNotOffered),
        ),
        (
            with("", &["Sec-WebSocket-Extensions: permessage-deflate"]),
            None,
        ),
        (
            with("", &["Sec-WebSocket-Extensions: x-foo"]),
            Some(ResponseError::ExtensionNotOffered),
        ),
        (
            with("", &["Sec-WebSocket-Extensions: a b"]),
            Some(ResponseError::InvalidExtensions),
        ),
        (
            vec![
                "HTTP/1.0 101 Switching Protocols".into(),
                "Upgrade: websocket".into(),
            ],
            Some(ResponseError::HttpVersion),
        ),
    ];
    for (lines, want) in table {
        let got = check(&lines);
        match want {
            None => assert!(matches!(got, Ok(Status::Complete(_))), "{lines:?}: {got:?}"),
            Some(e) => assert_eq!(got.map(|_| ()), Err(e), "{lines:?}"),
        }
    }
    // Odd case and lists are fine.
    let lines: Vec<String> = vec![
        "HTTP/1.1 101 Switching Protocols".into(),
        "UPGRADE: WebSocket".into(),
        "connection: keep-alive, upgrade".into(),
        format!("sec-websocket-accept:  {ACCEPT} "),
        "sec-websocket-protocol: chat".into(),
        "Sec-WebSocket-Extensions: PerMessage-Deflate; client_max_window_bits=\"15\"".into(),
    ];
    let Ok(Status::Complete((_, n, _))) = check(&lines) else {
        panic!("{lines:?}")
    };
    assert_eq!(n.protocol.as_deref(), Some("chat"));
    assert_eq!(
        n.extensions[0].param("client_max_window_bits"),
        Some(Some("15"))
    );
}

/// A non-101 answer keeps status, reason and headers (401, 403, 3xx Location).
#[test]
fn non_101_carries_the_head() {
    let lines: Vec<String> = vec![
        "HTTP/1.1 302 Found".into(),
        "Location: https://example.com/login".into(),
        "Set-Cookie: a=b".into(),
    ];
    let Err(ResponseError::Status(head)) = check(&lines) else {
        panic!()
    };
    assert_eq!(head.status(), 302);
    assert_eq!(head.reason(), "Found");
    assert_eq!(head.location(), Some("https://example.com/login"));
    assert_eq!(head.header("set-cookie"), Some(&b"a=b"[..]));
    assert_eq!(ResponseError::Status(head).status(), Some(302));
    let Err(e) = check(&[
        "HTTP/1.1 401 Unauthorized".into(),
        "WWW-Authenticate: Basic".into(),
    ]) else {
        panic!()
    };
    assert_eq!(e.status(), Some(401));
}

/// The machine: request out, response in any split, leftover handed on, sticky errors.
#[test]
fn client_machine() {
    let mut hs = ClientHandshake::new(&offer(), NONCE, Limits::default()).unwrap();
    assert_eq!(hs.key().as_str(), "dGhlIHNhbXBsZSBub25jZQ==");
    let mut first = [0u8; 4];
    assert_eq!(hs.poll_transmit(&mut first), 4);
    assert_eq!(&first, b"GET ");
    let rest = hs.poll_transmit_vec().unwrap();
    assert!(rest.starts_with(b"/chat HTTP/1.1\r\n"));
    assert_eq!(hs.poll_transmit_vec(), None);

    let mut input = response(&[
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        &format!(
            "Sec-WebSocket-Accept: {}",
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ==").as_str()
        ),
        "Sec-WebSocket-Protocol: chat",
    ]);
    let head_len = input.len();
    input.extend_from_slice(b"\x81\x02hi");
    // Byte by byte: the event appears exactly with the head's last byte.
    for (i, b) in input[..head_len].iter().enumerate() {
        hs.handle_read(&[*b]).unwrap();
        let event = hs.poll_event();
        assert_eq!(event.is_some(), i + 1 == head_len, "byte {i}");
        if let Some(ClientEvent::Upgraded(up)) = event {
            assert!(up.leftover.is_empty());
        }
    }
    // In two pieces, the second carrying the end of the head and a frame.
    let mut hs = ClientHandshake::new(&offer(), NONCE, Limits::default()).unwrap();
    let (a, b) = input.split_at(head_len - 1);
    hs.handle_read(a).unwrap();
    assert!(hs.poll_event().is_none());
    hs.handle_read(b).unwrap();
    let Some(ClientEvent::Upgraded(up)) = hs.poll_event() else {
        panic!("no event")
    };
    assert_eq!(up.leftover, b"\x81\x02hi");
    assert_eq!(up.negotiated.protocol.as_deref(), Some("chat"));
    assert_eq!(up.response.status(), 101);
    assert_eq!(hs.state(), &ClientState::Upgraded);
    assert_eq!(hs.handle_read(b"x"), Err(Error::Misuse(Misuse::WrongState)));

    // Sticky failure.
    let mut hs = ClientHandshake::new(&offer(), NONCE, Limits::default()).unwrap();
    let e = hs
        .handle_read(b"HTTP/1.1 403 Forbidden\r\n\r\n")
        .unwrap_err();
    assert!(matches!(&e, Error::Response(ResponseError::Status(h)) if h.status() == 403));
    assert_eq!(hs.handle_read(b"more"), Err(e));
    assert!(hs.poll_event().is_none());

    // Head too large without an end.
    let mut hs = ClientHandshake::new(
        &offer(),
        NONCE,
        Limits {
            max_head_bytes: 100,
            ..Limits::default()
        },
    )
    .unwrap();
    hs.handle_read(b"HTTP/1.1 101 Switching Protocols\r\nX: ")
        .unwrap();
    assert_eq!(
        hs.handle_read(&[b'a'; 70]),
        Err(Error::Response(ResponseError::HeadTooLarge))
    );
    // Garbage is reported when its line ends, without waiting for the limit.
    let mut hs = ClientHandshake::new(&offer(), NONCE, Limits::default()).unwrap();
    hs.handle_read(b"SSH-2.0-OpenSSH").unwrap();
    assert!(matches!(
        hs.handle_read(b"\r\n"),
        Err(Error::Response(ResponseError::Malformed(_)))
    ));

    // Deadline.
    let mut hs = ClientHandshake::new(&offer(), NONCE, Limits::default()).unwrap();
    hs.handle_timeout(5);
    assert_eq!(hs.poll_timeout(), Some(10_005));
    hs.handle_timeout(10_005);
    assert_eq!(hs.state(), &ClientState::Failed(ResponseError::Timeout));
    assert_eq!(
        hs.handle_read(b"H"),
        Err(Error::Response(ResponseError::Timeout))
    );
}

#[cfg(feature = "getrandom")]
#[test]
fn random_nonces_differ() {
    let a = stompbox_upgrade::random_nonce().unwrap();
    let b = stompbox_upgrade::random_nonce().unwrap();
    assert_ne!(a, b);
    let hs = ClientHandshake::with_random_nonce(&offer(), Limits::default()).unwrap();
    assert_eq!(hs.key().as_str().len(), 24);
}
