//! Criterion benches for stompbox live in `benches/benches/`; run them with `cargo bench -p stompbox-benches`.
//! Peer crates (tungstenite, fastwebsockets, ...) are dev-dependencies of this package only.
#![forbid(unsafe_code)]
