//! stompbox: STOMP over WebSocket, sans-IO.
//!
//! This facade re-exports the four layers ([`upgrade`], [`ws`], [`stomp`], [`broker`]) and stacks
//! them for hosts:
//!
//! - [`ServerConnection`]: one accepted socket. HTTP/1.1 head (a page request, or an Upgrade),
//!   then WebSocket frames whose messages carry STOMP; or raw STOMP on a TCP listener. Socket
//!   bytes in; STOMP bytes out for a [`Broker`] session; the broker's frames go back framed as
//!   WebSocket messages.
//! - [`ClientConnection`]: the client side (handshake, WebSocket, and a STOMP
//!   [`ClientSession`](stomp::client::ClientSession) with heart-beats and receipts), for tools
//!   and tests.
//!
//! Nothing here reads a clock or touches a socket: time is the host's monotonic milliseconds.
//!
//! # A complete host loop, in memory
//!
//! The "socket" is a `Vec<u8>`; a real host (see the `stompbox-server` crate, on mio) does the
//! same with `read`/`write`.
//!
//! ```
//! use std::sync::Arc;
//! use stompbox::stomp::client::{ClientConfig, ClientEvent as Stomp, SendOptions, SubscribeOptions};
//! use stompbox::{Broker, ClientConnection, ClientEvent, ConnectionConfig, ServerConnection,
//!                ServerEvent, broker};
//!
//! let config = Arc::new(ConnectionConfig::default());
//! let mut broker = Broker::new(broker::Config::default());
//! let mut server = ServerConnection::websocket(&config, 0);
//! let client_config = ClientConfig { login: Some("alice".into()), ..ClientConfig::default() };
//! let mut client =
//!     ClientConnection::websocket("localhost", "/ws", [7; 16], || [1, 2, 3, 4], client_config);
//!
//! let mut session = None;
//! let mut received = Vec::new();
//! for _round in 0..10 {
//!     // client -> server
//!     while let Some(bytes) = client.poll_transmit() {
//!         server.handle_read(&bytes);
//!     }
//!     // the drain contract: every event of the connection, then the broker's output
//!     while let Some(event) = server.poll_event() {
//!         match event {
//!             ServerEvent::Open(_) => {
//!                 let info = broker::TransportInfo::default();
//!                 session = Some(broker.open_session(info, 0).unwrap());
//!             }
//!             ServerEvent::Stomp(bytes) => {
//!                 broker.handle_read(session.unwrap(), &bytes, 0).unwrap();
//!             }
//!             other => panic!("unexpected {other:?}"),
//!         }
//!     }
//!     while let Some(id) = broker.poll_ready() {
//!         while let Some(frame) = broker.poll_transmit(id) {
//!             server.send_stomp(&frame.parts());
//!         }
//!     }
//!     // server -> client
//!     while let Some(bytes) = server.poll_transmit() {
//!         client.handle_read(&bytes);
//!     }
//!     while let Some(event) = client.poll_event() {
//!         match event {
//!             ClientEvent::Stomp(Stomp::Connected { .. }) => {
//!                 let sub = SubscribeOptions { receipt: Some("subscribed"), ..Default::default() };
//!                 client.session().subscribe("/topic/greetings", &sub).unwrap();
//!             }
//!             ClientEvent::Stomp(Stomp::Receipt { receipt_id }) if receipt_id == "subscribed" => {
//!                 let opts = SendOptions { content_type: Some("text/plain"), ..Default::default() };
//!                 client.session().send("/topic/greetings", "hello", &opts).unwrap();
//!             }
//!             ClientEvent::Stomp(Stomp::Message(m)) => received.push(m),
//!             _ => {}
//!         }
//!     }
//! }
//! assert_eq!(received.len(), 1);
//! assert_eq!(&received[0].body()[..], b"hello");
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod server;

pub use stompbox_broker as broker;
pub use stompbox_stomp as stomp;
pub use stompbox_upgrade as upgrade;
pub use stompbox_ws as ws;

pub use stompbox_broker::{Broker, SessionId, Transmit};

pub use client::{ClientConnection, ClientError, ClientEvent};
pub use server::{
    ConnectionConfig, Route, STOMP_SUBPROTOCOLS, ServerConnection, ServerEvent, Transport,
};

/// A plain HTTP request received on a WebSocket listener (not an upgrade).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query (after `?`), if any.
    pub query: Option<String>,
    /// Every header in order: name as sent, raw value.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl HttpRequest {
    /// The first value of a header (case-insensitive name), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}
