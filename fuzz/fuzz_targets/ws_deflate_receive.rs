//! The inflating receive path (RFC 7692): a server-role connection with permessage-deflate,
//! parameters from the first byte, fed (a) the input as raw wire bytes and (b) the input cut
//! into messages that are framed with RSV1 (so arbitrary bytes reach the inflater), fragmented
//! and fed in arbitrary pieces. No panic, every event within the limit, text valid UTF-8,
//! sticky errors, echoes (compressed) bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stompbox_ws::{Config, Connection, DeflateConfig, Event, MessageKind};

#[path = "ws_common.rs"]
mod ws_common;

const LIMIT: usize = 128 * 1024;

fn config(p: u8) -> Config {
    let d = DeflateConfig::negotiated(p & 1 != 0, p & 2 != 0, 8 + (p >> 2 & 7), 8 + (p >> 5 & 7))
        .level(u32::from(p % 10))
        .min_size(usize::from(p & 0x3f));
    ws_common::config(false).deflate(Some(d))
}

/// Wraps `payload` in masked frames (RSV1 on the first), `pieces` fragments.
fn frames(out: &mut Vec<u8>, payload: &[u8], text: bool, pieces: usize) {
    let step = payload.len().div_ceil(pieces.max(1)).max(1);
    let mut chunks: Vec<&[u8]> = payload.chunks(step).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let n = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let fin = if i + 1 == n { 0x80 } else { 0 };
        let b0 = fin | if i == 0 { 0x40 | if text { 1 } else { 2 } } else { 0 };
        out.push(b0);
        let len = chunk.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        out.extend_from_slice(&[0, 0, 0, 0]); // a zero mask: the payload as is
        out.extend_from_slice(chunk);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&p, rest)) = data.split_first() else {
        return;
    };
    // (a) Raw wire bytes with deflate negotiated.
    ws_common::drive(Connection::server(config(p)), rest);
    // (b) Arbitrary compressed payloads, split on 0xfe bytes into messages.
    let mut wire = Vec::new();
    for (i, msg) in rest.split(|&b| b == 0xfe).take(64).enumerate() {
        let msg = &msg[..msg.len().min(60_000)];
        frames(&mut wire, msg, i % 2 == 0, 1 + i % 3);
    }
    let mut conn = Connection::server(config(p));
    let mut failed = false;
    for piece in wire.chunks(1 + usize::from(p) * 7) {
        failed = conn.handle_read(piece).is_err();
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Text(t) => {
                    assert!(t.len() <= LIMIT && std::str::from_utf8(&t).is_ok());
                    let _ = conn.send_bytes(MessageKind::Text, t);
                }
                Event::Binary(b) => {
                    assert!(b.len() <= LIMIT);
                    let _ = conn.send_bytes(MessageKind::Binary, b);
                }
                _ => {}
            }
        }
        while conn.poll_transmit().is_some() {}
        if failed {
            assert!(conn.handle_read(b"\x81\x80\0\0\0\0").is_err(), "errors are sticky");
            break;
        }
    }
    let _ = failed;
    assert!(conn.deflate_memory() < 1 << 20);
});
