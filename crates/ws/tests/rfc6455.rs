//! RFC 6455 behaviour of the connection, by section, as tables of cases.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking on an unexpected error"
)]

mod common;

use bytes::Bytes;
use common::*;
use stompbox_ws::{
    CloseCode, Config, Connection, Event, Fragment, Initiator, MessageKind, ProtocolError,
    SendError, State,
};

fn server() -> Connection {
    Connection::server(Config::default())
}

fn client() -> Connection {
    Connection::client(Config::default(), || KEY)
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// Feeds `input` to a fresh server whole and byte by byte; both must fail with `err` and queue
/// a Close with `code`; events before the violation are kept.
fn assert_server_fails(name: &str, input: &[u8], err: ProtocolError, code: u16) {
    for bytewise in [false, true] {
        let mut s = server();
        let got = if bytewise {
            feed_bytewise(&mut s, input)
        } else {
            s.handle_read(input)
        };
        assert_eq!(got, Err(err), "{name} (bytewise: {bytewise})");
        assert_eq!(err.close_code().0, code, "{name}");
        assert_eq!(s.error(), Some(err));
        assert_eq!(s.state(), State::Closed);
        // Sticky: more input gets the same error.
        assert_eq!(s.handle_read(&cframe(0x81, b"x")), Err(err));
        let out = output(&mut s);
        assert_eq!(
            parse_server_frames(&out),
            vec![(0x88, code.to_be_bytes().to_vec())],
            "{name}"
        );
        assert!(s.should_close_transport());
        let evs = events(&mut s);
        assert!(
            matches!(evs.last(), Some(Event::Closed(info)) if !info.clean),
            "{name}: {evs:?}"
        );
        assert_eq!(s.send_text("late"), Err(SendError::Closed));
    }
}

#[test]
fn section_5_violations_fail_with_the_right_close_code() {
    let too_long_ping = cframe(0x89, &[0u8; 126]);
    let cases: Vec<(&str, Vec<u8>, ProtocolError, u16)> = vec![
        (
            "5.1 unmasked frame to a server",
            sframe(0x81, b"hi"),
            ProtocolError::UnmaskedFrame,
            1002,
        ),
        (
            "5.2 RSV1 without extension",
            cframe(0xc1, b"hi"),
            ProtocolError::ReservedBits,
            1002,
        ),
        (
            "5.2 RSV2",
            cframe(0xa1, b"hi"),
            ProtocolError::ReservedBits,
            1002,
        ),
        (
            "5.2 RSV3 on a ping",
            cframe(0x99, b""),
            ProtocolError::ReservedBits,
            1002,
        ),
        (
            "5.2 reserved opcode 3",
            cframe(0x83, b""),
            ProtocolError::ReservedOpcode(3),
            1002,
        ),
        (
            "5.2 reserved opcode 0xB",
            cframe(0x8b, b"x"),
            ProtocolError::ReservedOpcode(0xb),
            1002,
        ),
        (
            "5.2 length top bit",
            vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4],
            ProtocolError::LengthOverflow,
            1002,
        ),
        (
            "5.5 fragmented ping",
            cframe(0x09, b"p"),
            ProtocolError::FragmentedControlFrame,
            1002,
        ),
        (
            "5.5 ping over 125 bytes",
            too_long_ping,
            ProtocolError::ControlFrameTooLong,
            1002,
        ),
        (
            "5.4 continuation without start",
            cframe(0x80, b"x"),
            ProtocolError::UnexpectedContinuation,
            1002,
        ),
        (
            "5.4 text inside fragmented",
            [cframe(0x01, b"a"), cframe(0x81, b"b")].concat(),
            ProtocolError::ExpectedContinuation,
            1002,
        ),
        (
            "5.4 binary inside fragmented",
            [cframe(0x02, b"a"), cframe(0x02, b"b")].concat(),
            ProtocolError::ExpectedContinuation,
            1002,
        ),
        (
            "5.5.1 close 1 byte",
            cframe(0x88, &[3]),
            ProtocolError::InvalidClosePayload,
            1002,
        ),
        (
            "7.4 close code 999",
            cframe(0x88, &close_payload(999, b"")),
            ProtocolError::InvalidCloseCode(999),
            1002,
        ),
        (
            "7.4 close code 1004",
            cframe(0x88, &close_payload(1004, b"")),
            ProtocolError::InvalidCloseCode(1004),
            1002,
        ),
        (
            "7.4 close code 1005",
            cframe(0x88, &close_payload(1005, b"")),
            ProtocolError::InvalidCloseCode(1005),
            1002,
        ),
        (
            "7.4 close code 1006",
            cframe(0x88, &close_payload(1006, b"")),
            ProtocolError::InvalidCloseCode(1006),
            1002,
        ),
        (
            "7.4 close code 1015",
            cframe(0x88, &close_payload(1015, b"")),
            ProtocolError::InvalidCloseCode(1015),
            1002,
        ),
        (
            "7.4 close code 2999",
            cframe(0x88, &close_payload(2999, b"")),
            ProtocolError::InvalidCloseCode(2999),
            1002,
        ),
        (
            "7.4 close code 5000",
            cframe(0x88, &close_payload(5000, b"")),
            ProtocolError::InvalidCloseCode(5000),
            1002,
        ),
        (
            "8.1 close reason not UTF-8",
            cframe(0x88, &close_payload(1000, b"\xce\xba\xff")),
            ProtocolError::InvalidUtf8,
            1007,
        ),
        (
            "8.1 text not UTF-8",
            cframe(0x81, b"ok\xc0\xafok"),
            ProtocolError::InvalidUtf8,
            1007,
        ),
        (
            "8.1 text ends mid-character",
            cframe(0x81, b"\xce"),
            ProtocolError::InvalidUtf8,
            1007,
        ),
        (
            "8.1 fragmented text invalid across frames",
            [cframe(0x01, b"\xf0\x9f"), cframe(0x80, b"\x98")].concat(),
            ProtocolError::InvalidUtf8,
            1007,
        ),
        (
            "8.1 surrogate",
            cframe(0x81, b"\xed\xa0\x80"),
            ProtocolError::InvalidUtf8,
            1007,
        ),
    ];
    for (name, input, err, code) in cases {
        assert_server_fails(name, &input, err, code);
    }
}

#[test]
fn section_5_1_client_rejects_masked_frames() {
    let mut c = client();
    assert_eq!(
        c.handle_read(&cframe(0x81, b"hi")),
        Err(ProtocolError::MaskedFrame)
    );
    let frames = parse_client_frames(&output(&mut c));
    assert_eq!(frames, vec![(0x88, 1002u16.to_be_bytes().to_vec())]);
    assert!(
        c.should_close_transport(),
        "a failing client closes the transport too"
    );
}

#[test]
fn section_5_4_fragments_and_interleaved_control_frames() {
    let input = [
        cframe(0x01, b"Hel"),
        cframe(0x89, b"ping"),
        cframe(0x00, b""),
        cframe(0x8a, b"pong"),
        cframe(0x80, b"lo"),
        cframe(0x82, b"\x00\xff"),
    ]
    .concat();
    let expected = vec![
        Event::Ping(Bytes::from_static(b"ping")),
        Event::Pong(Bytes::from_static(b"pong")),
        Event::Text(Bytes::from_static(b"Hello")),
        Event::Binary(Bytes::from_static(b"\x00\xff")),
    ];
    let mut s = server();
    s.handle_read(&input).unwrap();
    assert_eq!(events(&mut s), expected);
    assert_eq!(
        parse_server_frames(&output(&mut s)),
        vec![(0x8a, b"ping".to_vec())]
    );
    let mut s = server();
    feed_bytewise(&mut s, &input).unwrap();
    assert_eq!(events(&mut s), expected);
}

#[test]
fn section_8_1_utf8_fails_fast_inside_a_frame() {
    // The frame announces 1000 bytes; the invalid byte comes early and the rest never does.
    let mut frame = cframe(0x81, &[b'a'; 1000]);
    let body_at = frame.len() - 1000;
    frame[body_at + 10] ^= 0xff; // masked 'a' ^ 0xff: unmasks to 0x9e, a stray continuation
    let mut s = server();
    assert_eq!(
        s.handle_read(&frame[..body_at + 20]),
        Err(ProtocolError::InvalidUtf8)
    );
    // And across fragments: the first fragment is fine, the second breaks at its first byte.
    let mut s = server();
    s.handle_read(&cframe(0x01, "κόσ".as_bytes())).unwrap();
    let second = cframe(0x00, b"\xffrest-of-a-long-fragment");
    assert_eq!(s.handle_read(&second[..7]), Err(ProtocolError::InvalidUtf8));
}

#[test]
fn section_8_1_valid_utf8_split_anywhere() {
    let text = "κόσμε 𝄞 ok ✓".as_bytes();
    for cut in 0..=text.len() {
        let input = [cframe(0x01, &text[..cut]), cframe(0x80, &text[cut..])].concat();
        let mut s = server();
        feed_bytewise(&mut s, &input).unwrap();
        assert_eq!(
            events(&mut s),
            vec![Event::Text(Bytes::copy_from_slice(text))],
            "cut {cut}"
        );
    }
}

#[test]
fn section_5_5_2_ping_gets_pong_unless_disabled() {
    let mut s = server();
    s.handle_read(&[cframe(0x89, b"a"), cframe(0x89, b"b")].concat())
        .unwrap();
    assert_eq!(
        parse_server_frames(&output(&mut s)),
        vec![(0x8a, b"a".to_vec()), (0x8a, b"b".to_vec())]
    );
    let mut s = Connection::server(Config::default().auto_pong(false));
    s.handle_read(&cframe(0x89, b"a")).unwrap();
    assert_eq!(s.pending_output(), 0);
    assert_eq!(events(&mut s), vec![Event::Ping(Bytes::from_static(b"a"))]);
}

#[test]
fn pings_collapse_into_one_pong_when_output_is_full() {
    let mut s = Connection::server(Config::default().max_output_buffer(40));
    s.send_binary(&[1; 20]).unwrap();
    assert!(matches!(
        s.send_binary(&[1; 20]),
        Err(SendError::OutputFull { .. })
    ));
    let pings: Vec<u8> = (0..50u8).flat_map(|i| cframe(0x89, &[i; 10])).collect();
    s.handle_read(&pings).unwrap();
    let frames = parse_server_frames(&output(&mut s));
    assert_eq!(frames.first().map(|f| f.0), Some(0x82));
    let pongs: Vec<_> = frames.iter().filter(|f| f.0 == 0x8a).collect();
    assert!(pongs.len() < 50, "collapsed");
    assert_eq!(
        pongs.last().map(|f| f.1.clone()),
        Some(vec![49; 10]),
        "the latest ping is answered"
    );
    assert_eq!(s.pending_output(), 0);
}

#[test]
fn section_7_close_handshake_state_table() {
    // Remote initiates: Open -> RemoteClosing (echo queued) -> Closed once drained.
    let mut s = server();
    assert_eq!(s.state(), State::Open);
    s.handle_read(&cframe(0x88, &close_payload(1000, b"bye")))
        .unwrap();
    assert_eq!(s.state(), State::RemoteClosing);
    assert!(!s.should_close_transport());
    assert_eq!(
        events(&mut s),
        vec![Event::Closed(stompbox_ws::CloseInfo {
            code: CloseCode::NORMAL,
            reason: Bytes::from_static(b"bye"),
            initiator: Initiator::Remote,
            clean: true
        })]
    );
    assert_eq!(
        parse_server_frames(&output(&mut s)),
        vec![(0x88, 1000u16.to_be_bytes().to_vec())]
    );
    assert_eq!(s.state(), State::Closed);
    assert!(s.should_close_transport());
    assert_eq!(s.send_text("x"), Err(SendError::Closed));
    assert_eq!(s.close(None, ""), Err(SendError::Closed));
    // Bytes after the peer's close are ignored.
    s.handle_read(&cframe(0x81, b"after")).unwrap();
    assert!(events(&mut s).is_empty());

    // Local initiates: Open -> LocalClosing (messages still delivered) -> Closed.
    let mut s = server();
    s.close(Some(CloseCode::GOING_AWAY), "restart").unwrap();
    assert_eq!(s.state(), State::LocalClosing);
    assert_eq!(s.send_text("x"), Err(SendError::Closed));
    assert_eq!(s.close(None, ""), Err(SendError::Closed));
    let mut expected = close_payload(1001, b"restart");
    assert_eq!(
        parse_server_frames(&output(&mut s)),
        vec![(0x88, std::mem::take(&mut expected))]
    );
    s.handle_read(&[cframe(0x81, b"late"), cframe(0x89, b"p"), cframe(0x88, b"")].concat())
        .unwrap();
    let evs = events(&mut s);
    assert_eq!(evs[0], Event::Text(Bytes::from_static(b"late")));
    assert_eq!(evs[1], Event::Ping(Bytes::from_static(b"p")));
    assert!(
        matches!(&evs[2], Event::Closed(i) if i.code == CloseCode::NO_STATUS && i.initiator == Initiator::Local && i.clean)
    );
    assert_eq!(
        output(&mut s),
        Vec::<u8>::new(),
        "no pong and no second close after our close"
    );
    assert_eq!(s.state(), State::Closed);
    assert!(s.should_close_transport());
}

#[test]
fn section_7_1_1_client_waits_for_server_tcp_close_with_timeout() {
    let mut c = client();
    c.handle_timeout(1_000);
    c.close(Some(CloseCode::NORMAL), "").unwrap();
    let _ = output(&mut c);
    assert_eq!(c.poll_timeout(), Some(11_000));
    c.handle_read(&sframe(0x88, &close_payload(1000, b"")))
        .unwrap();
    assert_eq!(c.state(), State::Closed);
    assert!(!c.should_close_transport());
    c.handle_timeout(10_999);
    assert!(!c.should_close_transport());
    c.handle_timeout(11_000);
    assert!(c.should_close_transport());
    assert_eq!(events(&mut c).len(), 1, "Closed is emitted once");
}

#[test]
fn close_timeout_when_peer_never_answers() {
    let mut s = server();
    s.close(None, "").unwrap();
    let _ = output(&mut s);
    assert_eq!(s.poll_timeout(), Some(10_000));
    s.handle_timeout(10_000);
    assert_eq!(s.state(), State::Closed);
    assert!(s.should_close_transport());
    assert!(
        matches!(events(&mut s)[..], [Event::Closed(ref i)] if !i.clean && i.code == CloseCode::ABNORMAL)
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn eof_before_close_is_abnormal() {
    let mut s = server();
    s.handle_eof();
    assert_eq!(s.state(), State::Closed);
    assert!(s.should_close_transport());
    assert!(
        matches!(events(&mut s)[..], [Event::Closed(ref i)] if !i.clean && i.initiator == Initiator::Remote)
    );
}

#[test]
fn limits_are_checked_on_the_header_before_buffering() {
    let cfg = Config::default()
        .max_frame_size(100)
        .max_message_size(150)
        .max_fragments(3);
    // (input, error): headers alone trigger the errors, no payload needed.
    let big_header = vec![0x82, 0xff, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4];
    let cases: Vec<(Vec<u8>, ProtocolError)> = vec![
        (big_header, ProtocolError::FrameTooLarge),
        (
            cframe(0x82, &[0; 101])[..8].to_vec(),
            ProtocolError::FrameTooLarge,
        ),
        (
            [
                cframe(0x02, &[0; 100]),
                cframe(0x80, &[0; 51])[..8].to_vec(),
            ]
            .concat(),
            ProtocolError::MessageTooLarge,
        ),
        (
            [
                cframe(0x02, b""),
                cframe(0x00, b""),
                cframe(0x00, b""),
                cframe(0x80, b""),
            ]
            .concat(),
            ProtocolError::TooManyFragments,
        ),
    ];
    for (input, err) in cases {
        let mut s = Connection::server(cfg.clone());
        assert_eq!(s.handle_read(&input), Err(err));
        assert_eq!(
            parse_server_frames(&output(&mut s)),
            vec![(0x88, 1009u16.to_be_bytes().to_vec())]
        );
    }
    let mut s = Connection::server(cfg);
    s.handle_read(
        &[
            cframe(0x02, &[7; 100]),
            cframe(0x00, &[8; 25]),
            cframe(0x80, &[9; 25]),
        ]
        .concat(),
    )
    .unwrap();
    assert!(matches!(&events(&mut s)[..], [Event::Binary(b)] if b.len() == 150));
}

#[test]
fn streaming_mode_yields_pieces_as_they_arrive() {
    let text = "ab€cd".as_bytes(); // '€' is 3 bytes at 2..5
    let mut s = Connection::server(Config::default().streaming(true));
    let input = [cframe(0x01, &text[..3]), cframe(0x80, &text[3..])].concat();
    let first_frame_len = 2 + 4 + 3;
    s.handle_read(&input[..first_frame_len]).unwrap();
    assert_eq!(
        events(&mut s),
        vec![Event::Fragment(Fragment {
            kind: MessageKind::Text,
            data: Bytes::from_static(b"ab"),
            first: true,
            last: false
        })],
        "the incomplete character is held back"
    );
    s.handle_read(&input[first_frame_len..]).unwrap();
    assert_eq!(
        events(&mut s),
        vec![Event::Fragment(Fragment {
            kind: MessageKind::Text,
            data: Bytes::copy_from_slice(&text[2..]),
            first: false,
            last: true
        })]
    );
    s.handle_read(&cframe(0x82, b"whole")).unwrap();
    assert_eq!(
        events(&mut s),
        vec![Event::Fragment(Fragment {
            kind: MessageKind::Binary,
            data: Bytes::from_static(b"whole"),
            first: true,
            last: true
        })]
    );
}

#[test]
fn sending_encodes_frames_for_each_role() {
    let mut s = server();
    s.send_text("hi").unwrap();
    s.send_binary(&[0; 200]).unwrap();
    s.send_bytes(MessageKind::Binary, Bytes::from(vec![5u8; 70_000]))
        .unwrap();
    s.send_ping(b"p").unwrap();
    s.send_pong(b"q").unwrap();
    assert_eq!(s.pending_output(), 4 + 4 + 200 + 10 + 70_000 + 3 + 3);
    let frames = parse_server_frames(&output(&mut s));
    assert_eq!(
        frames.iter().map(|f| (f.0, f.1.len())).collect::<Vec<_>>(),
        vec![(0x81, 2), (0x82, 200), (0x82, 70_000), (0x89, 1), (0x8a, 1)]
    );
    assert_eq!(s.pending_output(), 0);

    let mut keys = (0u8..).map(|i| [i, i + 1, i + 2, i + 3]);
    let mut c = Connection::client(Config::default(), move || keys.next().unwrap_or_default());
    c.send_text("hello").unwrap();
    c.send_fragment(MessageKind::Binary, b"ab", false).unwrap();
    assert_eq!(c.send_text("no"), Err(SendError::MessageInProgress));
    assert_eq!(
        c.send_fragment(MessageKind::Text, b"no", true),
        Err(SendError::KindMismatch)
    );
    c.send_ping(b"between").unwrap();
    c.send_fragment(MessageKind::Binary, b"cd", true).unwrap();
    assert_eq!(
        c.send_ping(&[0; 126]),
        Err(SendError::ControlPayloadTooLong)
    );
    assert_eq!(
        c.close(Some(CloseCode(1005)), ""),
        Err(SendError::InvalidCloseCode(1005))
    );
    assert_eq!(
        c.close(Some(CloseCode::NORMAL), &"x".repeat(124)),
        Err(SendError::ControlPayloadTooLong)
    );
    c.close(Some(CloseCode::NORMAL), &"x".repeat(123)).unwrap();
    let out = output(&mut c);
    let frames = parse_client_frames(&out);
    assert_eq!(
        frames.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![0x81, 0x02, 0x89, 0x80, 0x88]
    );
    assert_eq!(frames[0].1, b"hello");
    // Each frame has its own key: the second frame's key is [1, 2, 3, 4].
    assert_eq!(&out[11..17], &[0x02, 0x82, 1, 2, 3, 4]);

    // A server decodes the client's output to the same messages.
    let mut s = server();
    s.handle_read(&out).unwrap();
    let evs = events(&mut s);
    assert_eq!(evs[0], Event::Text(Bytes::from_static(b"hello")));
    assert_eq!(evs[1], Event::Ping(Bytes::from_static(b"between")));
    assert_eq!(evs[2], Event::Binary(Bytes::from_static(b"abcd")));
    assert!(matches!(&evs[3], Event::Closed(i) if i.reason.len() == 123));
}

#[test]
fn output_limit_is_a_typed_error_that_changes_nothing() {
    let mut s = Connection::server(Config::default().max_output_buffer(100));
    s.send_binary(&[0; 50]).unwrap();
    let before = s.pending_output();
    assert_eq!(
        s.send_binary(&[0; 50]),
        Err(SendError::OutputFull {
            pending: 52,
            needed: 64
        })
    );
    assert_eq!(s.pending_output(), before);
    let mut buf = [0u8; 10];
    assert_eq!(s.poll_transmit_into(&mut buf), 10);
    assert_eq!(s.pending_output(), 42);
    let mut rest = [0u8; 100];
    assert_eq!(s.poll_transmit_into(&mut rest), 42);
    s.send_binary(&[0; 50]).unwrap();
}

#[test]
fn single_frame_payload_is_not_copied_after_receipt() {
    let mut s = server();
    s.handle_read(&[cframe(0x82, &[1; 4000]), cframe(0x82, &[2; 10])].concat())
        .unwrap();
    let Some(Event::Binary(a)) = s.poll_event() else {
        panic!()
    };
    let Some(Event::Binary(b)) = s.poll_event() else {
        panic!()
    };
    // Both payloads were copied (and unmasked) into one receive buffer, back to back, and
    // split off it: b follows a.
    assert_eq!((a.len(), b.len()), (4000, 10));
    assert_eq!(a.as_ptr().wrapping_add(a.len()), b.as_ptr());
}

#[test]
fn replies_to_events_before_a_close_go_out_before_our_close_frame() {
    // (input after the text message, our close code): the peer's Close, or a violation.
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (cframe(0x88, &close_payload(1000, b"")), 1000),
        (cframe(0xc1, b"rsv1"), 1002),
    ];
    for (tail, code) in cases {
        let mut s = server();
        let _ = s.handle_read(&[cframe(0x81, b"echo me"), tail].concat());
        assert!(s.can_send(), "the Closed event is not polled yet");
        let Some(Event::Text(t)) = s.poll_event() else {
            panic!()
        };
        s.send_bytes(MessageKind::Text, t).unwrap();
        assert!(matches!(s.poll_event(), Some(Event::Closed(_))));
        assert!(!s.can_send());
        assert_eq!(s.send_text("too late"), Err(SendError::Closed));
        assert_eq!(
            parse_server_frames(&output(&mut s)),
            vec![
                (0x81, b"echo me".to_vec()),
                (0x88, code.to_be_bytes().to_vec())
            ]
        );
    }
}

/// Runs of whole small frames in one read (the receive fast path: one fused copy-and-unmask,
/// messages split off lazily by `poll_event`), both roles, 7- and 16-bit lengths: every
/// message comes out in order, and a frame with invalid UTF-8 inside a run fails the
/// connection at exactly that frame (1007) after the messages before it.
#[test]
fn section_5_6_runs_of_small_frames_in_one_read() {
    let payloads: [(u8, Vec<u8>); 7] = [
        (0x81, b"".to_vec()),
        (0x82, vec![0xff, 0x00, 0x7f]),
        (0x81, "κόσμε 🦀".as_bytes().to_vec()),
        (0x81, "é".repeat(63).into_bytes()), // 126 bytes: 16-bit length
        (0x82, (0..=255u8).cycle().take(300).collect()),
        (0x81, "日本語".repeat(227).into_bytes()), // 4086 bytes
        (0x82, vec![9; 125]),
    ];
    for server_role in [true, false] {
        let frame = |b0: u8, p: &[u8]| {
            if server_role {
                cframe(b0, p)
            } else {
                sframe(b0, p)
            }
        };
        let new = || if server_role { server() } else { client() };
        let wire: Vec<u8> = payloads.iter().flat_map(|(b0, p)| frame(*b0, p)).collect();
        let mut c = new();
        c.handle_read(&wire).unwrap();
        let expected: Vec<Event> = payloads
            .iter()
            .map(|(b0, p)| {
                let data = Bytes::from(p.clone());
                if *b0 == 0x81 {
                    Event::Text(data)
                } else {
                    Event::Binary(data)
                }
            })
            .collect();
        assert_eq!(events(&mut c), expected, "server role: {server_role}");

        for bad_at in 0..payloads.len() {
            let mut wire = Vec::new();
            for (i, (b0, p)) in payloads.iter().enumerate() {
                if i == bad_at {
                    wire.extend(frame(0x81, b"ok \xc3\x28 no"));
                }
                wire.extend(frame(*b0, p));
            }
            let mut c = new();
            assert_eq!(
                c.handle_read(&wire),
                Err(ProtocolError::InvalidUtf8),
                "bad frame at {bad_at}, server role: {server_role}"
            );
            let got = events(&mut c);
            assert_eq!(got[..bad_at], expected[..bad_at], "bad frame at {bad_at}");
            assert!(
                matches!(got[bad_at..], [Event::Closed(_)]),
                "then only Closed: {:?}",
                &got[bad_at..]
            );
            let out = output(&mut c);
            let frames = if server_role {
                parse_server_frames(&out)
            } else {
                parse_client_frames(&out)
            };
            assert_eq!(frames.len(), 1, "one Close frame");
            assert_eq!(frames[0].0, 0x88);
            assert_eq!(frames[0].1[..2], 1007u16.to_be_bytes());
        }
    }
}

#[test]
fn large_fragmented_messages_arrive_intact_past_the_streaming_threshold() {
    // A 3 MiB binary message (past the 1 MiB after which bulk binary payload is written with
    // streaming stores) and a 3 MiB text message, in 200,003-byte fragments with keys that
    // differ per fragment, fed in reads of 65,521 bytes (odd sizes: every alignment and key
    // phase), both roles.
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i * 131 + 7) as u8).collect();
    let text: String = "Grüße, κόσμε, 日本 🦀 ok. ".repeat(100_000);
    for (kind, body) in [(0x2u8, payload.as_slice()), (0x1, text.as_bytes())] {
        for server_role in [true, false] {
            let mut wire = Vec::new();
            let pieces: Vec<&[u8]> = body.chunks(200_003).collect();
            for (i, piece) in pieces.iter().enumerate() {
                let b0 =
                    if i == 0 { kind } else { 0 } | if i + 1 == pieces.len() { 0x80 } else { 0 };
                let key = [i as u8, 0x5a, (i * 7) as u8, 0xc3];
                wire.extend(raw(b0, server_role.then_some(key), piece));
            }
            let config = Config::default()
                .max_frame_size(4 << 20)
                .max_message_size(4 << 20);
            let mut c = if server_role {
                Connection::server(config)
            } else {
                Connection::client(config, || KEY)
            };
            for read in wire.chunks(65_521) {
                c.handle_read(read).unwrap();
            }
            let got = events(&mut c);
            let want = if kind == 0x2 {
                Event::Binary(Bytes::copy_from_slice(body))
            } else {
                Event::Text(Bytes::copy_from_slice(body))
            };
            assert_eq!(got.len(), 1);
            assert!(got[0] == want, "kind {kind} server {server_role}");
        }
    }
}
