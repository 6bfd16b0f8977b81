//! The client response parser and state machine on arbitrary input: no panic, split input
//! gives the same decision as whole input, and accepted responses only carry what was offered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stompbox_upgrade::{
    ClientEvent, ClientHandshake, ClientRequest, Extension, Limits, Offer, Status, parse_response,
};

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else { return };
    let limits = Limits { max_head_bytes: 4096, max_headers: 32, handshake_timeout_ms: None };
    let request = ClientRequest::new("example.com", "/stomp")
        .protocols(&["v12.stomp", "v11.stomp"])
        .extension(Extension::new("permessage-deflate").with_param("client_max_window_bits", None));
    // The nonce that makes the RFC's key, so a fuzzer-found accept key is
    // s3pPLMBiTxaQ9kYGzzhZRbK+xOo= (seed the corpus with a valid response).
    let nonce = *b"the sample nonce";
    let mut sink = Vec::new();
    let key = request.write(nonce, &mut sink).expect("valid request");
    let whole = parse_response(input, &Offer::new(&request, key), &limits);
    if let Ok(Status::Complete((head, negotiated, n))) = &whole {
        assert_eq!(head.status(), 101);
        assert!(*n <= input.len());
        if let Some(p) = &negotiated.protocol {
            assert!(p == "v12.stomp" || p == "v11.stomp");
        }
        assert!(negotiated.extensions.iter().all(|e| e.name.eq_ignore_ascii_case("permessage-deflate")));
    }

    let mut hs = ClientHandshake::new(&request, nonce, limits).expect("valid request");
    let _ = hs.poll_transmit_vec();
    let mut outcome = None;
    for piece in input.chunks(usize::from(split) + 1) {
        if let Err(e) = hs.handle_read(piece) {
            outcome = Some(Err(e));
            break;
        }
        if let Some(ev) = hs.poll_event() {
            outcome = Some(Ok(ev));
            break;
        }
    }
    match (&whole, outcome) {
        (Err(e), Some(Err(machine))) => {
            assert_eq!(machine, stompbox_upgrade::Error::Response(e.clone()));
        }
        (Ok(Status::Complete((_, a, _))), Some(Ok(ClientEvent::Upgraded(b)))) => {
            assert_eq!(a, &b.negotiated);
        }
        (Ok(Status::Partial), None) => {}
        // The machine parses when a line ends: an error in a last, unterminated line is
        // reported once that line ends (or the head limit is reached).
        (Err(_), None) => {}
        // At the head limit the machine stops; the whole input may show a later error.
        (Err(_), Some(Err(stompbox_upgrade::Error::Response(too_large))))
            if too_large == stompbox_upgrade::ResponseError::HeadTooLarge => {}
        (w, m) => panic!("whole {w:?} but machine {m:?}"),
    }
});
