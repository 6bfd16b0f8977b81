//! The broker relay: broker destinations forwarded to an upstream STOMP broker (RabbitMQ,
//! ActiveMQ, Artemis) instead of being routed in memory, as Spring's `StompBrokerRelay` does.
//!
//! Each client session gets its own upstream STOMP session (a
//! [`ClientSession`](stompbox_stomp::client::ClientSession)) once its CONNECT is accepted; the
//! client's CONNECTED waits for the upstream's. One shared "system" session carries
//! [`Broker::publish`]es of the application and reconnects with exponential backoff. The
//! broker never touches a socket: it asks the host to open and close upstream transports
//! ([`Broker::poll_upstream`]) and the host moves their bytes ([`Broker::upstream_read`],
//! [`Broker::upstream_ready`], [`Broker::upstream_transmit`], [`Broker::upstream_closed`]).
//! Upstream heart-beats and timeouts run on the broker's one timer
//! ([`Broker::handle_timeout`], [`Broker::poll_timeout`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;

use bytes::Bytes;
use stompbox_stomp::client::ClientState;
use stompbox_stomp::client::{ClientCloseReason, ClientConfig, ClientEvent, ClientSession};
use stompbox_stomp::{Command, Frame, FrameBuilder, HeartBeat, UsageError, Version};

use super::{Broker, CloseReason, Event, Fatal, HostError, PublishError, SessionId, State};
use crate::config::{Kind, RelayConfig, RelayCredentials};
use crate::inbound::{AckMode, Inbound};
use crate::stats::RelayStats;

/// Identifies one upstream transport (one connection attempt) for the lifetime of the broker;
/// never reused, so late I/O for an old connection cannot reach a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UpstreamId(u64);

impl UpstreamId {
    /// The number behind the id.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for UpstreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "u{}", self.0)
    }
}

/// The timer-heap key of the system session's reconnect (no upstream has id 0).
const SYSTEM_RETRY: UpstreamId = UpstreamId(0);

/// What the broker asks of the host for upstream transports ([`Broker::poll_upstream`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamCommand {
    /// Open a transport to the upstream broker (e.g. a TCP connection to the `--relay`
    /// address) for this id. The upstream CONNECT is already queued: once the transport is
    /// writable, drain [`Broker::upstream_transmit`]. If it cannot be opened, call
    /// [`Broker::upstream_closed`].
    Open(UpstreamId),
    /// Write what [`Broker::upstream_transmit`] still hands out for this id (a DISCONNECT,
    /// perhaps), then close the transport. The broker forgets the id once its output is
    /// drained (or at [`Broker::upstream_closed`]).
    Close(UpstreamId),
}

/// Whom an upstream transport serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpstreamOwner {
    /// The upstream session of this client session.
    Session(SessionId),
    /// The shared system session (application publishes).
    System,
}

/// Relay news for the application ([`Event::Relay`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEvent {
    /// The system session is CONNECTED: [`Broker::publish`] to relayed destinations works.
    SystemConnected,
    /// The system session failed; it reconnects at `retry_at` (host milliseconds). Until
    /// then publishes to relayed destinations fail with [`PublishError::RelayUnavailable`].
    SystemDown {
        /// What happened.
        reason: String,
        /// When the next connection attempt starts.
        retry_at: u64,
    },
    /// A publish handed to the system session was not confirmed by the upstream broker
    /// before the session failed: it may or may not have arrived. The message is handed back
    /// whole, so the application can retry or report it; none is lost silently.
    PublishFailed {
        /// The destination.
        destination: String,
        /// The headers given to [`Broker::publish`].
        headers: Vec<(String, String)>,
        /// The body.
        body: Bytes,
        /// Why.
        reason: String,
    },
}

struct Upstream {
    owner: UpstreamOwner,
    client: ClientSession,
    /// The CONNECTED deadline while connecting.
    deadline: Option<u64>,
    /// The wake-up scheduled in the relay's timer heap.
    timer: Option<u64>,
    listed: bool,
    closing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum System {
    Down { retry_at: u64 },
    Connecting(UpstreamId),
    Up(UpstreamId),
}

#[derive(Debug)]
struct Unconfirmed {
    receipt: String,
    destination: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

/// The relay's state inside the broker.
pub(super) struct Relay {
    config: RelayConfig,
    upstreams: HashMap<UpstreamId, Upstream>,
    next: u64,
    commands: VecDeque<UpstreamCommand>,
    ready: VecDeque<UpstreamId>,
    timers: BinaryHeap<Reverse<(u64, UpstreamId)>>,
    system: System,
    backoff: u64,
    unconfirmed: VecDeque<Unconfirmed>,
    next_publish: u64,
    stats: RelayStats,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("upstreams", &self.upstreams.len())
            .field("system", &self.system)
            .field("unconfirmed", &self.unconfirmed.len())
            .finish_non_exhaustive()
    }
}

impl Relay {
    pub(super) fn new(config: RelayConfig) -> Relay {
        let mut timers = BinaryHeap::new();
        // The system session opens at the host's first `handle_timeout` (poll_timeout says 0).
        timers.push(Reverse((0, SYSTEM_RETRY)));
        Relay {
            backoff: config.reconnect_min_ms.max(1),
            config,
            upstreams: HashMap::new(),
            next: 1,
            commands: VecDeque::new(),
            ready: VecDeque::new(),
            timers,
            system: System::Down { retry_at: 0 },
            unconfirmed: VecDeque::new(),
            next_publish: 1,
            stats: RelayStats::default(),
        }
    }

    pub(super) fn stats(&self) -> RelayStats {
        let mut s = self.stats;
        s.upstreams_current = self.upstreams.len();
        s.system_connected = matches!(self.system, System::Up(_));
        s
    }

    fn list(&mut self, id: UpstreamId) {
        if let Some(u) = self.upstreams.get_mut(&id)
            && !u.listed
            && u.client.pending_output() > 0
        {
            u.listed = true;
            self.ready.push_back(id);
        }
    }

    fn sync_timer(&mut self, id: UpstreamId) {
        let Some(u) = self.upstreams.get_mut(&id) else {
            return;
        };
        let t = if u.closing {
            None
        } else {
            match (u.deadline, u.client.poll_timeout()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        match (t, u.timer) {
            (None, _) => u.timer = None,
            (Some(at), Some(cur)) if cur <= at => {}
            (Some(at), _) => {
                u.timer = Some(at);
                self.timers.push(Reverse((at, id)));
            }
        }
    }

    /// Forgets upstream `id` if it is closing and its output is drained.
    fn reap(&mut self, id: UpstreamId) {
        if self
            .upstreams
            .get(&id)
            .is_some_and(|u| u.closing && u.client.pending_output() == 0)
        {
            self.upstreams.remove(&id);
        }
    }

    fn open(&mut self, owner: UpstreamOwner, config: ClientConfig, now: u64) -> UpstreamId {
        let id = UpstreamId(self.next);
        self.next += 1;
        let mut client = ClientSession::new(config);
        client.handle_timeout(now); // the session's clock starts now
        self.upstreams.insert(
            id,
            Upstream {
                owner,
                client,
                deadline: Some(now.saturating_add(self.config.connect_timeout_ms)),
                timer: None,
                listed: false,
                closing: false,
            },
        );
        self.stats.upstreams_opened += 1;
        self.commands.push_back(UpstreamCommand::Open(id));
        self.list(id);
        self.sync_timer(id);
        id
    }

    fn client_config(&self, login: Option<String>, passcode: Option<String>) -> ClientConfig {
        ClientConfig {
            host: self.config.virtual_host.clone(),
            login,
            passcode,
            heart_beat: HeartBeat {
                send_ms: self.config.heart_beat.0,
                receive_ms: self.config.heart_beat.1,
            },
            ..ClientConfig::default()
        }
    }

    fn open_system(&mut self, now: u64, limits: stompbox_stomp::Limits) {
        let mut cfg = self.client_config(
            self.config.system_login.clone(),
            self.config.system_passcode.clone(),
        );
        cfg.versions = vec![Version::V1_1, Version::V1_2];
        cfg.limits = limits;
        cfg.max_pending_receipts = self.config.max_unconfirmed_publishes.saturating_add(1);
        let id = self.open(UpstreamOwner::System, cfg, now);
        self.system = System::Connecting(id);
    }
}

/// Encodes a client frame (after validation) for the upstream session; an ACK/NACK names the
/// newest message it covers (the upstream's `ack` id `upstream_ack` in STOMP 1.2).
fn upstream_frame(f: &Inbound, version: Version, upstream_ack: Option<&str>) -> Frame {
    let b = match f {
        Inbound::Send {
            destination,
            headers,
            body,
            receipt,
            transaction,
        } => {
            let mut b = FrameBuilder::new(Command::Send).header("destination", destination);
            for (k, v) in headers {
                b = b.header(k, v);
            }
            b.header_opt("transaction", transaction.as_deref())
                .header_opt("receipt", receipt.as_deref())
                .body(body.clone())
        }
        Inbound::Subscribe {
            id,
            destination,
            ack,
            headers,
            receipt,
            ..
        } => {
            let mut b = FrameBuilder::new(Command::Subscribe)
                .header("id", id)
                .header("destination", destination);
            match ack {
                AckMode::Auto => {}
                AckMode::Client => b = b.header("ack", "client"),
                AckMode::ClientIndividual => b = b.header("ack", "client-individual"),
            }
            for (k, v) in headers {
                b = b.header(k, v);
            }
            b.header_opt("receipt", receipt.as_deref())
        }
        Inbound::Unsubscribe { id, receipt } => FrameBuilder::new(Command::Unsubscribe)
            .header("id", id)
            .header_opt("receipt", receipt.as_deref()),
        Inbound::Ack {
            nack,
            subscription,
            message_ids,
            receipt,
            transaction,
        } => {
            let cmd = if *nack { Command::Nack } else { Command::Ack };
            let last = message_ids.last().map_or("", String::as_str);
            let b = match version {
                Version::V1_2 => FrameBuilder::new(cmd).header("id", upstream_ack.unwrap_or(last)),
                Version::V1_1 => FrameBuilder::new(cmd)
                    .header("message-id", last)
                    .header("subscription", subscription),
                Version::V1_0 => FrameBuilder::new(cmd).header("message-id", last),
            };
            b.header_opt("transaction", transaction.as_deref())
                .header_opt("receipt", receipt.as_deref())
        }
        Inbound::Begin {
            transaction,
            receipt,
        } => FrameBuilder::new(Command::Begin)
            .header("transaction", transaction)
            .header_opt("receipt", receipt.as_deref()),
        Inbound::End {
            commit,
            transaction,
            receipt,
        } => FrameBuilder::new(if *commit {
            Command::Commit
        } else {
            Command::Abort
        })
        .header("transaction", transaction)
        .header_opt("receipt", receipt.as_deref()),
        Inbound::Disconnect { receipt } => {
            FrameBuilder::new(Command::Disconnect).header_opt("receipt", receipt.as_deref())
        }
    };
    b.build()
}

fn describe_close(reason: ClientCloseReason) -> String {
    match reason {
        ClientCloseReason::Disconnected => "upstream session ended".into(),
        ClientCloseReason::ServerError => "upstream broker sent ERROR".into(),
        ClientCloseReason::Violation(v) => format!("upstream broker: {v}"),
    }
}

impl Broker {
    // ----------------------------------------------------------------------------------------
    // Host API for upstream transports.

    /// The next thing to do with an upstream transport: open one, or flush and close one.
    /// Always `None` without [`Config::relay`](crate::Config).
    pub fn poll_upstream(&mut self) -> Option<UpstreamCommand> {
        self.relay.as_mut()?.commands.pop_front()
    }

    /// The next upstream with output queued (listed once each time output is queued while it
    /// was not listed). Drain it with [`Broker::upstream_transmit`] once its transport is
    /// connected and writable.
    pub fn upstream_ready(&mut self) -> Option<UpstreamId> {
        let relay = self.relay.as_mut()?;
        while let Some(id) = relay.ready.pop_front() {
            if let Some(u) = relay.upstreams.get_mut(&id) {
                u.listed = false;
                if u.client.pending_output() > 0 {
                    return Some(id);
                }
            }
        }
        None
    }

    /// Does upstream `id` have output queued?
    pub fn has_upstream_output(&self, id: UpstreamId) -> bool {
        self.relay
            .as_ref()
            .and_then(|r| r.upstreams.get(&id))
            .is_some_and(|u| u.client.pending_output() > 0)
    }

    /// The next chunk of bytes for upstream `id`'s transport, or `None` when drained.
    pub fn upstream_transmit(&mut self, id: UpstreamId) -> Option<Bytes> {
        let relay = self.relay.as_mut()?;
        let out = relay.upstreams.get_mut(&id)?.client.poll_transmit();
        if out.is_none() {
            relay.reap(id);
        }
        out
    }

    /// Feeds bytes received from upstream `id`'s transport. Then drain as after
    /// [`Broker::handle_read`] (client output, events, the timer) and the upstream output.
    pub fn upstream_read(
        &mut self,
        id: UpstreamId,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<(), HostError> {
        self.now = self.now.max(now_ms);
        let u = self
            .relay
            .as_mut()
            .and_then(|r| r.upstreams.get_mut(&id))
            .ok_or(HostError::UnknownUpstream(id))?;
        if u.closing {
            return Ok(());
        }
        // A violation or an ERROR is reported as events, handled below.
        let _ = u.client.handle_read(bytes);
        u.client.handle_timeout(now_ms);
        self.drive_upstream(id);
        self.pump_dirty();
        Ok(())
    }

    /// Upstream `id`'s transport closed or could not be opened. A client session's upstream
    /// failing ends that client session with an ERROR; the system session reconnects after
    /// its backoff. The id becomes unknown.
    pub fn upstream_closed(&mut self, id: UpstreamId, now_ms: u64) -> Result<(), HostError> {
        self.now = self.now.max(now_ms);
        if !self
            .relay
            .as_ref()
            .is_some_and(|r| r.upstreams.contains_key(&id))
        {
            return Err(HostError::UnknownUpstream(id));
        }
        self.upstream_failed(id, "upstream connection closed".into(), None);
        if let Some(r) = self.relay.as_mut() {
            r.upstreams.remove(&id);
        }
        self.pump_dirty();
        Ok(())
    }

    /// Whom upstream `id` serves (`None` when unknown).
    pub fn upstream_owner(&self, id: UpstreamId) -> Option<UpstreamOwner> {
        Some(self.relay.as_ref()?.upstreams.get(&id)?.owner)
    }

    /// The upstream of client session `session`, once its CONNECT was accepted by the
    /// authentication hook.
    pub fn session_upstream(&self, session: SessionId) -> Option<UpstreamId> {
        self.sessions.get(&session)?.upstream
    }

    /// Is the relay's system session connected (publishes to relayed destinations work)?
    pub fn relay_system_connected(&self) -> bool {
        self.relay
            .as_ref()
            .is_some_and(|r| matches!(r.system, System::Up(_)))
    }

    // ----------------------------------------------------------------------------------------
    // Inside the broker.

    pub(super) fn relay_stats(&self) -> RelayStats {
        self.relay.as_ref().map(Relay::stats).unwrap_or_default()
    }

    /// Opens the upstream session of client session `sid`, whose CONNECT the hook accepted;
    /// CONNECTED is sent to the client when the upstream answers with its own.
    pub(super) fn relay_connect(
        &mut self,
        sid: SessionId,
        login: Option<String>,
        passcode: Option<String>,
    ) {
        let now = self.now;
        let limits = self.config.frame_limits;
        let Some(version) = self.sessions.get(&sid).map(|s| s.stomp.version()) else {
            return;
        };
        let Some(relay) = self.relay.as_mut() else {
            return;
        };
        let (login, passcode) = match relay.config.credentials {
            RelayCredentials::Relay => (relay.config.login.clone(), relay.config.passcode.clone()),
            RelayCredentials::Client => (login, passcode),
        };
        let mut cfg = relay.client_config(login, passcode);
        // The upstream speaks the client's version: ids, ack headers and escaping pass
        // through unchanged.
        cfg.versions = vec![version];
        cfg.limits = limits;
        let id = relay.open(UpstreamOwner::Session(sid), cfg, now);
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.upstream = Some(id);
        }
    }

    /// The upstream CONNECTED: the client's CONNECT is accepted now.
    fn relay_accept(&mut self, sid: SessionId) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if s.state != State::Connecting {
            return;
        }
        let user = s.user.clone();
        s.state = State::Open;
        super::accept(&mut s.stomp, sid, user.as_deref());
        if let Some(u) = &user {
            self.users.entry(u.clone()).or_default().push(sid);
        }
        self.events
            .push_back(Event::Connected { session: sid, user });
        self.drive(sid);
    }

    /// The client session ended: its upstream sends DISCONNECT and is closed.
    pub(super) fn release_upstream(&mut self, id: UpstreamId) {
        let Some(relay) = self.relay.as_mut() else {
            return;
        };
        let Some(u) = relay.upstreams.get_mut(&id) else {
            return;
        };
        if u.closing {
            return;
        }
        u.closing = true;
        if u.client.state() == ClientState::Open {
            let _ = u.client.disconnect(None);
        } else {
            while u.client.poll_transmit().is_some() {}
        }
        relay.commands.push_back(UpstreamCommand::Close(id));
        relay.list(id);
        relay.reap(id);
    }

    /// Upstream `id` failed: its client gets ERROR and is closed, or the system session goes
    /// down (and reconnects later). Idempotent.
    fn upstream_failed(&mut self, id: UpstreamId, reason: String, error: Option<&Frame>) {
        let now = self.now;
        let Some(relay) = self.relay.as_mut() else {
            return;
        };
        let Some(u) = relay.upstreams.get_mut(&id) else {
            return;
        };
        if u.closing {
            return;
        }
        u.closing = true;
        // The upstream is broken: nothing more is written to it.
        while u.client.poll_transmit().is_some() {}
        let owner = u.owner;
        relay.stats.upstream_failures += 1;
        relay.commands.push_back(UpstreamCommand::Close(id));
        relay.reap(id);
        match owner {
            UpstreamOwner::Session(sid) => {
                let message = error
                    .and_then(|f| f.header("message"))
                    .map_or_else(|| reason.clone(), |m| format!("upstream broker: {m}"));
                let receipt = error.and_then(|f| f.header("receipt-id"));
                if error.is_some() {
                    relay.stats.frames_down += 1;
                }
                self.close(
                    sid,
                    CloseReason::UpstreamFailed(reason),
                    Some(Fatal::new(message, receipt)),
                );
            }
            UpstreamOwner::System => {
                let retry_at = now.saturating_add(relay.backoff);
                relay.backoff = relay
                    .backoff
                    .saturating_mul(2)
                    .min(relay.config.reconnect_max_ms.max(1));
                relay.system = System::Down { retry_at };
                relay.timers.push(Reverse((retry_at, SYSTEM_RETRY)));
                let detail = error
                    .and_then(|f| f.header("message"))
                    .map_or_else(|| reason.clone(), |m| format!("{reason}: {m}"));
                self.events.push_back(Event::Relay(RelayEvent::SystemDown {
                    reason: detail.clone(),
                    retry_at,
                }));
                while let Some(p) = relay.unconfirmed.pop_front() {
                    relay.stats.publishes_failed += 1;
                    self.events
                        .push_back(Event::Relay(RelayEvent::PublishFailed {
                            destination: p.destination,
                            headers: p.headers,
                            body: p.body,
                            reason: detail.clone(),
                        }));
                }
            }
        }
    }

    /// Handles everything upstream `id`'s session produced.
    fn drive_upstream(&mut self, id: UpstreamId) {
        loop {
            let Some(relay) = self.relay.as_mut() else {
                return;
            };
            relay.list(id);
            let Some(u) = relay.upstreams.get_mut(&id) else {
                return;
            };
            let Some(ev) = u.client.poll_event() else {
                break;
            };
            if u.closing {
                continue;
            }
            let owner = u.owner;
            match ev {
                ClientEvent::Connected { .. } => {
                    u.deadline = None;
                    match owner {
                        UpstreamOwner::Session(sid) => self.relay_accept(sid),
                        UpstreamOwner::System => {
                            relay.system = System::Up(id);
                            relay.backoff = relay.config.reconnect_min_ms.max(1);
                            relay.stats.system_connects += 1;
                            self.events
                                .push_back(Event::Relay(RelayEvent::SystemConnected));
                        }
                    }
                }
                ClientEvent::Message(m) => {
                    if let UpstreamOwner::Session(sid) = owner {
                        relay.stats.frames_down += 1;
                        self.relay_deliver(sid, &m.frame);
                    }
                }
                ClientEvent::Receipt { receipt_id } => match owner {
                    UpstreamOwner::Session(sid) => {
                        relay.stats.frames_down += 1;
                        self.push_receipt(sid, &receipt_id);
                    }
                    UpstreamOwner::System => {
                        if let Some(pos) = relay
                            .unconfirmed
                            .iter()
                            .position(|p| p.receipt == receipt_id)
                        {
                            relay.unconfirmed.remove(pos);
                            relay.stats.publishes_confirmed += 1;
                        }
                    }
                },
                ClientEvent::Error { frame, .. } => {
                    self.upstream_failed(id, "upstream broker sent ERROR".into(), Some(&frame));
                }
                ClientEvent::HeartBeatTimeout => {
                    self.upstream_failed(id, "upstream heart-beat timeout".into(), None);
                }
                ClientEvent::Closed(reason) => {
                    self.upstream_failed(id, describe_close(reason), None);
                }
            }
        }
        if let Some(relay) = self.relay.as_mut() {
            relay.sync_timer(id);
        }
    }

    /// An upstream MESSAGE for client session `sid`, passed on in the client's version through
    /// its session (which issues its own `ack` ids: the upstream's are kept to translate the
    /// client's ACK/NACK back).
    fn relay_deliver(&mut self, sid: SessionId, frame: &Frame) {
        let now = self.now;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if s.state != State::Open {
            return;
        }
        // A STOMP 1.0 SUBSCRIBE without `id` is named by its destination.
        let Some(sub) = frame
            .header("subscription")
            .or_else(|| frame.header("destination"))
        else {
            return;
        };
        let message_id = frame.header("message-id").unwrap_or_default();
        s.stomp.advance_time(now);
        match s.stomp.send_message_from(sub, message_id, frame) {
            Ok(()) => {}
            // Unsubscribed meanwhile: the upstream's MESSAGE crossed the UNSUBSCRIBE.
            Err(UsageError::UnknownSubscription) => return,
            Err(UsageError::LimitExceeded(_)) => {
                self.slow_consumer(sid);
                return;
            }
            Err(_) => {
                // Decoded from the same version, so it re-encodes; never drop it silently.
                self.stats.protocol_errors += 1;
                self.close(
                    sid,
                    CloseReason::UpstreamFailed("unencodable upstream MESSAGE".into()),
                    Some(Fatal::new(
                        "relay: upstream MESSAGE cannot be encoded",
                        None,
                    )),
                );
                return;
            }
        }
        if s.stomp.version() == Version::V1_2
            && let Some(ack) = frame.header("ack")
            && s.stomp
                .subscription(sub)
                .is_some_and(|(_, mode)| mode != stompbox_stomp::AckMode::Auto)
        {
            s.relay_acks
                .insert((sub.to_owned(), message_id.to_owned()), ack.to_owned());
        }
        if self.flush_bounded(sid).is_err() {
            self.slow_consumer(sid);
        }
    }

    /// Routes a client frame in relay mode: frames for relayed destinations (and the
    /// transaction frames) go upstream. `Ok(Some(frame))` is left for the local broker.
    pub(super) fn relay_frame(
        &mut self,
        sid: SessionId,
        f: Inbound,
    ) -> Result<Option<Inbound>, Fatal> {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return Ok(Some(f));
        };
        let Some(up) = s.upstream else {
            return Ok(Some(f));
        };
        let version = s.stomp.version();
        let upstream = match &f {
            Inbound::Send { destination, .. } if self.config.kind(destination) == Kind::Relay => {
                upstream_frame(&f, version, None)
            }
            Inbound::Subscribe { destination, .. }
                if self.config.kind(destination) == Kind::Relay =>
            {
                upstream_frame(&f, version, None)
            }
            Inbound::Unsubscribe { id, .. } if s.relay_subs.contains(id.as_str()) => {
                s.relay_acks.retain(|(sub, _), _| sub != id);
                upstream_frame(&f, version, None)
            }
            Inbound::Ack {
                subscription,
                message_ids,
                ..
            } if s.relay_subs.contains(subscription.as_str()) => {
                // The newest message covers the others upstream too (the same ack mode).
                let Some(last) = message_ids.last() else {
                    return Ok(Some(f));
                };
                let mut upstream_ack = None;
                for mid in message_ids {
                    let key = (subscription.clone(), mid.clone());
                    if let Some(ack) = s.relay_acks.remove(&key)
                        && mid == last
                    {
                        upstream_ack = Some(ack);
                    }
                }
                upstream_frame(&f, version, upstream_ack.as_deref())
            }
            // Both sides keep the transaction: the session holds its frames until COMMIT and
            // releases them before it (relayed ones go upstream in the transaction then); the
            // upstream answers the receipt.
            Inbound::Begin { .. } | Inbound::End { .. } => upstream_frame(&f, version, None),
            _ => return Ok(Some(f)),
        };
        self.forward(up, &upstream, f.receipt())?;
        if let Some(s) = self.sessions.get_mut(&sid) {
            match f {
                Inbound::Subscribe { id, .. } => {
                    s.relay_subs.insert(id);
                }
                Inbound::Unsubscribe { id, .. } => {
                    s.relay_subs.remove(id.as_str());
                }
                _ => {}
            }
        }
        Ok(None)
    }

    fn forward(
        &mut self,
        id: UpstreamId,
        frame: &Frame,
        receipt: Option<&str>,
    ) -> Result<(), Fatal> {
        let relay = self
            .relay
            .as_mut()
            .ok_or_else(|| Fatal::new("no relay", receipt))?;
        let max = relay.config.max_upstream_output_bytes;
        let u = relay
            .upstreams
            .get_mut(&id)
            .filter(|u| !u.closing)
            .ok_or_else(|| Fatal::new("upstream broker connection lost", receipt))?;
        if u.client.pending_output() > max {
            return Err(Fatal::new("upstream broker connection congested", receipt));
        }
        u.client
            .send_frame(frame)
            .map_err(|e| Fatal::new(format!("relay: {e}"), receipt))?;
        relay.stats.frames_up += 1;
        relay.list(id);
        relay.sync_timer(id);
        Ok(())
    }

    /// An application publish to a relayed destination, over the system session.
    pub(super) fn relay_publish(
        &mut self,
        destination: &str,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> Result<usize, PublishError> {
        let Some(relay) = self.relay.as_mut() else {
            return Err(PublishError::NotABrokerDestination(destination.to_owned()));
        };
        let System::Up(id) = relay.system else {
            relay.stats.publishes_refused += 1;
            return Err(PublishError::RelayUnavailable);
        };
        let max_out = relay.config.max_upstream_output_bytes;
        if relay.unconfirmed.len() >= relay.config.max_unconfirmed_publishes
            || relay
                .upstreams
                .get(&id)
                .is_some_and(|u| u.client.pending_output() > max_out)
        {
            relay.stats.publishes_refused += 1;
            return Err(PublishError::RelayBusy);
        }
        let receipt = format!("relay-publish-{}", relay.next_publish);
        let mut b = FrameBuilder::new(Command::Send).header("destination", destination);
        for (k, v) in &headers {
            b = b.header(k, v);
        }
        let frame = b.header("receipt", &receipt).body(body.clone()).build();
        let Some(u) = relay.upstreams.get_mut(&id).filter(|u| !u.closing) else {
            relay.stats.publishes_refused += 1;
            return Err(PublishError::RelayUnavailable);
        };
        if let Err(e) = u.client.send_frame(&frame) {
            relay.stats.publishes_refused += 1;
            return Err(PublishError::InvalidDestination(format!(
                "{destination}: {e}"
            )));
        }
        relay.next_publish += 1;
        relay.stats.publishes += 1;
        relay.stats.frames_up += 1;
        relay.unconfirmed.push_back(Unconfirmed {
            receipt,
            destination: destination.to_owned(),
            headers,
            body,
        });
        relay.list(id);
        relay.sync_timer(id);
        Ok(0)
    }

    /// Upstream timers: CONNECT deadlines, heart-beats, the system session's reconnect.
    pub(super) fn relay_handle_timeout(&mut self, now: u64) {
        let limits = self.config.frame_limits;
        loop {
            let Some(relay) = self.relay.as_mut() else {
                return;
            };
            let Some(&Reverse((at, id))) = relay.timers.peek() else {
                return;
            };
            if at > now {
                return;
            }
            relay.timers.pop();
            if id == SYSTEM_RETRY {
                if relay.system == (System::Down { retry_at: at }) {
                    relay.open_system(now, limits);
                }
                continue;
            }
            let Some(u) = relay.upstreams.get_mut(&id) else {
                continue;
            };
            if u.timer != Some(at) {
                continue; // stale entry
            }
            u.timer = None;
            if u.closing {
                continue;
            }
            if u.deadline.is_some_and(|d| now >= d) {
                self.upstream_failed(
                    id,
                    "upstream broker did not answer CONNECT in time".into(),
                    None,
                );
                continue;
            }
            u.client.handle_timeout(now);
            self.drive_upstream(id);
        }
    }

    /// The earliest upstream timer.
    pub(super) fn relay_poll_timeout(&mut self) -> Option<u64> {
        let relay = self.relay.as_mut()?;
        while let Some(&Reverse((at, id))) = relay.timers.peek() {
            let live = if id == SYSTEM_RETRY {
                relay.system == (System::Down { retry_at: at })
            } else {
                relay
                    .upstreams
                    .get(&id)
                    .is_some_and(|u| u.timer == Some(at))
            };
            if live {
                return Some(at);
            }
            relay.timers.pop();
        }
        None
    }
}
