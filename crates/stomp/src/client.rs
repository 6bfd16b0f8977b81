//! The client session: CONNECT, subscribe, send, ack/nack, transactions, receipts,
//! heart-beats and a graceful DISCONNECT, as a sans-IO state machine.
//!
//! # Lifecycle
//!
//! | state | left by | to |
//! |---|---|---|
//! | [`ClientState::Connecting`] (CONNECT queued by `new`) | CONNECTED / ERROR | `Open` / `Closed` |
//! | [`ClientState::Open`] | [`ClientSession::disconnect`] with a receipt | `Disconnecting` |
//! | [`ClientState::Open`] | `disconnect` without receipt, ERROR, a violation, heart-beat timeout | `Closed` |
//! | [`ClientState::Disconnecting`] | the RECEIPT for the DISCONNECT | `Closed` |
//!
//! Exactly one [`ClientEvent::Closed`] is emitted. Once closed and the output drained
//! ([`ClientSession::is_finished`]), the host closes the transport.
//!
//! # The drain contract
//!
//! After every `handle_read`, `handle_timeout` or command, drain
//! [`ClientSession::poll_transmit`], [`ClientSession::poll_event`] and read
//! [`ClientSession::poll_timeout`] before the next input.

use crate::common::{Output, Timer};
use crate::error::{PeerError, UsageError, Violation};
use crate::frame::{AckMode, Command, Frame, FrameBuilder, HeartBeat, Negotiated, Version};
use crate::parser::{Limits, Parser};
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};

/// Client session configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Versions offered in `accept-version` (default 1.0, 1.1, 1.2).
    pub versions: Vec<Version>,
    /// The `host` header (virtual host; required by STOMP 1.1+ servers).
    pub host: String,
    /// The `login` header.
    pub login: Option<String>,
    /// The `passcode` header.
    pub passcode: Option<String>,
    /// The `heart-beat` header we announce (default `10000,10000`).
    pub heart_beat: HeartBeat,
    /// A silent server is dead after the negotiated interval times this percentage
    /// (default 200).
    pub heartbeat_grace_percent: u32,
    /// Send `STOMP` instead of `CONNECT` (1.2 recommends STOMP; some 1.0 servers reject it).
    pub use_stomp_command: bool,
    /// Extra CONNECT headers.
    pub headers: Vec<(String, String)>,
    /// Parser limits for frames from the server (default [`Limits::default`]).
    pub limits: Limits,
    /// Maximum receipts awaited at once (default 1024).
    pub max_pending_receipts: usize,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            versions: Version::ALL.to_vec(),
            host: String::from("/"),
            login: None,
            passcode: None,
            heart_beat: HeartBeat {
                send_ms: 10_000,
                receive_ms: 10_000,
            },
            heartbeat_grace_percent: 200,
            use_stomp_command: false,
            headers: Vec::new(),
            limits: Limits::default(),
            max_pending_receipts: 1024,
        }
    }
}

/// Where the client session is; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientState {
    /// CONNECT sent, waiting for CONNECTED.
    Connecting,
    /// Connected.
    Open,
    /// DISCONNECT sent with a receipt; waiting for it.
    Disconnecting,
    /// Closed.
    Closed,
}

/// What identifies a received message in an ACK / NACK for the negotiated version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AckHandle {
    /// 1.2: the MESSAGE `ack` header; 1.0/1.1: the `message-id`.
    pub id: String,
    /// The `subscription` header (required in 1.1 ACKs).
    pub subscription: Option<String>,
}

/// A received MESSAGE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEvent {
    /// The frame (headers and body).
    pub frame: Frame,
    /// Present when the subscription uses a client ack mode: pass it to
    /// [`ClientSession::ack`] / [`ClientSession::nack`].
    pub ack: Option<AckHandle>,
}

impl MessageEvent {
    /// The `destination` header.
    pub fn destination(&self) -> &str {
        self.frame.header("destination").unwrap_or_default()
    }
    /// The `subscription` header (empty in 1.0 without subscription ids).
    pub fn subscription(&self) -> &str {
        self.frame.header("subscription").unwrap_or_default()
    }
    /// The `message-id` header.
    pub fn message_id(&self) -> &str {
        self.frame.header("message-id").unwrap_or_default()
    }
    /// The body.
    pub fn body(&self) -> &Bytes {
        self.frame.body()
    }
}

/// Why the client session closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientCloseReason {
    /// Graceful DISCONNECT (receipt received, or none was asked for).
    Disconnected,
    /// The server sent ERROR.
    ServerError,
    /// The server violated the protocol or went silent.
    Violation(Violation),
}

/// What the client session tells the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// CONNECTED: the session is open.
    Connected {
        /// The negotiated version.
        version: Version,
        /// The `server` header.
        server: Option<String>,
        /// The `session` header.
        session: Option<String>,
        /// The heart-beat intervals in force.
        heart_beat: Negotiated,
    },
    /// A MESSAGE.
    Message(MessageEvent),
    /// A RECEIPT for a frame we sent with `receipt`.
    Receipt {
        /// The `receipt-id`.
        receipt_id: String,
    },
    /// The server sent ERROR (the session is closed after it).
    Error {
        /// The `message` header.
        message: Option<String>,
        /// The whole frame.
        frame: Frame,
    },
    /// The server was silent for longer than the negotiated interval times the grace.
    HeartBeatTimeout,
    /// The session is closed (emitted once, last).
    Closed(ClientCloseReason),
}

/// Options for [`ClientSession::send`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SendOptions<'a> {
    /// The `content-type` header.
    pub content_type: Option<&'a str>,
    /// Send inside this transaction.
    pub transaction: Option<&'a str>,
    /// Ask for a RECEIPT with this id.
    pub receipt: Option<&'a str>,
    /// Extra headers.
    pub headers: &'a [(&'a str, &'a str)],
}

/// Options for [`ClientSession::subscribe`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SubscribeOptions<'a> {
    /// The subscription id (default: generated, `sub-N`).
    pub id: Option<&'a str>,
    /// The ack mode (default `auto`).
    pub ack: AckMode,
    /// Ask for a RECEIPT with this id.
    pub receipt: Option<&'a str>,
    /// Extra headers (e.g. `prefetch-count` for RabbitMQ).
    pub headers: &'a [(&'a str, &'a str)],
}

/// The client side of one STOMP session. See the [module docs](self).
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    state: ClientState,
    version: Version,
    parser: Parser,
    inbuf: BytesMut,
    out: Output,
    events: VecDeque<ClientEvent>,
    timer: Timer,
    subscriptions: BTreeMap<String, AckMode>,
    transactions: BTreeSet<String>,
    receipts: BTreeSet<String>,
    disconnect_receipt: Option<String>,
    next_id: u64,
    error: Option<PeerError>,
    heartbeats_sent: u64,
}

impl ClientSession {
    /// A session with CONNECT (or STOMP) already queued for transmission.
    pub fn new(config: ClientConfig) -> ClientSession {
        let mut s = ClientSession {
            parser: Parser::new(config.limits),
            timer: Timer::new(config.heartbeat_grace_percent),
            config,
            state: ClientState::Connecting,
            version: Version::V1_0,
            inbuf: BytesMut::new(),
            out: Output::default(),
            events: VecDeque::new(),
            subscriptions: BTreeMap::new(),
            transactions: BTreeSet::new(),
            receipts: BTreeSet::new(),
            disconnect_receipt: None,
            next_id: 0,
            error: None,
            heartbeats_sent: 0,
        };
        s.parser.set_version(Version::V1_0);
        let cmd = if s.config.use_stomp_command {
            Command::Stomp
        } else {
            Command::Connect
        };
        let mut versions = s.config.versions.clone();
        versions.sort_unstable();
        versions.dedup();
        let accept: Vec<&str> = versions.iter().map(|v| v.as_str()).collect();
        let hb = s.config.heart_beat.to_header_value();
        let mut b = Frame::builder(cmd)
            .header("accept-version", &accept.join(","))
            .header("host", &s.config.host)
            .header_opt("login", s.config.login.as_deref())
            .header_opt("passcode", s.config.passcode.as_deref());
        if versions.iter().any(|v| *v >= Version::V1_1) {
            b = b.header("heart-beat", &hb);
        }
        for (k, v) in &s.config.headers {
            b = b.header(k, v);
        }
        // CONNECT is never escaped; a value with CR/LF cannot be sent: leave it out rather
        // than corrupt the stream (the server will then reject the CONNECT).
        let frame = b.build();
        if s.out.push_frame(&frame, Version::V1_0).is_err() {
            let _ = s.out.push_frame(&Frame::new(cmd), Version::V1_0);
        }
        s
    }

    /// The state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// The negotiated version (1.0 until CONNECTED).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The negotiated heart-beat intervals.
    pub fn heartbeat(&self) -> Negotiated {
        self.timer.negotiated
    }

    /// Heart-beat EOLs received and sent so far.
    pub fn heartbeat_counts(&self) -> (u64, u64) {
        (self.parser.heartbeats(), self.heartbeats_sent)
    }

    /// The sticky peer error, if any.
    pub fn error(&self) -> Option<&PeerError> {
        self.error.as_ref()
    }

    /// Bytes queued for transmission.
    pub fn pending_output(&self) -> usize {
        self.out.pending()
    }

    /// Receipts asked for and not yet received.
    pub fn pending_receipts(&self) -> usize {
        self.receipts.len()
    }

    /// Whether the session is closed and its output drained.
    pub fn is_finished(&self) -> bool {
        self.state == ClientState::Closed && self.out.is_empty()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The next chunk of output.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.out.poll()
    }

    /// The next whole frame (or heart-beat EOL) of output, in parts that share storage (a
    /// large SEND body is not copied): for hosts that send one frame per WebSocket message.
    /// May be mixed with `poll_transmit`.
    #[must_use]
    pub fn poll_transmit_frame(&mut self) -> Option<crate::common::Transmit> {
        self.out.poll_frame()
    }

    /// Copies pending output into `buf`; returns the number of bytes written.
    #[must_use]
    pub fn poll_transmit_into(&mut self, buf: &mut [u8]) -> usize {
        self.out.poll_into(buf)
    }

    /// When to call `handle_timeout` next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            ClientState::Open | ClientState::Disconnecting => self.timer.poll_timeout(),
            _ => None,
        }
    }

    /// Gives the time: sends an overdue heart-beat, then judges the server's liveness.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let action = self.timer.handle_timeout(now_ms);
        if !matches!(self.state, ClientState::Open | ClientState::Disconnecting) {
            return;
        }
        if action.send_heartbeat {
            self.out.push_eol();
            self.heartbeats_sent += 1;
        }
        if action.peer_dead {
            self.events.push_back(ClientEvent::HeartBeatTimeout);
            self.fail(Violation::HeartBeatTimeout, None);
        }
    }

    /// Feeds bytes from the server. Returns the sticky error once the server violated the
    /// protocol or sent ERROR.
    pub fn handle_read(&mut self, data: &[u8]) -> Result<(), PeerError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.state == ClientState::Closed || data.is_empty() {
            return Ok(());
        }
        self.timer.on_receive();
        self.inbuf.extend_from_slice(data);
        while self.state != ClientState::Closed {
            match self.parser.parse(&mut self.inbuf) {
                Ok(Some(frame)) => {
                    if let Err(v) = self.on_frame(frame) {
                        self.fail(v, None);
                    }
                }
                Ok(None) => break,
                Err(e) => self.fail(Violation::Parse(e), None),
            }
        }
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn on_frame(&mut self, frame: Frame) -> Result<(), Violation> {
        let cmd = frame.command();
        if !frame.body().is_empty() && !cmd.allows_body() {
            return Err(Violation::BodyNotAllowed(cmd));
        }
        if cmd == Command::Error {
            let message = frame.header("message").map(ToString::to_string);
            self.events.push_back(ClientEvent::Error {
                message,
                frame: frame.clone(),
            });
            self.error = Some(PeerError {
                violation: Violation::ServerError,
                reply: Some(Box::new(frame)),
            });
            self.close(ClientCloseReason::ServerError);
            return Ok(());
        }
        if self.state == ClientState::Connecting {
            if cmd != Command::Connected {
                return Err(Violation::NotConnected(cmd));
            }
            return self.on_connected(&frame);
        }
        match cmd {
            Command::Message => {
                for h in ["destination", "message-id"] {
                    if !frame.has_header(h) {
                        return Err(Violation::MissingHeader(cmd, h));
                    }
                }
                if self.version >= Version::V1_1 && !frame.has_header("subscription") {
                    return Err(Violation::MissingHeader(cmd, "subscription"));
                }
                let sub = frame.header("subscription");
                let mode = sub.and_then(|s| self.subscriptions.get(s).copied());
                let ack = match mode {
                    Some(m) if m.needs_ack() => {
                        let id = if self.version == Version::V1_2 {
                            frame
                                .header("ack")
                                .ok_or(Violation::MissingHeader(cmd, "ack"))?
                        } else {
                            frame.header("message-id").unwrap_or_default()
                        };
                        Some(AckHandle {
                            id: id.to_string(),
                            subscription: sub.map(ToString::to_string),
                        })
                    }
                    _ => None,
                };
                self.events
                    .push_back(ClientEvent::Message(MessageEvent { frame, ack }));
                Ok(())
            }
            Command::Receipt => {
                let id = frame
                    .header("receipt-id")
                    .ok_or(Violation::MissingHeader(cmd, "receipt-id"))?
                    .to_string();
                self.receipts.remove(&id);
                let is_disconnect = self.disconnect_receipt.as_deref() == Some(id.as_str());
                self.events
                    .push_back(ClientEvent::Receipt { receipt_id: id });
                if is_disconnect {
                    self.close(ClientCloseReason::Disconnected);
                }
                Ok(())
            }
            other => Err(Violation::UnexpectedCommand(other)),
        }
    }

    fn on_connected(&mut self, frame: &Frame) -> Result<(), Violation> {
        let cmd = Command::Connected;
        let version = match frame.header("version") {
            None => Version::V1_0,
            Some(v) => Version::parse(v).ok_or(Violation::InvalidHeader(cmd, "version"))?,
        };
        if !self.config.versions.contains(&version) {
            return Err(Violation::UnsupportedVersion);
        }
        let theirs = if version >= Version::V1_1 {
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
        let negotiated = Negotiated::negotiate(ours, theirs);
        self.version = version;
        self.parser.set_version(version);
        self.state = ClientState::Open;
        self.timer.start(negotiated);
        self.events.push_back(ClientEvent::Connected {
            version,
            server: frame.header("server").map(ToString::to_string),
            session: frame.header("session").map(ToString::to_string),
            heart_beat: negotiated,
        });
        Ok(())
    }

    fn require_open(&self) -> Result<(), UsageError> {
        match self.state {
            ClientState::Open => Ok(()),
            ClientState::Connecting => Err(UsageError::NotConnected),
            ClientState::Disconnecting | ClientState::Closed => Err(UsageError::Closed),
        }
    }

    fn track_receipt(&mut self, receipt: Option<&str>) -> Result<(), UsageError> {
        if receipt.is_some() && self.receipts.len() >= self.config.max_pending_receipts {
            return Err(UsageError::LimitExceeded("receipts awaited"));
        }
        Ok(())
    }

    fn push(&mut self, frame: &Frame, receipt: Option<&str>) -> Result<(), UsageError> {
        self.out.push_frame(frame, self.version)?;
        if let Some(r) = receipt {
            self.receipts.insert(r.to_string());
        }
        self.timer.on_transmit();
        Ok(())
    }

    /// Sends a message to `destination`.
    pub fn send(
        &mut self,
        destination: &str,
        body: impl Into<Bytes>,
        opts: &SendOptions<'_>,
    ) -> Result<(), UsageError> {
        self.require_open()?;
        self.track_receipt(opts.receipt)?;
        if let Some(t) = opts.transaction
            && !self.transactions.contains(t)
        {
            return Err(UsageError::UnknownTransaction);
        }
        let mut b = FrameBuilder::new(Command::Send)
            .header("destination", destination)
            .header_opt("content-type", opts.content_type)
            .header_opt("transaction", opts.transaction)
            .header_opt("receipt", opts.receipt);
        for (k, v) in opts.headers {
            if !matches!(
                *k,
                "destination" | "content-type" | "transaction" | "receipt" | "content-length"
            ) {
                b = b.header(k, v);
            }
        }
        let frame = b.body(body).build();
        self.push(&frame, opts.receipt)
    }

    /// Subscribes to `destination`; returns the subscription id.
    pub fn subscribe(
        &mut self,
        destination: &str,
        opts: &SubscribeOptions<'_>,
    ) -> Result<String, UsageError> {
        self.require_open()?;
        self.track_receipt(opts.receipt)?;
        if opts.ack == AckMode::ClientIndividual && self.version == Version::V1_0 {
            return Err(UsageError::NotInVersion);
        }
        let id = match opts.id {
            Some(id) => id.to_string(),
            None => loop {
                let id = alloc::format!("sub-{}", self.next_id);
                self.next_id += 1;
                if !self.subscriptions.contains_key(&id) {
                    break id;
                }
            },
        };
        if self.subscriptions.contains_key(&id) {
            return Err(UsageError::DuplicateSubscription);
        }
        let mut b = FrameBuilder::new(Command::Subscribe)
            .header("id", &id)
            .header("destination", destination)
            .header("ack", opts.ack.as_str())
            .header_opt("receipt", opts.receipt);
        for (k, v) in opts.headers {
            if !matches!(*k, "id" | "destination" | "ack" | "receipt") {
                b = b.header(k, v);
            }
        }
        self.push(&b.build(), opts.receipt)?;
        self.subscriptions.insert(id.clone(), opts.ack);
        Ok(id)
    }

    /// Ends subscription `id`.
    pub fn unsubscribe(&mut self, id: &str, receipt: Option<&str>) -> Result<(), UsageError> {
        self.require_open()?;
        self.track_receipt(receipt)?;
        if !self.subscriptions.contains_key(id) {
            return Err(UsageError::UnknownSubscription);
        }
        let f = FrameBuilder::new(Command::Unsubscribe)
            .header("id", id)
            .header_opt("receipt", receipt)
            .build();
        self.push(&f, receipt)?;
        self.subscriptions.remove(id);
        Ok(())
    }

    fn ack_frame(
        &mut self,
        cmd: Command,
        handle: &AckHandle,
        transaction: Option<&str>,
        receipt: Option<&str>,
    ) -> Result<(), UsageError> {
        self.require_open()?;
        self.track_receipt(receipt)?;
        if let Some(t) = transaction
            && !self.transactions.contains(t)
        {
            return Err(UsageError::UnknownTransaction);
        }
        let b = match self.version {
            Version::V1_2 => FrameBuilder::new(cmd).header("id", &handle.id),
            Version::V1_1 => FrameBuilder::new(cmd)
                .header("message-id", &handle.id)
                .header(
                    "subscription",
                    handle
                        .subscription
                        .as_deref()
                        .ok_or(UsageError::MissingHeader("subscription"))?,
                ),
            Version::V1_0 => FrameBuilder::new(cmd).header("message-id", &handle.id),
        };
        let f = b
            .header_opt("transaction", transaction)
            .header_opt("receipt", receipt)
            .build();
        self.push(&f, receipt)
    }

    /// Acknowledges a message (cumulative on `client` subscriptions).
    pub fn ack(
        &mut self,
        handle: &AckHandle,
        transaction: Option<&str>,
        receipt: Option<&str>,
    ) -> Result<(), UsageError> {
        self.ack_frame(Command::Ack, handle, transaction, receipt)
    }

    /// Negatively acknowledges a message (STOMP 1.1+).
    pub fn nack(
        &mut self,
        handle: &AckHandle,
        transaction: Option<&str>,
        receipt: Option<&str>,
    ) -> Result<(), UsageError> {
        if self.version == Version::V1_0 {
            return Err(UsageError::NotInVersion);
        }
        self.ack_frame(Command::Nack, handle, transaction, receipt)
    }

    /// Starts transaction `tx`.
    pub fn begin(&mut self, tx: &str, receipt: Option<&str>) -> Result<(), UsageError> {
        self.require_open()?;
        self.track_receipt(receipt)?;
        if self.transactions.contains(tx) {
            return Err(UsageError::DuplicateTransaction);
        }
        let f = FrameBuilder::new(Command::Begin)
            .header("transaction", tx)
            .header_opt("receipt", receipt)
            .build();
        self.push(&f, receipt)?;
        self.transactions.insert(tx.to_string());
        Ok(())
    }

    fn end_tx(&mut self, cmd: Command, tx: &str, receipt: Option<&str>) -> Result<(), UsageError> {
        self.require_open()?;
        self.track_receipt(receipt)?;
        if !self.transactions.contains(tx) {
            return Err(UsageError::UnknownTransaction);
        }
        let f = FrameBuilder::new(cmd)
            .header("transaction", tx)
            .header_opt("receipt", receipt)
            .build();
        self.push(&f, receipt)?;
        self.transactions.remove(tx);
        Ok(())
    }

    /// Commits transaction `tx`.
    pub fn commit(&mut self, tx: &str, receipt: Option<&str>) -> Result<(), UsageError> {
        self.end_tx(Command::Commit, tx, receipt)
    }

    /// Aborts transaction `tx`.
    pub fn abort(&mut self, tx: &str, receipt: Option<&str>) -> Result<(), UsageError> {
        self.end_tx(Command::Abort, tx, receipt)
    }

    /// Sends any client frame as given (for headers the typed commands do not cover).
    /// Server commands and CONNECT are refused.
    pub fn send_frame(&mut self, frame: &Frame) -> Result<(), UsageError> {
        self.require_open()?;
        match frame.command() {
            Command::Send
            | Command::Subscribe
            | Command::Unsubscribe
            | Command::Ack
            | Command::Nack
            | Command::Begin
            | Command::Commit
            | Command::Abort => {}
            other => return Err(UsageError::WrongCommand(other)),
        }
        let receipt = frame.header("receipt");
        self.track_receipt(receipt)?;
        self.push(frame, receipt)
    }

    /// Disconnects. With a receipt, the session waits for the server's RECEIPT (graceful:
    /// every earlier frame was processed) and then closes; without, it closes at once.
    pub fn disconnect(&mut self, receipt: Option<&str>) -> Result<(), UsageError> {
        self.require_open()?;
        let f = FrameBuilder::new(Command::Disconnect)
            .header_opt("receipt", receipt)
            .build();
        self.out.push_frame(&f, self.version)?;
        self.timer.on_transmit();
        match receipt {
            Some(r) => {
                self.receipts.insert(r.to_string());
                self.disconnect_receipt = Some(r.to_string());
                self.state = ClientState::Disconnecting;
            }
            None => self.close(ClientCloseReason::Disconnected),
        }
        Ok(())
    }

    fn close(&mut self, reason: ClientCloseReason) {
        if self.state == ClientState::Closed {
            return;
        }
        self.state = ClientState::Closed;
        self.timer.stop();
        self.inbuf = BytesMut::new();
        self.events.push_back(ClientEvent::Closed(reason));
    }

    fn fail(&mut self, violation: Violation, reply: Option<Frame>) {
        if self.state == ClientState::Closed {
            return;
        }
        self.error = Some(PeerError {
            violation,
            reply: reply.map(Box::new),
        });
        self.close(ClientCloseReason::Violation(violation));
    }
}
