//! Fuzz the STOMP frame parser: arbitrary bytes, split at fuzzer-chosen points, for every
//! version. Invariants: no panic; split input gives the same frames as whole input; every
//! parsed frame re-encodes and parses back to itself.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use stompbox_stomp::{Limits, Parser, Version, encode_to_bytes};

fn run(version: Version, chunks: &[&[u8]]) -> (Vec<stompbox_stomp::Frame>, Option<stompbox_stomp::ParseError>) {
    let limits = Limits { max_head_bytes: 2048, max_headers: 16, max_header_line: 512, max_body_bytes: 4096 };
    let mut p = Parser::new(limits);
    p.set_version(version);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        loop {
            match p.parse(&mut buf) {
                Ok(Some(f)) => out.push(f),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let version = Version::ALL[usize::from(data[0]) % 3];
    let split = usize::from(data.get(1).copied().unwrap_or(1)).max(1);
    let input = &data[1..];
    let (whole, whole_err) = run(version, &[input]);
    let chunks: Vec<&[u8]> = input.chunks(split).collect();
    let (pieces, pieces_err) = run(version, &chunks);
    assert_eq!(whole, pieces, "split changed the frames");
    assert_eq!(whole_err.is_some(), pieces_err.is_some(), "split changed the verdict");
    for f in &whole {
        if let Ok(wire) = encode_to_bytes(f, version) {
            let (again, err) = run(version, &[&wire]);
            if err.is_none() {
                assert_eq!(again.len(), 1);
                assert_eq!(again[0].command(), f.command());
                assert_eq!(again[0].body(), f.body());
            }
        }
    }
});
