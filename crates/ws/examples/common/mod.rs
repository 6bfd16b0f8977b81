//! The blocking `std::net` host loop shared by the Autobahn examples: echo every message.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use stompbox_ws::{Config, Connection, Event, MessageKind};

/// The limits Autobahn sections 9.x need (16 MiB messages, 65,536 fragments); the library's
/// defaults stay small. AutobahnPython ends a message whose length is a multiple of the
/// fragment size with an extra empty final frame, so 9.3.1/9.4.1 (4 MiB in 64-byte
/// fragments) arrive as 65,536 + 1 frames.
pub(crate) fn autobahn_config() -> Config {
    Config::default()
        .max_frame_size(16 << 20)
        .max_message_size(16 << 20)
        .max_fragments(65_536 + 1)
        .max_output_buffer(64 << 20)
}

/// Whether permessage-deflate is on: env `STOMPBOX_DEFLATE` set to anything but `0` (the
/// examples must then be built with feature `deflate`).
pub(crate) fn deflate_wanted() -> bool {
    std::env::var("STOMPBOX_DEFLATE").is_ok_and(|v| v != "0")
}

/// The negotiated parameters as the connection's deflate config (level 6, messages of 32
/// bytes and more compressed).
#[cfg(feature = "deflate")]
pub(crate) fn deflate_config(p: stompbox_upgrade::DeflateParams) -> stompbox_ws::DeflateConfig {
    stompbox_ws::DeflateConfig::negotiated(
        p.server_no_context_takeover,
        p.client_no_context_takeover,
        p.server_max_window_bits,
        p.client_max_window_bits,
    )
}

/// What the echo loop saw, for the client's control messages.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// The first text message (the case count of `/getCaseCount`).
    pub(crate) first_text: Option<String>,
}

/// Runs `conn` over `stream` until the connection is over: echoes text as text and binary as
/// binary, writes what the machine transmits, closes the transport when it says so.
pub(crate) fn echo_loop(
    stream: &mut TcpStream,
    conn: &mut Connection,
    leftover: &[u8],
    echo: bool,
) -> io::Result<Outcome> {
    let started = Instant::now();
    let mut outcome = Outcome::default();
    let mut buf = vec![0u8; 256 * 1024];
    let mut result = conn.handle_read(leftover);
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    loop {
        // The drain contract: events first (so replies to messages that came before a Close
        // go out before our Close frame), then transmits, then time.
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Text(text) => {
                    if outcome.first_text.is_none() {
                        outcome.first_text = Some(String::from_utf8_lossy(&text).into_owned());
                    }
                    if echo {
                        let _ = conn.send_bytes(MessageKind::Text, text);
                    }
                }
                Event::Binary(data) => {
                    if echo {
                        let _ = conn.send_bytes(MessageKind::Binary, data);
                    }
                }
                Event::Closed(_) | Event::Ping(_) | Event::Pong(_) | Event::Fragment(_) => {}
            }
        }
        while let Some(out) = conn.poll_transmit() {
            if stream.write_all(&out).is_err() {
                conn.handle_eof();
            }
        }
        conn.handle_timeout(started.elapsed().as_millis() as u64);
        if result.is_err() || conn.should_close_transport() {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) => conn.handle_eof(),
            Ok(n) => result = conn.handle_read(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => conn.handle_eof(),
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    Ok(outcome)
}
