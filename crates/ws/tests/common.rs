//! Helpers shared by the integration tests: hand-built frames and a draining reader.
#![allow(dead_code, unreachable_pub)]

use stompbox_ws::{Connection, Event, ProtocolError, apply_mask_reference};

pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A raw frame: first byte given as `b0` (FIN | RSV | opcode), masked with `mask` if any.
pub fn raw(b0: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    let m = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(m | len as u8);
    } else if len <= 0xffff {
        out.push(m | 0x7e);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 0x7f);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mut body = payload.to_vec();
    if let Some(key) = mask {
        out.extend_from_slice(&key);
        apply_mask_reference(&mut body, key, 0);
    }
    out.extend_from_slice(&body);
    out
}

/// A masked frame as a client sends it.
pub fn cframe(b0: u8, payload: &[u8]) -> Vec<u8> {
    raw(b0, Some(KEY), payload)
}

/// An unmasked frame as a server sends it.
pub fn sframe(b0: u8, payload: &[u8]) -> Vec<u8> {
    raw(b0, None, payload)
}

pub fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

pub fn output(c: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = c.poll_transmit() {
        out.extend_from_slice(&b);
    }
    out
}

/// Feeds `bytes` one byte at a time, stopping at the first error.
pub fn feed_bytewise(c: &mut Connection, bytes: &[u8]) -> Result<(), ProtocolError> {
    for b in bytes {
        c.handle_read(std::slice::from_ref(b))?;
    }
    Ok(())
}

/// Decodes the unmasked server frames in `bytes` into (b0, payload) pairs.
pub fn parse_server_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let Ok(stompbox_ws::Status::Complete((h, n))) = stompbox_ws::FrameHeader::decode(bytes)
        else {
            panic!("bad server output {bytes:?}");
        };
        assert!(h.mask.is_none());
        let len = h.payload_len as usize;
        frames.push((bytes[0], bytes[n..n + len].to_vec()));
        bytes = &bytes[n + len..];
    }
    frames
}

/// Decodes masked client frames into (b0, unmasked payload) pairs.
pub fn parse_client_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let Ok(stompbox_ws::Status::Complete((h, n))) = stompbox_ws::FrameHeader::decode(bytes)
        else {
            panic!("bad client output {bytes:?}");
        };
        let key = h.mask.expect("client frames are masked");
        let len = h.payload_len as usize;
        let mut p = bytes[n..n + len].to_vec();
        apply_mask_reference(&mut p, key, 0);
        frames.push((bytes[0], p));
        bytes = &bytes[n + len..];
    }
    frames
}
