#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
//! The frame codec against the STOMP 1.2 specification, section by section, including every
//! example frame of the spec (`^@` written as `\0`).

use bytes::{Bytes, BytesMut};
use stompbox_stomp::*;

fn parse_all(input: &[u8], version: Version) -> Result<Vec<Frame>, ParseError> {
    let mut p = Parser::new(Limits::default());
    p.set_version(version);
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    while let Some(f) = p.parse(&mut buf)? {
        out.push(f);
    }
    assert!(
        p.is_idle() || !buf.is_empty(),
        "parser mid-frame with an empty buffer"
    );
    Ok(out)
}

fn one(input: &[u8]) -> Frame {
    let frames = parse_all(input, Version::V1_2).unwrap();
    assert_eq!(frames.len(), 1, "{input:?}");
    frames.into_iter().next().unwrap()
}

fn headers(f: &Frame) -> Vec<(&str, &str)> {
    f.headers().collect()
}

// ---- Every example frame of the STOMP 1.2 spec ----

/// (section, frame bytes, command, headers, body)
#[allow(clippy::type_complexity, reason = "a test table")]
const SPEC_EXAMPLES: &[(&str, &[u8], Command, &[(&str, &str)], &[u8])] = &[
    (
        "STOMP Frames",
        b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\n\0",
        Command::Send,
        &[("destination", "/queue/a"), ("content-type", "text/plain")],
        b"hello queue a\n",
    ),
    (
        "Repeated Header Entries",
        b"MESSAGE\nfoo:World\nfoo:Hello\n\n\0",
        Command::Message,
        &[("foo", "World"), ("foo", "Hello")],
        b"",
    ),
    (
        "Connecting",
        b"CONNECT\naccept-version:1.2\nhost:stomp.github.org\n\n\0",
        Command::Connect,
        &[("accept-version", "1.2"), ("host", "stomp.github.org")],
        b"",
    ),
    ("Connecting (CONNECTED)", b"CONNECTED\nversion:1.2\n\n\0", Command::Connected, &[("version", "1.2")], b""),
    (
        "Protocol Negotiation",
        b"CONNECT\naccept-version:1.0,1.1,2.0\nhost:stomp.github.org\n\n\0",
        Command::Connect,
        &[("accept-version", "1.0,1.1,2.0"), ("host", "stomp.github.org")],
        b"",
    ),
    ("Protocol Negotiation (CONNECTED)", b"CONNECTED\nversion:1.1\n\n\0", Command::Connected, &[("version", "1.1")], b""),
    (
        "Protocol Negotiation (ERROR)",
        b"ERROR\nversion:1.2,2.1\ncontent-type:text/plain\n\nSupported protocol versions are 1.2 2.1\0",
        Command::Error,
        &[("version", "1.2,2.1"), ("content-type", "text/plain")],
        b"Supported protocol versions are 1.2 2.1",
    ),
    (
        "SEND",
        b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\n\0",
        Command::Send,
        &[("destination", "/queue/a"), ("content-type", "text/plain")],
        b"hello queue a\n",
    ),
    (
        "SUBSCRIBE",
        b"SUBSCRIBE\nid:0\ndestination:/queue/foo\nack:client\n\n\0",
        Command::Subscribe,
        &[("id", "0"), ("destination", "/queue/foo"), ("ack", "client")],
        b"",
    ),
    ("UNSUBSCRIBE", b"UNSUBSCRIBE\nid:0\n\n\0", Command::Unsubscribe, &[("id", "0")], b""),
    (
        "ACK",
        b"ACK\nid:12345\ntransaction:tx1\n\n\0",
        Command::Ack,
        &[("id", "12345"), ("transaction", "tx1")],
        b"",
    ),
    ("BEGIN", b"BEGIN\ntransaction:tx1\n\n\0", Command::Begin, &[("transaction", "tx1")], b""),
    ("COMMIT", b"COMMIT\ntransaction:tx1\n\n\0", Command::Commit, &[("transaction", "tx1")], b""),
    ("ABORT", b"ABORT\ntransaction:tx1\n\n\0", Command::Abort, &[("transaction", "tx1")], b""),
    // The spec's DISCONNECT and RECEIPT examples have no blank line before NUL: accepted.
    ("DISCONNECT", b"DISCONNECT\nreceipt:77\n\0", Command::Disconnect, &[("receipt", "77")], b""),
    ("DISCONNECT (RECEIPT)", b"RECEIPT\nreceipt-id:77\n\0", Command::Receipt, &[("receipt-id", "77")], b""),
    (
        "Header receipt",
        b"SEND\ndestination:/queue/a\nreceipt:message-12345\n\nhello queue a\0",
        Command::Send,
        &[("destination", "/queue/a"), ("receipt", "message-12345")],
        b"hello queue a",
    ),
    (
        "MESSAGE",
        b"MESSAGE\nsubscription:0\nmessage-id:007\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\0",
        Command::Message,
        &[
            ("subscription", "0"),
            ("message-id", "007"),
            ("destination", "/queue/a"),
            ("content-type", "text/plain"),
        ],
        b"hello queue a",
    ),
    (
        "RECEIPT",
        b"RECEIPT\nreceipt-id:message-12345\n\n\0",
        Command::Receipt,
        &[("receipt-id", "message-12345")],
        b"",
    ),
    (
        // The spec example says content-length:171 for a 170-octet body; corrected here (the
        // uncorrected frame is tested below). Note the value " malformed frame received":
        // 1.2 never trims.
        "ERROR",
        b"ERROR\nreceipt-id:message-12345\ncontent-type:text/plain\ncontent-length:170\nmessage: malformed frame received\n\nThe message:\n-----\nMESSAGE\ndestined:/queue/a\nreceipt:message-12345\n\nHello queue a!\n-----\nDid not contain a destination header, which is REQUIRED\nfor message propagation.\n\0",
        Command::Error,
        &[
            ("receipt-id", "message-12345"),
            ("content-type", "text/plain"),
            ("content-length", "170"),
            ("message", " malformed frame received"),
        ],
        b"The message:\n-----\nMESSAGE\ndestined:/queue/a\nreceipt:message-12345\n\nHello queue a!\n-----\nDid not contain a destination header, which is REQUIRED\nfor message propagation.\n",
    ),
];

#[test]
fn every_spec_example_parses() {
    for (section, bytes, cmd, hdrs, body) in SPEC_EXAMPLES {
        let f = one(bytes);
        assert_eq!(f.command(), *cmd, "{section}");
        assert_eq!(headers(&f), hdrs.to_vec(), "{section}");
        assert_eq!(&f.body()[..], *body, "{section}");
    }
}

#[test]
fn every_spec_example_round_trips_through_the_encoder() {
    for (section, bytes, ..) in SPEC_EXAMPLES {
        let f = one(bytes);
        let again = one(&encode_to_bytes(&f, Version::V1_2).unwrap());
        assert_eq!(again.command(), f.command(), "{section}");
        assert_eq!(again.body(), f.body(), "{section}");
        let strip = |f: &Frame| -> Vec<(String, String)> {
            f.headers()
                .filter(|(k, _)| *k != "content-length")
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(strip(&again), strip(&f), "{section}");
    }
}

#[test]
fn spec_error_example_with_wrong_content_length_is_an_error() {
    let bad = b"ERROR\ncontent-length:171\n\nThe message:\n-----\nMESSAGE\ndestined:/queue/a\nreceipt:message-12345\n\nHello queue a!\n-----\nDid not contain a destination header, which is REQUIRED\nfor message propagation.\n\0\n";
    assert_eq!(parse_all(bad, Version::V1_2), Err(ParseError::MissingNul));
}

// ---- STOMP Frames: EOL, heart-beats, command case ----

#[test]
fn crlf_line_endings() {
    let f = one(b"SEND\r\ndestination:/q\r\nx:y\r\n\r\nbody\0");
    assert_eq!(headers(&f), [("destination", "/q"), ("x", "y")]);
    assert_eq!(&f.body()[..], b"body");
}

#[test]
fn eols_between_frames_are_heartbeats() {
    let mut p = Parser::new(Limits::default());
    let mut buf = BytesMut::from(
        &b"\n\r\n\nSEND\ndestination:/q\n\n\0\n\n\r\nSEND\ndestination:/r\n\n\0\r\n"[..],
    );
    let a = p.parse(&mut buf).unwrap().unwrap();
    let b = p.parse(&mut buf).unwrap().unwrap();
    assert_eq!(p.parse(&mut buf).unwrap(), None);
    assert_eq!(
        (a.header("destination"), b.header("destination")),
        (Some("/q"), Some("/r"))
    );
    assert_eq!(p.heartbeats(), 7);
    assert!(buf.is_empty());
}

#[test]
fn lone_eol_is_a_heartbeat_and_partial_cr_waits() {
    let mut p = Parser::new(Limits::default());
    let mut buf = BytesMut::from(&b"\n"[..]);
    assert_eq!(p.parse(&mut buf).unwrap(), None);
    assert_eq!(p.heartbeats(), 1);
    buf.extend_from_slice(b"\r");
    assert_eq!(p.parse(&mut buf).unwrap(), None);
    assert_eq!(p.heartbeats(), 1);
    buf.extend_from_slice(b"\n");
    assert_eq!(p.parse(&mut buf).unwrap(), None);
    assert_eq!(p.heartbeats(), 2);
}

#[test]
fn commands_are_case_sensitive_and_all_known() {
    for c in Command::ALL {
        let input = format!("{}\n\n\0", c.as_str());
        assert_eq!(one(input.as_bytes()).command(), c);
    }
    for bad in [&b"send\n\n\0"[..], b"SENDX\n\n\0", b"\x00", b" SEND\n\n\0"] {
        assert_eq!(
            parse_all(bad, Version::V1_2),
            Err(ParseError::UnknownCommand),
            "{bad:?}"
        );
    }
}

// ---- Value Encoding ----

#[test]
fn escapes_decoded_per_version() {
    let input = b"MESSAGE\na\\cb:c\\\\d\\ne\\rf\n\n\0";
    let f = parse_all(input, Version::V1_2).unwrap().remove(0);
    assert_eq!(headers(&f), [("a:b", "c\\d\ne\rf")]);
    // 1.1 has no \r escape.
    assert_eq!(
        parse_all(input, Version::V1_1),
        Err(ParseError::InvalidEscape)
    );
    let f = parse_all(b"MESSAGE\na\\cb:c\\\\d\\ne\n\n\0", Version::V1_1)
        .unwrap()
        .remove(0);
    assert_eq!(headers(&f), [("a:b", "c\\d\ne")]);
    // 1.0: no escaping at all.
    let f = parse_all(input, Version::V1_0).unwrap().remove(0);
    assert_eq!(headers(&f), [("a\\cb", "c\\\\d\\ne\\rf")]);
}

#[test]
fn undefined_escapes_are_fatal() {
    for bad in [
        &b"SEND\nx:\\t\n\n\0"[..],
        b"SEND\nx:abc\\\n\n\0",
        b"SEND\n\\a:b\n\n\0",
    ] {
        assert_eq!(
            parse_all(bad, Version::V1_2),
            Err(ParseError::InvalidEscape),
            "{bad:?}"
        );
    }
}

#[test]
fn connect_and_connected_are_never_unescaped() {
    let f = one(b"CONNECT\npasscode:a\\tb\\nc\nhost:h\n\n\0");
    assert_eq!(f.header("passcode"), Some("a\\tb\\nc"));
    let f = one(b"CONNECTED\nserver:x\\cy\n\n\0");
    assert_eq!(f.header("server"), Some("x\\cy"));
    // and never escaped by the encoder either
    let f = Frame::builder(Command::Connect)
        .header("passcode", "p:\\w")
        .build();
    assert_eq!(
        &encode_to_bytes(&f, Version::V1_2).unwrap()[..],
        b"CONNECT\npasscode:p:\\w\n\n\0"
    );
}

#[test]
fn encoder_escapes_per_version_and_rejects_the_unencodable() {
    let f = Frame::builder(Command::Send)
        .header("k:1", "a\\b:c\nd")
        .build();
    assert_eq!(
        &encode_to_bytes(&f, Version::V1_2).unwrap()[..],
        b"SEND\nk\\c1:a\\\\b\\cc\\nd\n\n\0"
    );
    assert_eq!(
        &encode_to_bytes(&f, Version::V1_1).unwrap()[..],
        b"SEND\nk\\c1:a\\\\b\\cc\\nd\n\n\0"
    );
    assert_eq!(
        encode_to_bytes(&f, Version::V1_0),
        Err(EncodeError::Unencodable)
    );
    let cr = Frame::builder(Command::Send).header("k", "a\rb").build();
    assert_eq!(
        &encode_to_bytes(&cr, Version::V1_2).unwrap()[..],
        b"SEND\nk:a\\rb\n\n\0"
    );
    assert_eq!(
        encode_to_bytes(&cr, Version::V1_1),
        Err(EncodeError::Unencodable)
    );
    let empty = Frame::builder(Command::Send).header("", "v").build();
    assert_eq!(
        encode_to_bytes(&empty, Version::V1_2),
        Err(EncodeError::EmptyHeaderName)
    );
    // 1.0 keeps a colon in a value as is (the first colon separates).
    let colon = Frame::builder(Command::Send).header("k", "a:b").build();
    assert_eq!(
        &encode_to_bytes(&colon, Version::V1_0).unwrap()[..],
        b"SEND\nk:a:b\n\n\0"
    );
    assert_eq!(one(b"SEND\nk:a:b\n\n\0").header("k"), Some("a:b"));
}

#[test]
fn values_are_never_trimmed() {
    let f = one(b"SEND\n key : value \n\n\0");
    assert_eq!(headers(&f), [(" key ", " value ")]);
}

#[test]
fn headers_must_be_utf8() {
    assert_eq!(
        parse_all(b"SEND\nx:\xff\xfe\n\n\0", Version::V1_2),
        Err(ParseError::InvalidUtf8)
    );
    let f = one("SEND\nnäme:värde ✓\n\n\0".as_bytes());
    assert_eq!(f.header("näme"), Some("värde ✓"));
}

#[test]
fn malformed_header_lines() {
    for (bad, err) in [
        (&b"SEND\nnocolon\n\n\0"[..], ParseError::MissingColon),
        (b"SEND\n:value\n\n\0", ParseError::EmptyHeaderName),
        (b"SEND\nx:a\rb\n\n\0", ParseError::BareCarriageReturn),
        (b"\rSEND\n\n\0", ParseError::BareCarriageReturn),
    ] {
        assert_eq!(parse_all(bad, Version::V1_2), Err(err), "{bad:?}");
    }
}

// ---- Body and content-length ----

#[test]
fn content_length_body_may_contain_nul() {
    let f = one(b"SEND\ndestination:/q\ncontent-length:5\n\na\0b\0c\0");
    assert_eq!(&f.body()[..], b"a\0b\0c");
}

#[test]
fn body_ends_at_first_nul_without_content_length() {
    let frames = parse_all(
        b"SEND\ndestination:/q\n\nab\0SEND\ndestination:/r\n\n\0",
        Version::V1_2,
    )
    .unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(&frames[0].body()[..], b"ab");
}

#[test]
fn content_length_errors() {
    for (bad, err) in [
        (
            &b"SEND\ncontent-length:abc\n\n\0"[..],
            ParseError::InvalidContentLength,
        ),
        (
            b"SEND\ncontent-length:-1\n\n\0",
            ParseError::InvalidContentLength,
        ),
        (
            b"SEND\ncontent-length:\n\n\0",
            ParseError::InvalidContentLength,
        ),
        (b"SEND\ncontent-length:2\n\nabc\0", ParseError::MissingNul),
    ] {
        assert_eq!(parse_all(bad, Version::V1_2), Err(err), "{bad:?}");
    }
}

#[test]
fn first_content_length_wins() {
    let f = one(b"SEND\ncontent-length:3\ncontent-length:1\n\na\0c\0");
    assert_eq!(&f.body()[..], b"a\0c");
}

#[test]
fn encoder_writes_content_length_for_every_non_empty_body() {
    let f = Frame::builder(Command::Send)
        .header("destination", "/q")
        .header("content-length", "999")
        .body(Bytes::from_static(b"a\0b"))
        .build();
    assert_eq!(
        &encode_to_bytes(&f, Version::V1_2).unwrap()[..],
        b"SEND\ndestination:/q\ncontent-length:3\n\na\0b\0"
    );
    let empty = Frame::builder(Command::Send)
        .header("destination", "/q")
        .build();
    assert_eq!(
        &encode_to_bytes(&empty, Version::V1_2).unwrap()[..],
        b"SEND\ndestination:/q\n\n\0"
    );
}

#[test]
fn encode_head_shares_the_body() {
    let body = Bytes::from(vec![7u8; 1000]);
    let f = Frame::builder(Command::Message)
        .header("destination", "/t")
        .body(body.clone())
        .build();
    let mut head = BytesMut::new();
    encode_head(&f, Version::V1_2, body.len(), &mut head).unwrap();
    assert_eq!(
        &head[..],
        b"MESSAGE\ndestination:/t\ncontent-length:1000\n\n"
    );
}

// ---- Size Limits ----

#[test]
fn limits_are_typed_errors_before_allocation() {
    let small = Limits {
        max_head_bytes: 64,
        max_headers: 2,
        max_header_line: 24,
        max_body_bytes: 8,
    };
    let cases: &[(&[u8], ParseError)] = &[
        (b"SEND\na:1\nb:2\nc:3\n\n\0", ParseError::TooManyHeaders),
        (
            b"SEND\naaaaaaaaaaaaaaaaaaaaaaaaa:1\n\n\0",
            ParseError::HeaderLineTooLong,
        ),
        (
            b"SEND\naaaaaaaaaaaaaaaaaaaaaaaaa",
            ParseError::HeaderLineTooLong,
        ),
        (
            b"SENDSENDSENDSENDSENDSENDSEND",
            ParseError::HeaderLineTooLong,
        ),
        (b"SEND\ncontent-length:9\n\n", ParseError::BodyTooLarge),
        (
            b"SEND\ncontent-length:99999999\n\n",
            ParseError::BodyTooLarge,
        ),
        (b"SEND\n\n123456789", ParseError::BodyTooLarge),
        (b"SEND\n\n123456789\0", ParseError::BodyTooLarge),
        (
            b"SEND\na:123456789012345678\nb:123456789012345678\nc:1234567890123456789",
            ParseError::HeadTooLarge,
        ),
    ];
    for (input, err) in cases {
        let mut p = Parser::new(small);
        let mut buf = BytesMut::from(*input);
        assert_eq!(
            p.parse(&mut buf),
            Err(*err),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        // sticky
        assert_eq!(p.parse(&mut BytesMut::from(&b"SEND\n\n\0"[..])), Err(*err));
        // The same error when the input arrives in pieces, down to one byte at a time.
        for piece in [1, 2, 3, 7, 16] {
            assert_eq!(
                parse_in_pieces(small, input, piece),
                Err(*err),
                "{:?} in {piece}-byte pieces",
                String::from_utf8_lossy(input)
            );
        }
    }
}

/// Feeds `input` `piece` bytes at a time; the first error, or the frames parsed.
fn parse_in_pieces(limits: Limits, input: &[u8], piece: usize) -> Result<usize, ParseError> {
    let mut p = Parser::new(limits);
    let mut buf = BytesMut::new();
    let mut frames = 0;
    for chunk in input.chunks(piece) {
        buf.extend_from_slice(chunk);
        while p.parse(&mut buf)?.is_some() {
            frames += 1;
        }
    }
    Ok(frames)
}

/// `max_head_bytes` is exact, for heads that span several of the scanner's 64-byte blocks:
/// a head of exactly the limit parses, one byte more is `HeadTooLarge`, whole or in pieces.
#[test]
fn head_size_limit_is_exact_across_scan_blocks() {
    for limit in [63, 64, 65, 127, 128, 129, 200] {
        let limits = Limits {
            max_head_bytes: limit,
            ..Limits::default()
        };
        // "SEND\n" + "h:" + value + "\n" + "\n" is the head; pad the value to hit `len`.
        let frame = |len: usize| {
            let value = "v".repeat(len - "SEND\nh:\n\n".len());
            format!("SEND\nh:{value}\n\nbody\0").into_bytes()
        };
        for piece in [1, 5, 64, usize::MAX] {
            let piece = piece.min(limit + 16);
            assert_eq!(
                parse_in_pieces(limits, &frame(limit), piece),
                Ok(1),
                "head of exactly {limit} bytes, {piece}-byte pieces"
            );
            assert_eq!(
                parse_in_pieces(limits, &frame(limit + 1), piece),
                Err(ParseError::HeadTooLarge),
                "head of {} bytes, limit {limit}, {piece}-byte pieces",
                limit + 1
            );
        }
    }
}

/// `max_header_line` is exact for lines ending in CR LF too: a line of exactly the limit
/// parses even when a piece ends between its CR and its LF (the CR may still turn out to be
/// the first half of the line end); one byte more is `HeaderLineTooLong`. Found by the
/// `stomp_parser` fuzz target (split input failed where whole input parsed).
#[test]
fn header_line_limit_is_exact_with_crlf_split_between_cr_and_lf() {
    let limit = 24;
    let limits = Limits {
        max_header_line: limit,
        ..Limits::default()
    };
    let frame = |len: usize| {
        let value = "v".repeat(len - "h:".len());
        format!("SEND\r\nh:{value}\r\n\r\nbody\0").into_bytes()
    };
    for piece in 1..=40 {
        assert_eq!(
            parse_in_pieces(limits, &frame(limit), piece),
            Ok(1),
            "line of exactly {limit} bytes + CR LF, {piece}-byte pieces"
        );
        assert_eq!(
            parse_in_pieces(limits, &frame(limit + 1), piece),
            Err(ParseError::HeaderLineTooLong),
            "line of {} bytes + CR LF, {piece}-byte pieces",
            limit + 1
        );
    }
    // The command line has the same limit.
    let limits = Limits {
        max_header_line: "SEND".len(),
        ..Limits::default()
    };
    for piece in 1..=8 {
        assert_eq!(parse_in_pieces(limits, b"SEND\r\n\r\n\0", piece), Ok(1));
    }
}

/// Frames past the inline header storage (more than seven headers, or a head whose offsets
/// do not fit 16 bits) keep every header in order, whole and in pieces, and re-encode.
#[test]
fn many_headers_and_heads_over_64_kib_parse_whole_and_in_pieces() {
    let limits = Limits {
        max_head_bytes: 200_000,
        max_header_line: 100_000,
        ..Limits::default()
    };
    let long = "v".repeat(70_000);
    for (count, long_at) in [
        (7, None),
        (8, None),
        (20, None),
        (3, Some(1)),
        (10, Some(9)),
    ] {
        let mut input = b"SEND\n".to_vec();
        let mut want = Vec::new();
        for i in 0..count {
            let value = if Some(i) == long_at {
                long.clone()
            } else {
                format!("v{i}")
            };
            input.extend_from_slice(format!("h{i}:{value}\n").as_bytes());
            want.push((format!("h{i}"), value));
        }
        input.extend_from_slice(b"\nbody\0");
        for piece in [1000, 4096, 65_536, usize::MAX] {
            let mut p = Parser::new(limits);
            let mut buf = BytesMut::new();
            let mut frames = Vec::new();
            for chunk in input.chunks(piece.min(input.len())) {
                buf.extend_from_slice(chunk);
                while let Some(f) = p.parse(&mut buf).unwrap() {
                    frames.push(f);
                }
            }
            assert_eq!(frames.len(), 1, "{count} headers, {piece}-byte pieces");
            let f = &frames[0];
            let got: Vec<(String, String)> = f
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            assert_eq!(got, want, "{count} headers, {piece}-byte pieces");
            assert_eq!(
                f.header(&format!("h{}", count - 1)),
                Some(want[count - 1].1.as_str())
            );
            assert_eq!(&f.body()[..], b"body");
            let wire = stompbox_stomp::encode_to_bytes(f, Version::V1_2).unwrap();
            let again = Parser::new(limits)
                .parse(&mut BytesMut::from(&wire[..]))
                .unwrap()
                .unwrap();
            // The encoder adds `content-length` for the non-empty body.
            let again_headers: Vec<(String, String)> = again
                .headers()
                .filter(|(k, _)| *k != "content-length")
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            assert_eq!(again_headers, want);
            assert_eq!(again.body(), f.body());
        }
    }
}

// ---- Incremental parsing and zero copy ----

#[test]
fn byte_by_byte_equals_whole() {
    let input: Vec<u8> = SPEC_EXAMPLES
        .iter()
        .flat_map(|e| e.1.iter().copied())
        .collect();
    let whole = parse_all(&input, Version::V1_2).unwrap();
    let mut p = Parser::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut split = Vec::new();
    for b in &input {
        buf.extend_from_slice(&[*b]);
        while let Some(f) = p.parse(&mut buf).unwrap() {
            split.push(f);
        }
    }
    assert_eq!(split, whole);
}

#[test]
fn zero_copy_head_and_body() {
    let input = Bytes::from_static(b"SEND\ndestination:/q\n\nhello\0");
    let mut buf = BytesMut::from(&input[..]);
    let base = buf.as_ptr() as usize;
    let f = Parser::new(Limits::default())
        .parse(&mut buf)
        .unwrap()
        .unwrap();
    // head and body point into the input buffer: no copy
    assert_eq!(f.head_bytes().as_ptr() as usize, base);
    assert_eq!(f.body().as_ptr() as usize, base + 21);
    // an escape forces a decoded copy of the head only
    let mut buf = BytesMut::from(&b"SEND\nd:a\\cb\n\nhello\0"[..]);
    let base = buf.as_ptr() as usize;
    let f = Parser::new(Limits::default())
        .parse(&mut buf)
        .unwrap()
        .unwrap();
    assert_ne!(f.head_bytes().as_ptr() as usize, base);
    assert_eq!(f.body().as_ptr() as usize, base + 13);
    assert_eq!(f.header("d"), Some("a:b"));
}

// ---- Heart-beating header ----

#[test]
fn heart_beat_header_and_negotiation() {
    assert_eq!(HeartBeat::parse("0,0"), Some(HeartBeat::NONE));
    assert_eq!(
        HeartBeat::parse("10, 20"),
        Some(HeartBeat {
            send_ms: 10,
            receive_ms: 20
        })
    );
    for bad in ["", "1", "a,b", "1,2,3", "-1,0"] {
        assert_eq!(HeartBeat::parse(bad), None, "{bad}");
    }
    let hb = |a, b| HeartBeat {
        send_ms: a,
        receive_ms: b,
    };
    // (client cx,cy), (server sx,sy) -> client send, client receive
    for (c, s, send, recv) in [
        (hb(0, 0), hb(10, 10), 0, 0),
        (hb(100, 0), hb(0, 50), 100, 0),
        (hb(100, 200), hb(300, 50), 100, 300),
        (hb(10, 10), hb(0, 0), 0, 0),
    ] {
        let n = Negotiated::negotiate(c, s);
        assert_eq!((n.send_ms, n.receive_ms), (send, recv), "{c:?} {s:?}");
        let m = Negotiated::negotiate(s, c);
        assert_eq!(
            (m.send_ms, m.receive_ms),
            (recv, send),
            "server view {c:?} {s:?}"
        );
    }
}
