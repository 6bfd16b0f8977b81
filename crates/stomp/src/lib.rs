//! STOMP 1.0/1.1/1.2 as sans-IO state machines: a zero-copy frame codec, a server session
//! (what a broker runs per client) and a client session. No sockets, clocks, threads or async
//! runtime: bytes go in with `handle_read`, events come out of `poll_event`, bytes to send
//! come out of `poll_transmit`, and time goes in with `handle_timeout(now_ms)`.
//!
//! It runs over any byte stream: raw TCP, or the payloads of WebSocket messages (one message
//! may carry one frame, several, or part of one; a lone EOL is a heart-beat).
//!
//! - [`Parser`] / [`encode`]: the frame codec ([`Frame`], [`Command`], [`Version`]).
//! - [`server::ServerSession`]: CONNECT negotiation (with a connect timeout), validation,
//!   subscriptions, acks, transactions, receipts (automatic, or answered by the host),
//!   heart-beats, ERROR on violations.
//! - Output of both sessions: a byte stream (`poll_transmit`) or whole frames
//!   (`poll_transmit_frame`, a [`Transmit`] of shared parts, e.g. one WebSocket message each).
//! - [`client::ClientSession`]: the client side.
//!
//! # The drain contract
//!
//! After any `handle_*` call or command, drain `poll_transmit`, `poll_event` and read
//! `poll_timeout` before the next input. Errors: a peer's violation is sticky
//! ([`PeerError`], with the server's ERROR reply already queued); host misuse is a
//! [`UsageError`] that leaves the session usable.
//!
//! # A complete host loop
//!
//! A client and a server session wired to each other in memory, in virtual time; a real
//! host moves the same bytes over a socket or WebSocket.
//!
//! ```
//! use stompbox_stomp::client::{ClientConfig, ClientEvent, ClientSession, SendOptions, SubscribeOptions};
//! use stompbox_stomp::server::{Accept, Message, ServerConfig, ServerEvent, ServerSession};
//! use stompbox_stomp::AckMode;
//!
//! let mut client = ClientSession::new(ClientConfig { host: "example".into(), ..Default::default() });
//! let mut server = ServerSession::new(ServerConfig::default());
//! let mut now = 0u64;
//! let mut received = Vec::new();
//! let mut next_id = 0;
//! // subscription id -> destination, as a (tiny) broker would keep it
//! let mut subs: Vec<(String, String)> = Vec::new();
//!
//! for step in 0..20 {
//!     // Bytes client -> server and server -> client (the "network").
//!     while let Some(bytes) = client.poll_transmit() {
//!         server.handle_read(&bytes).expect("client follows the protocol");
//!     }
//!     while let Some(bytes) = server.poll_transmit() {
//!         client.handle_read(&bytes).expect("server follows the protocol");
//!     }
//!     // The server host (a broker) acts on events.
//!     while let Some(ev) = server.poll_event() {
//!         match ev {
//!             ServerEvent::Connect(req) if req.login.is_none() => {
//!                 server.accept(&Accept { session: Some("s1"), ..Default::default() }).unwrap();
//!             }
//!             ServerEvent::Connect(_) => server.reject("bad credentials").unwrap(),
//!             ServerEvent::Subscribe(s) => subs.push((s.id, s.destination)),
//!             ServerEvent::Send(send) => {
//!                 for (id, dest) in &subs {
//!                     if dest == send.destination() {
//!                         next_id += 1;
//!                         server.send_message_from(id, &format!("m{next_id}"), &send.frame).unwrap();
//!                     }
//!                 }
//!             }
//!             _ => {}
//!         }
//!     }
//!     // The client host acts on events.
//!     while let Some(ev) = client.poll_event() {
//!         match ev {
//!             ClientEvent::Connected { .. } => {
//!                 let opts = SubscribeOptions { ack: AckMode::ClientIndividual, receipt: Some("sub-ok"), ..Default::default() };
//!                 client.subscribe("/topic/greetings", &opts).unwrap();
//!             }
//!             ClientEvent::Receipt { receipt_id } if receipt_id == "sub-ok" => {
//!                 let opts = SendOptions { content_type: Some("text/plain"), ..Default::default() };
//!                 client.send("/topic/greetings", &b"hello"[..], &opts).unwrap();
//!             }
//!             ClientEvent::Message(m) => {
//!                 received.push(m.body().clone());
//!                 client.ack(m.ack.as_ref().unwrap(), None, None).unwrap();
//!                 client.disconnect(Some("bye")).unwrap();
//!             }
//!             _ => {}
//!         }
//!     }
//!     // Time: a real host sleeps until the earliest poll_timeout.
//!     now += 1_000;
//!     if client.poll_timeout().is_some_and(|t| t <= now) { client.handle_timeout(now); }
//!     if server.poll_timeout().is_some_and(|t| t <= now) { server.handle_timeout(now); }
//!     if client.is_finished() && server.is_finished() { break; }
//! }
//! assert_eq!(received, vec![bytes::Bytes::from_static(b"hello")]);
//! assert!(client.is_finished() && server.is_finished());
//! ```
#![no_std]
#![deny(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod client;
mod common;
pub mod encoder;
pub mod error;
pub mod frame;
pub mod parser;
mod scan;
pub mod server;

pub use common::Transmit;
pub use encoder::{EncodeError, HeadWriter, encode, encode_head, encode_to_bytes};
pub use error::{PeerError, UsageError, Violation};
pub use frame::{AckMode, Command, Frame, FrameBuilder, HeartBeat, Negotiated, Version};
pub use parser::{Limits, ParseError, Parser};
