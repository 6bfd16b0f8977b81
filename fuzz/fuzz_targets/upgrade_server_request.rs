//! The server request parser and state machine on arbitrary input: no panic, split input gives
//! the same outcome as whole input, and whatever is accepted produces a response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stompbox_upgrade::{
    Accept, Incoming, Limits, ServerEvent, ServerHandshake, Status, parse_request,
};

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else { return };
    let limits = Limits { max_head_bytes: 4096, max_headers: 32, handshake_timeout_ms: None };

    // One call over the whole buffer.
    let whole = parse_request(input, &limits);
    if let Ok(Status::Complete((incoming, n))) = &whole {
        assert!(*n <= input.len());
        if let Incoming::Upgrade(req) = incoming {
            let _ = req.host();
            let _ = req.origin();
            let offered: Vec<&str> = req.protocols().collect();
            let extensions = req.extensions();
            let mut accept = Accept::new().protocol(offered.first().copied());
            for e in extensions {
                accept = accept.extension(e);
            }
            let mut out = Vec::new();
            let negotiated = req.accept(accept, &mut out).expect("accepting an offer works");
            assert!(out.starts_with(b"HTTP/1.1 101 "));
            assert_eq!(negotiated.protocol.as_deref(), offered.first().copied());
        }
    }

    // The machine, fed in pieces of `split + 1` bytes.
    let mut hs = ServerHandshake::new(limits);
    let mut outcome = None;
    let mut fed = 0;
    for piece in input.chunks(usize::from(split) + 1) {
        match hs.handle_read(piece) {
            Ok(()) => {}
            Err(e) => {
                outcome = Some(Err(e));
                break;
            }
        }
        fed += piece.len();
        if let Some(ev) = hs.poll_event() {
            outcome = Some(Ok(ev));
            break;
        }
    }
    match (&whole, outcome) {
        (Err(e), Some(Err(machine))) => {
            assert_eq!(machine, stompbox_upgrade::Error::Request(*e));
            let out = hs.poll_transmit_vec().expect("a rejection queues its response");
            assert!(out.starts_with(b"HTTP/1.1 4"));
        }
        (Ok(Status::Complete((Incoming::Upgrade(a), n))), Some(Ok(ServerEvent::Upgrade(b)))) => {
            assert_eq!(a, &b);
            let up = hs.accept(&b, Accept::new()).expect("accept");
            // Leftover plus what was not fed yet is exactly what followed the head.
            assert_eq!([&up.leftover[..], &input[fed..]].concat(), &input[*n..]);
        }
        (Ok(Status::Complete((Incoming::Http(a), _))), Some(Ok(ServerEvent::Http(b)))) => {
            assert_eq!(a, &b);
        }
        (Ok(Status::Partial), None) => {}
        // The machine parses when a line ends: an error in a last, unterminated line is
        // reported once that line ends (or the head limit is reached).
        (Err(_), None) => {}
        // At the head limit the machine stops; the whole input may show a later error.
        (Err(_), Some(Err(stompbox_upgrade::Error::Request(too_large))))
            if too_large == stompbox_upgrade::RequestError::HeadTooLarge => {}
        (w, m) => panic!("whole {w:?} but machine {m:?}"),
    }
});
