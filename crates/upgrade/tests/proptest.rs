//! Property tests: built requests and responses parse back to what was built, and input
//! split at arbitrary points gives the same result as input fed whole.
#![allow(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

use proptest::prelude::*;
use stompbox_upgrade::{
    Accept, ClientEvent, ClientHandshake, ClientRequest, Error, Extension, Incoming, Limits,
    Negotiated, RequestHead, ServerEvent, ServerHandshake, Status, UpgradeRequest, parse_request,
};

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,12}"
}

fn extension() -> impl Strategy<Value = Extension> {
    (
        token(),
        prop::collection::vec((token(), prop::option::of(token())), 0..4),
    )
        .prop_map(|(name, params)| {
            params.into_iter().fold(Extension::new(name), |e, (n, v)| {
                e.with_param(n, v.as_deref())
            })
        })
}

#[derive(Debug, Clone)]
struct Req {
    host: String,
    path: String,
    origin: Option<String>,
    protocols: Vec<String>,
    extensions: Vec<Extension>,
    headers: Vec<(String, String)>,
    nonce: [u8; 16],
}

fn req() -> impl Strategy<Value = Req> {
    (
        "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
        "/[a-zA-Z0-9/._~%-]{0,20}(\\?[a-z0-9=&]{0,10})?",
        prop::option::of("https?://[a-z.]{1,15}"),
        prop::collection::vec(token(), 0..4),
        prop::collection::vec(extension(), 0..3),
        prop::collection::vec(("X-[a-zA-Z0-9-]{1,10}", "[!-~]([ -~]{0,20}[!-~])?"), 0..4),
        any::<[u8; 16]>(),
    )
        .prop_map(
            |(host, path, origin, protocols, extensions, headers, nonce)| Req {
                host,
                path,
                origin,
                protocols,
                extensions,
                headers,
                nonce,
            },
        )
}

fn build(r: &Req) -> ClientRequest<'_> {
    let protocols: Vec<&str> = r.protocols.iter().map(String::as_str).collect();
    let mut c = ClientRequest::new(&r.host, &r.path).protocols(&protocols);
    if let Some(o) = &r.origin {
        c = c.origin(o);
    }
    for e in &r.extensions {
        c = c.extension(e.clone());
    }
    for (n, v) in &r.headers {
        c = c.header(n, v.as_bytes());
    }
    c
}

fn encode(r: &Req) -> Vec<u8> {
    let mut out = Vec::new();
    build(r)
        .write(r.nonce, &mut out)
        .expect("generated requests are valid");
    out
}

/// Splits `input` at the given (sorted, deduplicated) points.
fn chunks(input: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
    for c in &mut cuts {
        *c %= input.len() + 1;
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts {
        out.push(&input[start..c]);
        start = c;
    }
    out.push(&input[start..]);
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Error(Error, Vec<u8>),
    Upgrade(Box<UpgradeRequest>, Negotiated, Vec<u8>, Vec<u8>),
    Http(Box<RequestHead>, Vec<u8>),
    Partial,
}

/// Drives a server handshake with `pieces`; bytes not taken after the event count as
/// leftover (the host keeps them), so every split must hand on the same bytes.
fn serve(pieces: &[&[u8]]) -> Outcome {
    let mut hs = ServerHandshake::new(Limits {
        max_head_bytes: 2048,
        ..Limits::default()
    });
    let mut unfed = Vec::new();
    let mut event = None;
    for p in pieces {
        if event.is_some() {
            unfed.extend_from_slice(p);
            continue;
        }
        if let Err(e) = hs.handle_read(p) {
            return Outcome::Error(e, hs.poll_transmit_vec().unwrap_or_default());
        }
        event = hs.poll_event();
    }
    match event {
        None => Outcome::Partial,
        Some(ServerEvent::Upgrade(r)) => {
            let protocol = r.protocols().next().map(String::from);
            let up = hs
                .accept(&r, Accept::new().protocol(protocol.as_deref()))
                .unwrap();
            let out = hs.poll_transmit_vec().unwrap();
            Outcome::Upgrade(
                Box::new(r),
                up.negotiated,
                [up.leftover, unfed].concat(),
                out,
            )
        }
        Some(ServerEvent::Http(h)) => {
            Outcome::Http(Box::new(h), [hs.take_leftover(), unfed].concat())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A built request parses back to what was built.
    #[test]
    fn built_requests_parse_back(r in req()) {
        let bytes = encode(&r);
        let Ok(Status::Complete((Incoming::Upgrade(u), n))) = parse_request(&bytes, &Limits::default()) else {
            panic!("not an upgrade: {}", String::from_utf8_lossy(&bytes));
        };
        prop_assert_eq!(n, bytes.len());
        prop_assert_eq!(u.head().target(), r.path.as_str());
        prop_assert_eq!(u.host(), r.host.as_str());
        prop_assert_eq!(u.origin(), r.origin.as_deref());
        prop_assert_eq!(u.protocols().collect::<Vec<_>>(), r.protocols.iter().map(String::as_str).collect::<Vec<_>>());
        prop_assert_eq!(u.extensions(), r.extensions.clone());
        prop_assert_eq!(u.key(), stompbox_upgrade::Key::from_nonce(r.nonce));
        for (name, value) in &r.headers {
            prop_assert!(u.head().header_all(name).any(|v| v == value.as_bytes()));
        }
    }

    /// A valid request with trailing frame bytes, split anywhere, gives the same outcome.
    #[test]
    fn server_split_invariance(r in req(), tail in prop::collection::vec(any::<u8>(), 0..40),
                               cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let mut input = encode(&r);
        input.extend_from_slice(&tail);
        let whole = serve(&[&input]);
        prop_assert!(matches!(whole, Outcome::Upgrade(..)), "{:?}", whole);
        if let Outcome::Upgrade(_, _, leftover, _) = &whole {
            prop_assert_eq!(leftover, &tail);
        }
        prop_assert_eq!(serve(&chunks(&input, cuts)), whole);
    }

    /// Mutated requests (a byte changed, bytes cut) behave the same fed whole or split,
    /// and never panic.
    #[test]
    fn server_split_invariance_mutated(r in req(), at in any::<usize>(), byte in any::<u8>(),
                                       cut in any::<usize>(),
                                       cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let mut input = encode(&r);
        let i = at % input.len();
        input[i] = byte;
        input.truncate(input.len() - cut % 8);
        prop_assert_eq!(serve(&chunks(&input, cuts.clone())), serve(&[&input]));
    }

    /// Arbitrary bytes: same outcome in any split, no panic.
    #[test]
    fn server_arbitrary_bytes(input in prop::collection::vec(any::<u8>(), 0..300),
                              cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        prop_assert_eq!(serve(&chunks(&input, cuts)), serve(&[&input]));
    }

    /// The server's 101 for a built request is accepted by the client that built it, in any
    /// split, and both sides agree on what was negotiated.
    #[test]
    fn client_accepts_server_response(r in req(), pick in any::<prop::sample::Index>(),
                                      take_ext in any::<bool>(),
                                      tail in prop::collection::vec(any::<u8>(), 0..20),
                                      cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let request = build(&r);
        let mut client = ClientHandshake::new(&request, r.nonce, Limits::default()).unwrap();
        let sent = client.poll_transmit_vec().unwrap();
        let Ok(Status::Complete((Incoming::Upgrade(u), _))) = parse_request(&sent, &Limits::default()) else {
            panic!("not an upgrade");
        };
        let protocol = (!r.protocols.is_empty()).then(|| r.protocols[pick.index(r.protocols.len())].as_str());
        let mut accept = Accept::new().protocol(protocol).header("Set-Cookie", b"a=b");
        if take_ext && let Some(e) = r.extensions.first() {
            accept = accept.extension(e.clone());
        }
        let mut response = Vec::new();
        let server_side = u.accept(accept, &mut response).unwrap();
        response.extend_from_slice(&tail);

        let mut whole = ClientHandshake::new(&request, r.nonce, Limits::default()).unwrap();
        whole.handle_read(&response).unwrap();
        let Some(ClientEvent::Upgraded(w)) = whole.poll_event() else { panic!("no event") };
        prop_assert_eq!(&w.negotiated, &server_side);
        prop_assert_eq!(&w.leftover, &tail);
        prop_assert_eq!(w.response.header("set-cookie"), Some(&b"a=b"[..]));

        let mut split = ClientHandshake::new(&request, r.nonce, Limits::default()).unwrap();
        let mut unfed = Vec::new();
        let mut event = None;
        for p in chunks(&response, cuts) {
            if event.is_some() { unfed.extend_from_slice(p); continue; }
            split.handle_read(p).unwrap();
            event = split.poll_event();
        }
        let Some(ClientEvent::Upgraded(s)) = event else { panic!("no event") };
        prop_assert_eq!(s.negotiated, w.negotiated);
        prop_assert_eq!(s.response, w.response);
        prop_assert_eq!([s.leftover, unfed].concat(), tail);
    }

    /// Arbitrary responses: same result whole or split, no panic.
    #[test]
    fn client_arbitrary_bytes(input in prop::collection::vec(any::<u8>(), 0..300),
                              cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let request = ClientRequest::new("h", "/");
        let run = |pieces: &[&[u8]]| -> Result<Option<ClientEvent>, Error> {
            let mut hs = ClientHandshake::new(&request, [7; 16], Limits::default()).unwrap();
            for p in pieces {
                hs.handle_read(p)?;
                if let Some(ev) = hs.poll_event() { return Ok(Some(ev)); }
            }
            Ok(None)
        };
        let whole = run(&[&input]);
        let split = run(&chunks(&input, cuts));
        // A split may report the event before the tail arrives; compare the decision only.
        prop_assert_eq!(whole.is_ok(), split.is_ok());
        prop_assert_eq!(whole.err(), split.err());
    }
}
