//! Shared driver for the connection fuzz targets.

use stompbox_ws::{Config, Connection, Event, MessageKind};

/// Small limits so memory stays bounded whatever the input claims.
pub fn config(streaming: bool) -> Config {
    Config::default()
        .max_frame_size(64 * 1024)
        .max_message_size(128 * 1024)
        .max_fragments(64)
        .max_output_buffer(256 * 1024)
        .streaming(streaming)
}

/// Feeds `data` in pieces whose sizes come from the first bytes, echoing what arrives and
/// draining everything as a host would; checks the limits hold.
pub fn drive(mut conn: Connection, data: &[u8]) {
    let (sizes, body) = data.split_at(data.len().min(8));
    let mut rest = body;
    let mut i = 0;
    let mut now = 0u64;
    while !rest.is_empty() {
        let size = usize::from(sizes.get(i % sizes.len().max(1)).copied().unwrap_or(255)) + 1;
        i += 1;
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        let failed = conn.handle_read(piece).is_err();
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Text(t) => {
                    assert!(std::str::from_utf8(&t).is_ok());
                    let _ = conn.send_bytes(MessageKind::Text, t);
                }
                Event::Binary(b) => {
                    let _ = conn.send_bytes(MessageKind::Binary, b);
                }
                Event::Fragment(f) => {
                    if f.kind == MessageKind::Text {
                        assert!(std::str::from_utf8(&f.data).is_ok());
                    }
                    let _ = conn.send_fragment(f.kind, &f.data, f.last);
                }
                Event::Ping(p) => {
                    let _ = conn.send_pong(&p);
                }
                Event::Pong(_) | Event::Closed(_) => {}
            }
        }
        assert!(conn.pending_output() <= 256 * 1024 + 4 * 1024, "output bounded");
        while conn.poll_transmit().is_some() {}
        now += 1_000;
        conn.handle_timeout(now);
        let _ = conn.poll_timeout();
        if failed {
            assert!(conn.handle_read(b"\x81\x80\0\0\0\0").is_err(), "errors are sticky");
            break;
        }
    }
    let _ = conn.close(None, "");
    conn.handle_eof();
    while conn.poll_event().is_some() {}
    while conn.poll_transmit().is_some() {}
    assert!(conn.should_close_transport());
}
