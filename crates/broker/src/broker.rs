//! The broker: sessions, routing, queues, acknowledgements, bounds and the host API.

pub(crate) mod relay;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use stompbox_stomp::server::{
    Accept, CloseReason as SessionClose, SendEvent, ServerConfig, ServerEvent, ServerSession,
    ServerState, SharedMessage, SubscriptionKey, ViolationMessage,
};
use stompbox_stomp::{Command, Frame, HeartBeat, Limits, Version, Violation};

use crate::config::{Config, Kind, UnknownDestination};
use crate::inbound::{self, AckMode, Inbound};
use crate::pattern::{self, Index};
use crate::stats::{QueueStats, Stats};
use crate::wire::Transmit;
use relay::{Relay, RelayEvent, UpstreamId};

/// Identifies one session (one client connection) for the lifetime of the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub(crate) u64);

impl SessionId {
    /// The number behind the id (unique, never reused).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// Hashes session ids (assigned by the broker, never chosen by a peer) with one multiply.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// What the host knows about a session's transport, shown to the authentication hook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportInfo {
    /// The peer's address, if any.
    pub remote_addr: Option<SocketAddr>,
    /// Is the transport encrypted (TLS)?
    pub secure: bool,
    /// A principal established by the transport (e.g. HTTP authentication of the upgrade).
    pub principal: Option<String>,
}

/// What the authentication hook sees of a CONNECT frame.
#[derive(Debug, Clone, Copy)]
pub struct ConnectRequest<'a> {
    /// The session connecting.
    pub session: SessionId,
    /// The `login` header.
    pub login: Option<&'a str>,
    /// The `passcode` header.
    pub passcode: Option<&'a str>,
    /// The `host` header.
    pub host: Option<&'a str>,
    /// What the host said about the transport in [`Broker::open_session`].
    pub transport: &'a TransportInfo,
}

/// The authentication hook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// Accept; `user` is the principal (the user name of user destinations), if any.
    Accept {
        /// The user name.
        user: Option<String>,
    },
    /// Reject: the client gets an ERROR with this message and the session is closed.
    Reject {
        /// The ERROR's `message` header.
        message: String,
    },
}

/// Authenticates CONNECT frames. Implemented for every `FnMut(&ConnectRequest) -> AuthDecision`.
pub trait Authenticator: Send {
    /// Decides on one CONNECT.
    fn authenticate(&mut self, request: &ConnectRequest<'_>) -> AuthDecision;
}

impl<F: FnMut(&ConnectRequest<'_>) -> AuthDecision + Send> Authenticator for F {
    fn authenticate(&mut self, request: &ConnectRequest<'_>) -> AuthDecision {
        self(request)
    }
}

/// The default hook: accepts everyone, with the transport's principal as user (if any).
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAll;

impl Authenticator for AcceptAll {
    fn authenticate(&mut self, request: &ConnectRequest<'_>) -> AuthDecision {
        AuthDecision::Accept {
            user: request.transport.principal.clone(),
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent DISCONNECT (its receipt, if asked, is queued).
    ClientDisconnect,
    /// The host reported the transport closed.
    TransportClosed,
    /// The authentication hook rejected the CONNECT (ERROR queued).
    AuthRejected,
    /// The client broke the protocol or a limit (ERROR queued, with this message).
    ProtocolError(String),
    /// The session's output exceeded its bound (ERROR queued).
    SlowConsumer,
    /// The client's heart-beats stopped (ERROR queued).
    HeartbeatTimeout,
    /// The session's upstream session (relay mode) failed or the upstream broker sent ERROR
    /// (ERROR queued, with the upstream's message when it sent one).
    UpstreamFailed(String),
}

/// A SEND from a client to an application destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppMessage {
    /// The sending session.
    pub session: SessionId,
    /// The session's user, if authenticated with one.
    pub user: Option<Arc<str>>,
    /// The destination (with its application prefix, e.g. `/app/greet`).
    pub destination: String,
    /// Every header of the SEND except `destination`, `receipt`, `transaction` and
    /// `content-length`.
    pub headers: Vec<(String, String)>,
    /// The body (shares the session's input buffer; no copy).
    pub body: Bytes,
}

impl AppMessage {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// A SUBSCRIBE from a client to an application destination; the application may answer once
/// with [`Broker::send_to_session`] to `destination` (like Spring's `@SubscribeMapping`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSubscribe {
    /// The subscribing session.
    pub session: SessionId,
    /// The session's user, if any.
    pub user: Option<Arc<str>>,
    /// The destination (with its application prefix).
    pub destination: String,
    /// The subscription id chosen by the client.
    pub subscription: String,
    /// Every header of the SUBSCRIBE except `destination`, `id`, `ack` and `receipt`.
    pub headers: Vec<(String, String)>,
}

/// An event for the application or the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A CONNECT was accepted.
    Connected {
        /// The session.
        session: SessionId,
        /// Its user, if any.
        user: Option<Arc<str>>,
    },
    /// A SEND to an application destination.
    Message(AppMessage),
    /// A SUBSCRIBE to an application destination.
    Subscribe(AppSubscribe),
    /// The session is finished: flush what [`Broker::poll_transmit`] still has for it, then
    /// close its transport and call [`Broker::transport_closed`] (not needed when the reason is
    /// [`CloseReason::TransportClosed`]).
    Closed {
        /// The session.
        session: SessionId,
        /// Why.
        reason: CloseReason,
    },
    /// News from the broker relay ([`Config::relay`]): the system session's state and
    /// publishes that failed.
    Relay(RelayEvent),
}

/// Host misuse: a typed error; the broker stays usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// No such session (never opened, or already reported closed).
    UnknownSession(SessionId),
    /// The session limit ([`Config::max_sessions`]) is reached.
    TooManySessions,
    /// No such upstream transport (never asked for, or already forgotten).
    UnknownUpstream(UpstreamId),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::UnknownSession(id) => write!(f, "unknown session {id}"),
            HostError::TooManySessions => f.write_str("session limit reached"),
            HostError::UnknownUpstream(id) => write!(f, "unknown upstream {id}"),
        }
    }
}

impl std::error::Error for HostError {}

/// Why an application reply (publish, send to session or user) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishError {
    /// The destination is under no broker prefix (or is an application destination).
    NotABrokerDestination(String),
    /// The destination is empty, too long, or a pattern.
    InvalidDestination(String),
    /// The queue is at [`Config::max_queue_depth`].
    QueueFull(String),
    /// The queue limit [`Config::max_queues`] is reached.
    TooManyQueues,
    /// No such session.
    UnknownSession(SessionId),
    /// The message (this many bytes of body) could never fit a session's output bound
    /// (more than half of [`Config::max_output_bytes`]).
    TooLarge(usize),
    /// The destination is relayed and the relay's system session is not connected (see
    /// [`RelayEvent::SystemDown`]); nothing was sent.
    RelayUnavailable,
    /// The destination is relayed and too many publishes await the upstream's confirmation
    /// ([`crate::RelayConfig::max_unconfirmed_publishes`]); nothing was sent.
    RelayBusy,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::NotABrokerDestination(d) => write!(f, "not a broker destination: {d}"),
            PublishError::InvalidDestination(d) => write!(f, "invalid destination: {d}"),
            PublishError::QueueFull(d) => write!(f, "queue full: {d}"),
            PublishError::TooManyQueues => f.write_str("queue limit reached"),
            PublishError::UnknownSession(id) => write!(f, "unknown session {id}"),
            PublishError::TooLarge(n) => write!(f, "message too large for delivery: {n} bytes"),
            PublishError::RelayUnavailable => f.write_str("upstream broker unavailable"),
            PublishError::RelayBusy => {
                f.write_str("too many publishes awaiting the upstream broker")
            }
        }
    }
}

impl std::error::Error for PublishError {}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A message's own headers (never the broker's: see [`is_broker_header`]).
#[derive(Debug)]
enum UserHeaders {
    /// Given by the application (`publish`, `send_to_session`, ...), filtered already.
    Owned(Vec<(String, String)>),
    /// A client's SEND as parsed: its headers are read from the frame when the message is
    /// encoded (once per STOMP version), so routing a SEND copies none of them.
    Send(Frame),
}

impl UserHeaders {
    /// The headers as owned pairs (for the relay and application events).
    fn into_owned(self) -> Vec<(String, String)> {
        match self {
            UserHeaders::Owned(v) => v,
            UserHeaders::Send(f) => {
                let mut v: Vec<(String, String)> = Vec::with_capacity(f.header_count());
                for (k, val) in f.headers() {
                    // Repeated headers: the first one wins (STOMP 1.2 "Repeated Header
                    // Entries"); later ones are not forwarded.
                    if !is_broker_header(k) && !v.iter().any(|(seen, _)| seen == k) {
                        v.push((k.to_owned(), val.to_owned()));
                    }
                }
                v
            }
        }
    }
}

/// One lazily encoded [`SharedMessage`] (`None`: a header that version cannot carry).
type SharedSlot = OnceLock<Option<SharedMessage>>;

/// A published message, shared by every delivery of it.
#[derive(Debug)]
struct Msg {
    destination: Arc<str>,
    headers: UserHeaders,
    body: Bytes,
    /// The MESSAGE head's shared part (destination, user headers, content-length) for STOMP
    /// 1.2 first deliveries, encoded on first use: the common case, kept inline.
    shared_v1_2: SharedSlot,
    /// The same for the other versions and for redeliveries (`[redelivered][version]`),
    /// allocated only when one is needed: a message is created per publish, and six inline
    /// slots made creating and dropping it cost more than encoding it.
    shared_other: OnceLock<Box<[[SharedSlot; 3]; 2]>>,
}

impl Msg {
    fn new(destination: Arc<str>, headers: UserHeaders, body: Bytes) -> Arc<Msg> {
        Arc::new(Msg {
            destination,
            headers,
            body,
            shared_v1_2: OnceLock::new(),
            shared_other: OnceLock::new(),
        })
    }

    /// The message encoded for sessions of `version`, with `redelivered:true` first when
    /// asked; `None` when that version cannot carry one of its headers.
    fn shared(&self, version: Version, redelivered: bool) -> Option<&SharedMessage> {
        let slot = if version == Version::V1_2 && !redelivered {
            &self.shared_v1_2
        } else {
            let v = match version {
                Version::V1_0 => 0,
                Version::V1_1 => 1,
                Version::V1_2 => 2,
            };
            &self.shared_other.get_or_init(Box::default)[usize::from(redelivered)][v]
        };
        slot.get_or_init(|| {
            let flag = redelivered.then_some(("redelivered", "true"));
            match &self.headers {
                UserHeaders::Owned(v) => {
                    let user = v.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                    SharedMessage::with_headers(
                        version,
                        &self.destination,
                        flag.into_iter().chain(user),
                        self.body.clone(),
                    )
                    .ok()
                }
                UserHeaders::Send(f) => {
                    SharedMessage::from_send(version, &self.destination, flag.as_slice(), f, |k| {
                        is_broker_header_bytes(k)
                    })
                    .ok()
                }
            }
        })
        .as_ref()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubKind {
    Topic,
    Queue,
    User,
    App,
}

#[derive(Debug)]
struct Unacked {
    id: u64,
    msg: Arc<Msg>,
    from_queue: bool,
}

#[derive(Debug)]
struct Sub {
    id: Arc<str>,
    destination: Arc<str>,
    kind: SubKind,
    ack: AckMode,
    unacked: VecDeque<Unacked>,
    /// The client session's key for this subscription: deliveries name it by this, not by
    /// its id (no second lookup by id per MESSAGE).
    session_key: SubscriptionKey,
}

type SubKey = (SessionId, Arc<str>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Open,
    Closing,
}

struct Session {
    /// The client's STOMP session: framing, CONNECT, heart-beats, validation, transactions
    /// and acknowledgement books. Its output is moved to `out` as soon as it is queued.
    stomp: ServerSession,
    transport: TransportInfo,
    user: Option<Arc<str>>,
    state: State,
    /// A CONNECT was validated (its version is negotiated).
    negotiated: bool,
    subs: HashMap<Arc<str>, Sub>,
    out: VecDeque<Transmit>,
    out_bytes: usize,
    listed: bool,
    throttled: bool,
    timer: Option<u64>,
    /// Heart-beats received so far (for the stats).
    heartbeats_in: u64,
    /// Relay mode: this session's upstream session.
    upstream: Option<UpstreamId>,
    /// Relay mode: subscription ids forwarded upstream.
    relay_subs: HashSet<String>,
    /// Relay mode, STOMP 1.2: the upstream's `ack` id of each relayed MESSAGE awaiting
    /// acknowledgement, by (subscription, message-id); the client acknowledges with the ids
    /// its session issued.
    relay_acks: HashMap<(String, String), String>,
}

impl Session {
    /// Can MESSAGEs be queued? Not once the client broke the protocol: its session has
    /// queued the ERROR while the broker still acts on the frames before the violation.
    fn deliverable(&self) -> bool {
        self.state == State::Open && self.stomp.error().is_none()
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user)
            .field("state", &self.state)
            .field("subs", &self.subs.len())
            .field("out_frames", &self.out.len())
            .field("out_bytes", &self.out_bytes)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Pending {
    msg: Arc<Msg>,
    redelivered: bool,
}

#[derive(Debug, Default)]
struct Queue {
    pending: VecDeque<Pending>,
    consumers: Vec<SubKey>,
    rr: usize,
}

/// A fatal outcome of a client frame: ERROR (with receipt-id) and close.
struct Fatal {
    message: String,
    receipt: Option<String>,
}

impl Fatal {
    fn new(message: impl Into<String>, receipt: Option<&str>) -> Fatal {
        Fatal {
            message: message.into(),
            receipt: receipt.map(str::to_owned),
        }
    }
}

/// The sans-IO broker. See the crate documentation for the host loop and the drain contract.
pub struct Broker {
    config: Config,
    /// Every client session's configuration, derived from `config`.
    session_config: ServerConfig,
    auth: Box<dyn Authenticator>,
    sessions: HashMap<SessionId, Session, BuildHasherDefault<IdHasher>>,
    next_session: u64,
    next_delivery: u64,
    topics: Index<SubKey>,
    queues: HashMap<Arc<str>, Queue>,
    users: HashMap<Arc<str>, Vec<SessionId>>,
    events: VecDeque<Event>,
    ready: VecDeque<SessionId>,
    timers: BinaryHeap<Reverse<(u64, SessionId)>>,
    dirty_queues: Vec<Arc<str>>,
    scratch: Vec<SubKey>,
    stats: Stats,
    /// The latest host time seen (for heart-beat bookkeeping of output).
    now: u64,
    /// Relay mode ([`Config::relay`]).
    relay: Option<Relay>,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("config", &self.config)
            .field("sessions", &self.sessions.len())
            .field("queues", &self.queues.len())
            .finish_non_exhaustive()
    }
}

impl Default for Broker {
    fn default() -> Self {
        Broker::new(Config::default())
    }
}

impl Broker {
    /// A broker that accepts every CONNECT (see [`AcceptAll`]).
    pub fn new(config: Config) -> Broker {
        Broker::with_authenticator(config, AcceptAll)
    }

    /// A broker whose CONNECTs are decided by `auth`.
    pub fn with_authenticator(config: Config, auth: impl Authenticator + 'static) -> Broker {
        let sep = config.separator;
        Broker {
            relay: config.relay.clone().map(Relay::new),
            session_config: session_config(&config),
            config,
            auth: Box::new(auth),
            sessions: HashMap::default(),
            next_session: 1,
            next_delivery: 1,
            topics: Index::new(sep),
            queues: HashMap::new(),
            users: HashMap::new(),
            events: VecDeque::new(),
            ready: VecDeque::new(),
            timers: BinaryHeap::new(),
            dirty_queues: Vec::new(),
            scratch: Vec::new(),
            stats: Stats::default(),
            now: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ----------------------------------------------------------------------------------------
    // Host API: sessions, bytes, time.

    /// Opens a session for a new transport. The client's first frame must be CONNECT (or STOMP).
    ///
    /// `now_ms` is the host's monotonic clock (used for the CONNECT timeout and heart-beats).
    pub fn open_session(
        &mut self,
        transport: TransportInfo,
        now_ms: u64,
    ) -> Result<SessionId, HostError> {
        if self.sessions.len() >= self.config.max_sessions {
            self.stats.sessions_refused += 1;
            return Err(HostError::TooManySessions);
        }
        self.now = self.now.max(now_ms);
        let id = SessionId(self.next_session);
        self.next_session += 1;
        let mut stomp = ServerSession::new(self.session_config.clone());
        // Starts the connect timeout.
        stomp.handle_timeout(now_ms);
        self.sessions.insert(
            id,
            Session {
                stomp,
                transport,
                user: None,
                state: State::Connecting,
                negotiated: false,
                subs: HashMap::new(),
                out: VecDeque::new(),
                out_bytes: 0,
                listed: false,
                throttled: false,
                timer: None,
                heartbeats_in: 0,
                upstream: None,
                relay_subs: HashSet::new(),
                relay_acks: HashMap::new(),
            },
        );
        self.stats.sessions_total += 1;
        self.stats.sessions_current += 1;
        self.sync_timer(id);
        Ok(id)
    }

    /// Feeds bytes received on session `id`'s transport. Input after the session closed is
    /// ignored. Then drain [`Broker::poll_ready`]/[`Broker::poll_transmit`],
    /// [`Broker::poll_event`] and [`Broker::poll_timeout`].
    pub fn handle_read(
        &mut self,
        id: SessionId,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<(), HostError> {
        let sess = self
            .sessions
            .get_mut(&id)
            .ok_or(HostError::UnknownSession(id))?;
        if sess.state == State::Closing {
            return Ok(());
        }
        self.now = self.now.max(now_ms);
        // STOMP 1.2 "Heart-beating": any byte received counts as liveness, at `now_ms`.
        sess.stomp.advance_time(now_ms);
        // A violation is reported as events (its ERROR is queued).
        let _ = sess.stomp.handle_read(bytes);
        if sess.stomp.state() == ServerState::Open && !bytes.is_empty() {
            // Settles the liveness mark at `now_ms` (a later timeout would take its own time).
            sess.stomp.handle_timeout(now_ms);
        }
        self.drive(id);
        self.pump_dirty();
        Ok(())
    }

    /// The host saw session `id`'s transport close (or closed it after [`Event::Closed`]). The
    /// session's subscriptions end, its unacknowledged queue messages are redelivered and the
    /// id becomes unknown.
    pub fn transport_closed(&mut self, id: SessionId) -> Result<(), HostError> {
        if !self.sessions.contains_key(&id) {
            return Err(HostError::UnknownSession(id));
        }
        self.close(id, CloseReason::TransportClosed, None);
        self.sessions.remove(&id);
        self.stats.sessions_current -= 1;
        self.pump_dirty();
        Ok(())
    }

    /// The next session with output queued. A session is listed once each time output is
    /// queued for it while it was not listed; a host that stops draining a session early
    /// (its socket is full) keeps it on its own write list and calls
    /// [`Broker::poll_transmit`] again when writable ([`Broker::has_output`] tells).
    pub fn poll_ready(&mut self) -> Option<SessionId> {
        while let Some(id) = self.ready.pop_front() {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.listed = false;
                if !s.out.is_empty() {
                    return Some(id);
                }
            }
        }
        None
    }

    /// Does session `id` have output queued?
    pub fn has_output(&self, id: SessionId) -> bool {
        self.sessions.get(&id).is_some_and(|s| !s.out.is_empty())
    }

    /// Bytes queued for session `id` and not yet handed out.
    pub fn queued_bytes(&self, id: SessionId) -> usize {
        self.sessions.get(&id).map_or(0, |s| s.out_bytes)
    }

    /// The next whole frame for session `id`'s transport, or `None` when drained.
    pub fn poll_transmit(&mut self, id: SessionId) -> Option<Transmit> {
        let s = self.sessions.get_mut(&id)?;
        let t = s.out.pop_front()?;
        s.out_bytes -= t.len();
        if s.throttled && s.state == State::Open && !self.over_low_water(id) {
            self.unthrottle(id);
            self.pump_dirty();
        }
        Some(t)
    }

    /// Advances time: sends due heart-beats and ends sessions whose client went silent (or
    /// never sent CONNECT).
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.now = self.now.max(now_ms);
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if at > now_ms {
                break;
            }
            self.timers.pop();
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            if s.timer != Some(at) {
                continue; // stale entry
            }
            s.timer = None;
            if s.state != State::Closing {
                s.stomp.handle_timeout(now_ms);
            }
            self.drive(id);
        }
        self.relay_handle_timeout(now_ms);
        self.pump_dirty();
    }

    /// The earliest instant (host milliseconds) at which [`Broker::handle_timeout`] must be
    /// called, over every session.
    pub fn poll_timeout(&mut self) -> Option<u64> {
        let mut next = None;
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if self.sessions.get(&id).is_some_and(|s| s.timer == Some(at)) {
                next = Some(at);
                break;
            }
            self.timers.pop();
        }
        match (next, self.relay_poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next application or host event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// A snapshot of the counters, gauges and queue depths.
    pub fn stats(&self) -> Stats {
        let mut st = self.stats.clone();
        st.relay = self.relay_stats();
        st.topic_subscriptions = self.topics.len();
        st.subscriptions = self
            .sessions
            .values()
            .map(|s| s.subs.len() + s.relay_subs.len())
            .sum();
        st.sessions_connected = self
            .sessions
            .values()
            .filter(|s| s.state == State::Open)
            .count();
        st.queues = self
            .queues
            .iter()
            .map(|(name, q)| QueueStats {
                destination: name.to_string(),
                depth: q.pending.len(),
                unacked: q
                    .consumers
                    .iter()
                    .filter_map(|(sid, sub)| self.sessions.get(sid)?.subs.get(sub))
                    .map(|s| s.unacked.iter().filter(|u| u.from_queue).count())
                    .sum(),
                consumers: q.consumers.len(),
            })
            .collect();
        st.queues.sort_by(|a, b| a.destination.cmp(&b.destination));
        st.queue_depth_total = st.queues.iter().map(|q| q.depth).sum();
        st
    }

    /// What was negotiated for session `id`: `(STOMP version, heart-beat intervals)` (1.2 and
    /// no heart-beats until its CONNECT is accepted).
    pub fn session_protocol(
        &self,
        id: SessionId,
    ) -> Option<(stompbox_stomp::Version, stompbox_stomp::Negotiated)> {
        let s = self.sessions.get(&id)?;
        if !s.negotiated {
            return Some((
                stompbox_stomp::Version::V1_2,
                stompbox_stomp::Negotiated::default(),
            ));
        }
        Some((s.stomp.version(), s.stomp.heartbeat()))
    }

    /// The user of session `id`, once its CONNECT was accepted.
    pub fn session_user(&self, id: SessionId) -> Option<&str> {
        self.sessions.get(&id)?.user.as_deref()
    }

    /// The number of sessions open.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    // ----------------------------------------------------------------------------------------
    // Application replies.

    /// Publishes a message to a broker destination (`/topic/..`, `/queue/..` or
    /// `/user/{name}/..`), as a SEND from the application. Returns the number of MESSAGE frames
    /// queued now (a queue message with no consumer waits and counts 0).
    pub fn publish(
        &mut self,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<usize, PublishError> {
        let headers = owned_headers(headers);
        let r = self.route(destination.into(), UserHeaders::Owned(headers), body.into());
        self.pump_dirty();
        r
    }

    /// Sends a message to every subscription of session `session` whose destination (or
    /// pattern) matches `destination` — including application destinations the session
    /// subscribed to, which is how an application answers an [`Event::Subscribe`]. Returns the
    /// number of MESSAGE frames queued.
    pub fn send_to_session(
        &mut self,
        session: SessionId,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<usize, PublishError> {
        if !self.sessions.contains_key(&session) {
            return Err(PublishError::UnknownSession(session));
        }
        self.check_destination(destination)
            .map_err(PublishError::InvalidDestination)?;
        let body = body.into();
        self.check_size(&body)?;
        self.stats.messages_published += 1;
        let msg = Msg::new(
            destination.into(),
            UserHeaders::Owned(owned_headers(headers)),
            body,
        );
        let n = self.deliver_to_session_matching(session, &msg, destination);
        self.pump_dirty();
        Ok(n)
    }

    /// Sends a message to every session of `user` subscribed to the user destination
    /// `{user_prefix}{destination}` (e.g. `destination` `/queue/reply` reaches subscriptions
    /// to `/user/queue/reply`). Returns the number of MESSAGE frames queued.
    pub fn send_to_user(
        &mut self,
        user: &str,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<usize, PublishError> {
        let full = format!("{}{}", self.user_prefix(), destination);
        self.check_destination(&full)
            .map_err(PublishError::InvalidDestination)?;
        let body = body.into();
        self.check_size(&body)?;
        self.stats.messages_published += 1;
        let msg = Msg::new(
            full.clone().into(),
            UserHeaders::Owned(owned_headers(headers)),
            body,
        );
        let n = self.deliver_to_user(user, &msg, &full);
        self.pump_dirty();
        Ok(n)
    }

    // ----------------------------------------------------------------------------------------
    // Session driving.

    /// Processes everything the session's `ServerSession` produced.
    fn drive(&mut self, id: SessionId) {
        loop {
            // Protocol output (CONNECTED, heart-beats, protocol ERRORs) goes first, in order.
            self.flush(id);
            let Some(s) = self.sessions.get_mut(&id) else {
                return;
            };
            let (heartbeats_in, _) = s.stomp.heartbeat_counts();
            if heartbeats_in > s.heartbeats_in {
                if s.state == State::Open {
                    self.stats.frames_in.heartbeat += heartbeats_in - s.heartbeats_in;
                }
                s.heartbeats_in = heartbeats_in;
            }
            let Some(ev) = s.stomp.poll_event() else {
                break;
            };
            self.on_event(id, ev);
        }
        self.sync_timer(id);
    }

    /// Moves the session's queued output (protocol replies: never bounded) to `out`.
    fn flush(&mut self, id: SessionId) {
        if let Some(s) = self.sessions.get_mut(&id) {
            take_session_output(id, s, &mut self.stats, &mut self.ready);
        }
    }

    /// Moves the session's queued output to `out` within the session's output bound; what
    /// does not fit is dropped and `Err` returned (the caller ends the session).
    fn flush_bounded(&mut self, id: SessionId) -> Result<(), ()> {
        let (max_bytes, max_frames) = (self.config.max_output_bytes, self.config.max_output_frames);
        let Some(s) = self.sessions.get_mut(&id) else {
            return Ok(());
        };
        let mut fits = true;
        while let Some(t) = s.stomp.poll_transmit_frame() {
            let t = Transmit::from(t);
            if !fits || s.out_bytes + t.len() > max_bytes || s.out.len() >= max_frames {
                fits = false;
                continue;
            }
            count_out(&mut self.stats, &t);
            s.out_bytes += t.len();
            s.out.push_back(t);
        }
        if !s.out.is_empty() && !s.listed {
            s.listed = true;
            self.ready.push_back(id);
        }
        if fits { Ok(()) } else { Err(()) }
    }

    fn on_event(&mut self, id: SessionId, ev: ServerEvent) {
        let open = self
            .sessions
            .get(&id)
            .is_some_and(|s| s.state == State::Open);
        let frame = match ev {
            ServerEvent::Connect(req) => {
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.negotiated = true;
                }
                self.on_connect(
                    id,
                    req.login.as_deref(),
                    req.passcode.as_deref(),
                    req.host.as_deref(),
                );
                return;
            }
            ServerEvent::Closed(reason) => {
                self.on_session_closed(id, reason);
                return;
            }
            _ if !open => return,
            ServerEvent::Held {
                command, receipt, ..
            } => {
                // Counted when it arrives; routed when its COMMIT releases it.
                let c = &mut self.stats.frames_in;
                match command {
                    Command::Send => c.send += 1,
                    Command::Nack => c.nack += 1,
                    _ => c.ack += 1,
                }
                if let Some(r) = receipt {
                    self.push_receipt(id, &r);
                }
                return;
            }
            // Without a relay, a SEND is routed from its frame as parsed: no owned copy of
            // its destination and headers (the per-publish cost a broker pays most).
            ServerEvent::Send(e) if self.relay.is_none() => {
                self.on_send(id, e);
                return;
            }
            ServerEvent::Send(e) => Inbound::send(e),
            ServerEvent::Subscribe(e) => Inbound::subscribe(e),
            ServerEvent::Unsubscribe(e) => Inbound::Unsubscribe {
                id: e.id,
                receipt: e.receipt,
            },
            ServerEvent::Ack(e) => Inbound::ack(e, false),
            ServerEvent::Nack(e) => Inbound::ack(e, true),
            ServerEvent::Begin {
                transaction,
                receipt,
            } => Inbound::Begin {
                transaction,
                receipt,
            },
            ServerEvent::Commit {
                transaction,
                receipt,
            } => Inbound::End {
                commit: true,
                transaction,
                receipt,
            },
            ServerEvent::Abort {
                transaction,
                receipt,
                ..
            } => Inbound::End {
                commit: false,
                transaction,
                receipt,
            },
            ServerEvent::Disconnect { receipt } => Inbound::Disconnect { receipt },
        };
        count_in(&mut self.stats, &frame);
        if let Err(fatal) = self.on_frame(id, frame) {
            self.protocol_error(id, fatal);
        }
    }

    /// Ends session `id` for a frame the broker refused (its ERROR says why).
    fn protocol_error(&mut self, id: SessionId, fatal: Fatal) {
        self.stats.protocol_errors += 1;
        self.close(
            id,
            CloseReason::ProtocolError(fatal.message.clone()),
            Some(fatal),
        );
    }

    /// Routes a client's SEND (outside a transaction, or released by its COMMIT), then
    /// answers its receipt, as `on_frame` does for the other frames.
    fn on_send(&mut self, id: SessionId, e: SendEvent) {
        let SendEvent {
            frame,
            transaction,
            receipt,
        } = e;
        if transaction.is_none() {
            // Released by COMMIT: counted when it arrived (as `Held`).
            self.stats.frames_in.send += 1;
        }
        // The session validated that it has one.
        let destination: Arc<str> = frame.header("destination").unwrap_or_default().into();
        let body = frame.body().clone();
        let result = self.client_send(
            id,
            destination,
            UserHeaders::Send(frame),
            body,
            receipt.as_deref(),
        );
        match result {
            Ok(()) => {
                if let Some(r) = receipt {
                    self.push_receipt(id, &r);
                }
            }
            Err(fatal) => self.protocol_error(id, fatal),
        }
    }

    /// The session closed itself: a violation or timeout (its ERROR is queued already), or
    /// the end of what the broker did (DISCONNECT, reject, an ERROR it sent).
    fn on_session_closed(&mut self, id: SessionId, reason: SessionClose) {
        let SessionClose::Violation(v) = reason else {
            return;
        };
        let reason = match v {
            Violation::HeartBeatTimeout => {
                self.stats.heartbeat_timeouts += 1;
                CloseReason::HeartbeatTimeout
            }
            v => {
                self.stats.protocol_errors += 1;
                let message = self
                    .sessions
                    .get(&id)
                    .and_then(|s| s.stomp.error())
                    .and_then(|e| e.reply.as_ref())
                    .and_then(|f| f.header("message").map(str::to_owned))
                    .unwrap_or_else(|| inbound::violation_message(&v, None));
                CloseReason::ProtocolError(message)
            }
        };
        self.close(id, reason, None);
    }

    fn sync_timer(&mut self, id: SessionId) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let t = if s.state == State::Closing {
            None
        } else {
            s.stomp.poll_timeout()
        };
        // `s.timer` is the wake-up scheduled in the heap. A later deadline keeps the earlier
        // wake-up (it re-arms when it fires), so the heap holds about one entry per session
        // however often output moves the heart-beat deadline.
        match (t, s.timer) {
            (None, _) => s.timer = None,
            (Some(at), Some(cur)) if cur <= at => {}
            (Some(at), _) => {
                s.timer = Some(at);
                self.timers.push(Reverse((at, id)));
            }
        }
    }

    fn on_connect(
        &mut self,
        id: SessionId,
        login: Option<&str>,
        passcode: Option<&str>,
        host: Option<&str>,
    ) {
        self.stats.frames_in.connect += 1;
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let decision = self.auth.authenticate(&ConnectRequest {
            session: id,
            login,
            passcode,
            host,
            transport: &s.transport,
        });
        match decision {
            AuthDecision::Accept { user } => {
                let user: Option<Arc<str>> = user.map(Into::into);
                s.user.clone_from(&user);
                if self.relay.is_some() {
                    // CONNECTED waits for the upstream session's CONNECTED.
                    self.relay_connect(id, login.map(str::to_owned), passcode.map(str::to_owned));
                    return;
                }
                s.state = State::Open;
                accept(&mut s.stomp, id, user.as_deref());
                if let Some(u) = &user {
                    self.users.entry(u.clone()).or_default().push(id);
                }
                self.events
                    .push_back(Event::Connected { session: id, user });
            }
            AuthDecision::Reject { message } => {
                self.stats.auth_failures += 1;
                // Queues the ERROR with `message`.
                let _ = s.stomp.reject(&message);
                self.flush(id);
                self.close(id, CloseReason::AuthRejected, None);
            }
        }
    }

    fn on_frame(&mut self, id: SessionId, f: Inbound) -> Result<(), Fatal> {
        let f = if self.relay.is_some() {
            match self.relay_frame(id, f)? {
                Some(f) => f,
                None => return Ok(()),
            }
        } else {
            f
        };
        let receipt = f.receipt().map(str::to_owned);
        let disconnect = matches!(f, Inbound::Disconnect { .. });
        self.apply(id, f)?;
        if let Some(r) = receipt {
            self.push_receipt(id, &r);
        }
        if disconnect {
            self.close(id, CloseReason::ClientDisconnect, None);
        }
        Ok(())
    }

    /// Answers a client's `receipt` (the session's receipts are manual: a RECEIPT follows
    /// what the frame caused).
    fn push_receipt(&mut self, id: SessionId, receipt_id: &str) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if s.stomp.send_receipt(receipt_id).is_err() {
            return; // closed meanwhile: nothing more is sent
        }
        if self.flush_bounded(id).is_err() {
            self.slow_consumer(id);
        }
    }

    /// Applies one frame (outside a transaction, or at COMMIT).
    fn apply(&mut self, id: SessionId, f: Inbound) -> Result<(), Fatal> {
        match f {
            Inbound::Subscribe {
                id: sub_id,
                destination,
                ack,
                headers,
                receipt,
                key,
            } => self.subscribe(
                id,
                (sub_id, key),
                destination,
                ack,
                headers,
                receipt.as_deref(),
            ),
            Inbound::Unsubscribe {
                id: sub_id,
                receipt,
            } => {
                if self.unsubscribe(id, &sub_id) {
                    Ok(())
                } else {
                    Err(Fatal::new(
                        format!("no subscription {sub_id}"),
                        receipt.as_deref(),
                    ))
                }
            }
            Inbound::Send {
                destination,
                headers,
                body,
                receipt,
                ..
            } => self.client_send(
                id,
                destination.into(),
                UserHeaders::Owned(headers),
                body,
                receipt.as_deref(),
            ),
            Inbound::Ack {
                nack,
                subscription,
                message_ids,
                ..
            } => {
                self.ack(id, nack, &subscription, &message_ids);
                Ok(())
            }
            // The session holds a transaction's frames and releases them (as frames routed
            // above) before its COMMIT; DISCONNECT is the caller's.
            Inbound::Begin { .. } | Inbound::End { .. } | Inbound::Disconnect { .. } => Ok(()),
        }
    }

    /// A body that could never fit half a session's output bound is refused up front (it
    /// would otherwise disconnect every subscriber as a slow consumer).
    fn check_size(&self, body: &Bytes) -> Result<(), PublishError> {
        if body.len() > self.config.max_output_bytes / 2 {
            return Err(PublishError::TooLarge(body.len()));
        }
        Ok(())
    }

    fn check_destination(&self, dest: &str) -> Result<(), String> {
        if dest.is_empty() || dest.len() > self.config.max_destination_len {
            return Err(dest.chars().take(64).collect());
        }
        Ok(())
    }

    fn user_prefix(&self) -> &str {
        let p = &self.config.user_prefix;
        p.strip_suffix('/').unwrap_or(p)
    }

    fn subscribe(
        &mut self,
        id: SessionId,
        (sub_id, session_key): (String, SubscriptionKey),
        destination: String,
        ack: AckMode,
        headers: Vec<(String, String)>,
        receipt: Option<&str>,
    ) -> Result<(), Fatal> {
        if let Err(d) = self.check_destination(&destination) {
            return Err(Fatal::new(format!("invalid destination {d}"), receipt));
        }
        let sep = self.config.separator;
        let kind = match self.config.kind(&destination) {
            Kind::App => SubKind::App,
            Kind::Topic => SubKind::Topic,
            Kind::Queue => {
                if pattern::is_pattern(&destination, sep) {
                    return Err(Fatal::new(
                        "queue subscriptions cannot use patterns",
                        receipt,
                    ));
                }
                SubKind::Queue
            }
            Kind::User => {
                let rest = &destination[self.user_prefix().len()..];
                let k = self.config.kind(rest);
                if !matches!(k, Kind::Topic | Kind::Queue | Kind::Relay) {
                    return Err(Fatal::new(
                        format!("user destination {destination} must name a broker destination"),
                        receipt,
                    ));
                }
                SubKind::User
            }
            Kind::Unknown => {
                return Err(Fatal::new(
                    format!("unknown destination prefix: {destination}"),
                    receipt,
                ));
            }
            Kind::Relay => {
                // Only reached without an upstream session (relay_frame forwards the rest).
                return Err(Fatal::new(
                    format!("relayed destination without an upstream session: {destination}"),
                    receipt,
                ));
            }
        };
        let max_queues = self.config.max_queues;
        let queue_exists = kind == SubKind::Queue && self.queues.contains_key(destination.as_str());
        let nqueues = self.queues.len();
        let s = self
            .sessions
            .get_mut(&id)
            .ok_or_else(|| Fatal::new("gone", None))?;
        // The session refused duplicate ids and subscriptions beyond the limit already.
        if kind == SubKind::Queue && !queue_exists && nqueues >= max_queues {
            return Err(Fatal::new("too many queues", receipt));
        }
        let sub_key: Arc<str> = sub_id.into();
        let dest: Arc<str> = destination.into();
        s.subs.insert(
            sub_key.clone(),
            Sub {
                id: sub_key.clone(),
                destination: dest.clone(),
                kind,
                ack,
                unacked: VecDeque::new(),
                session_key,
            },
        );
        let user = s.user.clone();
        match kind {
            SubKind::Topic => self.topics.insert(&dest, (id, sub_key)),
            SubKind::Queue => {
                let q = self.queues.entry(dest.clone()).or_default();
                q.consumers.push((id, sub_key));
                self.dirty_queues.push(dest);
            }
            SubKind::User => {}
            SubKind::App => {
                self.stats.app_events += 1;
                self.events.push_back(Event::Subscribe(AppSubscribe {
                    session: id,
                    user,
                    destination: dest.to_string(),
                    subscription: sub_key.to_string(),
                    headers,
                }));
            }
        }
        Ok(())
    }

    /// Removes a subscription; its unacknowledged queue messages go back to the queue.
    fn unsubscribe(&mut self, id: SessionId, sub_id: &str) -> bool {
        let Some(s) = self.sessions.get_mut(&id) else {
            return false;
        };
        let Some(sub) = s.subs.remove(sub_id) else {
            return false;
        };
        match sub.kind {
            SubKind::Topic => {
                self.topics.remove(&sub.destination, &(id, sub.id.clone()));
            }
            SubKind::Queue => {
                if let Some(q) = self.queues.get_mut(&sub.destination)
                    && let Some(pos) = q
                        .consumers
                        .iter()
                        .position(|(s, k)| *s == id && *k == sub.id)
                {
                    q.consumers.remove(pos);
                    if q.rr > pos {
                        q.rr -= 1;
                    }
                }
                self.dirty_queues.push(sub.destination.clone());
            }
            SubKind::User | SubKind::App => {}
        }
        self.requeue(sub.destination.clone(), sub.unacked);
        true
    }

    /// Puts unacknowledged queue messages back at the front of their queue, in order, marked
    /// redelivered; unacknowledged topic messages are discarded (a topic has no other owner).
    fn requeue(&mut self, _dest: Arc<str>, unacked: VecDeque<Unacked>) {
        for u in unacked.into_iter().rev() {
            if !u.from_queue {
                continue;
            }
            let name = u.msg.destination.clone();
            self.stats.messages_redelivered += 1;
            let q = self.queues.entry(name.clone()).or_default();
            q.pending.push_front(Pending {
                msg: u.msg,
                redelivered: true,
            });
            self.dirty_queues.push(name);
        }
    }

    /// The session resolved an ACK or NACK to `message_ids` of subscription `sub_id`: they
    /// are no longer owned; NACKed queue messages go back to their queue.
    fn ack(&mut self, id: SessionId, nack: bool, sub_id: &str, message_ids: &[String]) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let Some(sub) = s.subs.get_mut(sub_id) else {
            return;
        };
        let mut taken = VecDeque::with_capacity(message_ids.len());
        for mid in message_ids {
            // The broker's message ids are its delivery ids, issued in order.
            let Ok(n) = mid.parse::<u64>() else {
                continue;
            };
            if let Ok(pos) = sub.unacked.binary_search_by_key(&n, |u| u.id)
                && let Some(u) = sub.unacked.remove(pos)
            {
                taken.push_back(u);
            }
        }
        if sub.kind == SubKind::Queue {
            self.dirty_queues.push(sub.destination.clone());
        }
        if nack {
            let dest = sub.destination.clone();
            self.requeue(dest, taken);
        }
    }

    fn client_send(
        &mut self,
        id: SessionId,
        destination: Arc<str>,
        headers: UserHeaders,
        body: Bytes,
        receipt: Option<&str>,
    ) -> Result<(), Fatal> {
        let kind = self.config.kind(&destination);
        if kind == Kind::App {
            let user = self.sessions.get(&id).and_then(|s| s.user.clone());
            self.stats.app_events += 1;
            self.events.push_back(Event::Message(AppMessage {
                session: id,
                user,
                destination: destination.to_string(),
                headers: headers.into_owned(),
                body,
            }));
            return Ok(());
        }
        match self.route(destination, headers, body) {
            Ok(_) => Ok(()),
            Err(PublishError::NotABrokerDestination(_))
                if self.config.unknown_destination == UnknownDestination::Drop =>
            {
                self.stats.messages_dropped += 1;
                Ok(())
            }
            Err(e) => {
                if matches!(e, PublishError::QueueFull(_)) {
                    self.stats.queue_full_rejections += 1;
                }
                Err(Fatal::new(e.to_string(), receipt))
            }
        }
    }

    /// Routes a message to a broker destination.
    fn route(
        &mut self,
        dest: Arc<str>,
        headers: UserHeaders,
        body: Bytes,
    ) -> Result<usize, PublishError> {
        let destination: &str = &dest;
        self.check_destination(destination)
            .map_err(PublishError::InvalidDestination)?;
        self.check_size(&body)?;
        let sep = self.config.separator;
        match self.config.kind(destination) {
            Kind::App | Kind::Unknown => {
                Err(PublishError::NotABrokerDestination(destination.to_owned()))
            }
            Kind::Relay => self.relay_publish(destination, headers.into_owned(), body),
            Kind::Topic => {
                if pattern::is_pattern(destination, sep) {
                    return Err(PublishError::InvalidDestination(destination.to_owned()));
                }
                self.stats.messages_published += 1;
                let msg = Msg::new(dest, headers, body);
                Ok(self.fan_out(&msg))
            }
            Kind::Queue => {
                if pattern::is_pattern(destination, sep) {
                    return Err(PublishError::InvalidDestination(destination.to_owned()));
                }
                let depth = self.config.max_queue_depth;
                let nq = self.queues.len();
                let q = match self.queues.get_mut(destination) {
                    Some(q) => q,
                    None if nq >= self.config.max_queues => {
                        return Err(PublishError::TooManyQueues);
                    }
                    None => self.queues.entry(dest.clone()).or_default(),
                };
                if q.pending.len() >= depth {
                    return Err(PublishError::QueueFull(destination.to_owned()));
                }
                self.stats.messages_published += 1;
                q.pending.push_back(Pending {
                    msg: Msg::new(dest.clone(), headers, body),
                    redelivered: false,
                });
                let before = self.stats.messages_delivered;
                self.pump(destination);
                Ok((self.stats.messages_delivered - before) as usize)
            }
            Kind::User => {
                // {user_prefix}/{name}/{rest}
                let up = self.user_prefix().len();
                let after = &destination[up..];
                let after = after.strip_prefix('/').unwrap_or(after);
                let Some(slash) = after.find('/') else {
                    return Err(PublishError::InvalidDestination(destination.to_owned()));
                };
                let (name, rest) = after.split_at(slash);
                if !matches!(
                    self.config.kind(rest),
                    Kind::Topic | Kind::Queue | Kind::Relay
                ) {
                    return Err(PublishError::NotABrokerDestination(destination.to_owned()));
                }
                let target = format!("{}{}", self.user_prefix(), rest);
                self.stats.messages_published += 1;
                let msg = Msg::new(target.clone().into(), headers, body);
                let name = name.to_owned();
                Ok(self.deliver_to_user(&name, &msg, &target))
            }
        }
    }

    fn fan_out(&mut self, msg: &Arc<Msg>) -> usize {
        let mut keys = std::mem::take(&mut self.scratch);
        keys.clear();
        self.topics
            .for_each_match(&msg.destination, |k| keys.push(k.clone()));
        if keys.is_empty() {
            self.stats.messages_unrouted += 1;
        }
        let mut n = 0;
        for (sid, sub) in &keys {
            match self.deliver(*sid, sub, msg, false, false) {
                Ok(true) => n += 1,
                Ok(false) => {}
                Err(()) => self.slow_consumer(*sid),
            }
        }
        keys.clear();
        self.scratch = keys;
        n
    }

    fn deliver_to_user(&mut self, user: &str, msg: &Arc<Msg>, target: &str) -> usize {
        let sessions = self.users.get(user).cloned().unwrap_or_default();
        let mut n = 0;
        for sid in sessions {
            n += self.deliver_to_session_matching(sid, msg, target);
        }
        if n == 0 {
            self.stats.messages_unrouted += 1;
        }
        n
    }

    fn deliver_to_session_matching(&mut self, sid: SessionId, msg: &Arc<Msg>, dest: &str) -> usize {
        let sep = self.config.separator;
        let Some(s) = self.sessions.get(&sid) else {
            return 0;
        };
        let mut keys: Vec<Arc<str>> = s
            .subs
            .values()
            .filter(|sub| pattern::matches(&sub.destination, dest, sep))
            .map(|sub| sub.id.clone())
            .collect();
        keys.sort(); // deterministic order
        let mut n = 0;
        for k in keys {
            match self.deliver(sid, &k, msg, false, false) {
                Ok(true) => n += 1,
                Ok(false) => {}
                Err(()) => {
                    self.slow_consumer(sid);
                    break;
                }
            }
        }
        n
    }

    /// Can subscription `key` take a queue message now?
    fn can_take(&mut self, sid: SessionId, sub: &str) -> bool {
        let max_unacked = self.config.max_unacked_per_subscription;
        let over = self.over_high_water(sid);
        let Some(s) = self.sessions.get_mut(&sid) else {
            return false;
        };
        if !s.deliverable() {
            return false;
        }
        if over {
            s.throttled = true;
            return false;
        }
        s.subs
            .get(sub)
            .is_some_and(|sub| sub.ack == AckMode::Auto || sub.unacked.len() < max_unacked)
    }

    fn over_high_water(&self, sid: SessionId) -> bool {
        self.sessions.get(&sid).is_none_or(|s| {
            s.out_bytes >= self.config.max_output_bytes / 2
                || s.out.len() >= self.config.max_output_frames / 2
        })
    }

    fn over_low_water(&self, sid: SessionId) -> bool {
        self.sessions.get(&sid).is_none_or(|s| {
            s.out_bytes >= self.config.max_output_bytes / 4
                || s.out.len() >= self.config.max_output_frames / 4
        })
    }

    fn unthrottle(&mut self, sid: SessionId) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        s.throttled = false;
        for sub in s.subs.values() {
            if sub.kind == SubKind::Queue {
                self.dirty_queues.push(sub.destination.clone());
            }
        }
    }

    fn pump_dirty(&mut self) {
        while let Some(q) = self.dirty_queues.pop() {
            self.pump(&q);
        }
    }

    /// Hands waiting messages of queue `name` to its consumers, round robin.
    fn pump(&mut self, name: &str) {
        loop {
            let Some(q) = self.queues.get(name) else {
                return;
            };
            if q.pending.is_empty() || q.consumers.is_empty() {
                if q.pending.is_empty() && q.consumers.is_empty() {
                    self.queues.remove(name);
                }
                return;
            }
            let n = q.consumers.len();
            let start = q.rr % n;
            let candidates: Vec<SubKey> = (0..n)
                .map(|k| q.consumers[(start + k) % n].clone())
                .collect();
            let mut chosen = None;
            for (k, (sid, sub)) in candidates.iter().enumerate() {
                if self.can_take(*sid, sub) {
                    chosen = Some(((start + k) % n, *sid, sub.clone()));
                    break;
                }
            }
            let Some((idx, sid, sub)) = chosen else {
                return;
            };
            let Some(q) = self.queues.get_mut(name) else {
                return;
            };
            q.rr = (idx + 1) % n;
            let Some(p) = q.pending.pop_front() else {
                return;
            };
            if self.deliver(sid, &sub, &p.msg, p.redelivered, true) != Ok(true) {
                // Not sent: the message stays first in the queue.
                if let Some(q) = self.queues.get_mut(name) {
                    q.pending.push_front(p);
                }
                self.slow_consumer(sid);
            }
        }
    }

    /// Queues one MESSAGE for subscription `sub` of session `sid`. `Ok(false)`: no such open
    /// subscription; `Err`: the session's output bound would be exceeded.
    fn deliver(
        &mut self,
        sid: SessionId,
        sub: &str,
        msg: &Arc<Msg>,
        redelivered: bool,
        from_queue: bool,
    ) -> Result<bool, ()> {
        let max_unacked = self.config.max_unacked_per_subscription;
        let (max_bytes, max_frames) = (self.config.max_output_bytes, self.config.max_output_frames);
        let Some(s) = self.sessions.get_mut(&sid) else {
            return Ok(false);
        };
        if !s.deliverable() {
            return Ok(false);
        }
        let Some(shared) = msg.shared(s.stomp.version(), redelivered) else {
            // A header the session's version cannot carry (CR/LF for STOMP 1.0): this
            // subscriber cannot get the message.
            return Ok(false);
        };
        // The frame is handed straight back only with nothing queued ahead of it. The broker
        // moves the session's own output (protocol replies, never bounded, as in `flush`) to
        // `out` as soon as it is queued, so this is normally empty already.
        if s.stomp.pending_output() > 0 {
            take_session_output(sid, s, &mut self.stats, &mut self.ready);
        }
        let Some(sub) = s.subs.get_mut(sub) else {
            return Ok(false);
        };
        let id = self.next_delivery;
        let acked = sub.ack != AckMode::Auto;
        if acked && sub.unacked.len() >= max_unacked {
            return Err(());
        }
        let mut id_buf = [0u8; 20];
        let message_id = fmt_u64(id, &mut id_buf);
        // Output queued now counts for the session's heart-beats as of now.
        s.stomp.advance_time(self.now);
        let Ok(t) = s
            .stomp
            .send_shared_frame_to(sub.session_key, message_id, shared)
        else {
            // Refused by the session's books (e.g. its acknowledgement bound) or a
            // subscription id its version cannot carry: not delivered.
            return Ok(false);
        };
        let t = Transmit::from(t);
        let len = t.len();
        if s.out_bytes + len > max_bytes || s.out.len() >= max_frames {
            // The caller ends the session as a slow consumer.
            return Err(());
        }
        self.next_delivery += 1;
        if acked {
            sub.unacked.push_back(Unacked {
                id,
                msg: msg.clone(),
                from_queue,
            });
        }
        s.out_bytes += len;
        s.out.push_back(t);
        if !s.listed {
            s.listed = true;
            self.ready.push_back(sid);
        }
        self.stats.messages_delivered += 1;
        self.stats.frames_out.message += 1;
        Ok(true)
    }

    fn slow_consumer(&mut self, sid: SessionId) {
        if self
            .sessions
            .get(&sid)
            .is_some_and(|s| s.state != State::Closing)
        {
            self.stats.slow_consumer_disconnects += 1;
            self.close(
                sid,
                CloseReason::SlowConsumer,
                Some(Fatal::new("slow consumer: output limit exceeded", None)),
            );
        }
    }

    /// Ends a session: optional ERROR (queued past the output bound), subscriptions removed,
    /// unacknowledged queue messages redelivered, transactions aborted, `Closed` event.
    fn close(&mut self, id: SessionId, reason: CloseReason, error: Option<Fatal>) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if s.state == State::Closing {
            return;
        }
        s.state = State::Closing;
        if let Some(f) = error {
            // Queued past the output bound; the session closes with it.
            let _ = s
                .stomp
                .send_error(&f.message, f.receipt.as_deref(), f.message.as_bytes());
            self.flush(id);
        }
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let user = s.user.clone();
        let subs: Vec<Arc<str>> = s.subs.keys().cloned().collect();
        for k in subs {
            self.unsubscribe(id, &k);
        }
        if let Some(u) = user
            && let Some(list) = self.users.get_mut(&u)
        {
            list.retain(|&x| x != id);
            if list.is_empty() {
                self.users.remove(&u);
            }
        }
        if let Some(s) = self.sessions.get_mut(&id) {
            s.relay_subs.clear();
            if let Some(up) = s.upstream {
                self.release_upstream(up);
            }
        }
        self.events.push_back(Event::Closed {
            session: id,
            reason,
        });
    }
}

/// The configuration of every client's `ServerSession`, from the broker's.
fn session_config(config: &Config) -> ServerConfig {
    // CONNECTED headers are never escaped: keep values on one line.
    let server: String = config
        .server_name
        .chars()
        .filter(|c| !matches!(c, '\n' | '\r'))
        .collect();
    ServerConfig {
        heart_beat: HeartBeat {
            send_ms: config.heart_beat.0,
            receive_ms: config.heart_beat.1,
        },
        heartbeat_grace_percent: config.heart_beat_grace.max(1).saturating_mul(100),
        // The broker never required `host` (many WebSocket clients omit it).
        require_host: false,
        connect_limits: Limits::unauthenticated(),
        limits: config.frame_limits,
        max_subscriptions: config.max_subscriptions_per_session,
        max_transactions: config.max_transactions_per_session,
        max_transaction_frames: config.max_frames_per_transaction,
        // Bounded by the frames per transaction and the frame size limit.
        max_transaction_bytes: config
            .max_frames_per_transaction
            .saturating_mul(config.frame_limits.max_body_bytes),
        // Bounded per subscription by the broker (max_unacked_per_subscription).
        max_pending_acks: config
            .max_subscriptions_per_session
            .saturating_mul(config.max_unacked_per_subscription),
        // The broker moves output out at once and bounds its own queue.
        max_pending_output: usize::MAX,
        auto_receipts: false,
        connect_timeout_ms: Some(config.connect_timeout_ms),
        server: Some(server),
        // Every body is shared by its deliveries, never copied per subscriber.
        share_bodies_from: 0,
        v1_0_connected_headers: true,
        v1_0_subscription_header: true,
        violation_message: Some(ViolationMessage(inbound::violation_message)),
        // An ERROR may go past the output bound by a small margin only.
        error_quotes_frame: false,
        ..ServerConfig::default()
    }
}

/// Accepts a CONNECT: CONNECTED with `session` and `user-name`.
pub(crate) fn accept(stomp: &mut ServerSession, id: SessionId, user: Option<&str>) {
    let session = id.to_string();
    let user: Option<String> =
        user.map(|u| u.chars().filter(|c| !matches!(c, '\n' | '\r')).collect());
    let headers: Vec<(&str, &str)> = user.iter().map(|u| ("user-name", u.as_str())).collect();
    let _ = stomp.accept(&Accept {
        session: Some(&session),
        headers: &headers,
    });
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
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

fn owned_headers(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(k, _)| !is_broker_header(k))
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Headers the broker sets on MESSAGE itself (or that are transport-only on SEND).
pub(crate) fn is_broker_header(k: &str) -> bool {
    is_broker_header_bytes(k.as_bytes())
}

/// [`is_broker_header`] by the name's bytes.
fn is_broker_header_bytes(k: &[u8]) -> bool {
    matches!(
        k,
        b"destination"
            | b"message-id"
            | b"subscription"
            | b"ack"
            | b"redelivered"
            | b"content-length"
            | b"receipt"
            | b"transaction"
    )
}

fn count_in(stats: &mut Stats, f: &Inbound) {
    let c = &mut stats.frames_in;
    match f {
        // Released by COMMIT: counted when it arrived.
        Inbound::Send {
            transaction: Some(_),
            ..
        }
        | Inbound::Ack {
            transaction: Some(_),
            ..
        } => {}
        Inbound::Subscribe { .. } => c.subscribe += 1,
        Inbound::Unsubscribe { .. } => c.unsubscribe += 1,
        Inbound::Send { .. } => c.send += 1,
        Inbound::Ack { nack: false, .. } => c.ack += 1,
        Inbound::Ack { nack: true, .. } => c.nack += 1,
        Inbound::Begin { .. } => c.begin += 1,
        Inbound::End { commit: true, .. } => c.commit += 1,
        Inbound::End { commit: false, .. } => c.abort += 1,
        Inbound::Disconnect { .. } => c.disconnect += 1,
    }
}

/// Moves a session's queued output (protocol replies: never bounded) to its `out` queue and
/// lists the session as ready to write.
fn take_session_output(
    id: SessionId,
    s: &mut Session,
    stats: &mut Stats,
    ready: &mut VecDeque<SessionId>,
) {
    while let Some(t) = s.stomp.poll_transmit_frame() {
        let t = Transmit::from(t);
        count_out(stats, &t);
        s.out_bytes += t.len();
        s.out.push_back(t);
    }
    if !s.out.is_empty() && !s.listed {
        s.listed = true;
        ready.push_back(id);
    }
}

fn count_out(stats: &mut Stats, t: &Transmit) {
    let c = &mut stats.frames_out;
    let h = &t.head[..];
    if h == b"\n" || h == b"\r\n" {
        c.heartbeat += 1;
    } else if h.starts_with(b"CONNECTED") {
        c.connected += 1;
    } else if h.starts_with(b"ERROR") {
        c.error += 1;
    } else if h.starts_with(b"RECEIPT") {
        c.receipt += 1;
    } else if h.starts_with(b"MESSAGE") {
        c.message += 1;
    }
}

#[cfg(test)]
#[test]
fn broker_is_send() {
    fn is_send<T: Send>() {}
    is_send::<Broker>();
}

#[cfg(test)]
#[test]
fn timer_heap_stays_small_under_traffic() {
    let mut b = Broker::new(Config {
        heart_beat: (1_000, 1_000),
        ..Config::default()
    });
    let p = b
        .open_session(TransportInfo::default(), 0)
        .expect("session");
    let c = b
        .open_session(TransportInfo::default(), 0)
        .expect("session");
    let connect = b"CONNECT\naccept-version:1.2\nheart-beat:1000,1000\n\n\0";
    b.handle_read(p, connect, 0).expect("open");
    b.handle_read(c, connect, 0).expect("open");
    b.handle_read(c, b"SUBSCRIBE\nid:0\ndestination:/topic/t\n\n\0", 0)
        .expect("open");
    for now in 1..2_000u64 {
        b.handle_read(p, b"SEND\ndestination:/topic/t\n\nx\0", now)
            .expect("open");
        b.handle_read(c, b"\n", now).expect("open");
        while let Some(id) = b.poll_ready() {
            while b.poll_transmit(id).is_some() {}
        }
        if b.poll_timeout().is_some_and(|t| t <= now) {
            b.handle_timeout(now);
        }
    }
    assert!(b.timers.len() <= 8, "heap entries: {}", b.timers.len());
    assert_eq!(b.stats().heartbeat_timeouts, 0);
}
