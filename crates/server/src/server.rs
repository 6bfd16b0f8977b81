//! The mio event loop: listeners, a connection slab, timers, backpressure, graceful shutdown.

use std::collections::{BinaryHeap, HashMap};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use stompbox::{
    ConnectionConfig, HttpRequest, ServerConnection, ServerEvent, SessionId, Transport,
};
use tracing::{debug, info, warn};

use crate::app::{AppHandler, AppMessage, Reply};
use crate::builder::Settings;
use crate::http;
use crate::hub::Hub;

const HTTP_LISTENER: Token = Token(0);
const STOMP_LISTENER: Token = Token(1);
const SIGNALS: Token = Token(2);
const WAKER: Token = Token(3);
const FIRST_CLIENT: usize = 16;

/// Broker output moved into a connection at a time, at most (the rest waits in the broker's
/// bounded per-session queue, where a slow consumer is detected).
const HIGH_WATER: usize = 256 * 1024;
/// Bytes read from a socket per `read` call.
const READ_CHUNK: usize = 64 * 1024;
/// Bytes read from one client per loop iteration, at most: a client that floods the server is
/// read in turns with everyone else, and the output its messages cause is written in between.
const READ_BUDGET: usize = 256 * 1024;
/// How long a client whose session ended may take to read its last frames.
const LINGER_MS: u64 = 2_000;
/// Rounds of [`Server::settle`] per loop iteration, at most. Flushing can create more work
/// (a paused client resumes and its input queues output for others and application events; a
/// closed client's unacknowledged queue messages go to another subscriber): each round routes
/// and flushes what the previous one created. What remains after the last round is kept on the
/// dirty list, and the next poll does not sleep while it is not empty.
const SETTLE_ROUNDS: usize = 8;

/// Stops a running [`Server`] from another thread (or a signal handler of the host's own).
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl ShutdownHandle {
    /// Asks the server to stop gracefully: it stops accepting, closes every client with ERROR or
    /// WebSocket close 1001, flushes, and `run` returns within the shutdown deadline.
    pub fn shutdown(&self) {
        self.flag.store(true, Ordering::SeqCst);
        // A failed wake only delays the stop until the next event or timer.
        let _ = self.waker.wake();
    }
}

struct Client {
    stream: TcpStream,
    peer: SocketAddr,
    conn: ServerConnection,
    transport: Transport,
    session: Option<SessionId>,
    /// Bytes taken from `conn` but not yet written.
    pending: Bytes,
    writable: bool,
    read_paused: bool,
    eof: bool,
    opened: Instant,
    generation: u64,
    reason: Option<String>,
    dirty: bool,
    /// The connection timer armed in the heap, if any.
    armed: Option<u64>,
}

impl Client {
    fn backlog(&self) -> usize {
        self.pending.len() + self.conn.pending_output()
    }
}

/// The running server: listeners bound, ready to [`run`](Server::run).
pub struct Server {
    poll: Poll,
    http: Option<TcpListener>,
    stomp: Option<TcpListener>,
    http_addr: Option<SocketAddr>,
    stomp_addr: Option<SocketAddr>,
    signals: Option<signal_hook_mio::v1_0::Signals>,
    shutdown: ShutdownHandle,
    settings: Settings,
    handlers: Vec<(String, Box<dyn AppHandler + Send>)>,
    hub: Hub,
    clients: Vec<Option<Client>>,
    free: Vec<usize>,
    by_session: HashMap<SessionId, usize>,
    /// Connection timers: (deadline, slot, generation).
    timers: BinaryHeap<std::cmp::Reverse<(u64, usize, u64)>>,
    /// Hard close deadlines of clients whose session ended but whose output does not drain
    /// (a slow consumer never reads its ERROR): (deadline, slot, generation).
    lingers: BinaryHeap<std::cmp::Reverse<(u64, usize, u64)>>,
    connection_config: Arc<ConnectionConfig>,
    dirty: Vec<usize>,
    /// Clients whose read budget ran out with data possibly left in the socket.
    read_again: Vec<usize>,
    start: Instant,
    next_generation: u64,
    read_buf: Vec<u8>,
    counters: Counters,
    stopping: Option<u64>,
    /// When to call `accept` again after it failed (e.g. EMFILE): the listeners are
    /// edge-triggered, so connections already queued would otherwise wait for the next new
    /// one to arrive.
    accept_retry: Option<u64>,
    /// The broker relay's upstream sockets (`--relay`).
    relay: Option<crate::relay::RelaySockets>,
}

/// How long the listeners rest after a failed `accept` (out of file descriptors, say)
/// before they try again: long enough not to spin, short enough that a freed descriptor is
/// used promptly.
const ACCEPT_RETRY_MS: u64 = 100;

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("http", &self.http_addr)
            .field("stomp", &self.stomp_addr)
            .field("clients", &self.open_clients())
            .finish_non_exhaustive()
    }
}

/// Counters of the transport layer, reported in `/stats` beside the broker's.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) connections_current: usize,
    pub(crate) connections_total: u64,
    pub(crate) websocket_current: usize,
    pub(crate) tcp_current: usize,
    pub(crate) http_requests: u64,
    pub(crate) refused_over_limit: u64,
    /// `accept` calls that failed other than by having nothing to accept (EMFILE, ENFILE,
    /// ENOBUFS, ...).
    pub(crate) accept_errors: u64,
    pub(crate) handshake_failures: u64,
    pub(crate) handshake_timeouts: u64,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) unhandled_app_messages: u64,
}

/// A failure to start the server, printed as one line.
#[derive(Debug)]
pub enum StartError {
    /// A listener could not be bound (port in use, permission, bad address).
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        error: io::Error,
    },
    /// The poller or signal handler could not be set up.
    Setup(io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bind { what, addr, error } if error.kind() == io::ErrorKind::AddrInUse => {
                write!(
                    f,
                    "cannot listen for {what} on {addr}: address already in use"
                )
            }
            Self::Bind { what, addr, error } => {
                write!(f, "cannot listen for {what} on {addr}: {error}")
            }
            Self::Setup(e) => write!(f, "cannot set up the event loop: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Descriptors the server needs beyond one per client: listeners, the poller, signals,
/// relay sockets, stdio, files it reads.
const SPARE_DESCRIPTORS: u64 = 64;

/// Warns at start when the process may open fewer files than `--max-connections` needs:
/// the clients past the limit would wait in the kernel's queue instead of being served
/// or refused with a reply.
fn warn_if_too_few_descriptors(max_connections: usize) {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return; // not Linux: nothing to read the limit from without libc
    };
    let Some(soft) = open_files_soft_limit(&limits) else {
        return;
    };
    let needed = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(SPARE_DESCRIPTORS);
    if soft < needed {
        warn!(
            open_files = soft,
            max_connections,
            "the open-files limit (ulimit -n) is below --max-connections plus {SPARE_DESCRIPTORS}: \
             clients past it wait until others leave; raise it or lower --max-connections"
        );
    }
}

/// The soft "Max open files" limit from the text of `/proc/self/limits` (`None` if absent;
/// `unlimited` is `u64::MAX`).
fn open_files_soft_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        Some(u64::MAX)
    } else {
        soft.parse().ok()
    }
}

impl Server {
    pub(crate) fn bind(
        settings: Settings,
        handlers: Vec<(String, Box<dyn AppHandler + Send>)>,
        hub: Hub,
    ) -> Result<Self, StartError> {
        let poll = Poll::new().map_err(StartError::Setup)?;
        let bind = |what: &'static str, addr: SocketAddr, token: Token| {
            let mut l =
                TcpListener::bind(addr).map_err(|error| StartError::Bind { what, addr, error })?;
            poll.registry()
                .register(&mut l, token, Interest::READABLE)
                .map_err(StartError::Setup)?;
            let local = l.local_addr().map_err(StartError::Setup)?;
            Ok::<_, StartError>((l, local))
        };
        let (http, http_addr) = match settings.http {
            Some(a) => {
                let (l, local) = bind("HTTP/WebSocket", a, HTTP_LISTENER)?;
                (Some(l), Some(local))
            }
            None => (None, None),
        };
        let (stomp, stomp_addr) = match settings.stomp {
            Some(a) => {
                let (l, local) = bind("STOMP/TCP", a, STOMP_LISTENER)?;
                (Some(l), Some(local))
            }
            None => (None, None),
        };
        warn_if_too_few_descriptors(settings.max_connections);
        let signals = if settings.handle_signals {
            let mut s = signal_hook_mio::v1_0::Signals::new([
                signal_hook::consts::SIGINT,
                signal_hook::consts::SIGTERM,
            ])
            .map_err(StartError::Setup)?;
            poll.registry()
                .register(&mut s, SIGNALS, Interest::READABLE)
                .map_err(StartError::Setup)?;
            Some(s)
        } else {
            None
        };
        let waker = Waker::new(poll.registry(), WAKER).map_err(StartError::Setup)?;
        let settings_connection = settings.connection.clone();
        let relay = settings.relay.clone().map(crate::relay::RelaySockets::new);
        Ok(Self {
            poll,
            http,
            stomp,
            http_addr,
            stomp_addr,
            signals,
            shutdown: ShutdownHandle {
                flag: Arc::new(AtomicBool::new(false)),
                waker: Arc::new(waker),
            },
            settings,
            handlers,
            hub,
            clients: Vec::new(),
            free: Vec::new(),
            by_session: HashMap::new(),
            timers: BinaryHeap::new(),
            lingers: BinaryHeap::new(),
            dirty: Vec::new(),
            read_again: Vec::new(),
            start: Instant::now(),
            next_generation: 0,
            read_buf: vec![0; READ_CHUNK],
            connection_config: Arc::new(settings_connection),
            counters: Counters::default(),
            stopping: None,
            accept_retry: None,
            relay,
        })
    }

    /// The bound address of the HTTP + WebSocket listener (useful with port 0).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The bound address of the raw STOMP/TCP listener.
    pub fn stomp_addr(&self) -> Option<SocketAddr> {
        self.stomp_addr
    }

    /// A handle that stops the server gracefully from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    fn open_clients(&self) -> usize {
        self.counters.connections_current
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs the event loop until a graceful shutdown (SIGINT/SIGTERM or a [`ShutdownHandle`])
    /// completes. Returns an error only if the poller itself fails.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut next_stats = self.settings.stats_interval_ms.map(|i| self.now_ms() + i);
        loop {
            let now = self.now_ms();
            let mut deadline = self.hub.poll_timeout();
            for heap in [&self.timers, &self.lingers] {
                if let Some(std::cmp::Reverse((t, ..))) = heap.peek() {
                    deadline = Some(deadline.map_or(*t, |d| d.min(*t)));
                }
            }
            if let Some(t) = next_stats {
                deadline = Some(deadline.map_or(t, |d| d.min(t)));
            }
            for t in [self.stopping, self.accept_retry].into_iter().flatten() {
                deadline = Some(deadline.map_or(t, |d| d.min(t)));
            }
            let timeout = if self.read_again.is_empty() && self.dirty.is_empty() {
                deadline.map(|d| Duration::from_millis(d.saturating_sub(now)))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in &events {
                match event.token() {
                    HTTP_LISTENER => self.accept(Transport::WebSocket),
                    STOMP_LISTENER => self.accept(Transport::RawStomp),
                    SIGNALS => {
                        let mut got = false;
                        if let Some(s) = &mut self.signals {
                            for sig in s.pending() {
                                info!(signal = sig, "signal received: stopping gracefully");
                                got = true;
                            }
                        }
                        if got && self.stopping.is_some() {
                            warn!("second signal: stopping now without waiting for clients");
                            return Ok(());
                        }
                        if got {
                            self.shutdown.flag.store(true, Ordering::SeqCst);
                        }
                    }
                    Token(t) if t >= crate::relay::TOKEN_BASE => {
                        let now = self.now_ms();
                        if let Some(r) = self.relay.as_mut() {
                            r.on_event(t, event, &mut self.hub, self.poll.registry(), now);
                        }
                    }
                    Token(t) if t >= FIRST_CLIENT => {
                        let idx = t - FIRST_CLIENT;
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.on_readable(idx);
                        }
                        if event.is_writable() {
                            self.mark_dirty(idx);
                        }
                    }
                    Token(_) => {}
                }
            }
            for idx in std::mem::take(&mut self.read_again) {
                self.on_readable(idx);
            }
            let now = self.now_ms();
            if self.shutdown.flag.load(Ordering::SeqCst) && self.stopping.is_none() {
                self.begin_shutdown(now);
            }
            if self.accept_retry.is_some_and(|t| now >= t) {
                self.accept_retry = None;
                self.accept(Transport::WebSocket);
                self.accept(Transport::RawStomp);
            }
            self.hub.handle_timeout(now);
            self.fire_timers(now);
            self.settle(now);
            if let Some(t) = next_stats
                && now >= t
            {
                self.log_stats();
                next_stats = self.settings.stats_interval_ms.map(|i| now + i);
            }
            if let Some(deadline) = self.stopping {
                if self.counters.connections_current == 0 {
                    info!("all clients closed: stopped");
                    return Ok(());
                }
                if now >= deadline {
                    warn!(
                        clients = self.counters.connections_current,
                        "shutdown deadline reached: dropping the remaining clients"
                    );
                    return Ok(());
                }
            }
        }
    }

    fn accept(&mut self, transport: Transport) {
        loop {
            let listener = match transport {
                Transport::WebSocket => self.http.as_ref(),
                Transport::RawStomp => self.stomp.as_ref(),
            };
            let Some(listener) = listener else { return };
            let (mut stream, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: the connection stays queued in the kernel; try
                    // again shortly (the edge-triggered listener may not report it again).
                    self.counters.accept_errors += 1;
                    if self.accept_retry.is_none() {
                        warn!(error = %e, retry_ms = ACCEPT_RETRY_MS, "accept failed");
                    } else {
                        debug!(error = %e, "accept failed again");
                    }
                    self.accept_retry = Some(self.now_ms() + ACCEPT_RETRY_MS);
                    return;
                }
            };
            if self.counters.connections_current >= self.settings.max_connections {
                self.counters.refused_over_limit += 1;
                warn!(%peer, limit = self.settings.max_connections, "connection refused: limit reached");
                // Best effort on a fresh socket: a short reply the client can show.
                let reply: &[u8] = match transport {
                    Transport::WebSocket => {
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    }
                    Transport::RawStomp => b"ERROR\nmessage:too many connections\n\n\0",
                };
                let _ = stream.write(reply);
                continue;
            }
            let _ = stream.set_nodelay(true);
            let idx = self.free.pop().unwrap_or_else(|| {
                self.clients.push(None);
                self.clients.len() - 1
            });
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                Token(FIRST_CLIENT + idx),
                Interest::READABLE,
            ) {
                warn!(%peer, error = %e, "cannot register connection");
                self.free.push(idx);
                continue;
            }
            let now = self.now_ms();
            let conn = match transport {
                Transport::WebSocket => ServerConnection::websocket(&self.connection_config, now),
                Transport::RawStomp => ServerConnection::raw_stomp(&self.connection_config),
            };
            self.next_generation += 1;
            self.clients[idx] = Some(Client {
                stream,
                peer,
                conn,
                transport,
                session: None,
                pending: Bytes::new(),
                writable: false,
                read_paused: false,
                eof: false,
                opened: Instant::now(),
                generation: self.next_generation,
                reason: None,
                dirty: false,
                armed: None,
            });
            self.counters.connections_current += 1;
            self.counters.connections_total += 1;
            match transport {
                Transport::WebSocket => debug!(%peer, "HTTP connection accepted"),
                Transport::RawStomp => {
                    self.counters.tcp_current += 1;
                    self.open_session(idx);
                }
            }
            self.arm_timer(idx);
        }
    }

    fn open_session(&mut self, idx: usize) {
        let now = self.now_ms();
        let Some(c) = self.clients.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        match self.hub.open(c.peer, now) {
            Ok(id) => {
                c.session = Some(id);
                self.by_session.insert(id, idx);
                info!(peer = %c.peer, transport = c.transport.name(), session = %id, "client connected");
            }
            Err(why) => {
                warn!(peer = %c.peer, reason = %why, "session refused");
                c.reason = Some(format!("session refused: {why}"));
                c.conn.refuse(&why);
                self.mark_dirty(idx);
            }
        }
    }

    fn on_readable(&mut self, idx: usize) {
        let limit = self.settings.max_output;
        let mut budget = READ_BUDGET;
        loop {
            let Some(c) = self.clients.get_mut(idx).and_then(Option::as_mut) else {
                return;
            };
            if c.eof {
                break;
            }
            if c.backlog() > limit {
                // Backpressure: a client that does not read its output is not read either.
                c.read_paused = true;
                break;
            }
            if budget == 0 {
                // Fairness: the rest waits for the next iteration (edge-triggered, so remember).
                self.read_again.push(idx);
                break;
            }
            match c.stream.read(&mut self.read_buf) {
                Ok(0) => {
                    c.eof = true;
                    c.conn.handle_eof();
                    if c.reason.is_none() {
                        c.reason = Some("peer closed the connection".to_owned());
                    }
                    self.process_events(idx);
                    break;
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    self.counters.bytes_in += n as u64;
                    c.conn.handle_read(&self.read_buf[..n]);
                    self.process_events(idx);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    c.eof = true;
                    c.reason = Some(format!("read error: {e}"));
                    c.conn.handle_eof();
                    self.process_events(idx);
                    break;
                }
            }
        }
        self.mark_dirty(idx);
    }

    /// Drains the connection's events (the drain contract) and routes them.
    fn process_events(&mut self, idx: usize) {
        loop {
            let now = self.now_ms();
            let Some(c) = self.clients.get_mut(idx).and_then(Option::as_mut) else {
                return;
            };
            let Some(event) = c.conn.poll_event() else {
                return;
            };
            match event {
                ServerEvent::Http(req) => {
                    self.counters.http_requests += 1;
                    let resp = self.serve_http(&req);
                    let Some(c) = self.clients.get_mut(idx).and_then(Option::as_mut) else {
                        return;
                    };
                    debug!(peer = %c.peer, method = %req.method, path = %req.path, status = resp.status, "HTTP");
                    c.reason = Some(format!(
                        "HTTP {} {} -> {}",
                        req.method, req.path, resp.status
                    ));
                    c.conn.respond(
                        resp.status,
                        resp.content_type,
                        &resp.body,
                        req.method == "HEAD",
                    );
                }
                ServerEvent::Open(route) => {
                    self.counters.websocket_current += 1;
                    if route.is_echo() {
                        debug!(peer = %c.peer, "WebSocket echo route opened");
                    } else {
                        debug!(peer = %c.peer, ?route, "WebSocket opened");
                        self.open_session(idx);
                    }
                }
                ServerEvent::Stomp(bytes) => {
                    if let Some(id) = c.session {
                        self.hub.handle_read(id, &bytes, now);
                    }
                }
                ServerEvent::Rejected(why) => {
                    self.counters.handshake_failures += 1;
                    debug!(peer = %c.peer, reason = %why, "handshake rejected");
                    c.reason = Some(format!("handshake rejected: {why}"));
                }
                ServerEvent::Error(why) => {
                    debug!(peer = %c.peer, reason = %why, "protocol error");
                    c.reason = Some(format!("protocol error: {why}"));
                }
                ServerEvent::Closed(why) => {
                    if c.reason.is_none() {
                        c.reason = Some(why);
                    }
                }
            }
        }
    }

    fn serve_http(&self, req: &HttpRequest) -> http::Response {
        let stats = || self.stats_json();
        http::serve(req, &stats)
    }

    /// The `/stats` document: broker stats plus the transport counters.
    pub(crate) fn stats_json(&self) -> String {
        http::stats_json(&self.counters, &self.hub.stats_json(), self.start.elapsed())
    }

    fn route_app_events(&mut self) {
        while let Some(event) = self.hub.poll_app_event() {
            let now_unix = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
            let message = AppMessage {
                session: event.session.to_string(),
                user: event.user,
                destination: event.destination,
                headers: event.headers,
                body: event.body,
                subscribe: event.subscribe,
                received_unix_ms: now_unix,
            };
            let mut reply = Reply::default();
            let handler = self
                .handlers
                .iter_mut()
                .find(|(dest, _)| *dest == message.destination);
            match handler {
                Some((_, h)) => h.handle(&message, &mut reply),
                None if message.subscribe => continue,
                None => {
                    self.counters.unhandled_app_messages += 1;
                    debug!(session = %message.session, destination = %message.destination, "no handler for application destination: dropped");
                    continue;
                }
            }
            self.hub.apply_reply(event.session, reply);
        }
    }

    /// Opens, writes and closes the relay's upstream sockets as the broker asks.
    fn pump_relay(&mut self, now: u64) {
        if let Some(r) = self.relay.as_mut() {
            r.pump(&mut self.hub, self.poll.registry(), now);
        }
    }

    fn mark_dirty(&mut self, idx: usize) {
        if let Some(c) = self.clients.get_mut(idx).and_then(Option::as_mut)
            && !c.dirty
        {
            c.dirty = true;
            self.dirty.push(idx);
        }
    }

    /// Brings the server to rest after input, timers or a shutdown: routes application events,
    /// drives the relay, marks the sessions with broker output dirty and flushes the dirty
    /// clients, again and again while a flush creates more of that work, for at most
    /// [`SETTLE_ROUNDS`] rounds.
    ///
    /// Flushing creates work for other clients: a paused client resumes reading, and its input
    /// can queue broker output for other sessions, application events and relay commands; a
    /// closed client's unacknowledged queue messages are redelivered to other subscribers; a
    /// drained broker queue unthrottles deliveries. Collecting the ready sessions only once, before
    /// flushing, left that output waiting for the next wake-up, which never comes when no
    /// timer is armed and no client sends anything.
    fn settle(&mut self, now: u64) {
        for _ in 0..SETTLE_ROUNDS {
            self.collect_work(now);
            if self.dirty.is_empty() {
                return;
            }
            for idx in std::mem::take(&mut self.dirty) {
                if let Some(c) = self.clients.get_mut(idx).and_then(Option::as_mut) {
                    c.dirty = false;
                }
                self.flush(idx);
            }
        }
        // Bounded, so one busy turn does not starve the others: what the last round created is
        // now on the dirty list, and `run` polls without sleeping while the list is not empty.
        self.collect_work(now);
    }

    /// Routes application events and drives the relay (whose replies and upstream input queue
    /// broker output), then marks every session with broker output, or ended by the broker, dirty.
    fn collect_work(&mut self, now: u64) {
        self.pump_relay(now);
        self.route_app_events();
        self.pump_relay(now);
        for id in self.hub.ready_sessions() {
            if let Some(&idx) = self.by_session.get(&id) {
                self.mark_dirty(idx);
            }
        }
    }

    /// Arms the heap with the connection's next timer, if it changed.
    fn arm_timer(&mut self, idx: usize) {
        let Some(c) = self.clients.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        let t = c.conn.poll_timeout();
        if t != c.armed {
            c.armed = t;
            if let Some(t) = t {
                self.timers.push(std::cmp::Reverse((t, idx, c.generation)));
            }
        }
    }

    /// Moves broker output into the connection (up to the high-water mark), writes what the
    /// connection produced, and closes the client when both sides are done.
    fn flush(&mut self, idx: usize) {
        loop {
            let Some(c) = self.clients.get_mut(idx).and_then(Option::as_mut) else {
                return;
            };
            // Pull from the broker while the connection has room.
            if let Some(id) = c.session {
                while c.backlog() < HIGH_WATER {
                    match self.hub.poll_transmit(id) {
                        Some(t) => c.conn.send_stomp(&t.parts()),
                        None => break,
                    }
                }
                if let Some(why) = self.hub.finished(id) {
                    // The broker ended the session (DISCONNECT, ERROR, slow consumer, ...):
                    // all its last frames go into the connection (bounded by the broker's
                    // output limit); the transport closes after them, or at the linger deadline
                    // if the client does not read them.
                    while let Some(t) = self.hub.poll_transmit(id) {
                        c.conn.send_stomp(&t.parts());
                    }
                    c.reason.get_or_insert(why);
                    self.lingers.push(std::cmp::Reverse((
                        self.start.elapsed().as_millis() as u64 + LINGER_MS,
                        idx,
                        c.generation,
                    )));
                    c.conn.finish();
                    self.by_session.remove(&id);
                    c.session = None;
                    self.hub.transport_closed(id);
                }
            }
            if c.pending.is_empty()
                && let Some(b) = c.conn.poll_transmit()
            {
                c.pending = b;
            }
            if c.pending.is_empty() {
                break;
            }
            match c.stream.write(&c.pending) {
                Ok(0) => {
                    c.reason
                        .get_or_insert_with(|| "write returned 0".to_owned());
                    self.close_client(idx);
                    return;
                }
                Ok(n) => {
                    self.counters.bytes_out += n as u64;
                    let _ = c.pending.split_to(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    c.reason.get_or_insert_with(|| format!("write error: {e}"));
                    self.close_client(idx);
                    return;
                }
            }
        }
        let Some(c) = self.clients.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        let empty = c.pending.is_empty() && c.conn.pending_output() == 0;
        // Done: the connection says so and everything is written; or the peer is gone and
        // nothing more can be delivered.
        if (empty && c.conn.is_finished()) || (c.eof && (empty || c.conn.is_finished())) {
            self.close_client(idx);
            return;
        }
        let want_write = !empty;
        let resume_read = c.read_paused && c.backlog() <= self.settings.max_output / 2;
        if want_write != c.writable || resume_read {
            c.writable = want_write;
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Err(e) =
                self.poll
                    .registry()
                    .reregister(&mut c.stream, Token(FIRST_CLIENT + idx), interest)
            {
                c.reason
                    .get_or_insert_with(|| format!("reregister failed: {e}"));
                self.close_client(idx);
                return;
            }
        }
        if resume_read {
            c.read_paused = false;
            // Edge-triggered: data may be waiting already.
            self.on_readable(idx);
        }
        self.arm_timer(idx);
    }

    fn fire_timers(&mut self, now: u64) {
        while let Some(std::cmp::Reverse((t, idx, generation))) = self.lingers.peek().copied() {
            if t > now {
                break;
            }
            self.lingers.pop();
            let Some(c) = self.clients.get_mut(idx).and_then(Option::as_mut) else {
                continue;
            };
            if c.generation == generation {
                c.reason = Some(format!(
                    "{} (output not read within {LINGER_MS} ms)",
                    c.reason.as_deref().unwrap_or("closed")
                ));
                self.close_client(idx);
            }
        }
        while let Some(std::cmp::Reverse((t, idx, generation))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(c) = self.clients.get_mut(idx).and_then(Option::as_mut) else {
                continue;
            };
            if c.generation != generation || c.armed != Some(t) {
                continue; // stale
            }
            c.armed = None;
            if c.conn.is_handshaking() {
                self.counters.handshake_timeouts += 1;
            }
            c.conn.handle_timeout(now);
            self.process_events(idx);
            self.mark_dirty(idx);
        }
    }

    fn begin_shutdown(&mut self, now: u64) {
        info!(
            clients = self.counters.connections_current,
            "shutting down: no new connections; closing clients"
        );
        if let Some(mut l) = self.http.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        if let Some(mut l) = self.stomp.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        self.stopping = Some(now + self.settings.shutdown_timeout_ms);
        for idx in 0..self.clients.len() {
            let Some(c) = self.clients.get_mut(idx).and_then(Option::as_mut) else {
                continue;
            };
            if let Some(id) = c.session.take() {
                self.by_session.remove(&id);
                // What the broker had for this client goes out first.
                while let Some(t) = self.hub.poll_transmit(id) {
                    c.conn.send_stomp(&t.parts());
                }
                self.hub.transport_closed(id);
            }
            c.reason = Some("server shutting down".to_owned());
            c.conn.shutdown("server shutting down");
            self.mark_dirty(idx);
        }
    }

    fn close_client(&mut self, idx: usize) {
        let Some(slot) = self.clients.get_mut(idx) else {
            return;
        };
        let Some(mut c) = slot.take() else { return };
        let _ = self.poll.registry().deregister(&mut c.stream);
        if let Some(id) = c.session.take() {
            self.by_session.remove(&id);
            self.hub.transport_closed(id);
        }
        self.counters.connections_current -= 1;
        match c.transport {
            Transport::RawStomp => self.counters.tcp_current -= 1,
            Transport::WebSocket if c.conn.was_open() => {
                self.counters.websocket_current = self.counters.websocket_current.saturating_sub(1);
            }
            Transport::WebSocket => {}
        }
        let reason = c.reason.take().unwrap_or_else(|| "closed".to_owned());
        if c.conn.was_open() || c.transport == Transport::RawStomp {
            info!(peer = %c.peer, transport = c.transport.name(), duration_ms = c.opened.elapsed().as_millis() as u64, %reason, "client disconnected");
        } else {
            debug!(peer = %c.peer, %reason, "HTTP connection closed");
        }
        self.free.push(idx);
    }

    fn log_stats(&self) {
        info!(
            connections = self.counters.connections_current,
            websocket = self.counters.websocket_current,
            tcp = self.counters.tcp_current,
            total = self.counters.connections_total,
            bytes_in = self.counters.bytes_in,
            bytes_out = self.counters.bytes_out,
            broker = %self.hub.stats_line(),
            "stats"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::open_files_soft_limit;

    #[test]
    fn open_files_soft_limit_reads_proc_self_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             96365                96365                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(open_files_soft_limit(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(open_files_soft_limit(unlimited), Some(u64::MAX));
        assert_eq!(open_files_soft_limit("Max processes 1 1 processes\n"), None);
        assert_eq!(
            open_files_soft_limit("Max open files  lots  lots  files\n"),
            None
        );
        assert_eq!(open_files_soft_limit(""), None);
    }
}
