//! The stacked server connection (`stompbox::ServerConnection`) driven by arbitrary bytes: the
//! HTTP head, WebSocket frames (masked by a real client encoder or raw from the fuzzer), raw
//! STOMP, with host commands and time interleaved. It must never panic, and its queued output
//! must stay bounded by what the host asked it to send plus the protocol's own replies.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use stompbox::{ConnectionConfig, ServerConnection, ServerEvent};

const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Protocol: v12.stomp\r\n\r\n";
const ECHO: &[u8] = b"GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// The same upgrades with a browser's permessage-deflate offer, so that the inflating receive
/// path and the compressing send path run behind the stacked connection too.
const UPGRADE_DEFLATE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Protocol: v12.stomp\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
const ECHO_DEFLATE: &[u8] = b"GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let config = Arc::new(ConnectionConfig {
        echo_path: Some("/echo".into()),
        max_frame: 4096,
        max_message: 8192,
        max_output: 16384,
        echo_max_message: 8192,
        upgrade: stompbox::upgrade::Limits {
            max_head_bytes: 2048,
            max_headers: 16,
            handshake_timeout_ms: Some(1000),
        },
        ..ConnectionConfig::default()
    });
    let mut conn = match mode % 6 {
        0 => ServerConnection::raw_stomp(&config),
        1 => {
            let mut c = ServerConnection::websocket(&config, 0);
            c.handle_read(UPGRADE);
            c
        }
        2 => {
            let mut c = ServerConnection::websocket(&config, 0);
            c.handle_read(ECHO);
            c
        }
        3 => ServerConnection::websocket(&config, 0),
        4 => {
            let mut c = ServerConnection::websocket(&config, 0);
            c.handle_read(UPGRADE_DEFLATE);
            c
        }
        _ => {
            let mut c = ServerConnection::websocket(&config, 0);
            c.handle_read(ECHO_DEFLATE);
            c
        }
    };
    let mut now = 0u64;
    let mut sent_by_host = 0usize;
    let mut chunks = rest;
    while let Some((&op, tail)) = chunks.split_first() {
        let len = usize::from(op >> 3).min(tail.len());
        let (chunk, next) = tail.split_at(len);
        chunks = next;
        match op & 7 {
            0..=3 => conn.handle_read(chunk),
            4 => {
                conn.send_stomp(&[b"MESSAGE\ndestination:/t\n\n", chunk, b"\0"]);
                sent_by_host += chunk.len() + 64;
            }
            5 => {
                now += u64::from(op) * 16;
                conn.handle_timeout(now);
            }
            6 => match op >> 6 {
                0 => conn.finish(),
                1 => conn.shutdown("stop"),
                2 => conn.refuse("busy"),
                _ => conn.handle_eof(),
            },
            _ => {
                // A partial drain.
                let _ = conn.poll_transmit();
            }
        }
        while let Some(ev) = conn.poll_event() {
            if let ServerEvent::Http(_) = ev {
                conn.respond(404, "text/plain", b"no", false);
            }
        }
        // Bounded: the host's own sends, echoes of bounded messages, replies and handshake.
        assert!(
            conn.pending_output() <= sent_by_host + 4 * 8192 + 4096,
            "output {} over bound",
            conn.pending_output()
        );
    }
    while conn.poll_transmit().is_some() {}
});
