//! Property tests: any sequence of messages and control frames, encoded with any fragmentation
#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking on an unexpected error"
)]
//! (by our own sender, for both roles) and fed in any splits, decodes to the same events.

mod common;

use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use stompbox_ws::{Config, Connection, Event, MessageKind, Role};

#[derive(Debug, Clone)]
enum Control {
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Message {
    kind: MessageKind,
    payload: Vec<u8>,
    /// Cut points (fragment boundaries) into the payload.
    cuts: Vec<usize>,
    /// Control frames sent after the first fragment.
    controls: Vec<Control>,
}

fn control() -> impl Strategy<Value = Control> {
    let payload = proptest::collection::vec(any::<u8>(), 0..=125);
    prop_oneof![
        payload.clone().prop_map(Control::Ping),
        payload.prop_map(Control::Pong)
    ]
}

fn message() -> impl Strategy<Value = Message> {
    let text = any::<String>().prop_map(|s| (MessageKind::Text, s.into_bytes()));
    let big =
        proptest::collection::vec(any::<u8>(), 0..70_000).prop_map(|b| (MessageKind::Binary, b));
    let small =
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(|b| (MessageKind::Binary, b));
    (
        prop_oneof![4 => text, 4 => small, 1 => big],
        proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
        proptest::collection::vec(control(), 0..3),
    )
        .prop_map(|((kind, payload), cuts, controls)| {
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(payload.len() + 1)).collect();
            cuts.sort_unstable();
            Message {
                kind,
                payload,
                cuts,
                controls,
            }
        })
}

fn control_event(c: &Control) -> Event {
    match c {
        Control::Ping(p) => Event::Ping(Bytes::copy_from_slice(p)),
        Control::Pong(p) => Event::Pong(Bytes::copy_from_slice(p)),
    }
}

/// Encodes `messages` with a sender of role `role`; returns the wire bytes and the events the
/// receiver must produce.
fn encode(role: Role, messages: &[Message], seed: u32) -> (Vec<u8>, Vec<Event>) {
    let config = Config::default().max_output_buffer(usize::MAX);
    let mut state = seed | 1;
    let mut tx = match role {
        Role::Client => Connection::client(config, move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()
        }),
        Role::Server => Connection::server(config),
    };
    let mut expected = Vec::new();
    for m in messages {
        let mut bounds = vec![0];
        bounds.extend_from_slice(&m.cuts);
        bounds.push(m.payload.len());
        let pieces: Vec<&[u8]> = bounds.windows(2).map(|w| &m.payload[w[0]..w[1]]).collect();
        for (i, piece) in pieces.iter().enumerate() {
            tx.send_fragment(m.kind, piece, i + 1 == pieces.len())
                .unwrap();
            if i == 0 {
                for c in &m.controls {
                    match c {
                        Control::Ping(p) => tx.send_ping(p).unwrap(),
                        Control::Pong(p) => tx.send_pong(p).unwrap(),
                    }
                    expected.push(control_event(c));
                }
            }
        }
        let data = Bytes::copy_from_slice(&m.payload);
        let event = match m.kind {
            MessageKind::Text => Event::Text(data),
            MessageKind::Binary => Event::Binary(data),
        };
        if pieces.len() == 1 {
            // The controls went after the only (final) frame.
            let at = expected.len() - m.controls.len();
            expected.insert(at, event);
        } else {
            expected.push(event);
        }
    }
    (output(&mut tx), expected)
}

fn receiver(role: Role, streaming: bool) -> Connection {
    let config = Config::default()
        .max_message_size(1 << 24)
        .max_frame_size(1 << 24)
        .streaming(streaming);
    match role {
        Role::Server => Connection::server(config),
        Role::Client => Connection::client(config, || [9, 9, 9, 9]),
    }
}

fn feed_split(rx: &mut Connection, wire: &[u8], splits: &[prop::sample::Index]) -> Vec<Event> {
    let mut cuts: Vec<usize> = splits.iter().map(|i| i.index(wire.len() + 1)).collect();
    cuts.push(0);
    cuts.push(wire.len());
    cuts.sort_unstable();
    let mut events = Vec::new();
    for w in cuts.windows(2) {
        rx.handle_read(&wire[w[0]..w[1]]).unwrap();
        events.extend(std::iter::from_fn(|| rx.poll_event()));
    }
    events
}

/// Streaming events joined back into whole messages.
fn join_fragments(events: Vec<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    let mut acc: Vec<u8> = Vec::new();
    for e in events {
        match e {
            Event::Fragment(f) => {
                if f.kind == MessageKind::Text {
                    assert!(
                        std::str::from_utf8(&f.data).is_ok(),
                        "text pieces are UTF-8"
                    );
                }
                assert_eq!(f.first, acc.is_empty(), "first flag");
                acc.extend_from_slice(&f.data);
                if f.last {
                    let data = Bytes::from(std::mem::take(&mut acc));
                    out.push(match f.kind {
                        MessageKind::Text => Event::Text(data),
                        MessageKind::Binary => Event::Binary(data),
                    });
                }
            }
            other => out.push(other),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_fragmentation_any_split_same_events(
        messages in proptest::collection::vec(message(), 0..8),
        splits in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
        seed in any::<u32>(),
        client_sends in any::<bool>(),
    ) {
        let (tx_role, rx_role) = if client_sends { (Role::Client, Role::Server) } else { (Role::Server, Role::Client) };
        let (wire, expected) = encode(tx_role, &messages, seed);

        let mut whole = receiver(rx_role, false);
        whole.handle_read(&wire).unwrap();
        let whole_events: Vec<Event> = std::iter::from_fn(|| whole.poll_event()).collect();
        prop_assert_eq!(&whole_events, &expected);

        let mut split = receiver(rx_role, false);
        prop_assert_eq!(&feed_split(&mut split, &wire, &splits), &expected);
        // Auto-pongs are the same whatever the split.
        prop_assert_eq!(output(&mut whole), output(&mut split));

        let mut streaming = receiver(rx_role, true);
        prop_assert_eq!(&join_fragments(feed_split(&mut streaming, &wire, &splits)), &expected);
    }

    #[test]
    fn byte_at_a_time_equals_whole(messages in proptest::collection::vec(message(), 0..4), seed in any::<u32>()) {
        let small: Vec<Message> = messages.into_iter().filter(|m| m.payload.len() < 2000).collect();
        let (wire, expected) = encode(Role::Client, &small, seed);
        let mut rx = receiver(Role::Server, false);
        feed_bytewise(&mut rx, &wire).unwrap();
        let got: Vec<Event> = std::iter::from_fn(|| rx.poll_event()).collect();
        prop_assert_eq!(got, expected);
    }

    /// Arbitrary bytes never panic, and whole vs. byte-wise input agree on events and error.
    #[test]
    fn arbitrary_input_is_split_invariant(wire in proptest::collection::vec(any::<u8>(), 0..400), server in any::<bool>()) {
        let role = if server { Role::Server } else { Role::Client };
        let mut a = receiver(role, false);
        let ra = a.handle_read(&wire);
        let mut b = receiver(role, false);
        let rb = feed_bytewise(&mut b, &wire);
        prop_assert_eq!(ra, rb);
        let ea: Vec<Event> = std::iter::from_fn(|| a.poll_event()).collect();
        let eb: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
        prop_assert_eq!(ea, eb);
        prop_assert_eq!(output(&mut a), output(&mut b));
    }
}
