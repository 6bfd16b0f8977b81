//! The server session: what a broker runs per connected client.
//!
//! # Lifecycle
//!
//! | state | left by | to |
//! |---|---|---|
//! | [`ServerState::AwaitingConnect`] | a valid CONNECT/STOMP ([`ServerEvent::Connect`]) | `Authenticating` |
//! | [`ServerState::AwaitingConnect`] | a violation, the connect timeout | `Closed` |
//! | [`ServerState::Authenticating`] | [`ServerSession::accept`] / [`ServerSession::reject`] | `Open` / `Closed` |
//! | [`ServerState::Authenticating`] | the connect timeout, too much input buffered | `Closed` |
//! | [`ServerState::Open`] | DISCONNECT, a violation, a heart-beat timeout, [`ServerSession::send_error`] | `Closed` |
//!
//! Exactly one [`ServerEvent::Closed`] is emitted. Once closed and
//! [`ServerSession::pending_output`] is 0 ([`ServerSession::is_finished`]), the host closes
//! the transport.
//!
//! # The drain contract
//!
//! After every `handle_read`, `handle_timeout` or command, the host drains
//! [`ServerSession::poll_transmit`], [`ServerSession::poll_event`] and reads
//! [`ServerSession::poll_timeout`] before giving the next input. Nothing is sent on its own.
//!
//! # Time
//!
//! No clock is read. `handle_timeout(now_ms)` gives the time (any monotonic millisecond
//! count); calling it before `handle_read` too keeps liveness judgement exact, otherwise it is
//! lenient by at most one timer period. Hosts call it once when they create the session: the
//! connect timeout ([`ServerConfig::connect_timeout_ms`], default 10 s) counts from the first
//! time the session learns the time, and until then [`ServerSession::poll_timeout`] returns
//! `Some(0)` to ask for it.
//!
//! # Receipts
//!
//! Every client frame with a `receipt` header (other than CONNECT) is answerable, and a
//! RECEIPT is never queued for a frame the session then refuses: the session validates (and
//! checks every limit) first, and a refused frame gets the ERROR with `receipt-id` instead.
//!
//! - Automatic ([`ServerConfig::auto_receipts`], the default): the session queues the
//!   RECEIPT as soon as it has validated the frame, before the host sees the event. The
//!   RECEIPT confirms the session's processing only; a host that may still refuse the frame
//!   (and send an ERROR naming its receipt) or wants the RECEIPT behind the MESSAGE frames the
//!   frame causes must use manual receipts.
//! - Manual: each frame with a `receipt` produces exactly one event carrying it, in the
//!   order the frames arrived, and the host answers with [`ServerSession::send_receipt`]
//!   after acting on the event: SEND ([`SendEvent::receipt`]), SUBSCRIBE, UNSUBSCRIBE,
//!   ACK/NACK ([`AckEvent::receipt`]), BEGIN ([`ServerEvent::Begin`]), a SEND/ACK/NACK inside
//!   a transaction ([`ServerEvent::Held`], when it is held; the events released at COMMIT
//!   carry no receipt), COMMIT ([`ServerEvent::Commit`], after the events it released),
//!   ABORT ([`ServerEvent::Abort`]) and DISCONNECT ([`ServerEvent::Disconnect`];
//!   `send_receipt` still works after it). Receipts of frames before a violation can no
//!   longer be sent: the ERROR ends the session.
//!
//! # Output
//!
//! Output is queued, never written: the host drains it either as a byte stream
//! ([`ServerSession::poll_transmit`], [`ServerSession::poll_transmit_into`]) or one whole
//! frame at a time ([`ServerSession::poll_transmit_frame`], a [`Transmit`] of shared parts,
//! e.g. one WebSocket message per frame); both views may be mixed. Heads are encoded into one
//! staging buffer. A body below 512 bytes is copied next to its head, so a run of small
//! frames (MESSAGE, RECEIPT, heart-beats) leaves [`ServerSession::poll_transmit`] as one
//! chunk: one write for many frames instead of two or three per frame, and copying 100 bytes
//! costs less than a separate write or iovec entry. A body of 512 bytes or more is never
//! copied: it is queued as the caller's `Bytes` (shared by every subscriber it is fanned out
//! to) between its head and its NUL. Backpressure is per frame: [`ServerSession::send_message`]
//! refuses with [`UsageError::LimitExceeded`] (queueing nothing) once
//! [`ServerSession::pending_output`] reaches [`ServerConfig::max_pending_output`], and
//! [`ServerSession::pending_frames`] counts queued frames.
//!
//! # Fan-out
//!
//! A message delivered to many sessions is encoded once: [`SharedMessage`] holds its
//! destination, user headers and `content-length`, escaped for one version, and its body.
//! [`ServerSession::send_shared`] queues a delivery of it, writing only `message-id`,
//! `subscription` and `ack`; [`ServerSession::send_shared_frame`] hands the delivery straight
//! back as a whole [`Transmit`] (its own head, the shared body, a static NUL) without touching
//! the session's output queue, for hosts that keep their own queue of whole frames.

pub use crate::common::Transmit;
use crate::common::{Output, Timer};
use crate::encoder::{EncodeError, HeadWriter};
use crate::error::{PeerError, UsageError, Violation};
use crate::frame::{AckMode, Command, Frame, HeartBeat, Negotiated, Version};
use crate::parser::{Limits, Parser};
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use bytes::{BufMut, Bytes, BytesMut};
use core::fmt;
use core::hash::{BuildHasherDefault, Hasher};
use core::sync::atomic::Ordering;
use hashbrown::HashMap;

/// Server session configuration. `Default` gives secure, small limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Versions this server speaks (default: 1.0, 1.1, 1.2). The highest common one wins.
    pub versions: Vec<Version>,
    /// What the server announces in CONNECTED `heart-beat` (default `10000,10000`).
    pub heart_beat: HeartBeat,
    /// A silent client is dead after the negotiated interval times this percentage
    /// (default 200, i.e. 2x; values below 100 count as 100).
    pub heartbeat_grace_percent: u32,
    /// Require the `host` header from STOMP 1.1 on, as the spec does (default `true`).
    pub require_host: bool,
    /// Parser limits before the session is accepted (default [`Limits::unauthenticated`]).
    pub connect_limits: Limits,
    /// Parser limits once accepted (default [`Limits::default`]).
    pub limits: Limits,
    /// Maximum concurrent subscriptions (default 256).
    pub max_subscriptions: usize,
    /// Maximum concurrent transactions (default 16).
    pub max_transactions: usize,
    /// Maximum frames held in one transaction (default 1024).
    pub max_transaction_frames: usize,
    /// Maximum body bytes held in all open transactions (default 4 MiB).
    pub max_transaction_bytes: usize,
    /// Maximum messages awaiting ACK/NACK (default 10,000); `send_message` beyond it is a
    /// [`UsageError::LimitExceeded`].
    pub max_pending_acks: usize,
    /// Maximum bytes queued for transmission before `send_message` refuses with
    /// [`UsageError::LimitExceeded`] (default 8 MiB): the broker's backpressure signal, also
    /// visible as [`ServerSession::pending_output`]. Replies (RECEIPT, ERROR, heart-beats) are
    /// always queued.
    pub max_pending_output: usize,
    /// Answer `receipt` headers automatically as soon as the session has validated the frame
    /// (default `true`). When `false`, every frame with a `receipt` produces exactly one event
    /// carrying it (see [Receipts](self#receipts)) and the host answers it with
    /// [`ServerSession::send_receipt`] once it has acted on the frame: use this when the host
    /// can still refuse a frame after the event (a full queue, a forbidden destination), or
    /// wants a RECEIPT to follow the MESSAGE frames the frame caused.
    pub auto_receipts: bool,
    /// Close a session that has not been accepted this many milliseconds after the session
    /// first learned the time (default 10 s; `None`: never): a client that never completes
    /// CONNECT/STOMP, or a host that never calls [`ServerSession::accept`] /
    /// [`ServerSession::reject`], gets an ERROR (`message:connect timeout`) and the session
    /// closes with [`Violation::ConnectTimeout`]. Hosts call
    /// [`ServerSession::handle_timeout`] once when they create the session (until then
    /// [`ServerSession::poll_timeout`] asks for it with `Some(0)`).
    pub connect_timeout_ms: Option<u64>,
    /// The CONNECTED `server` header (default `stompbox/<version>`; `None` omits it).
    pub server: Option<String>,
    /// Bodies at least this long are queued as the caller's shared `Bytes` instead of being
    /// copied next to their head (default 512, see [Output](self#output)). 0 shares every
    /// non-empty body, so each MESSAGE from [`ServerSession::poll_transmit_frame`] has its
    /// body as [`Transmit::body`]: for hosts that hand bodies on by reference.
    pub share_bodies_from: usize,
    /// Send `version` and `heart-beat` (`0,0`) in a STOMP 1.0 CONNECTED too (default
    /// `false`: 1.0 defines neither; 1.0 clients ignore headers they do not know).
    pub v1_0_connected_headers: bool,
    /// Name the subscription in every MESSAGE, also on a STOMP 1.0 SUBSCRIBE without `id`
    /// (whose id is its destination; default `false`: 1.0 defines no `subscription` header).
    pub v1_0_subscription_header: bool,
    /// Chooses the ERROR `message` for a client's violation (default `None`: the
    /// violation's `Display`), for hosts whose clients expect their own texts.
    pub violation_message: Option<ViolationMessage>,
    /// Quote the offending frame's command and headers in the body of a violation's ERROR
    /// (default `true`). `false` keeps the ERROR as small as its message, for hosts that
    /// bound their queued output to a small margin.
    pub error_quotes_frame: bool,
}

/// A host's texts for violations ([`ServerConfig::violation_message`]): gets the violation
/// and the offending frame (when there is one, e.g. not for a parse error or a timeout) and
/// returns the ERROR `message` header (CR and LF are replaced by spaces).
#[derive(Clone, Copy)]
pub struct ViolationMessage(pub fn(&Violation, Option<&Frame>) -> String);

impl fmt::Debug for ViolationMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ViolationMessage(..)")
    }
}

impl PartialEq for ViolationMessage {
    fn eq(&self, other: &ViolationMessage) -> bool {
        core::ptr::fn_addr_eq(self.0, other.0)
    }
}

impl Eq for ViolationMessage {}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            versions: Version::ALL.to_vec(),
            heart_beat: HeartBeat {
                send_ms: 10_000,
                receive_ms: 10_000,
            },
            heartbeat_grace_percent: 200,
            require_host: true,
            connect_limits: Limits::unauthenticated(),
            limits: Limits::default(),
            max_subscriptions: 256,
            max_transactions: 16,
            max_transaction_frames: 1024,
            max_transaction_bytes: 4 * 1024 * 1024,
            max_pending_acks: 10_000,
            max_pending_output: 8 * 1024 * 1024,
            auto_receipts: true,
            connect_timeout_ms: Some(10_000),
            server: Some(alloc::format!("stompbox/{}", env!("CARGO_PKG_VERSION"))),
            share_bodies_from: crate::common::SHARE_BODY_AT,
            v1_0_connected_headers: false,
            v1_0_subscription_header: false,
            violation_message: None,
            error_quotes_frame: true,
        }
    }
}

/// Where the session is; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerState {
    /// Waiting for CONNECT or STOMP.
    AwaitingConnect,
    /// A CONNECT was received; the host must [`ServerSession::accept`] or
    /// [`ServerSession::reject`] it. Input is buffered (bounded) meanwhile.
    Authenticating,
    /// CONNECTED was sent.
    Open,
    /// Closed: no more events; drain the output, then close the transport.
    Closed,
}

/// Why the session closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client sent DISCONNECT.
    Disconnect,
    /// The host rejected the CONNECT.
    Rejected,
    /// The host sent an ERROR with [`ServerSession::send_error`].
    ErrorSent,
    /// The client violated the protocol, went silent, or did not connect in time; an ERROR
    /// was queued.
    Violation(Violation),
}

/// A validated CONNECT / STOMP frame, to accept or reject.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// The negotiated version.
    pub version: Version,
    /// The `host` header (virtual host), if any.
    pub host: Option<String>,
    /// The `login` header, if any.
    pub login: Option<String>,
    /// The `passcode` header, if any (not shown by `Debug`).
    pub passcode: Option<String>,
    /// The client's `heart-beat` header (`0,0` when absent).
    pub heart_beat: HeartBeat,
    /// The heart-beat intervals that accepting will establish.
    pub negotiated: Negotiated,
    /// The whole frame, for other headers.
    pub frame: Frame,
}

impl fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("version", &self.version)
            .field("host", &self.host)
            .field("login", &self.login)
            .field("passcode", &self.passcode.as_ref().map(|_| "<redacted>"))
            .field("heart_beat", &self.heart_beat)
            .field("negotiated", &self.negotiated)
            .finish_non_exhaustive()
    }
}

/// A validated SEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendEvent {
    /// The SEND frame (headers and body), to route and forward.
    pub frame: Frame,
    /// The transaction it was committed in, if any.
    pub transaction: Option<String>,
    /// Its `receipt` header, if any; `None` when released by COMMIT (the receipt was
    /// carried by [`ServerEvent::Held`] when the frame arrived).
    pub receipt: Option<String>,
}

impl SendEvent {
    /// The `destination` header (validated to be present).
    pub fn destination(&self) -> &str {
        self.frame.header("destination").unwrap_or_default()
    }
}

/// A validated SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeEvent {
    /// The subscription id (in 1.0 without `id`: the destination).
    pub id: String,
    /// The destination.
    pub destination: String,
    /// The ack mode.
    pub ack: AckMode,
    /// Its `receipt` header, if any.
    pub receipt: Option<String>,
    /// The frame, for other headers (selectors, prefetch, ...).
    pub frame: Frame,
    /// Names this subscription in [`ServerSession::send_shared_to`] /
    /// [`ServerSession::send_shared_frame_to`] without a lookup by id.
    pub key: SubscriptionKey,
}

/// A subscription of one [`ServerSession`], as [`SubscribeEvent::key`] reported it: a host
/// that routes many messages keeps it with its own record of the subscription and delivers
/// with [`ServerSession::send_shared_frame_to`], which then finds the subscription without
/// hashing its id. A key is only good for the session that issued it and only while the
/// subscription exists: after UNSUBSCRIBE (even if the client reuses the id), or given to
/// another session, it is [`UsageError::UnknownSubscription`], never another subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionKey {
    slot: u32,
    /// Unique over all sessions of the process (see `NEXT_SERIAL`).
    serial: u64,
}

/// A validated UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeEvent {
    /// The subscription id.
    pub id: String,
    /// The subscription's destination.
    pub destination: String,
    /// Message ids delivered on it that were never acknowledged (to redeliver elsewhere).
    pub unacked: Vec<String>,
    /// Its `receipt` header, if any.
    pub receipt: Option<String>,
}

/// A validated ACK or NACK, resolved to the messages it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckEvent {
    /// The subscription the messages were delivered on.
    pub subscription: String,
    /// The `message-id`s acknowledged, oldest first (several for a cumulative `client` ack).
    pub message_ids: Vec<String>,
    /// The transaction it was committed in, if any.
    pub transaction: Option<String>,
    /// Its `receipt` header, if any; `None` when released by COMMIT (the receipt was
    /// carried by [`ServerEvent::Held`] when the frame arrived).
    pub receipt: Option<String>,
}

/// What the server session tells the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A client wants to connect: call [`ServerSession::accept`] or [`ServerSession::reject`].
    Connect(ConnectRequest),
    /// A message to route (at COMMIT for a transaction).
    Send(SendEvent),
    /// BEGIN: a transaction started.
    Begin {
        /// The transaction id.
        transaction: String,
        /// The BEGIN's `receipt` header.
        receipt: Option<String>,
    },
    /// A SEND, ACK or NACK naming a transaction was validated and is held until COMMIT
    /// (then released as [`ServerEvent::Send`] / [`ServerEvent::Ack`] /
    /// [`ServerEvent::Nack`] events with `receipt: None`) or ABORT (dropped). Nothing to route
    /// yet; with manual receipts, answer `receipt` here.
    Held {
        /// [`Command::Send`], [`Command::Ack`] or [`Command::Nack`].
        command: Command,
        /// The transaction it is held in.
        transaction: String,
        /// The frame's `receipt` header.
        receipt: Option<String>,
    },
    /// COMMIT: emitted after the events the transaction released, so a host that routes
    /// those first answers the COMMIT's receipt after them.
    Commit {
        /// The transaction id.
        transaction: String,
        /// The COMMIT's `receipt` header.
        receipt: Option<String>,
    },
    /// ABORT: the transaction's held frames were dropped.
    Abort {
        /// The transaction id.
        transaction: String,
        /// How many held frames were dropped.
        dropped: usize,
        /// The ABORT's `receipt` header.
        receipt: Option<String>,
    },
    /// A new subscription.
    Subscribe(SubscribeEvent),
    /// A subscription ended.
    Unsubscribe(UnsubscribeEvent),
    /// Messages acknowledged (at COMMIT for a transaction).
    Ack(AckEvent),
    /// Messages negatively acknowledged (at COMMIT for a transaction).
    Nack(AckEvent),
    /// The client disconnected gracefully. With automatic receipts its receipt is already
    /// queued; with manual receipts the host answers it with
    /// [`ServerSession::send_receipt`] (allowed after a DISCONNECT) after the receipts of
    /// the events before it.
    Disconnect {
        /// The DISCONNECT's `receipt` header.
        receipt: Option<String>,
    },
    /// The session is closed (emitted once, last).
    Closed(CloseReason),
}

impl ServerEvent {
    /// The `receipt` this event carries for the host to answer with
    /// [`ServerSession::send_receipt`] when [`ServerConfig::auto_receipts`] is off (`None` for
    /// events without one, and for Send/Ack/Nack released by COMMIT, whose receipt came with
    /// their [`ServerEvent::Held`]).
    pub fn receipt(&self) -> Option<&str> {
        match self {
            ServerEvent::Send(e) => e.receipt.as_deref(),
            ServerEvent::Subscribe(e) => e.receipt.as_deref(),
            ServerEvent::Unsubscribe(e) => e.receipt.as_deref(),
            ServerEvent::Ack(e) | ServerEvent::Nack(e) => e.receipt.as_deref(),
            ServerEvent::Begin { receipt, .. }
            | ServerEvent::Held { receipt, .. }
            | ServerEvent::Commit { receipt, .. }
            | ServerEvent::Abort { receipt, .. }
            | ServerEvent::Disconnect { receipt } => receipt.as_deref(),
            ServerEvent::Connect(_) | ServerEvent::Closed(_) => None,
        }
    }
}

/// An outgoing MESSAGE for [`ServerSession::send_message`].
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// The subscription id the message is delivered on.
    pub subscription: &'a str,
    /// The `destination` header.
    pub destination: &'a str,
    /// The `message-id` header (unique per message).
    pub message_id: &'a str,
    /// Other headers (`content-type`, user headers). Reserved names (`destination`,
    /// `message-id`, `subscription`, `ack`, `content-length`, `receipt`, `transaction`) are
    /// skipped.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body; a large one is queued as a shared chunk, not copied.
    pub body: Bytes,
}

/// A MESSAGE encoded once for all its deliveries (a fan-out): destination, user headers,
/// `content-length` and the blank line, escaped for one STOMP version, and the body. Each
/// delivery ([`ServerSession::send_shared`], [`ServerSession::send_shared_frame`]) then only
/// writes what differs per subscriber: `message-id`, `subscription` and `ack`. Reserved
/// header names are skipped as in [`Message::headers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedMessage {
    version: Version,
    /// `destination:..\n`, the user headers, `content-length`, the blank line.
    lines: Bytes,
    /// Where the destination line ends in `lines` (the per-delivery headers follow it, as
    /// in a MESSAGE from [`ServerSession::send_message`]).
    destination_end: usize,
    body: Bytes,
}

impl SharedMessage {
    /// Encodes the shared part of a MESSAGE for sessions of `version`; fails when a header
    /// cannot be represented in that version (CR or LF in 1.0, CR in 1.1).
    pub fn new(
        version: Version,
        destination: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<SharedMessage, EncodeError> {
        SharedMessage::with_headers(version, destination, headers.iter().copied(), body)
    }

    /// [`SharedMessage::new`] with the headers from an iterator (walked twice: once to size
    /// the buffer), for hosts that keep headers in their own form.
    pub fn with_headers<'h, I>(
        version: Version,
        destination: &str,
        headers: I,
        body: Bytes,
    ) -> Result<SharedMessage, EncodeError>
    where
        I: IntoIterator<Item = (&'h str, &'h str)>,
        I::IntoIter: Clone,
    {
        let headers = headers.into_iter();
        // Unescaped size plus room for content-length; escaping grows it only when needed.
        let size = 40
            + destination.len()
            + headers
                .clone()
                .map(|(k, v)| k.len() + v.len() + 2)
                .sum::<usize>();
        let mut out = BytesMut::with_capacity(size);
        let mut w = HeadWriter::resume(&mut out, Command::Message, version);
        w.header("destination", destination)?;
        let destination_end = w.len();
        for (k, v) in headers {
            if !reserved(k) {
                w.header(k, v)?;
            }
        }
        w.finish(body.len());
        Ok(SharedMessage {
            version,
            lines: out.freeze(),
            destination_end,
            body,
        })
    }

    /// [`SharedMessage::with_headers`] for a message forwarded from a client's SEND as
    /// parsed: `extra` headers first, then `send`'s headers in order, except those `skip`
    /// names (by their decoded bytes) and the ones a MESSAGE never forwards (as
    /// `with_headers`), and of a repeated header only the first (STOMP 1.2 "Repeated Header
    /// Entries"). The body is `send`'s. Gives the same bytes as `with_headers` with those
    /// headers, cheaper: a frame that arrived without escapes is copied line by line as it
    /// came, with no UTF-8 recheck or escape scan.
    pub fn from_send(
        version: Version,
        destination: &str,
        extra: &[(&str, &str)],
        send: &Frame,
        skip: impl Fn(&[u8]) -> bool,
    ) -> Result<SharedMessage, EncodeError> {
        let size = 40
            + destination.len()
            + extra
                .iter()
                .map(|(k, v)| k.len() + v.len() + 2)
                .sum::<usize>()
            + send.head.len();
        let mut out = BytesMut::with_capacity(size);
        let mut w = HeadWriter::resume(&mut out, Command::Message, version);
        w.header("destination", destination)?;
        let destination_end = w.len();
        for &(k, v) in extra {
            if !reserved(k) {
                w.header(k, v)?;
            }
        }
        let keep = |i: usize, name: &[u8]| {
            !skip(name)
                && !reserved_bytes(name)
                && !send.raw_headers().take(i).any(|(seen, _)| seen == name)
        };
        if send.plain {
            for (i, (name, value)) in send.raw_headers().enumerate() {
                if keep(i, name) {
                    w.plain_header(name, value)?;
                }
            }
        } else {
            for (i, (name, value)) in send.headers().enumerate() {
                if keep(i, name.as_bytes()) {
                    w.header(name, value)?;
                }
            }
        }
        w.finish(send.body().len());
        Ok(SharedMessage {
            version,
            lines: out.freeze(),
            destination_end,
            body: send.body().clone(),
        })
    }

    /// The STOMP version this message is encoded for.
    #[must_use]
    pub fn version(&self) -> Version {
        self.version
    }

    /// The body, shared by every delivery.
    #[must_use]
    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

/// Headers a MESSAGE gets from the session, never from the forwarded frame.
fn reserved(name: &str) -> bool {
    reserved_bytes(name.as_bytes())
}

/// [`reserved`] by the name's bytes.
fn reserved_bytes(name: &[u8]) -> bool {
    matches!(
        name,
        b"destination"
            | b"message-id"
            | b"subscription"
            | b"ack"
            | b"content-length"
            | b"receipt"
            | b"transaction"
    )
}

#[derive(Debug, Clone)]
struct Pending {
    seq: u64,
    key: String,
    message_id: String,
}

#[derive(Debug, Clone)]
struct Subscription {
    destination: String,
    ack: AckMode,
    explicit_id: bool,
    pending: VecDeque<Pending>,
}

/// A session's subscriptions: in slots, so a host that kept the [`SubscriptionKey`] of a
/// SUBSCRIBE reaches its subscription without hashing the id (a broker delivers to many
/// sessions; each lookup by id is another cold hash table), and by id for the client's
/// frames.
#[derive(Debug, Default)]
struct Subs {
    slots: Vec<Slot>,
    /// Slots free for reuse (bounded with `slots` by `max_subscriptions`).
    free: Vec<u32>,
    /// Hashed rather than ordered (a client's own ids can at worst collide with each
    /// other, bounded by `max_subscriptions`).
    by_id: HashMap<String, u32, BuildHasherDefault<IdHasher>>,
}

#[derive(Debug)]
struct Slot {
    /// The serial of the subscription in it (unique over all sessions of the process), or
    /// of the last one when empty: a key with another serial is stale or foreign.
    serial: u64,
    sub: Option<(String, Subscription)>,
}

/// Serials of [`SubscriptionKey`]s: unique over every session of the process, so a key
/// given to the wrong session can never match one of its slots.
#[cfg(target_has_atomic = "64")]
static NEXT_SERIAL: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);
/// Targets without 64-bit atomics (the crate is `no_std`) count in 32 bits: unique until
/// 2^32 subscriptions have been made in the process.
#[cfg(not(target_has_atomic = "64"))]
static NEXT_SERIAL: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(1);

/// The next [`SubscriptionKey`] serial.
#[allow(
    clippy::useless_conversion,
    reason = "a widening from u32 on targets without 64-bit atomics"
)]
fn next_serial() -> u64 {
    u64::from(NEXT_SERIAL.fetch_add(1, Ordering::Relaxed))
}

impl Subs {
    fn len(&self) -> usize {
        self.by_id.len()
    }

    fn contains_key(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    fn slot_of(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    fn get(&self, id: &str) -> Option<&Subscription> {
        self.at(self.slot_of(id)?).map(|(_, sub)| sub)
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Subscription> {
        let slot = self.slot_of(id)?;
        self.at_mut(slot)
    }

    fn at(&self, slot: u32) -> Option<(&str, &Subscription)> {
        let (id, sub) = self.slots.get(slot as usize)?.sub.as_ref()?;
        Some((id.as_str(), sub))
    }

    fn at_mut(&mut self, slot: u32) -> Option<&mut Subscription> {
        self.slots
            .get_mut(slot as usize)?
            .sub
            .as_mut()
            .map(|(_, sub)| sub)
    }

    /// The slot `key` names, if it is this session's and its subscription still exists.
    fn by_key(&self, key: SubscriptionKey) -> Option<u32> {
        let slot = self.slots.get(key.slot as usize)?;
        (slot.serial == key.serial && slot.sub.is_some()).then_some(key.slot)
    }

    /// Adds a subscription (the caller checked the id is free and the bound).
    fn insert(&mut self, id: String, sub: Subscription) -> SubscriptionKey {
        let serial = next_serial();
        let slot = self.free.pop().unwrap_or_else(|| {
            // At most `max_subscriptions` slots (a `u32` is ample).
            let i = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
            self.slots.push(Slot { serial, sub: None });
            i
        });
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.serial = serial;
            s.sub = Some((id.clone(), sub));
        }
        self.by_id.insert(id, slot);
        SubscriptionKey { slot, serial }
    }

    fn remove(&mut self, id: &str) -> Option<Subscription> {
        let slot = self.by_id.remove(id)?;
        let (_, sub) = self.slots.get_mut(slot as usize)?.sub.take()?;
        self.free.push(slot);
        Some(sub)
    }

    fn iter(&self) -> impl Iterator<Item = (&String, &Subscription)> {
        self.slots
            .iter()
            .filter_map(|s| s.sub.as_ref().map(|(id, sub)| (id, sub)))
    }
}

#[derive(Debug, Clone)]
enum Held {
    Send(Frame),
    Ack { nack: bool, key: String },
}

#[derive(Debug, Clone, Default)]
struct Transaction {
    held: Vec<Held>,
    bytes: usize,
}

/// The server side of one STOMP session. See the [module docs](self) for the lifecycle,
/// the drain contract and time.
///
/// ```
/// use stompbox_stomp::server::{ServerConfig, ServerEvent, ServerSession, Accept};
///
/// let mut s = ServerSession::new(ServerConfig::default());
/// s.handle_timeout(0); // once at creation: starts the connect timeout (10 s)
/// assert_eq!(s.poll_timeout(), Some(10_000));
/// s.handle_read(b"CONNECT\naccept-version:1.2\nhost:example\n\n\0").unwrap();
/// let Some(ServerEvent::Connect(req)) = s.poll_event() else { panic!() };
/// assert_eq!(req.host.as_deref(), Some("example"));
/// s.accept(&Accept::default()).unwrap();
/// // one whole frame (e.g. one WebSocket message); `poll_transmit` gives a byte stream
/// let frame = s.poll_transmit_frame().unwrap();
/// assert!(frame.head.starts_with(b"CONNECTED\nversion:1.2\n"));
/// assert!(frame.head.ends_with(b"\0"));
/// ```
#[derive(Debug)]
pub struct ServerSession {
    /// What every MESSAGE reads or writes, kept together: a broker fanning out to many
    /// sessions touches each one's state cold, and fewer cache lines means fewer misses.
    hot: Hot,
    config: ServerConfig,
    parser: Parser,
    inbuf: BytesMut,
    events: VecDeque<ServerEvent>,
    pending_connect: Option<(HeartBeat, Negotiated)>,
    ack_index: BTreeMap<String, (String, u64)>,
    transactions: BTreeMap<String, Transaction>,
    transaction_bytes: usize,
    heartbeats_sent: u64,
    clock_known: bool,
    connect_deadline: Option<u64>,
}

/// The [`ServerSession`] fields a MESSAGE touches (see `ServerSession::hot`).
#[derive(Debug)]
struct Hot {
    out: Output,
    timer: Timer,
    /// By id: looked up for every MESSAGE, so hashed rather than ordered (a client's own
    /// ids can at worst collide with each other, bounded by `max_subscriptions`).
    subs: Subs,
    pending_acks: usize,
    next_seq: u64,
    /// Copies of the [`ServerConfig`] values every MESSAGE checks.
    max_pending_output: usize,
    max_pending_acks: usize,
    v1_0_subscription_header: bool,
    /// Read before every MESSAGE a broker queues (a failed session gets none).
    error: Option<PeerError>,
    state: ServerState,
    version: Version,
    disconnected: bool,
}

/// Options for [`ServerSession::accept`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Accept<'a> {
    /// The CONNECTED `session` header.
    pub session: Option<&'a str>,
    /// Extra CONNECTED headers.
    pub headers: &'a [(&'a str, &'a str)],
}

impl ServerSession {
    /// A session waiting for CONNECT.
    pub fn new(config: ServerConfig) -> ServerSession {
        let mut parser = Parser::new(config.connect_limits);
        parser.set_version(Version::V1_0);
        ServerSession {
            hot: Hot {
                out: Output::sharing_from(config.share_bodies_from),
                timer: Timer::new(config.heartbeat_grace_percent),
                subs: Subs::default(),
                pending_acks: 0,
                next_seq: 0,
                max_pending_output: config.max_pending_output,
                max_pending_acks: config.max_pending_acks,
                v1_0_subscription_header: config.v1_0_subscription_header,
                state: ServerState::AwaitingConnect,
                version: Version::V1_0,
                error: None,
                disconnected: false,
            },
            config,
            parser,
            inbuf: BytesMut::new(),
            events: VecDeque::new(),
            pending_connect: None,
            ack_index: BTreeMap::new(),
            transactions: BTreeMap::new(),
            transaction_bytes: 0,
            heartbeats_sent: 0,
            clock_known: false,
            connect_deadline: None,
        }
    }

    /// The state.
    pub fn state(&self) -> ServerState {
        self.hot.state
    }

    /// The negotiated version (1.0 until a CONNECT was validated).
    pub fn version(&self) -> Version {
        self.hot.version
    }

    /// The negotiated heart-beat intervals (zero until accepted).
    pub fn heartbeat(&self) -> Negotiated {
        self.hot.timer.negotiated
    }

    /// Heart-beat EOLs received and sent so far.
    pub fn heartbeat_counts(&self) -> (u64, u64) {
        (self.parser.heartbeats(), self.heartbeats_sent)
    }

    /// The sticky peer error, if the session failed.
    pub fn error(&self) -> Option<&PeerError> {
        self.hot.error.as_ref()
    }

    /// Bytes queued for transmission (for backpressure).
    pub fn pending_output(&self) -> usize {
        self.hot.out.pending()
    }

    /// Frames (and heart-beat EOLs) queued for transmission, counting one partly taken by
    /// [`ServerSession::poll_transmit`] / [`ServerSession::poll_transmit_into`].
    pub fn pending_frames(&self) -> usize {
        self.hot.out.pending_frames()
    }

    /// Messages delivered on client-ack subscriptions and not yet acknowledged.
    pub fn pending_acks(&self) -> usize {
        self.hot.pending_acks
    }

    /// Whether the session is closed and all output was drained: close the transport.
    pub fn is_finished(&self) -> bool {
        self.hot.state == ServerState::Closed && self.hot.out.is_empty()
    }

    /// The ack mode of subscription `id`, if it exists.
    pub fn subscription(&self, id: &str) -> Option<(&str, AckMode)> {
        self.hot
            .subs
            .get(id)
            .map(|s| (s.destination.as_str(), s.ack))
    }

    /// The next event, or `None`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// The next chunk of output, or `None`: a byte stream (small frames coalesced, a large
    /// body as its own shared chunk); chunks need not end at frame boundaries. See
    /// [Output](self#output).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.hot.out.poll()
    }

    /// The next whole frame (or heart-beat EOL) of output, or `None`: for hosts that send
    /// one frame per WebSocket message or write frame by frame. Its parts share storage with
    /// the queued output (a large body is the caller's `Bytes`, not copied). May be mixed
    /// with [`ServerSession::poll_transmit`]: after a partly taken frame it returns that
    /// frame's rest.
    #[must_use]
    pub fn poll_transmit_frame(&mut self) -> Option<Transmit> {
        self.hot.out.poll_frame()
    }

    /// Copies pending output into `buf`; returns the number of bytes written.
    #[must_use]
    pub fn poll_transmit_into(&mut self, buf: &mut [u8]) -> usize {
        self.hot.out.poll_into(buf)
    }

    /// When `handle_timeout` should be called next (monotonic milliseconds), if ever:
    /// before the session is accepted, the connect deadline (`Some(0)` while the session has
    /// not been given the time yet and a connect timeout is configured); once open, the next
    /// heart-beat to send or the client's liveness deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.hot.state {
            ServerState::Open => self.hot.timer.poll_timeout(),
            ServerState::AwaitingConnect | ServerState::Authenticating => {
                self.config.connect_timeout_ms?;
                Some(self.connect_deadline.unwrap_or(0))
            }
            ServerState::Closed => None,
        }
    }

    /// Gives the time (any monotonic millisecond count; call it once when the session is
    /// created, then whenever [`ServerSession::poll_timeout`] is due). Before the session is
    /// accepted: the first call starts the connect timeout, and once it expires the session
    /// queues an ERROR (`connect timeout`) and closes. Once open: sends an overdue
    /// heart-beat, then judges the client's liveness; a silent client gets an ERROR and the
    /// session closes.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let action = self.hot.timer.handle_timeout(now_ms);
        let now = self.hot.timer.now;
        if !self.clock_known {
            self.clock_known = true;
            if let Some(t) = self.config.connect_timeout_ms {
                self.connect_deadline = Some(now.saturating_add(t));
            }
        }
        if matches!(
            self.hot.state,
            ServerState::AwaitingConnect | ServerState::Authenticating
        ) && self.connect_deadline.is_some_and(|d| now >= d)
        {
            self.pending_connect = None;
            self.fail(Violation::ConnectTimeout, None);
            return;
        }
        if self.hot.state != ServerState::Open {
            return;
        }
        if action.send_heartbeat {
            self.hot.out.push_eol();
            self.heartbeats_sent += 1;
        }
        if action.peer_dead {
            self.fail(Violation::HeartBeatTimeout, None);
        }
    }

    /// Moves the session's clock forward to `now_ms` without acting on it (an earlier time is
    /// ignored; the next [`ServerSession::handle_timeout`] sends heart-beats and judges
    /// liveness): output queued and input read afterwards count as at `now_ms`. For hosts that
    /// queue output for many sessions at one instant (a broker's fan-out) and call
    /// `handle_timeout` only when [`ServerSession::poll_timeout`] is due.
    pub fn advance_time(&mut self, now_ms: u64) {
        self.hot.timer.advance(now_ms);
    }

    /// Feeds received bytes. Returns the sticky [`PeerError`] once the client violated the
    /// protocol (its ERROR reply is already queued). Input after a graceful close is ignored.
    pub fn handle_read(&mut self, data: &[u8]) -> Result<(), PeerError> {
        if let Some(e) = &self.hot.error {
            return Err(e.clone());
        }
        if self.hot.state == ServerState::Closed || data.is_empty() {
            return Ok(());
        }
        self.hot.timer.on_receive();
        self.inbuf.extend_from_slice(data);
        self.process_input();
        match &self.hot.error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn process_input(&mut self) {
        loop {
            match self.hot.state {
                ServerState::AwaitingConnect | ServerState::Open => {}
                ServerState::Authenticating => {
                    let l = self.config.connect_limits;
                    if self.inbuf.len() > l.max_head_bytes + l.max_body_bytes {
                        self.fail(
                            Violation::LimitExceeded("input buffered before CONNECTED"),
                            None,
                        );
                    }
                    return;
                }
                ServerState::Closed => return,
            }
            match self.parser.parse(&mut self.inbuf) {
                // A SEND is moved into its event, not cloned (the common case once open).
                Ok(Some(frame))
                    if frame.command() == Command::Send && self.hot.state == ServerState::Open =>
                {
                    self.on_send(frame);
                }
                Ok(Some(frame)) => {
                    if let Err(v) = self.on_frame(&frame) {
                        self.fail(v, Some(&frame));
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    self.fail(Violation::Parse(e), None);
                    return;
                }
            }
        }
    }

    fn on_frame(&mut self, frame: &Frame) -> Result<(), Violation> {
        let cmd = frame.command();
        if !frame.body().is_empty() && !cmd.allows_body() {
            return Err(Violation::BodyNotAllowed(cmd));
        }
        if self.hot.state == ServerState::AwaitingConnect {
            return match cmd {
                Command::Connect | Command::Stomp => self.on_connect(frame),
                other => Err(Violation::NotConnected(other)),
            };
        }
        match cmd {
            Command::Send => {
                self.on_send(frame.clone());
                Ok(())
            }
            Command::Subscribe => self.on_subscribe(frame),
            Command::Unsubscribe => self.on_unsubscribe(frame),
            Command::Ack => self.on_ack(frame, false),
            Command::Nack if self.hot.version >= Version::V1_1 => self.on_ack(frame, true),
            Command::Begin => self.on_begin(frame),
            Command::Commit => self.on_commit(frame),
            Command::Abort => self.on_abort(frame),
            Command::Disconnect => {
                let receipt = frame.header("receipt").map(ToString::to_string);
                self.auto_receipt(receipt.as_deref());
                self.events.push_back(ServerEvent::Disconnect { receipt });
                self.hot.disconnected = true;
                self.close(CloseReason::Disconnect);
                Ok(())
            }
            other => Err(Violation::UnexpectedCommand(other)),
        }
    }

    fn on_connect(&mut self, frame: &Frame) -> Result<(), Violation> {
        let cmd = frame.command();
        let version = match frame.header("accept-version") {
            None => Version::V1_0,
            Some(list) => list
                .split(',')
                .filter_map(Version::parse)
                .filter(|v| self.config.versions.contains(v))
                .max()
                .ok_or(Violation::UnsupportedVersion)?,
        };
        if !self.config.versions.contains(&version) {
            return Err(Violation::UnsupportedVersion);
        }
        self.hot.version = version;
        let host = frame.header("host").map(ToString::to_string);
        if version >= Version::V1_1 && self.config.require_host && host.is_none() {
            return Err(Violation::MissingHeader(cmd, "host"));
        }
        let heart_beat = if version >= Version::V1_1 {
            match frame.header("heart-beat") {
                None => HeartBeat::NONE,
                Some(v) => {
                    HeartBeat::parse(v).ok_or(Violation::InvalidHeader(cmd, "heart-beat"))?
                }
            }
        } else {
            HeartBeat::NONE
        };
        let ours = if version >= Version::V1_1 {
            self.config.heart_beat
        } else {
            HeartBeat::NONE
        };
        let negotiated = Negotiated::negotiate(ours, heart_beat);
        self.pending_connect = Some((ours, negotiated));
        self.hot.state = ServerState::Authenticating;
        self.events.push_back(ServerEvent::Connect(ConnectRequest {
            version,
            host,
            login: frame.header("login").map(ToString::to_string),
            passcode: frame.header("passcode").map(ToString::to_string),
            heart_beat,
            negotiated,
            frame: frame.clone(),
        }));
        Ok(())
    }

    /// Accepts the pending CONNECT: queues CONNECTED (version, heart-beat, session, server),
    /// starts heart-beats and processes input that arrived meanwhile.
    pub fn accept(&mut self, accept: &Accept<'_>) -> Result<(), UsageError> {
        if self.hot.state != ServerState::Authenticating {
            return Err(UsageError::NoPendingConnect);
        }
        let Some((ours, negotiated)) = self.pending_connect else {
            return Err(UsageError::NoPendingConnect);
        };
        let version = self.hot.version;
        let server = self.config.server.clone();
        let hb = ours.to_header_value();
        let v1_0_headers = self.config.v1_0_connected_headers;
        let start = self.hot.out.pending();
        let res = self.hot.out.with_staging(|buf| {
            let mark = buf.len();
            let mut w = HeadWriter::start(buf, Command::Connected, version);
            let mut r = Ok(());
            if version >= Version::V1_1 || v1_0_headers {
                r = r.and(w.header("version", version.as_str()));
                r = r.and(w.header("heart-beat", &hb));
            }
            if let Some(s) = accept.session {
                r = r.and(w.header("session", s));
            }
            if let Some(s) = &server {
                r = r.and(w.header("server", s));
            }
            for (k, v) in accept.headers {
                if !matches!(
                    *k,
                    "version" | "heart-beat" | "session" | "server" | "content-length"
                ) {
                    r = r.and(w.header(k, v));
                }
            }
            if r.is_ok() {
                w.finish(0);
                buf.put_u8(0);
            } else {
                buf.truncate(mark);
            }
            r
        });
        res?;
        self.hot.out.end_unit(start);
        self.pending_connect = None;
        self.hot.state = ServerState::Open;
        self.parser.set_version(version);
        self.parser.set_limits(self.config.limits);
        self.hot.timer.start(negotiated);
        self.hot.timer.on_transmit();
        self.process_input();
        Ok(())
    }

    /// Rejects the pending CONNECT: queues an ERROR with `message` and closes.
    pub fn reject(&mut self, message: &str) -> Result<(), UsageError> {
        if self.hot.state != ServerState::Authenticating {
            return Err(UsageError::NoPendingConnect);
        }
        let frame = Frame::builder(Command::Error)
            .header("message", &sanitize(message))
            .header("content-type", "text/plain")
            .body(Bytes::from(alloc::format!("{message}\n")))
            .build();
        self.push_frame(&frame);
        self.close(CloseReason::Rejected);
        Ok(())
    }

    fn push_frame(&mut self, frame: &Frame) {
        // ERROR and RECEIPT headers we build are always encodable (sanitized); should the
        // version still refuse one, fall back to a bare frame rather than lose the reply.
        if self.hot.out.push_frame(frame, self.hot.version).is_err() {
            let bare = Frame::new(frame.command());
            let _ = self.hot.out.push_frame(&bare, self.hot.version);
        }
        self.hot.timer.on_transmit();
    }

    fn queue_receipt(&mut self, receipt: &str) {
        let f = Frame::builder(Command::Receipt)
            .header("receipt-id", receipt)
            .build();
        self.push_frame(&f);
    }

    /// Sends RECEIPT for `receipt_id` (when [`ServerConfig::auto_receipts`] is off). Allowed
    /// while open and after the client's DISCONNECT (so the host can answer the receipts of
    /// the events before it, then the DISCONNECT's); after any other close it is
    /// [`UsageError::Closed`].
    pub fn send_receipt(&mut self, receipt_id: &str) -> Result<(), UsageError> {
        if !(self.hot.state == ServerState::Closed && self.hot.disconnected) {
            self.require_open()?;
        }
        let f = Frame::builder(Command::Receipt)
            .header("receipt-id", receipt_id)
            .build();
        self.hot.out.push_frame(&f, self.hot.version)?;
        self.hot.timer.on_transmit();
        Ok(())
    }

    /// Sends an ERROR (e.g. the broker refuses a destination) and closes the session.
    /// `receipt_id` names the offending frame's receipt, if it had one.
    pub fn send_error(
        &mut self,
        message: &str,
        receipt_id: Option<&str>,
        body: &[u8],
    ) -> Result<(), UsageError> {
        if self.hot.state == ServerState::Closed {
            return Err(UsageError::Closed);
        }
        let frame = Frame::builder(Command::Error)
            .header("message", &sanitize(message))
            .header_opt("receipt-id", receipt_id)
            .header("content-type", "text/plain")
            .body(Bytes::copy_from_slice(body))
            .build();
        self.push_frame(&frame);
        self.close(CloseReason::ErrorSent);
        Ok(())
    }

    fn require_open(&self) -> Result<(), UsageError> {
        match self.hot.state {
            ServerState::Open => Ok(()),
            ServerState::Closed => Err(UsageError::Closed),
            _ => Err(UsageError::NotConnected),
        }
    }

    /// Queues a MESSAGE on subscription `msg.subscription`, with the headers the negotiated
    /// version asks for (`subscription`; `ack` in 1.2 for client ack modes). Messages on
    /// client-ack subscriptions are remembered until acknowledged. Allowed while open and, like
    /// [`ServerSession::send_receipt`], after the client's DISCONNECT (for what the frames
    /// before it caused, e.g. a SEND to a destination the client itself subscribed to).
    pub fn send_message(&mut self, msg: &Message<'_>) -> Result<(), UsageError> {
        self.write_message(
            msg.subscription,
            msg.destination,
            msg.message_id,
            msg.headers.iter().copied(),
            msg.body.clone(),
        )
    }

    /// Queues a MESSAGE that forwards a SEND frame: its destination, user headers and
    /// body (shared, not copied), on subscription `subscription` with `message_id`.
    pub fn send_message_from(
        &mut self,
        subscription: &str,
        message_id: &str,
        send: &Frame,
    ) -> Result<(), UsageError> {
        let dest = send
            .header("destination")
            .ok_or(UsageError::MissingHeader("destination"))?;
        self.write_message(
            subscription,
            dest,
            message_id,
            send.headers(),
            send.body().clone(),
        )
    }

    /// Queues one delivery of a message encoded once for all its deliveries: only the
    /// per-delivery headers (`message-id`, `subscription`, `ack`) are written here; the
    /// destination, user headers and `content-length` are copied from `msg` as encoded. The
    /// same rules and books as [`ServerSession::send_message`] apply; `msg` must be encoded
    /// for this session's [`ServerSession::version`] ([`UsageError::WrongVersion`]).
    pub fn send_shared(
        &mut self,
        subscription: &str,
        message_id: &str,
        msg: &SharedMessage,
    ) -> Result<(), UsageError> {
        let slot = self.id_slot(subscription)?;
        self.queue_shared(slot, message_id, msg)
    }

    /// Like [`ServerSession::send_shared`], but hands the MESSAGE straight back as one whole
    /// frame instead of queuing it, for hosts that keep their own queue of whole frames and
    /// take everything else with [`ServerSession::poll_transmit_frame`]. Nothing is staged
    /// or split: the frame is a head of its own, `msg`'s body (shared, never copied, even
    /// when small) and a static NUL. The host writes it after everything it already took.
    /// The frame must not overtake queued output: while [`ServerSession::pending_output`] is
    /// not 0 this is [`UsageError::OutputPending`] (take that output first).
    pub fn send_shared_frame(
        &mut self,
        subscription: &str,
        message_id: &str,
        msg: &SharedMessage,
    ) -> Result<Transmit, UsageError> {
        if !self.hot.out.is_empty() {
            return Err(UsageError::OutputPending);
        }
        let slot = self.id_slot(subscription)?;
        self.shared_frame(slot, message_id, msg)
    }

    /// [`ServerSession::send_shared`] to the subscription `key` names (from its
    /// [`SubscribeEvent::key`]): no lookup by id. A key of a subscription that ended, or of
    /// another session, is [`UsageError::UnknownSubscription`].
    pub fn send_shared_to(
        &mut self,
        key: SubscriptionKey,
        message_id: &str,
        msg: &SharedMessage,
    ) -> Result<(), UsageError> {
        let slot = self.key_slot(key)?;
        self.queue_shared(slot, message_id, msg)
    }

    /// [`ServerSession::send_shared_frame`] to the subscription `key` names (from its
    /// [`SubscribeEvent::key`]): no lookup by id, the fan-out path of a broker. A key of a
    /// subscription that ended, or of another session, is
    /// [`UsageError::UnknownSubscription`].
    pub fn send_shared_frame_to(
        &mut self,
        key: SubscriptionKey,
        message_id: &str,
        msg: &SharedMessage,
    ) -> Result<Transmit, UsageError> {
        if !self.hot.out.is_empty() {
            return Err(UsageError::OutputPending);
        }
        let slot = self.key_slot(key)?;
        self.shared_frame(slot, message_id, msg)
    }

    /// Queues one delivery of `msg` to the subscription in `slot` (the `send_shared*` that
    /// queue).
    fn queue_shared(
        &mut self,
        slot: u32,
        message_id: &str,
        msg: &SharedMessage,
    ) -> Result<(), UsageError> {
        let admit = self.admit_slot(slot, msg)?;
        let mut ack_buf = [0u8; 20];
        let ack_id = admit.ack_id(&mut ack_buf);
        let (id, _) = self
            .hot
            .subs
            .at(slot)
            .ok_or(UsageError::UnknownSubscription)?;
        let start = self.hot.out.pending();
        self.hot.out.with_staging(|buf| {
            let mark = buf.len();
            let r = put_shared_head(buf, &admit, id, message_id, ack_id, msg);
            if r.is_err() {
                buf.truncate(mark);
            }
            r
        })?;
        self.hot.out.push_body(msg.body.clone());
        self.hot.out.end_unit(start);
        self.delivered(message_id, &admit);
        Ok(())
    }

    /// One delivery of `msg` to the subscription in `slot` as a whole frame of its own (the
    /// `send_shared_frame*`; the caller checked that no output is queued).
    fn shared_frame(
        &mut self,
        slot: u32,
        message_id: &str,
        msg: &SharedMessage,
    ) -> Result<Transmit, UsageError> {
        let admit = self.admit_slot(slot, msg)?;
        let mut ack_buf = [0u8; 20];
        let ack_id = admit.ack_id(&mut ack_buf);
        let (id, _) = self
            .hot
            .subs
            .at(slot)
            .ok_or(UsageError::UnknownSubscription)?;
        // One allocation of the exact size: escaping can only lengthen the two per-delivery
        // values, by at most twice their length.
        let mut head =
            BytesMut::with_capacity(msg.lines.len() + 56 + message_id.len() * 2 + id.len() * 2);
        put_shared_head(&mut head, &admit, id, message_id, ack_id, msg)?;
        self.delivered(message_id, &admit);
        Ok(Transmit {
            head: head.freeze(),
            body: msg.body.clone(),
            tail: Bytes::from_static(b"\0"),
        })
    }

    /// The key of subscription `id`, if it exists (the one its [`SubscribeEvent::key`]
    /// reported).
    #[must_use]
    pub fn subscription_key(&self, id: &str) -> Option<SubscriptionKey> {
        let slot = self.hot.subs.slot_of(id)?;
        let serial = self.hot.subs.slots.get(slot as usize)?.serial;
        Some(SubscriptionKey { slot, serial })
    }

    /// The slot of subscription `id`, once a MESSAGE may be queued at all.
    fn id_slot(&self, id: &str) -> Result<u32, UsageError> {
        self.require_deliverable()?;
        self.hot
            .subs
            .slot_of(id)
            .ok_or(UsageError::UnknownSubscription)
    }

    /// The slot `key` names in this session.
    fn key_slot(&self, key: SubscriptionKey) -> Result<u32, UsageError> {
        self.hot
            .subs
            .by_key(key)
            .ok_or(UsageError::UnknownSubscription)
    }

    /// The checks of a `send_shared*` for the subscription in `slot`.
    fn admit_slot(&self, slot: u32, msg: &SharedMessage) -> Result<Admit, UsageError> {
        self.require_deliverable()?;
        let (_, sub) = self
            .hot
            .subs
            .at(slot)
            .ok_or(UsageError::UnknownSubscription)?;
        let admit = self.admit_sub(sub, slot)?;
        if msg.version != self.hot.version {
            return Err(UsageError::WrongVersion);
        }
        Ok(admit)
    }

    /// A MESSAGE may be queued in this state.
    fn require_deliverable(&self) -> Result<(), UsageError> {
        // After the client's DISCONNECT the host still acts on the events before it, which
        // may deliver to this client (as `send_receipt` answers their receipts).
        if !(self.hot.state == ServerState::Closed && self.hot.disconnected) {
            self.require_open()?;
        }
        Ok(())
    }

    /// The checks every MESSAGE passes before anything is queued, and its sequence number.
    fn admit(&self, subscription: &str) -> Result<Admit, UsageError> {
        self.require_deliverable()?;
        let Some(slot) = self.hot.subs.slot_of(subscription) else {
            return Err(UsageError::UnknownSubscription);
        };
        let Some((_, sub)) = self.hot.subs.at(slot) else {
            return Err(UsageError::UnknownSubscription);
        };
        self.admit_sub(sub, slot)
    }

    /// The checks of [`ServerSession::admit`] once the subscription is found.
    fn admit_sub(&self, sub: &Subscription, slot: u32) -> Result<Admit, UsageError> {
        let mode = sub.ack;
        if self.hot.out.pending() >= self.hot.max_pending_output {
            return Err(UsageError::LimitExceeded("queued output"));
        }
        if mode.needs_ack() && self.hot.pending_acks >= self.hot.max_pending_acks {
            return Err(UsageError::LimitExceeded(
                "messages awaiting acknowledgement",
            ));
        }
        Ok(Admit {
            mode,
            slot,
            version: self.hot.version,
            subscription_header: sub.explicit_id
                || self.hot.version >= Version::V1_1
                || self.hot.v1_0_subscription_header,
            seq: self.hot.next_seq,
        })
    }

    fn write_message<'h>(
        &mut self,
        subscription: &str,
        destination: &str,
        message_id: &str,
        headers: impl Iterator<Item = (&'h str, &'h str)>,
        body: Bytes,
    ) -> Result<(), UsageError> {
        let admit = self.admit(subscription)?;
        let version = self.hot.version;
        let mut ack_buf = [0u8; 20];
        let ack_id = admit.ack_id(&mut ack_buf);
        let body_len = body.len();
        let start = self.hot.out.pending();
        self.hot.out.with_staging(|buf| {
            let mark = buf.len();
            let r: Result<(), crate::encoder::EncodeError> = (|| {
                let mut w = HeadWriter::start(buf, Command::Message, version);
                w.header("destination", destination)?;
                w.header("message-id", message_id)?;
                if admit.subscription_header {
                    w.header("subscription", subscription)?;
                }
                if let Some(a) = ack_id {
                    w.header("ack", a)?;
                }
                for (k, v) in headers {
                    if !reserved(k) {
                        w.header(k, v)?;
                    }
                }
                w.finish(body_len);
                Ok(())
            })();
            if r.is_err() {
                buf.truncate(mark);
            }
            r
        })?;
        self.hot.out.push_body(body);
        self.hot.out.end_unit(start);
        self.delivered(message_id, &admit);
        Ok(())
    }

    /// Books a MESSAGE just queued or handed out (to the subscription in `admit.slot`):
    /// heart-beat clock, sequence number and, for client ack modes, the acknowledgement
    /// books.
    fn delivered(&mut self, message_id: &str, admit: &Admit) {
        self.hot.timer.on_transmit();
        self.hot.next_seq += 1;
        if !admit.mode.needs_ack() {
            return;
        }
        let slot = admit.slot;
        let Some(subscription) = self.hot.subs.at(slot).map(|(id, _)| id.to_string()) else {
            return;
        };
        let seq = admit.seq;
        let key = match admit.version {
            Version::V1_2 => {
                let mut b = [0u8; 20];
                fmt_u64(seq, &mut b).to_string()
            }
            Version::V1_1 => ack_key_11(&subscription, message_id),
            Version::V1_0 => message_id.to_string(),
        };
        if let Some((old_sub, old_seq)) = self.ack_index.insert(key.clone(), (subscription, seq)) {
            // A 1.0/1.1 key delivered twice: the older delivery can no longer be named;
            // forget it so the books stay balanced.
            if let Some(other) = self.hot.subs.get_mut(&old_sub)
                && let Ok(i) = other.pending.binary_search_by_key(&old_seq, |p| p.seq)
            {
                other.pending.remove(i);
                self.hot.pending_acks -= 1;
            }
        }
        if let Some(sub) = self.hot.subs.at_mut(slot) {
            sub.pending.push_back(Pending {
                seq,
                key,
                message_id: message_id.to_string(),
            });
            self.hot.pending_acks += 1;
        }
    }

    /// Validates a SEND and queues its event (or holds it in its transaction); a violation
    /// fails the session with an ERROR quoting the frame. Takes the frame: a SEND's event
    /// owns it, so the common case moves it instead of cloning.
    fn on_send(&mut self, frame: Frame) {
        if frame.header("destination").is_none() {
            self.fail(
                Violation::MissingHeader(Command::Send, "destination"),
                Some(&frame),
            );
            return;
        }
        let receipt = frame.header("receipt").map(ToString::to_string);
        let transaction = frame.header("transaction").map(ToString::to_string);
        if let Some(tx) = transaction {
            // Cloned (a transaction is the rare case): on a refusal the ERROR quotes it.
            if let Err(v) = self.hold(&tx, Held::Send(frame.clone()), frame.body().len()) {
                self.fail(v, Some(&frame));
                return;
            }
            self.held(Command::Send, tx, receipt);
        } else {
            self.auto_receipt(receipt.as_deref());
            self.events.push_back(ServerEvent::Send(SendEvent {
                frame,
                transaction: None,
                receipt,
            }));
        }
    }

    /// A frame was held in transaction `tx`: its receipt and its event.
    fn held(&mut self, command: Command, transaction: String, receipt: Option<String>) {
        self.auto_receipt(receipt.as_deref());
        self.events.push_back(ServerEvent::Held {
            command,
            transaction,
            receipt,
        });
    }

    fn hold(&mut self, tx: &str, held: Held, bytes: usize) -> Result<(), Violation> {
        let max_frames = self.config.max_transaction_frames;
        let max_bytes = self.config.max_transaction_bytes;
        let total = self.transaction_bytes + bytes;
        let t = self
            .transactions
            .get_mut(tx)
            .ok_or(Violation::UnknownTransaction)?;
        if t.held.len() >= max_frames {
            return Err(Violation::LimitExceeded("frames in a transaction"));
        }
        if total > max_bytes {
            return Err(Violation::LimitExceeded("bytes held in transactions"));
        }
        t.held.push(held);
        t.bytes += bytes;
        self.transaction_bytes = total;
        Ok(())
    }

    fn auto_receipt(&mut self, receipt: Option<&str>) {
        if let Some(r) = receipt
            && self.config.auto_receipts
        {
            self.queue_receipt(r);
        }
    }

    fn on_subscribe(&mut self, frame: &Frame) -> Result<(), Violation> {
        let cmd = Command::Subscribe;
        let destination = frame
            .header("destination")
            .ok_or(Violation::MissingHeader(cmd, "destination"))?;
        let (id, explicit) = match frame.header("id") {
            Some(id) => (id, true),
            None if self.hot.version == Version::V1_0 => (destination, false),
            None => return Err(Violation::MissingHeader(cmd, "id")),
        };
        let ack = match frame.header("ack") {
            None => AckMode::Auto,
            Some(v) => {
                AckMode::parse(v, self.hot.version).ok_or(Violation::InvalidHeader(cmd, "ack"))?
            }
        };
        if self.hot.subs.contains_key(id) {
            return Err(Violation::DuplicateSubscription);
        }
        if self.hot.subs.len() >= self.config.max_subscriptions {
            return Err(Violation::LimitExceeded("subscriptions"));
        }
        let key = self.hot.subs.insert(
            id.to_string(),
            Subscription {
                destination: destination.to_string(),
                ack,
                explicit_id: explicit,
                pending: VecDeque::new(),
            },
        );
        let receipt = frame.header("receipt").map(ToString::to_string);
        self.auto_receipt(receipt.as_deref());
        self.events
            .push_back(ServerEvent::Subscribe(SubscribeEvent {
                id: id.to_string(),
                destination: destination.to_string(),
                ack,
                receipt,
                frame: frame.clone(),
                key,
            }));
        Ok(())
    }

    fn on_unsubscribe(&mut self, frame: &Frame) -> Result<(), Violation> {
        let cmd = Command::Unsubscribe;
        let id = match frame.header("id") {
            Some(id) => id.to_string(),
            None if self.hot.version == Version::V1_0 => {
                let dest = frame
                    .header("destination")
                    .ok_or(Violation::MissingHeader(cmd, "id"))?;
                self.hot
                    .subs
                    .iter()
                    .filter(|(_, s)| s.destination == dest)
                    .map(|(k, _)| k)
                    // Several subscriptions to it (explicit ids): the smallest id, as when
                    // they were ordered, not whichever the hash map yields first.
                    .min()
                    .cloned()
                    .ok_or(Violation::UnknownSubscription)?
            }
            None => return Err(Violation::MissingHeader(cmd, "id")),
        };
        let sub = self
            .hot
            .subs
            .remove(&id)
            .ok_or(Violation::UnknownSubscription)?;
        let mut unacked = Vec::with_capacity(sub.pending.len());
        for p in sub.pending {
            self.ack_index.remove(&p.key);
            self.hot.pending_acks -= 1;
            unacked.push(p.message_id);
        }
        let receipt = frame.header("receipt").map(ToString::to_string);
        self.auto_receipt(receipt.as_deref());
        self.events
            .push_back(ServerEvent::Unsubscribe(UnsubscribeEvent {
                id,
                destination: sub.destination,
                unacked,
                receipt,
            }));
        Ok(())
    }

    fn on_ack(&mut self, frame: &Frame, nack: bool) -> Result<(), Violation> {
        let cmd = frame.command();
        let key = match self.hot.version {
            Version::V1_2 => frame
                .header("id")
                .ok_or(Violation::MissingHeader(cmd, "id"))?
                .to_string(),
            Version::V1_1 => {
                let mid = frame
                    .header("message-id")
                    .ok_or(Violation::MissingHeader(cmd, "message-id"))?;
                let sub = frame
                    .header("subscription")
                    .ok_or(Violation::MissingHeader(cmd, "subscription"))?;
                if !self.hot.subs.contains_key(sub) {
                    return Err(Violation::UnknownSubscription);
                }
                ack_key_11(sub, mid)
            }
            Version::V1_0 => frame
                .header("message-id")
                .ok_or(Violation::MissingHeader(cmd, "message-id"))?
                .to_string(),
        };
        if !self.ack_index.contains_key(&key) {
            return Err(Violation::UnknownAckId);
        }
        let receipt = frame.header("receipt").map(ToString::to_string);
        if let Some(tx) = frame.header("transaction") {
            let tx = tx.to_string();
            self.hold(&tx, Held::Ack { nack, key }, 0)?;
            self.held(cmd, tx, receipt);
            return Ok(());
        }
        self.auto_receipt(receipt.as_deref());
        self.resolve_ack(nack, &key, None, receipt);
        Ok(())
    }

    /// Removes the acknowledged messages from the books and emits the event (nothing when
    /// the messages were acknowledged meanwhile).
    fn resolve_ack(
        &mut self,
        nack: bool,
        key: &str,
        transaction: Option<String>,
        receipt: Option<String>,
    ) {
        let Some((sub_id, seq)) = self.ack_index.get(key).cloned() else {
            return;
        };
        let Some(sub) = self.hot.subs.get_mut(&sub_id) else {
            return;
        };
        let mut message_ids = Vec::new();
        if sub.ack == AckMode::Client {
            while sub.pending.front().is_some_and(|p| p.seq <= seq) {
                if let Some(p) = sub.pending.pop_front() {
                    self.ack_index.remove(&p.key);
                    self.hot.pending_acks -= 1;
                    message_ids.push(p.message_id);
                }
            }
        } else if let Ok(i) = sub.pending.binary_search_by_key(&seq, |p| p.seq)
            && let Some(p) = sub.pending.remove(i)
        {
            self.ack_index.remove(&p.key);
            self.hot.pending_acks -= 1;
            message_ids.push(p.message_id);
        }
        let ev = AckEvent {
            subscription: sub_id,
            message_ids,
            transaction,
            receipt,
        };
        self.events.push_back(if nack {
            ServerEvent::Nack(ev)
        } else {
            ServerEvent::Ack(ev)
        });
    }

    fn transaction_header(frame: &Frame) -> Result<String, Violation> {
        frame
            .header("transaction")
            .map(ToString::to_string)
            .ok_or(Violation::MissingHeader(frame.command(), "transaction"))
    }

    fn on_begin(&mut self, frame: &Frame) -> Result<(), Violation> {
        let tx = Self::transaction_header(frame)?;
        if self.transactions.contains_key(&tx) {
            return Err(Violation::DuplicateTransaction);
        }
        if self.transactions.len() >= self.config.max_transactions {
            return Err(Violation::LimitExceeded("transactions"));
        }
        self.transactions.insert(tx.clone(), Transaction::default());
        let receipt = frame.header("receipt").map(ToString::to_string);
        self.auto_receipt(receipt.as_deref());
        self.events.push_back(ServerEvent::Begin {
            transaction: tx,
            receipt,
        });
        Ok(())
    }

    fn on_commit(&mut self, frame: &Frame) -> Result<(), Violation> {
        let tx = Self::transaction_header(frame)?;
        let t = self
            .transactions
            .remove(&tx)
            .ok_or(Violation::UnknownTransaction)?;
        self.transaction_bytes -= t.bytes;
        for held in t.held {
            match held {
                Held::Send(frame) => self.events.push_back(ServerEvent::Send(SendEvent {
                    frame,
                    transaction: Some(tx.clone()),
                    receipt: None,
                })),
                Held::Ack { nack, key } => {
                    self.resolve_ack(nack, &key, Some(tx.clone()), None);
                }
            }
        }
        let receipt = frame.header("receipt").map(ToString::to_string);
        self.auto_receipt(receipt.as_deref());
        self.events.push_back(ServerEvent::Commit {
            transaction: tx,
            receipt,
        });
        Ok(())
    }

    fn on_abort(&mut self, frame: &Frame) -> Result<(), Violation> {
        let tx = Self::transaction_header(frame)?;
        let t = self
            .transactions
            .remove(&tx)
            .ok_or(Violation::UnknownTransaction)?;
        self.transaction_bytes -= t.bytes;
        let receipt = frame.header("receipt").map(ToString::to_string);
        self.auto_receipt(receipt.as_deref());
        self.events.push_back(ServerEvent::Abort {
            transaction: tx,
            dropped: t.held.len(),
            receipt,
        });
        Ok(())
    }

    fn close(&mut self, reason: CloseReason) {
        if self.hot.state == ServerState::Closed {
            return;
        }
        self.hot.state = ServerState::Closed;
        self.hot.timer.stop();
        self.transactions.clear();
        self.transaction_bytes = 0;
        self.inbuf = BytesMut::new();
        self.events.push_back(ServerEvent::Closed(reason));
    }

    /// Queues the ERROR reply for a violation, makes it sticky and closes.
    fn fail(&mut self, violation: Violation, offending: Option<&Frame>) {
        if self.hot.state == ServerState::Closed {
            return;
        }
        let message = sanitize(&match self.config.violation_message {
            Some(text) => (text.0)(&violation, offending),
            None => violation.to_string(),
        });
        let mut b = Frame::builder(Command::Error).header("message", &message);
        if let Some(r) = offending.and_then(|f| f.header("receipt")) {
            b = b.header("receipt-id", r);
        }
        let versions: String = join_versions(&self.config.versions);
        if violation == Violation::UnsupportedVersion {
            b = b.header("version", &versions);
        }
        let mut body = BytesMut::new();
        body.put_slice(message.as_bytes());
        body.put_u8(b'\n');
        if violation == Violation::UnsupportedVersion {
            body.put_slice(b"Supported protocol versions are ");
            body.put_slice(versions.as_bytes());
            body.put_u8(b'\n');
        }
        if let Some(f) = offending.filter(|_| self.config.error_quotes_frame) {
            body.put_slice(b"The offending frame:\n-----\n");
            body.put_slice(f.command().as_str().as_bytes());
            body.put_u8(b'\n');
            for (k, v) in f.headers() {
                if k == "passcode" {
                    body.put_slice(b"passcode:<redacted>\n");
                    continue;
                }
                body.put_slice(k.as_bytes());
                body.put_u8(b':');
                body.put_slice(v.as_bytes());
                body.put_u8(b'\n');
            }
            body.put_slice(b"-----\n");
        }
        let frame = b
            .header("content-type", "text/plain")
            .body(body.freeze())
            .build();
        self.push_frame(&frame);
        self.hot.error = Some(PeerError {
            violation,
            reply: Some(Box::new(frame)),
        });
        self.close(CloseReason::Violation(violation));
    }
}

/// What [`ServerSession::admit`] found: how to write and book one MESSAGE.
struct Admit {
    mode: AckMode,
    /// The subscription's slot in `Subs`.
    slot: u32,
    version: Version,
    /// Whether the MESSAGE names its subscription (always from 1.1 on).
    subscription_header: bool,
    seq: u64,
}

impl Admit {
    /// The `ack` header value (1.2, client ack modes): the delivery's sequence number.
    fn ack_id<'b>(&self, buf: &'b mut [u8; 20]) -> Option<&'b str> {
        (self.mode.needs_ack() && self.version == Version::V1_2).then(|| fmt_u64(self.seq, buf))
    }
}

/// Writes a MESSAGE head from a [`SharedMessage`]: the command, the destination line as
/// encoded once, the per-delivery headers, then the rest as encoded once. On error the
/// caller drops what was written.
fn put_shared_head(
    out: &mut BytesMut,
    admit: &Admit,
    subscription: &str,
    message_id: &str,
    ack_id: Option<&str>,
    msg: &SharedMessage,
) -> Result<(), EncodeError> {
    let mut w = HeadWriter::start(out, Command::Message, admit.version);
    w.put_encoded(&msg.lines[..msg.destination_end]);
    w.known_header("message-id", message_id)?;
    if admit.subscription_header {
        w.known_header("subscription", subscription)?;
    }
    if let Some(a) = ack_id {
        // Decimal digits: nothing to escape.
        w.put_encoded(b"ack:");
        w.put_encoded(a.as_bytes());
        w.put_encoded(b"\n");
    }
    w.put_encoded(&msg.lines[msg.destination_end..]);
    Ok(())
}

/// A small multiply-rotate hash (as rustc's `FxHasher`) for subscription ids: short strings,
/// hashed on every MESSAGE.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl IdHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(IdHasher::K);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.add(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            // Byte by byte: a variable-length copy into a buffer is a memcpy call and a
            // store-forwarding stall, for at most seven bytes.
            let tail = rest
                .iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            self.add(tail);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

fn ack_key_11(subscription: &str, message_id: &str) -> String {
    let mut k = String::with_capacity(subscription.len() + message_id.len() + 1);
    k.push_str(subscription);
    k.push('\0');
    k.push_str(message_id);
    k
}

fn join_versions(versions: &[Version]) -> String {
    let mut v: Vec<Version> = versions.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut s = String::new();
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(x.as_str());
    }
    s
}

/// Header values we generate must encode in every version: no CR or LF.
fn sanitize(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

fn fmt_u64(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    core::str::from_utf8(&buf[i..]).unwrap_or("0")
}
