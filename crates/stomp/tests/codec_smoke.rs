#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]

use bytes::BytesMut;
use stompbox_stomp::*;

#[test]
fn round_trip_escaped() {
    let f = Frame::builder(Command::Message)
        .header("destination", "/q/a:b")
        .header("x\nname", "v\\al\r")
        .body(&b"hi\0there"[..])
        .build();
    let mut out = BytesMut::new();
    encode(&f, Version::V1_2, &mut out).unwrap();
    let mut p = Parser::new(Limits::default());
    let g = p.parse(&mut out).unwrap().unwrap();
    let want: Vec<_> = f.headers().chain([("content-length", "8")]).collect();
    assert_eq!(g.headers().collect::<Vec<_>>(), want);
    assert_eq!(g.body(), f.body());
    assert!(out.is_empty());
}
