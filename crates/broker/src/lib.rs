//! A sans-IO STOMP broker: the message flow of Spring's "simple broker" (client inbound ->
//! application or broker -> client outbound) as a state machine that owns the STOMP sessions
//! of all clients (one [`stompbox_stomp::server::ServerSession`] each: framing, CONNECT,
//! heart-beats, validation, transactions, acknowledgement books) and routes between them.
//!
//! No sockets, no clock, no threads: the host opens a session per transport
//! ([`Broker::open_session`]), feeds its bytes ([`Broker::handle_read`]), drains its output
//! ([`Broker::poll_ready`] names the sessions with output, [`Broker::poll_transmit`] hands out
//! whole frames), passes time ([`Broker::handle_timeout`], [`Broker::poll_timeout`]: one timer
//! for every session's heart-beats) and receives application events ([`Broker::poll_event`]).
//! The application answers with [`Broker::publish`], [`Broker::send_to_session`] and
//! [`Broker::send_to_user`].
//!
//! # Routing
//!
//! - application prefixes (default `/app`): SEND and SUBSCRIBE become [`Event`]s;
//! - topic prefixes (default `/topic`): publish-subscribe to every matching subscription;
//!   subscriptions may use `*` (one segment) and `**` (any number), matched through a trie
//!   ([`Config::separator`] `/` by default, `.` configurable);
//! - queue prefixes (default `/queue`): each message to exactly one subscriber, round robin;
//!   `client`/`client-individual` messages stay owned until ACKed; NACK, UNSUBSCRIBE or
//!   disconnect redeliver them with `redelivered:true`; a full queue answers SEND with ERROR;
//! - user destinations: SUBSCRIBE `/user/queue/x` is private to the session; SEND to
//!   `/user/{name}/queue/x` reaches every session of user `name`;
//! - anything else: ERROR (or dropped, see [`UnknownDestination`]).
//!
//! Every receipt is answered; transactions (BEGIN/COMMIT/ABORT) buffer SEND, ACK and NACK.
//! MESSAGE frames carry `message-id`, `subscription`, `destination`, `content-type`,
//! `content-length` and every user header of the SEND; a message's body is shared (`Bytes`) by
//! all its deliveries.
//!
//! # Bounds
//!
//! Sessions, subscriptions per session, queues, queue depth, unacknowledged messages, open
//! transactions and each session's queued output (bytes and frames) are bounded by [`Config`].
//! A session whose output exceeds its bound is a slow consumer: it gets ERROR and
//! [`Event::Closed`] with [`CloseReason::SlowConsumer`]; nobody else waits for it.
//!
//! # The drain contract
//!
//! After any `handle_*` call or application reply, drain [`Broker::poll_ready`] /
//! [`Broker::poll_transmit`], [`Broker::poll_event`] and [`Broker::poll_timeout`] before the
//! next input. On [`Event::Closed`], write what is left of the session's output, close its
//! transport and call [`Broker::transport_closed`].
//!
//! # A host loop
//!
//! Two in-memory clients; a real host does the same with sockets and a monotonic clock.
//!
//! ```
//! use stompbox_broker::{Broker, Config, Event, TransportInfo};
//! use std::collections::HashMap;
//!
//! let mut broker = Broker::new(Config::default());
//! let mut now = 0u64;
//! let alice = broker.open_session(TransportInfo::default(), now)?;
//! let bob = broker.open_session(TransportInfo::default(), now)?;
//! let mut wire: HashMap<_, Vec<u8>> = HashMap::new(); // what each client received
//!
//! // The host loop: feed input, then drain output, events and the timer.
//! let mut step = |broker: &mut Broker, input: Option<(_, &[u8])>, now: u64| {
//!     if let Some((id, bytes)) = input {
//!         broker.handle_read(id, bytes, now).expect("open session");
//!     }
//!     while let Some(id) = broker.poll_ready() {
//!         while let Some(t) = broker.poll_transmit(id) {
//!             t.write_to(wire.entry(id).or_default()); // a socket write in a real host
//!         }
//!     }
//!     while let Some(ev) = broker.poll_event() {
//!         match ev {
//!             // The application: echo /app/shout to /topic/shouts, upper-cased.
//!             Event::Message(m) if m.destination == "/app/shout" => {
//!                 let loud = m.body.to_ascii_uppercase();
//!                 broker.publish("/topic/shouts", &[("content-type", "text/plain")], loud)
//!                     .expect("broker destination");
//!             }
//!             Event::Closed { session, .. } => { let _ = broker.transport_closed(session); }
//!             _ => {}
//!         }
//!     }
//!     // Sleep until then (or until input arrives).
//!     broker.poll_timeout()
//! };
//!
//! step(&mut broker, Some((alice, b"CONNECT\naccept-version:1.2\nhost:x\n\n\0")), now);
//! step(&mut broker, Some((bob, b"CONNECT\naccept-version:1.2\nhost:x\n\n\0")), now);
//! step(&mut broker, Some((bob, b"SUBSCRIBE\nid:0\ndestination:/topic/shouts\n\n\0")), now);
//! now += 5;
//! let next = step(&mut broker, Some((alice, b"SEND\ndestination:/app/shout\n\nhello\0")), now);
//! # let _ = next;
//! // A real loop would redo the drain after the application's publish; do it once here.
//! step(&mut broker, None, now);
//!
//! let got = String::from_utf8_lossy(&wire[&bob]).into_owned();
//! assert!(got.starts_with("CONNECTED\nversion:1.2\n"));
//! assert!(got.contains("MESSAGE\ndestination:/topic/shouts\n"));
//! assert!(got.ends_with("\n\nHELLO\0"));
//! assert_eq!(broker.stats().messages_delivered, 1);
//! # Ok::<(), stompbox_broker::HostError>(())
//! ```
//!
//! # The relay
//!
//! With [`Config::relay`] the broker destinations under [`RelayConfig::prefixes`] are not
//! routed in memory but relayed to an upstream STOMP broker (RabbitMQ, ActiveMQ, Artemis), as
//! Spring's `StompBrokerRelay` does, so several servers share one set of topics and queues:
//!
//! - each client session gets its own upstream session once the authentication hook accepts
//!   its CONNECT, speaking the client's STOMP version; the client's CONNECTED waits for the
//!   upstream's. SUBSCRIBE, UNSUBSCRIBE, SEND, ACK, NACK, BEGIN, COMMIT and ABORT pass through
//!   with their ids unchanged; MESSAGE, RECEIPT and ERROR come back. Application (`/app`) and
//!   user destinations stay local; a transaction is kept on both sides;
//! - one shared system session carries [`Broker::publish`] to relayed destinations; every
//!   publish asks for a RECEIPT, and one the upstream did not confirm before a failure comes
//!   back whole as [`RelayEvent::PublishFailed`]; during an outage `publish` fails at once
//!   with [`PublishError::RelayUnavailable`]; the system session reconnects with exponential
//!   backoff;
//! - heart-beats with the upstream are negotiated independently of each client's;
//! - a client whose upstream fails (ERROR, lost transport, heart-beat or CONNECT timeout) gets
//!   an ERROR (the upstream's message and `receipt-id` when it sent one) and is closed with
//!   [`CloseReason::UpstreamFailed`].
//!
//! The host opens the transports the broker asks for ([`Broker::poll_upstream`]), moves their
//! bytes ([`Broker::upstream_read`], [`Broker::upstream_ready`], [`Broker::upstream_transmit`])
//! and reports their end ([`Broker::upstream_closed`]). Here the upstream broker is a
//! `stompbox_stomp` server session in memory:
//!
//! ```
//! use stompbox_broker::{Broker, Config, RelayConfig, TransportInfo, UpstreamCommand};
//! use stompbox_stomp::server::{Accept, ServerConfig, ServerEvent, ServerSession};
//! use std::collections::HashMap;
//!
//! let mut broker = Broker::new(Config {
//!     relay: Some(RelayConfig { login: Some("guest".into()), ..RelayConfig::default() }),
//!     ..Config::default()
//! });
//! let mut upstreams = HashMap::new(); // the host's "sockets" to the upstream broker
//! let mut wire = Vec::new(); // what the client received
//! let now = 0;
//! let client = broker.open_session(TransportInfo::default(), now)?;
//! broker.handle_read(client, b"CONNECT\naccept-version:1.2\nhost:x\n\n\0", now)?;
//! broker.handle_timeout(now); // opens the system session (poll_timeout said 0)
//! for _ in 0..4 {
//!     // Open and close transports as asked.
//!     while let Some(cmd) = broker.poll_upstream() {
//!         match cmd {
//!             UpstreamCommand::Open(id) => {
//!                 upstreams.insert(id, ServerSession::new(ServerConfig::default()));
//!             }
//!             UpstreamCommand::Close(id) => { upstreams.remove(&id); }
//!         }
//!     }
//!     // Bytes both ways; the upstream broker accepts every CONNECT.
//!     for (id, up) in upstreams.iter_mut() {
//!         while let Some(bytes) = broker.upstream_transmit(*id) {
//!             up.handle_read(&bytes).expect("valid STOMP");
//!         }
//!         while let Some(ev) = up.poll_event() {
//!             if let ServerEvent::Connect(_) = ev {
//!                 up.accept(&Accept::default()).expect("pending CONNECT");
//!             }
//!         }
//!         while let Some(bytes) = up.poll_transmit() {
//!             broker.upstream_read(*id, &bytes, now)?;
//!         }
//!     }
//!     while let Some(id) = broker.poll_ready() {
//!         while let Some(t) = broker.poll_transmit(id) {
//!             t.write_to(&mut wire);
//!         }
//!     }
//!     while broker.poll_event().is_some() {}
//! }
//! assert!(wire.starts_with(b"CONNECTED\nversion:1.2\n"));
//! assert!(broker.relay_system_connected());
//! assert_eq!(broker.stats().relay.upstreams_current, 2); // the client's and the system's
//! # Ok::<(), stompbox_broker::HostError>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod broker;
mod config;
mod inbound;
pub mod pattern;
mod stats;
mod wire;

pub use broker::relay::{RelayEvent, UpstreamCommand, UpstreamId, UpstreamOwner};
pub use broker::{
    AcceptAll, AppMessage, AppSubscribe, AuthDecision, Authenticator, Broker, CloseReason,
    ConnectRequest, Event, HostError, PublishError, SessionId, TransportInfo,
};
pub use config::{Config, RelayConfig, RelayCredentials, UnknownDestination};
pub use inbound::AckMode;
pub use stats::{FrameCounts, QueueStats, RelayStats, Stats};
pub use wire::{Escaping, Transmit};
