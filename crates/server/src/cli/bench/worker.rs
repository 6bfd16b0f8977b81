//! One load-generator thread: many non-blocking sockets on one `mio::Poll`, each a
//! [`ClientConnection`] (the sans-IO stack) in a publisher, subscriber or idle role.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use stompbox::stomp::client::{ClientEvent as StompEvent, SendOptions, SubscribeOptions};
use stompbox::{ClientConnection, ClientEvent};

use super::hist::Histogram;
use crate::cli::args::ConnectOptions;
use crate::cli::blocking::describe_error;
use crate::cli::target::{Rng, Target};

pub(crate) const CONNECTING: u8 = 0;
pub(crate) const RUNNING: u8 = 1;
pub(crate) const DRAINING: u8 = 2;
pub(crate) const STOPPING: u8 = 3;

/// The timestamp header: microseconds since the bench's epoch when the message was due.
const TS_HEADER: &str = "x-bench-ts";
/// Output a publisher may have queued before it waits for the socket.
const MAX_QUEUED: usize = 256 * 1024;

/// What every worker shares with the coordinator (counters are totals of all workers).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) phase: AtomicU8,
    /// Connections that are ready (CONNECTED; subscribers: and their RECEIPT).
    pub(crate) ready: AtomicU64,
    /// Connections that never became ready.
    pub(crate) failed: AtomicU64,
    /// Ready connections lost later (ERROR, close, heart-beat timeout).
    pub(crate) lost: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) delivered: AtomicU64,
    /// Publishers that finished their quota (or died).
    pub(crate) publishers_done: AtomicU64,
    /// When RUNNING began, µs since the epoch.
    pub(crate) run_start_us: AtomicU64,
    /// Workers that have seen DRAINING (or STOPPING) at the top of their loop. A worker counts
    /// itself only after every message it published is in `published`, and it publishes no
    /// more after that; so once all workers are counted, `published` is final.
    pub(crate) drain_acks: AtomicU64,
}

impl Shared {
    /// Is the run drained: every worker has stopped publishing (see `drain_acks`) and every
    /// expected delivery of what was published has arrived? Before all `workers` have
    /// acknowledged DRAINING, `published` may still grow (a worker that read RUNNING just
    /// before the switch publishes one more batch), so the answer is no even when the
    /// deliveries have caught up with the count seen so far.
    pub(crate) fn drained(&self, workers: u64, factor: u64) -> bool {
        // Acquire (SeqCst) on the acks first: the workers' `published` adds are visible then.
        if self.drain_acks.load(SeqCst) < workers {
            return false;
        }
        let expected = self.published.load(SeqCst) * factor;
        self.delivered.load(SeqCst) >= expected
    }
}

/// What the workers need to know, the same for all.
#[derive(Debug)]
pub(crate) struct Spec {
    pub(crate) target: Target,
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) connect: ConnectOptions,
    pub(crate) body: Bytes,
    /// Messages per second per publisher (0: as fast as the window allows).
    pub(crate) rate_per_publisher: f64,
    /// Deliveries in flight (expected for what was published, not yet received), all
    /// publishers together.
    pub(crate) window: u64,
    /// Deliveries expected per published message.
    pub(crate) factor: u64,
    /// Connection attempts in progress per worker.
    pub(crate) max_connecting: usize,
    pub(crate) epoch: Instant,
}

/// The role of one connection.
#[derive(Debug, Clone)]
pub(crate) enum Role {
    Publisher { dest: Arc<str>, quota: u64 },
    Subscriber { dest: Arc<str> },
    Idle,
}

/// What a worker measured.
#[derive(Debug, Default)]
pub(crate) struct WorkerResult {
    pub(crate) latency_us: Histogram,
    pub(crate) connect_us: Histogram,
    /// Distinct error messages with their counts.
    pub(crate) errors: Vec<(String, u64)>,
    pub(crate) last_delivery_us: u64,
    pub(crate) heartbeats_received: u64,
    /// Bytes read from all sockets.
    pub(crate) bytes_read: u64,
}

impl WorkerResult {
    fn error(&mut self, msg: String) {
        if let Some(e) = self.errors.iter_mut().find(|(m, _)| *m == msg) {
            e.1 += 1;
        } else if self.errors.len() < 20 {
            self.errors.push((msg, 1));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// TCP connect in progress.
    Tcp,
    /// Waiting for CONNECTED.
    Stomp,
    /// Subscriber waiting for its SUBSCRIBE receipt.
    Subscribing,
    Ready,
    Dead,
}

struct Conn {
    stream: TcpStream,
    c: ClientConnection,
    role: Role,
    state: State,
    out: Vec<u8>,
    off: usize,
    opened_us: u64,
    sent: u64,
    done: bool,
}

struct Worker {
    spec: Arc<Spec>,
    shared: Arc<Shared>,
    poll: Poll,
    conns: Vec<Option<Conn>>,
    connecting: usize,
    result: WorkerResult,
    published: u64,
    delivered: u64,
    buf: Vec<u8>,
}

fn now_us(spec: &Spec) -> u64 {
    spec.epoch.elapsed().as_micros() as u64
}

/// Runs one worker until the coordinator says STOPPING.
pub(crate) fn run(spec: Arc<Spec>, roles: Vec<Role>, shared: Arc<Shared>) -> WorkerResult {
    let poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            let mut r = WorkerResult::default();
            r.error(format!("cannot create a poller: {e}"));
            shared.failed.fetch_add(roles.len() as u64, Relaxed);
            return r;
        }
    };
    let mut w = Worker {
        spec,
        shared,
        poll,
        conns: Vec::with_capacity(roles.len()),
        connecting: 0,
        result: WorkerResult::default(),
        published: 0,
        delivered: 0,
        buf: vec![0; 64 * 1024],
    };
    w.run(roles);
    w.result
}

impl Worker {
    fn run(&mut self, roles: Vec<Role>) {
        let mut rng = Rng::from_os();
        let mut events = Events::with_capacity(1024);
        let has_publishers = roles.iter().any(|r| matches!(r, Role::Publisher { .. }));
        let mut roles = roles.into_iter();
        let mut last_maintenance = 0u64;
        let mut drain_acked = false;
        loop {
            let phase = self.shared.phase.load(Relaxed);
            if phase == STOPPING {
                break;
            }
            if phase == DRAINING && !drain_acked {
                // This iteration does not publish (only RUNNING does) and every earlier
                // publish gets counted now: tell the coordinator `published` is final here.
                self.flush_counters();
                self.shared.drain_acks.fetch_add(1, SeqCst);
                drain_acked = true;
            }
            while self.connecting < self.spec.max_connecting {
                let Some(role) = roles.next() else { break };
                self.open(role, &mut rng);
            }
            let timeout = if phase == RUNNING && has_publishers {
                Duration::from_millis(1)
            } else {
                Duration::from_millis(10)
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != ErrorKind::Interrupted
            {
                self.result.error(format!("poll: {e}"));
                break;
            }
            for ev in &events {
                self.io(ev.token().0);
            }
            let now_ms = now_us(&self.spec) / 1000;
            if phase == RUNNING {
                self.publish();
            }
            if now_ms >= last_maintenance + self.maintenance_ms() {
                last_maintenance = now_ms;
                self.maintain(now_ms);
            }
            self.flush_counters();
        }
        self.flush_counters();
        for conn in self.conns.iter_mut().flatten() {
            // A check on this host: every readable edge was served, nothing is left unread.
            let mut unread = 0;
            while let Ok(n) = conn.stream.read(&mut self.buf) {
                if n == 0 {
                    break;
                }
                unread += n;
            }
            if unread > 0 {
                self.result.error(format!(
                    "{unread} bytes were left unread on a socket at the end"
                ));
            }
            self.result.heartbeats_received += conn.c.session().heartbeat_counts().0;
            let mut left = 0;
            while let Some(ev) = conn.c.poll_event() {
                if matches!(ev, ClientEvent::Stomp(StompEvent::Message(_))) {
                    left += 1;
                }
            }
            if left > 0 {
                self.result.error(format!(
                    "{left} messages left undrained in a connection's events"
                ));
            }
        }
    }

    fn flush_counters(&mut self) {
        if self.published > 0 {
            self.shared.published.fetch_add(self.published, Relaxed);
            self.published = 0;
        }
        if self.delivered > 0 {
            self.shared.delivered.fetch_add(self.delivered, Relaxed);
            self.delivered = 0;
        }
    }

    fn open(&mut self, role: Role, rng: &mut Rng) {
        let token = self.conns.len();
        let addr = self.spec.addrs[token % self.spec.addrs.len()];
        let opened_us = now_us(&self.spec);
        let stream = TcpStream::connect(addr).and_then(|mut s| {
            self.poll.registry().register(
                &mut s,
                Token(token),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(s)
        });
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                self.conns.push(None);
                self.result.error(format!("connect {addr}: {e}"));
                self.shared.failed.fetch_add(1, Relaxed);
                if matches!(role, Role::Publisher { .. }) {
                    self.shared.publishers_done.fetch_add(1, Relaxed);
                }
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let c = self.spec.target.client(rng, &self.spec.connect);
        self.connecting += 1;
        self.conns.push(Some(Conn {
            stream,
            c,
            role,
            state: State::Tcp,
            out: Vec::new(),
            off: 0,
            opened_us,
            sent: 0,
            done: false,
        }));
    }

    /// Marks a connection dead with a reason, and counts it.
    fn fail(&mut self, token: usize, why: String) {
        let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return;
        };
        let was = conn.state;
        if was == State::Dead {
            return;
        }
        conn.state = State::Dead;
        self.result.heartbeats_received += conn.c.session().heartbeat_counts().0;
        let _ = self.poll.registry().deregister(&mut conn.stream);
        if matches!(conn.role, Role::Publisher { .. }) && !conn.done {
            conn.done = true;
            self.shared.publishers_done.fetch_add(1, Relaxed);
        }
        if was == State::Ready {
            self.shared.lost.fetch_add(1, Relaxed);
        } else {
            self.connecting -= 1;
            self.shared.failed.fetch_add(1, Relaxed);
        }
        self.result.error(why);
        // Free the socket and the machine now (10,000 dead connections must not pile up).
        self.conns[token] = None;
    }

    fn io(&mut self, token: usize) {
        let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return;
        };
        if conn.state == State::Tcp {
            match conn.stream.take_error() {
                Ok(Some(e)) | Err(e) => {
                    self.fail(token, format!("connect: {e}"));
                    return;
                }
                Ok(None) => {}
            }
            match conn.stream.peer_addr() {
                Ok(_) => conn.state = State::Stomp,
                Err(e) if e.kind() == ErrorKind::NotConnected => return,
                Err(e) => {
                    self.fail(token, format!("connect: {e}"));
                    return;
                }
            }
        }
        // Read until the socket is empty (edge-triggered).
        loop {
            let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
                return;
            };
            match conn.stream.read(&mut self.buf) {
                Ok(0) => {
                    conn.c.handle_eof();
                    let why = match self.events(token) {
                        Err(why) => why,
                        Ok(()) => "the server closed the connection".into(),
                    };
                    self.fail(token, why);
                    return;
                }
                Ok(n) => {
                    self.result.bytes_read += n as u64;
                    conn.c.handle_read(&self.buf[..n]);
                    if let Err(why) = self.events(token) {
                        self.fail(token, why);
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(token, format!("read: {e}"));
                    return;
                }
            }
        }
        // Writing may surface events too (the connection drains its WebSocket then).
        if let Err(why) = self.write(token).and_then(|()| self.events(token)) {
            self.fail(token, why);
        }
    }

    /// Drains the connection's events; `Err` when it must be dropped.
    fn events(&mut self, token: usize) -> Result<(), String> {
        let now = now_us(&self.spec);
        let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return Ok(());
        };
        while let Some(ev) = conn.c.poll_event() {
            let ev = match ev {
                ClientEvent::Stomp(ev) => ev,
                ClientEvent::Open { .. } => continue,
                ClientEvent::Error(e) => return Err(e.to_string()),
                ClientEvent::Closed(why) => return Err(format!("closed: {why}")),
            };
            match ev {
                StompEvent::Message(m) => {
                    // Only our publishers' messages count (they carry the timestamp). Not gated
                    // on the phase: another thread may already publish while this one has not
                    // yet seen RUNNING.
                    if let Some(ts) = m
                        .frame
                        .header(TS_HEADER)
                        .and_then(|v| v.parse::<u64>().ok())
                    {
                        self.delivered += 1;
                        self.result.last_delivery_us = now;
                        self.result.latency_us.record(now.saturating_sub(ts));
                    } else {
                        self.result
                            .error("a MESSAGE without a bench timestamp (not counted)".into());
                    }
                }
                StompEvent::Connected { .. } if conn.state == State::Stomp => {
                    self.result
                        .connect_us
                        .record(now.saturating_sub(conn.opened_us));
                    if let Role::Subscriber { dest } = &conn.role {
                        let opts = SubscribeOptions {
                            id: Some("0"),
                            receipt: Some("subscribed"),
                            ..SubscribeOptions::default()
                        };
                        conn.c
                            .session()
                            .subscribe(dest, &opts)
                            .map_err(|e| format!("SUBSCRIBE refused by the session: {e:?}"))?;
                        conn.state = State::Subscribing;
                    } else {
                        conn.state = State::Ready;
                        self.connecting -= 1;
                        self.shared.ready.fetch_add(1, Relaxed);
                    }
                }
                StompEvent::Receipt { .. } if conn.state == State::Subscribing => {
                    conn.state = State::Ready;
                    self.connecting -= 1;
                    self.shared.ready.fetch_add(1, Relaxed);
                }
                StompEvent::Error { frame, .. } => {
                    return Err(format!("ERROR: {}", describe_error(&frame)));
                }
                StompEvent::HeartBeatTimeout => {
                    return Err("no heart-beat from the server in time".into());
                }
                StompEvent::Closed(reason) => return Err(format!("session closed: {reason:?}")),
                _ => {}
            }
        }
        Ok(())
    }

    /// Moves the machine's output to the socket as far as it takes it.
    fn write(&mut self, token: usize) -> Result<(), String> {
        let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return Ok(());
        };
        while let Some(b) = conn.c.poll_transmit() {
            if conn.off == conn.out.len() {
                conn.out.clear();
                conn.off = 0;
            }
            conn.out.extend_from_slice(&b);
        }
        if conn.state == State::Tcp {
            return Ok(());
        }
        while conn.off < conn.out.len() {
            match conn.stream.write(&conn.out[conn.off..]) {
                Ok(0) => return Err("write: the socket takes no more".into()),
                Ok(n) => conn.off += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        if conn.off == conn.out.len() {
            conn.out.clear();
            conn.off = 0;
        }
        Ok(())
    }

    /// Publishers send what is due (fixed rate) or what the window allows (max rate).
    fn publish(&mut self) {
        let now = now_us(&self.spec);
        let start = self.shared.run_start_us.load(Relaxed);
        let elapsed_s = now.saturating_sub(start) as f64 / 1e6;
        let rate = self.spec.rate_per_publisher;
        for token in 0..self.conns.len() {
            let Some(conn) = self.conns[token].as_mut() else {
                continue;
            };
            let Role::Publisher { dest, quota } = &conn.role else {
                continue;
            };
            if conn.state != State::Ready || conn.done {
                continue;
            }
            let quota = *quota;
            let due = if rate > 0.0 {
                ((elapsed_s * rate) as u64 + 1).min(quota)
            } else {
                quota
            };
            let mut n = 0;
            let mut refused = None;
            while conn.sent < due && n < 256 && conn.out.len() - conn.off < MAX_QUEUED {
                let ts = if rate > 0.0 {
                    // The time the message was due, so a publisher that falls behind shows
                    // up in the latency (no coordinated omission).
                    start + (conn.sent as f64 * 1e6 / rate) as u64
                } else {
                    let in_flight = self.shared.published.load(Relaxed) * self.spec.factor;
                    let done = self.shared.delivered.load(Relaxed) + self.delivered;
                    if in_flight.saturating_sub(done) >= self.spec.window {
                        break;
                    }
                    now
                };
                let ts = ts.to_string();
                let opts = SendOptions {
                    headers: &[(TS_HEADER, ts.as_str())],
                    ..SendOptions::default()
                };
                if let Err(e) = conn.c.session().send(dest, self.spec.body.clone(), &opts) {
                    refused = Some(format!("SEND refused by the session: {e:?}"));
                    break;
                }
                conn.sent += 1;
                n += 1;
                if rate > 0.0 {
                    self.published += 1;
                } else {
                    // Counted at once, so that the other threads see the window filling.
                    self.shared.published.fetch_add(1, Relaxed);
                }
            }
            if let Some(why) = refused {
                self.fail(token, why);
                continue;
            }
            if conn.sent >= quota {
                conn.done = true;
                self.shared.publishers_done.fetch_add(1, Relaxed);
            }
            if n > 0
                && let Err(why) = self.write(token)
            {
                self.fail(token, why);
            }
        }
    }

    /// How often the sessions' timers are served: a quarter of our heart-beat interval (the
    /// negotiated one is never shorter), between 10 and 100 ms.
    fn maintenance_ms(&self) -> u64 {
        match self.spec.connect.heartbeat_ms {
            0 => 100,
            hb => (hb / 4).clamp(10, 100),
        }
    }

    /// Gives every session whose timer is due the time: heart-beats out, liveness judged.
    fn maintain(&mut self, now_ms: u64) {
        for token in 0..self.conns.len() {
            let Some(conn) = self.conns[token].as_mut() else {
                continue;
            };
            if conn.c.poll_timeout().is_none_or(|t| t > now_ms) {
                continue;
            }
            conn.c.handle_timeout(now_ms);
            let r = self.events(token).and_then(|()| self.write(token));
            if let Err(why) = r {
                self.fail(token, why);
            }
        }
    }
}
