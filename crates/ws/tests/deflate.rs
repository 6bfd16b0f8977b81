//! permessage-deflate (RFC 7692) on the connection: tests by section, and property tests
//! (round trips across every parameter combination, any split of the input).
#![cfg(feature = "deflate")]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking on an unexpected error"
)]

mod common;

use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use stompbox_ws::{
    CloseCode, Config, Connection, DeflateConfig, Event, MessageKind, ProtocolError,
};

fn pair(d: DeflateConfig, limit: usize) -> (Connection, Connection) {
    let config = Config::default()
        .max_message_size(limit)
        .max_frame_size(limit)
        .max_output_buffer(2 * limit)
        .deflate(Some(d));
    let mut n = 0u8;
    let client = Connection::client(config.clone(), move || {
        n = n.wrapping_add(1);
        [n, 0x5a, n, 0xa5]
    });
    (client, Connection::server(config))
}

/// The RSV1 bit and payload of each frame a server sent.
fn server_frames(c: &mut Connection) -> Vec<(u8, Vec<u8>)> {
    parse_server_frames(&output(c))
}

/// Section 6 / 7.2.1: RSV1 on the (first) frame of a compressed message, the tail removed;
/// small messages and control frames uncompressed.
#[test]
fn rsv1_and_tail_on_send() {
    // Context takeover (section 7.2.3.2): the second "Hello" is a back reference.
    let (_, mut server) = pair(DeflateConfig::default().min_size(3), 1 << 20);
    server.send_text("Hello").unwrap();
    server.send_text("Hi").unwrap(); // below min_size
    server.send_ping(b"ping ping ping ping").unwrap();
    server.send_text("Hello").unwrap();
    let frames = server_frames(&mut server);
    assert_eq!(
        frames,
        [
            (0xc1, vec![0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
            (0x81, b"Hi".to_vec()),
            (0x89, b"ping ping ping ping".to_vec()),
            (0xc1, vec![0xf2, 0x00, 0x11, 0x00, 0x00]),
        ]
    );
    // Without context takeover a message that would not shrink goes out uncompressed (no
    // shared state to keep in step), a repetitive one compressed.
    let d = DeflateConfig::negotiated(true, true, 15, 15).min_size(3);
    let (_, mut server) = pair(d, 1 << 20);
    server.send_text("Hello").unwrap();
    server.send_text("Hello Hello Hello Hello").unwrap();
    let frames = server_frames(&mut server);
    assert_eq!(frames[0], (0x81, b"Hello".to_vec()));
    assert_eq!(frames[1].0, 0xc1);
    assert!(frames[1].1.len() < 16 && !frames[1].1.ends_with(&[0, 0, 0xff, 0xff]));
    // Fragmented send: RSV1 only on the first frame, the tail only removed at the end.
    server
        .send_fragment(MessageKind::Text, b"Hel", false)
        .unwrap();
    server
        .send_fragment(MessageKind::Text, b"lo", true)
        .unwrap();
    let frames = server_frames(&mut server);
    assert_eq!(frames[0].0, 0x41);
    assert!(frames[0].1.ends_with(&[0, 0, 0xff, 0xff]));
    assert_eq!(frames[1].0, 0x80);
    assert!(!frames[1].1.ends_with(&[0, 0, 0xff, 0xff]));
}

/// Section 7.2.3.1-7.2.3.2 on the receive side: the RFC's sample frames.
#[test]
fn rfc_samples_received() {
    let (mut client, _) = pair(DeflateConfig::default(), 1 << 20);
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let again = [0xf2, 0x00, 0x11, 0x00, 0x00];
    let mut wire = sframe(0xc1, &hello);
    wire.extend(sframe(0xc1, &again));
    // The same message fragmented: RSV1 on the first frame only.
    wire.extend(sframe(0x41, &hello[..3]));
    wire.extend(sframe(0x80, &hello[3..]));
    // An uncompressed message in between is fine with context takeover.
    wire.extend(sframe(0x81, b"plain"));
    feed_bytewise(&mut client, &wire).unwrap();
    let hello = Event::Text(Bytes::from_static(b"Hello"));
    assert_eq!(
        events(&mut client),
        [
            hello.clone(),
            hello.clone(),
            hello,
            Event::Text(Bytes::from_static(b"plain"))
        ]
    );
}

/// Section 6.1: RSV1 on a control frame or a continuation frame is a protocol error (1002).
#[test]
fn rsv1_only_on_first_data_frame() {
    for wire in [
        sframe(0xc9, b""),                                       // ping with RSV1
        [sframe(0x41, &[0xf2]), sframe(0xc0, &[0x48])].concat(), // RSV1 on continuation
    ] {
        let (mut client, _) = pair(DeflateConfig::default(), 1 << 20);
        assert_eq!(client.handle_read(&wire), Err(ProtocolError::ReservedBits));
        let close = parse_client_frames(&output(&mut client));
        assert_eq!(
            close.last().map(|f| f.1[..2].to_vec()),
            Some(vec![0x03, 0xea])
        );
    }
    // Without deflate configured, RSV1 is a protocol error as before.
    let mut plain = Connection::client(Config::default(), || [1, 2, 3, 4]);
    assert_eq!(
        plain.handle_read(&sframe(0xc1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])),
        Err(ProtocolError::ReservedBits)
    );
}

/// A decompression bomb gets close 1009 and never more than the limit allocated; garbage
/// gets 1007; invalid UTF-8 after inflation gets 1007.
#[test]
fn bomb_garbage_and_utf8() {
    let (mut client, mut server) = pair(DeflateConfig::default(), 8 << 20);
    client.send_binary(&vec![0u8; 4 << 20]).unwrap();
    let bomb = output(&mut client);
    assert!(bomb.len() < 16 * 1024, "{}", bomb.len());
    let (_, mut small_server) = pair(DeflateConfig::default(), 64 * 1024);
    assert_eq!(
        small_server.handle_read(&bomb),
        Err(ProtocolError::MessageTooLarge)
    );
    assert_eq!(
        ProtocolError::MessageTooLarge.close_code(),
        CloseCode::TOO_BIG
    );
    // The same message within the limit arrives whole.
    server.handle_read(&bomb).unwrap();
    assert!(matches!(&events(&mut server)[..], [Event::Binary(b)] if b.len() == 4 << 20));

    let (_, mut server) = pair(DeflateConfig::default(), 1 << 20);
    assert_eq!(
        server.handle_read(&cframe(0xc2, &[0xff; 9])),
        Err(ProtocolError::InvalidCompressedData)
    );
    assert_eq!(
        ProtocolError::InvalidCompressedData.close_code(),
        CloseCode::INVALID_DATA
    );
    // "\xff" compressed as a stored block: invalid UTF-8 once inflated.
    let (_, mut server) = pair(DeflateConfig::default(), 1 << 20);
    let stored = [0x00, 0x01, 0x00, 0xfe, 0xff, 0xff];
    assert_eq!(
        server.handle_read(&cframe(0xc1, &stored)),
        Err(ProtocolError::InvalidUtf8)
    );
}

/// Memory per connection is reported and follows the negotiated windows.
#[test]
fn memory_reported() {
    let plain = Connection::server(Config::default());
    assert_eq!(plain.deflate_memory(), 0);
    let (_, big) = pair(DeflateConfig::default(), 1 << 20);
    let (_, small) = pair(DeflateConfig::negotiated(true, true, 9, 9), 1 << 20);
    assert!(big.deflate_memory() > small.deflate_memory());
    assert!(
        small.deflate_memory() >= 512 * 4 + 512,
        "{}",
        small.deflate_memory()
    );
    assert!(
        big.deflate_memory() < 512 * 1024,
        "{}",
        big.deflate_memory()
    );
}

fn deflate_config() -> impl Strategy<Value = DeflateConfig> {
    (
        any::<bool>(),
        any::<bool>(),
        8u8..=15,
        8u8..=15,
        0u32..=9,
        prop_oneof![Just(0usize), Just(32), 0usize..200],
    )
        .prop_map(|(snct, cnct, sb, cb, level, min)| {
            DeflateConfig::negotiated(snct, cnct, sb, cb)
                .level(level)
                .min_size(min)
        })
}

fn payload() -> impl Strategy<Value = (MessageKind, Vec<u8>)> {
    let words = prop::sample::select(vec!["SEND", "destination:/topic/a", "\n", "héllo", "0"]);
    prop_oneof![
        proptest::collection::vec(words, 0..200)
            .prop_map(|w| (MessageKind::Text, w.concat().into_bytes())),
        any::<String>().prop_map(|s| (MessageKind::Text, s.into_bytes())),
        proptest::collection::vec(any::<u8>(), 0..3000).prop_map(|b| (MessageKind::Binary, b)),
        (0u8..4, 0usize..40_000).prop_map(|(b, n)| (MessageKind::Binary, vec![b; n])),
    ]
}

fn expected(kind: MessageKind, data: &[u8]) -> Event {
    let data = Bytes::copy_from_slice(data);
    match kind {
        MessageKind::Text => Event::Text(data),
        MessageKind::Binary => Event::Binary(data),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every parameter combination: messages (whole or in fragments) sent by either role
    /// arrive intact, with the input fed whole or split at arbitrary points.
    #[test]
    fn round_trip_every_parameter_combination(
        d in deflate_config(),
        messages in proptest::collection::vec((payload(), 0usize..4), 1..8),
        splits in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let (mut client, mut server) = pair(d, 1 << 20);
        let mut want = Vec::new();
        for ((kind, data), fragments) in &messages {
            want.push(expected(*kind, data));
            for sender in [&mut client, &mut server] {
                if *fragments == 0 || data.is_empty() {
                    sender.send(*kind, data).unwrap();
                } else {
                    // Cut at char boundaries is not needed: text validity is checked whole.
                    let step = data.len().div_ceil(*fragments + 1);
                    let mut chunks = data.chunks(step).peekable();
                    while let Some(chunk) = chunks.next() {
                        sender.send_fragment(*kind, chunk, chunks.peek().is_none()).unwrap();
                    }
                }
            }
        }
        let from_client = output(&mut client);
        let from_server = output(&mut server);
        // Whole.
        server.handle_read(&from_client).unwrap();
        client.handle_read(&from_server).unwrap();
        prop_assert_eq!(&events(&mut server), &want);
        prop_assert_eq!(&events(&mut client), &want);
        // Split at arbitrary points into fresh receivers: the same events.
        let (mut client2, mut server2) = pair(d, 1 << 20);
        for (receiver, wire) in [(&mut server2, &from_client), (&mut client2, &from_server)] {
            let mut cuts: Vec<usize> = splits.iter().map(|i| i.index(wire.len() + 1)).collect();
            cuts.sort_unstable();
            let mut at = 0;
            for cut in cuts.into_iter().chain([wire.len()]) {
                receiver.handle_read(&wire[at..cut]).unwrap();
                at = cut;
            }
            prop_assert_eq!(&events(receiver), &want);
        }
    }

    /// Compression helps on repetitive text (what STOMP frames are).
    #[test]
    fn repetitive_text_shrinks(d in deflate_config(), n in 20usize..60) {
        let (_, mut server) = pair(d.min_size(0).level(6), 1 << 20);
        let frame = "MESSAGE\ndestination:/topic/prices\nsubscription:0\n\n{\"p\":1}\0".repeat(n);
        server.send_text(&frame).unwrap();
        let wire = output(&mut server);
        prop_assert!(wire.len() * 4 < frame.len(), "{} vs {}", wire.len(), frame.len());
    }
}

/// Streaming receive: a compressed message is inflated when complete and handed out as one
/// fragment (first and last); an uncompressed one still streams.
#[test]
fn streaming_mode_hands_out_inflated_messages_whole() {
    let config = Config::default()
        .streaming(true)
        .deflate(Some(DeflateConfig::default().min_size(0)));
    let mut server = Connection::server(config);
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let mut wire = cframe(0x41, &hello[..4]);
    wire.extend(cframe(0x80, &hello[4..]));
    feed_bytewise(&mut server, &wire).unwrap();
    assert_eq!(
        events(&mut server),
        [Event::Fragment(stompbox_ws::Fragment {
            kind: MessageKind::Text,
            data: Bytes::from_static(b"Hello"),
            first: true,
            last: true,
        })]
    );
}

/// Every combination of the four negotiated parameters (2 x 2 x 8 x 8 = 256), both
/// directions, several messages sharing (or not) the context, whole and fragmented.
#[test]
fn every_parameter_combination_exhaustively() {
    let stomp = "MESSAGE\ndestination:/topic/t\nsubscription:0\n\n".repeat(40) + "\0";
    let noisy: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for snct in [false, true] {
        for cnct in [false, true] {
            for sb in 8..=15u8 {
                for cb in 8..=15u8 {
                    let d = DeflateConfig::negotiated(snct, cnct, sb, cb);
                    let (mut client, mut server) = pair(d, 1 << 20);
                    for sender in [&mut client, &mut server] {
                        sender.send_text(&stomp).unwrap();
                        sender.send_binary(&noisy).unwrap();
                        sender.send_text(&stomp).unwrap();
                        sender
                            .send_fragment(MessageKind::Text, &stomp.as_bytes()[..100], false)
                            .unwrap();
                        sender
                            .send_fragment(MessageKind::Text, &stomp.as_bytes()[100..], true)
                            .unwrap();
                    }
                    let want = [
                        Event::Text(stomp.clone().into()),
                        Event::Binary(noisy.clone().into()),
                        Event::Text(stomp.clone().into()),
                        Event::Text(stomp.clone().into()),
                    ];
                    let to_server = output(&mut client);
                    let to_client = output(&mut server);
                    assert!(to_server.len() < stomp.len() + noisy.len(), "{d:?}");
                    server.handle_read(&to_server).unwrap();
                    client.handle_read(&to_client).unwrap();
                    assert_eq!(events(&mut server), want, "{d:?}");
                    assert_eq!(events(&mut client), want, "{d:?}");
                }
            }
        }
    }
}
