//! Sans-IO HTTP/1.1 Upgrade handshake for WebSocket (RFC 6455 §4), servers and clients.
//!
//! No sockets, clocks, threads or RNG: bytes go in, events and bytes come out, so any host
//! (a blocking `std::net` loop, mio, a fuzzer, a test with a `Vec<u8>`) can drive it.
//!
//! - Server: [`ServerHandshake`] (a state machine) or [`parse_request`] (one call over a
//!   buffer you own). A valid upgrade is reported as [`UpgradeRequest`] (path, query, Origin,
//!   every header, offered subprotocols and extensions); a plain HTTP request as
//!   [`RequestHead`] so the host can serve a page on the same port. Every rejection is a
//!   [`RequestError`] that knows its HTTP status (400, 403, 405, 408, 426, 431) and writes
//!   its response.
//! - Client: [`ClientRequest`] builds the request, [`ClientHandshake`] checks the response
//!   (101, `Upgrade`, `Connection`, the accept key, subprotocol and extensions offered); a
//!   non-101 answer is [`ResponseError::Status`] with the whole head.
//! - Both hand over explicitly: what was [`Negotiated`] plus the bytes that arrived behind the
//!   head (`leftover`), from which the WebSocket connection is built.
//! - [`Limits`]: head bytes, header count, handshake deadline; small defaults.
//!
//! Features: `std` (default: `std::error::Error` impls), `getrandom` (a client nonce helper),
//! `http` (conversions from/to `http::Request` / `http::Response`).
//!
//! # A complete host loop
//!
//! The server side of a blocking host. Drive the machine with the drain contract: after each
//! `handle_*` call or command, drain `poll_transmit`, `poll_event` and `poll_timeout` before
//! the next input. Here the "socket" is in memory and holds the client's request followed by
//! its first WebSocket frame.
//!
//! ```
//! use std::io::{Read, Write};
//! use stompbox_upgrade::{Accept, ClientRequest, Limits, RequestError, ServerEvent, ServerHandshake, Upgraded};
//!
//! /// Runs the handshake on `stream`; returns what the WebSocket layer is built from, or
//! /// `None` when the request was not a WebSocket upgrade or was rejected.
//! fn handshake(stream: &mut (impl Read + Write)) -> std::io::Result<Option<Upgraded>> {
//!     let mut hs = ServerHandshake::new(Limits::default());
//!     let mut buf = [0u8; 4096];
//!     loop {
//!         let n = stream.read(&mut buf)?;
//!         if n == 0 {
//!             return Ok(None); // closed before the head was complete
//!         }
//!         let result = hs.handle_read(&buf[..n]);
//!         // Drain: output first (a rejection's response is already queued) ...
//!         while let Some(out) = hs.poll_transmit_vec() {
//!             stream.write_all(&out)?;
//!         }
//!         if result.is_err() {
//!             return Ok(None); // rejected: the error response was sent; close
//!         }
//!         // ... then events.
//!         while let Some(event) = hs.poll_event() {
//!             match event {
//!                 ServerEvent::Upgrade(req) => {
//!                     if req.origin().is_some_and(|o| o != "https://example.com") {
//!                         hs.reject(RequestError::ForbiddenOrigin).unwrap();
//!                         let out = hs.poll_transmit_vec().unwrap_or_default();
//!                         stream.write_all(&out)?;
//!                         return Ok(None);
//!                     }
//!                     let protocol = req.choose_protocol(&["v12.stomp", "v11.stomp"]);
//!                     let upgraded = hs.accept(&req, Accept::new().protocol(protocol)).unwrap();
//!                     let out = hs.poll_transmit_vec().unwrap_or_default();
//!                     stream.write_all(&out)?;
//!                     return Ok(Some(upgraded));
//!                 }
//!                 ServerEvent::Http(head) => {
//!                     let body = format!("no WebSocket at {}\n", head.path());
//!                     write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len())?;
//!                     return Ok(None);
//!                 }
//!             }
//!         }
//!     }
//! }
//!
//! /// An in-memory stream that hands out its input 7 bytes at a time.
//! struct Mem { input: Vec<u8>, pos: usize, output: Vec<u8> }
//! impl Read for Mem {
//!     fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
//!         let n = buf.len().min(7).min(self.input.len() - self.pos);
//!         buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
//!         self.pos += n;
//!         Ok(n)
//!     }
//! }
//! impl Write for Mem {
//!     fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> { self.output.extend_from_slice(buf); Ok(buf.len()) }
//!     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! }
//!
//! let mut input = Vec::new();
//! ClientRequest::new("example.com", "/stomp")
//!     .origin("https://example.com")
//!     .protocols(&["v11.stomp", "v12.stomp"])
//!     .write(*b"the sample nonce", &mut input)
//!     .unwrap();
//! input.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]); // a masked empty text frame
//!
//! let mut stream = Mem { input, pos: 0, output: Vec::new() };
//! let upgraded = handshake(&mut stream).unwrap().expect("upgraded");
//! assert_eq!(upgraded.negotiated.protocol.as_deref(), Some("v12.stomp"));
//! assert!(stream.output.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
//! assert!(std::str::from_utf8(&stream.output).unwrap().contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
//! // The bytes behind the head (read together with it) are handed on, never dropped; the rest
//! // is still in the socket.
//! let rest = &stream.input[stream.pos..];
//! assert_eq!([&upgraded.leftover[..], rest].concat(), [0x81, 0x80, 1, 2, 3, 4]);
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod client;
#[cfg(feature = "deflate")]
mod deflate;
mod error;
mod head;
#[cfg(feature = "http")]
mod http_compat;
mod key;
mod server;

use alloc::string::String;
use alloc::vec::Vec;

pub use client::{
    ClientEvent, ClientHandshake, ClientRequest, ClientState, ClientUpgraded, Offer, ResponseHead,
    parse_response,
};
#[cfg(feature = "deflate")]
pub use deflate::{
    ClientWindowBits, DeflateAgreement, DeflateError, DeflateOffer, DeflateParams, DeflatePolicy,
    PERMESSAGE_DEFLATE,
};
pub use error::{Error, Misuse, RequestError, ResponseError};
pub use head::{Extension, ExtensionParam, Header, Headers, Status, is_token};
#[cfg(feature = "http")]
pub use http_compat::{check_http_response, parse_http_request};
#[cfg(feature = "getrandom")]
pub use key::random_nonce;
pub use key::{AcceptKey, Key, WEBSOCKET_GUID, accept_key};
pub use server::{
    Accept, Incoming, RequestHead, ServerEvent, ServerHandshake, ServerState, UpgradeRequest,
    Upgraded, parse_request,
};

/// Limits applied while reading a head. Exceeding one is a typed error (431 on the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes a head may take, request line and terminator included. Default 16 KiB
    /// (room for a browser's cookies; nginx's default is 8 KiB per line, 32 KiB total).
    pub max_head_bytes: usize,
    /// Most header lines. Default 64 (a browser upgrade sends about 15).
    pub max_headers: usize,
    /// How long the head may take to arrive, in the host's milliseconds; `None` disables the
    /// deadline. Default 10 s. Armed by the first `handle_timeout` call.
    pub handshake_timeout_ms: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            handshake_timeout_ms: Some(10_000),
        }
    }
}

/// What a handshake agreed on: the WebSocket layer is configured from this.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Negotiated {
    /// The chosen subprotocol, if any (`Sec-WebSocket-Protocol`).
    pub protocol: Option<String>,
    /// The accepted extensions with the parameters of the server's answer, in order
    /// (`Sec-WebSocket-Extensions`).
    pub extensions: Vec<Extension>,
}

impl Negotiated {
    /// The accepted extension called `name` (case-insensitive), if any.
    pub fn extension(&self, name: &str) -> Option<&Extension> {
        self.extensions
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(name))
    }
}

/// Why [`ClientHandshake::with_random_nonce`] failed.
#[cfg(feature = "getrandom")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RandomNonceError {
    /// The operating system's RNG failed.
    Random(getrandom::Error),
    /// The request cannot be sent.
    Misuse(Misuse),
}

#[cfg(feature = "getrandom")]
impl core::fmt::Display for RandomNonceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RandomNonceError::Random(e) => write!(f, "random nonce: {e}"),
            RandomNonceError::Misuse(e) => write!(f, "misuse: {e}"),
        }
    }
}

#[cfg(all(feature = "getrandom", feature = "std"))]
impl std::error::Error for RandomNonceError {}
