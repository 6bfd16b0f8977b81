//! Differential check of the receive path's fast kernels (fused unmask + UTF-8 validation,
//! masking at every alignment, runs of small frames, streaming stores): arbitrary payload
//! bytes sent as text and as binary, masked with a key from the input, in one frame or
//! fragments, fed in reads of a size from the input, must come out exactly as sent, and text
//! must be accepted iff `core::str::from_utf8` accepts it (otherwise close 1007).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stompbox_ws::{
    Config, Connection, Event, FrameHeader, MAX_HEADER_LEN, OpCode, ProtocolError,
    apply_mask, apply_mask_reference,
};

fn frame(out: &mut Vec<u8>, fin: bool, opcode: OpCode, key: [u8; 4], payload: &[u8]) {
    let header = FrameHeader {
        mask: Some(key),
        fin,
        ..FrameHeader::new(opcode, payload.len() as u64)
    };
    let mut h = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut h).expect("fits");
    out.extend_from_slice(&h[..n]);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask_reference(&mut out[start..], key, 0);
}

fuzz_target!(|data: &[u8]| {
    let [mode, read, k0, k1, k2, k3, payload @ ..] = data else {
        return;
    };
    let key = [*k0, *k1, *k2, *k3];

    // apply_mask (vector kernels, any alignment and offset) against the byte loop.
    let skip = usize::from(mode & 7).min(payload.len());
    let mut fast = payload.to_vec();
    let mut slow = payload.to_vec();
    apply_mask(&mut fast[skip..], key, usize::from(*read));
    apply_mask_reference(&mut slow[skip..], key, usize::from(*read));
    assert_eq!(fast, slow);

    // The same payload before and after a run of small frames, as text and as binary.
    let fragments = usize::from(mode >> 4) + 1;
    let piece = payload.len().div_ceil(fragments).max(1);
    let mut wire = Vec::new();
    frame(&mut wire, true, OpCode::Text, key, b"lead");
    for opcode in [OpCode::Binary, OpCode::Text] {
        let pieces: Vec<&[u8]> = if payload.is_empty() {
            vec![&[]]
        } else {
            payload.chunks(piece).collect()
        };
        for (i, p) in pieces.iter().enumerate() {
            let op = if i == 0 { opcode } else { OpCode::Continuation };
            frame(&mut wire, i + 1 == pieces.len(), op, key, p);
        }
    }
    let mut conn = Connection::server(Config::default());
    let read = usize::from(*read) * 97 + 1;
    let mut result = Ok(());
    for chunk in wire.chunks(read) {
        result = conn.handle_read(chunk);
        if result.is_err() {
            break;
        }
    }
    let events: Vec<Event> = std::iter::from_fn(|| conn.poll_event()).collect();
    assert!(matches!(&events[0], Event::Text(t) if &t[..] == b"lead"));
    assert!(matches!(&events[1], Event::Binary(b) if &b[..] == payload));
    if std::str::from_utf8(payload).is_ok() {
        assert_eq!(result, Ok(()));
        assert!(matches!(&events[2], Event::Text(t) if &t[..] == payload));
        assert_eq!(events.len(), 3);
    } else {
        assert_eq!(result, Err(ProtocolError::InvalidUtf8));
        assert!(matches!(&events[2], Event::Closed(_)));
        assert_eq!(events.len(), 3);
    }
});
