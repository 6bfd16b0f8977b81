//! An in-memory relay host: the broker in relay mode, its clients as byte buffers, and a fake
//! upstream broker made of `stompbox_stomp` server sessions (topics, queues with round robin,
//! client acks and redelivery, transactions, receipts, ERROR on a forbidden destination), all
//! in virtual time.
#![allow(dead_code, unreachable_pub)]

use std::collections::{HashMap, VecDeque};

use bytes::BytesMut;
use stompbox_broker::{
    Broker, CloseReason, Config, Event, RelayConfig, SessionId, TransportInfo, UpstreamCommand,
    UpstreamId,
};
use stompbox_stomp::server::{Accept, ServerConfig, ServerEvent, ServerSession};
use stompbox_stomp::{AckMode, Command, Frame, HeartBeat, Limits, Parser};

/// Builds a frame's wire bytes.
pub fn frame(cmd: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(cmd.as_bytes());
    v.push(b'\n');
    for (k, val) in headers {
        v.extend_from_slice(format!("{k}:{val}\n").as_bytes());
    }
    v.push(b'\n');
    v.extend_from_slice(body.as_bytes());
    v.push(0);
    v
}

pub struct Client {
    parser: Parser,
    buf: BytesMut,
    pub frames: Vec<Frame>,
    pub heartbeats: u64,
}

/// How the fake upstream treats new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Accept every transport and CONNECT.
    Up,
    /// Refuse transports (connection refused).
    Refuse,
    /// Accept the transport, never answer.
    BlackHole,
}

#[derive(Debug, Clone)]
struct Delivered {
    up: UpstreamId,
    sub: String,
    frame: Frame,
}

/// A tiny STOMP broker over `ServerSession`s, standing in for RabbitMQ.
pub struct Fake {
    pub mode: Mode,
    pub heart_beat: HeartBeat,
    pub sessions: HashMap<UpstreamId, ServerSession>,
    /// Every event seen, per upstream, in order.
    pub log: Vec<(UpstreamId, ServerEvent)>,
    /// CONNECT requests seen (login, passcode, host, accept-version).
    pub connects: Vec<(UpstreamId, Frame)>,
    subs: Vec<(UpstreamId, String, String, AckMode)>,
    pending: HashMap<String, VecDeque<Frame>>,
    delivered: HashMap<String, Delivered>,
    rr: usize,
    next_id: u64,
    /// Messages acknowledged (message ids).
    pub acked: Vec<String>,
    /// Bytes received per upstream (for heart-beat checks).
    pub received: HashMap<UpstreamId, Vec<u8>>,
    /// Feed upstream bytes to the broker in pieces of this size (split invariance).
    pub chunk: usize,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            mode: Mode::Up,
            heart_beat: HeartBeat::NONE,
            sessions: HashMap::new(),
            log: Vec::new(),
            connects: Vec::new(),
            subs: Vec::new(),
            pending: HashMap::new(),
            delivered: HashMap::new(),
            rr: 0,
            next_id: 1,
            acked: Vec::new(),
            received: HashMap::new(),
            chunk: usize::MAX,
        }
    }

    /// Events of kind `f` seen by upstream `up` (or any, with `None`).
    pub fn events(&self, up: Option<UpstreamId>) -> Vec<ServerEvent> {
        self.log
            .iter()
            .filter(|(u, _)| up.is_none_or(|x| x == *u))
            .map(|(_, e)| e.clone())
            .collect()
    }

    fn route(&mut self, frame: Frame) {
        let dest = frame.header("destination").unwrap_or_default().to_owned();
        if dest.starts_with("/queue/") {
            self.pending
                .entry(dest.clone())
                .or_default()
                .push_back(frame);
            self.pump(&dest);
        } else {
            let subs: Vec<_> = self
                .subs
                .iter()
                .filter(|(_, _, d, _)| *d == dest)
                .cloned()
                .collect();
            for (up, sub, _, ack) in subs {
                self.deliver(up, &sub, ack, &frame);
            }
        }
    }

    fn deliver(&mut self, up: UpstreamId, sub: &str, ack: AckMode, frame: &Frame) {
        let id = format!("T_{sub}@@up{}@@{}", up.get(), self.next_id);
        self.next_id += 1;
        if let Some(s) = self.sessions.get_mut(&up)
            && s.send_message_from(sub, &id, frame).is_ok()
            && ack.needs_ack()
        {
            self.delivered.insert(
                id,
                Delivered {
                    up,
                    sub: sub.to_owned(),
                    frame: frame.clone(),
                },
            );
        }
    }

    fn pump(&mut self, dest: &str) {
        loop {
            let consumers: Vec<_> = self
                .subs
                .iter()
                .filter(|(_, _, d, _)| d == dest)
                .cloned()
                .collect();
            if consumers.is_empty() {
                return;
            }
            let Some(f) = self.pending.get_mut(dest).and_then(VecDeque::pop_front) else {
                return;
            };
            let (up, sub, _, ack) = consumers[self.rr % consumers.len()].clone();
            self.rr += 1;
            self.deliver(up, &sub, ack, &f);
        }
    }

    fn requeue(&mut self, ids: impl IntoIterator<Item = String>) {
        let mut dests = Vec::new();
        for id in ids {
            if let Some(d) = self.delivered.remove(&id) {
                let mut f = d.frame.to_builder();
                f.push_header("redelivered", "true");
                let f = f.build();
                let dest = f.header("destination").unwrap_or_default().to_owned();
                self.pending.entry(dest.clone()).or_default().push_front(f);
                dests.push(dest);
            }
        }
        for d in dests {
            self.pump(&d);
        }
    }

    fn on_event(&mut self, up: UpstreamId, ev: ServerEvent) {
        self.log.push((up, ev.clone()));
        let Some(s) = self.sessions.get_mut(&up) else {
            return;
        };
        match ev {
            ServerEvent::Connect(req) => {
                self.connects.push((up, req.frame.clone()));
                if req.login.as_deref() == Some("bad") {
                    let _ = s.reject("access refused for user 'bad'");
                } else {
                    let _ = s.accept(&Accept {
                        session: Some("fake-session"),
                        ..Accept::default()
                    });
                }
            }
            ServerEvent::Send(send) => {
                if send.destination() == "/queue/forbidden" {
                    let _ = s.send_error(
                        "access to /queue/forbidden refused",
                        send.receipt.as_deref(),
                        b"forbidden",
                    );
                } else {
                    self.route(send.frame);
                }
            }
            ServerEvent::Subscribe(sub) => {
                self.subs
                    .push((up, sub.id.clone(), sub.destination.clone(), sub.ack));
                self.pump(&sub.destination);
            }
            ServerEvent::Unsubscribe(u) => {
                self.subs.retain(|(x, id, _, _)| !(*x == up && *id == u.id));
                self.requeue(u.unacked);
            }
            ServerEvent::Ack(a) => {
                for id in a.message_ids {
                    self.delivered.remove(&id);
                    self.acked.push(id);
                }
            }
            ServerEvent::Nack(a) => self.requeue(a.message_ids),
            ServerEvent::Disconnect { .. } | ServerEvent::Closed(_) => self.gone(up),
            // transactions: the released SEND/ACK/NACK events come before Commit
            ServerEvent::Begin { .. }
            | ServerEvent::Held { .. }
            | ServerEvent::Commit { .. }
            | ServerEvent::Abort { .. } => {}
        }
    }

    /// Upstream `up`'s transport is gone: its subscriptions end, unacked messages return.
    pub fn gone(&mut self, up: UpstreamId) {
        self.subs.retain(|(x, _, _, _)| *x != up);
        let ids: Vec<String> = self
            .delivered
            .iter()
            .filter(|(_, d)| d.up == up)
            .map(|(k, _)| k.clone())
            .collect();
        self.requeue(ids);
    }
}

pub struct RelayHost {
    pub broker: Broker,
    pub now: u64,
    pub clients: HashMap<SessionId, Client>,
    pub events: Vec<Event>,
    pub fake: Fake,
    /// Upstream commands seen, in order.
    pub commands: Vec<UpstreamCommand>,
}

pub fn relay_config() -> Config {
    Config {
        heart_beat: (0, 0),
        relay: Some(RelayConfig {
            login: Some("relay".into()),
            passcode: Some("secret".into()),
            system_login: Some("system".into()),
            system_passcode: Some("syspass".into()),
            virtual_host: "vh1".into(),
            heart_beat: (0, 0),
            ..RelayConfig::default()
        }),
        ..Config::default()
    }
}

impl RelayHost {
    pub fn new(config: Config) -> RelayHost {
        RelayHost {
            broker: Broker::new(config),
            now: 0,
            clients: HashMap::new(),
            events: Vec::new(),
            fake: Fake::new(),
            commands: Vec::new(),
        }
    }

    /// A host whose system session is connected.
    pub fn started(config: Config) -> RelayHost {
        let mut h = RelayHost::new(config);
        h.tick();
        assert!(h.broker.relay_system_connected(), "system session up");
        h
    }

    /// Runs due timers, then pumps.
    pub fn tick(&mut self) {
        if self.broker.poll_timeout().is_some_and(|t| t <= self.now) {
            self.broker.handle_timeout(self.now);
        }
        for s in self.fake.sessions.values_mut() {
            s.handle_timeout(self.now);
        }
        self.pump();
    }

    pub fn advance(&mut self, ms: u64) {
        // Step through every timer on the way, as a real loop would.
        let end = self.now + ms;
        loop {
            let next = self.broker.poll_timeout().unwrap_or(u64::MAX);
            let fake_next = self
                .fake
                .sessions
                .values()
                .filter_map(ServerSession::poll_timeout)
                .min()
                .unwrap_or(u64::MAX);
            let t = next.min(fake_next).max(self.now);
            if t > end {
                break;
            }
            self.now = t;
            self.tick();
        }
        self.now = end;
        self.tick();
    }

    pub fn open(&mut self) -> SessionId {
        let id = self
            .broker
            .open_session(TransportInfo::default(), self.now)
            .expect("session");
        self.clients.insert(
            id,
            Client {
                parser: Parser::new(Limits::default()),
                buf: BytesMut::new(),
                frames: Vec::new(),
                heartbeats: 0,
            },
        );
        id
    }

    /// Opens a session and sends CONNECT (1.2 unless `version` says otherwise).
    pub fn connect_with(&mut self, headers: &[(&str, &str)]) -> SessionId {
        let id = self.open();
        let mut h = vec![("host", "test"), ("heart-beat", "0,0")];
        h.extend_from_slice(headers);
        if !h.iter().any(|(k, _)| *k == "accept-version") {
            h.push(("accept-version", "1.2"));
        }
        self.feed(id, &frame("CONNECT", &h, ""));
        id
    }

    /// Connects a 1.2 client and checks it got CONNECTED.
    pub fn connect(&mut self) -> SessionId {
        let id = self.connect_with(&[]);
        let f = self.take(id);
        assert_eq!(f.len(), 1, "one frame: {f:?}");
        assert_eq!(f[0].command(), Command::Connected);
        id
    }

    pub fn feed(&mut self, id: SessionId, bytes: &[u8]) {
        self.broker
            .handle_read(id, bytes, self.now)
            .expect("open session");
        self.pump();
    }

    pub fn send(&mut self, id: SessionId, cmd: &str, headers: &[(&str, &str)], body: &str) {
        self.feed(id, &frame(cmd, headers, body));
    }

    /// Moves every byte between broker, clients and the fake upstream until quiet.
    pub fn pump(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(cmd) = self.broker.poll_upstream() {
                progressed = true;
                self.commands.push(cmd);
                match cmd {
                    UpstreamCommand::Open(id) => match self.fake.mode {
                        Mode::Refuse => {
                            self.broker.upstream_closed(id, self.now).expect("known");
                        }
                        Mode::Up | Mode::BlackHole => {
                            let mut s = ServerSession::new(ServerConfig {
                                heart_beat: self.fake.heart_beat,
                                ..ServerConfig::default()
                            });
                            s.handle_timeout(self.now);
                            self.fake.sessions.insert(id, s);
                        }
                    },
                    UpstreamCommand::Close(id) => {
                        // Flush, then close the transport.
                        while let Some(b) = self.broker.upstream_transmit(id) {
                            self.fake
                                .received
                                .entry(id)
                                .or_default()
                                .extend_from_slice(&b);
                            if let Some(s) = self.fake.sessions.get_mut(&id) {
                                let _ = s.handle_read(&b);
                            }
                        }
                        self.drain_fake_events(id);
                        self.fake.sessions.remove(&id);
                        self.fake.gone(id);
                    }
                }
            }
            // Broker -> upstream.
            let ids: Vec<UpstreamId> = self.fake.sessions.keys().copied().collect();
            let mut ids_sorted = ids.clone();
            ids_sorted.sort();
            while self.broker.upstream_ready().is_some() {}
            for id in &ids_sorted {
                while let Some(b) = self.broker.upstream_transmit(*id) {
                    progressed = true;
                    self.fake
                        .received
                        .entry(*id)
                        .or_default()
                        .extend_from_slice(&b);
                    if self.fake.mode == Mode::BlackHole {
                        continue;
                    }
                    if let Some(s) = self.fake.sessions.get_mut(id) {
                        let _ = s.handle_read(&b);
                    }
                }
            }
            // The fake broker acts.
            for id in &ids_sorted {
                if self.drain_fake_events(*id) {
                    progressed = true;
                }
            }
            // Upstream -> broker.
            for id in &ids_sorted {
                let mut out = Vec::new();
                if let Some(s) = self.fake.sessions.get_mut(id) {
                    while let Some(b) = s.poll_transmit() {
                        out.extend_from_slice(&b);
                    }
                }
                if !out.is_empty() {
                    progressed = true;
                    let chunk = self.fake.chunk.max(1);
                    for piece in out.chunks(chunk) {
                        // Unknown after the broker gave up on it: the bytes are dropped.
                        let _ = self.broker.upstream_read(*id, piece, self.now);
                    }
                }
                if self
                    .fake
                    .sessions
                    .get(id)
                    .is_some_and(ServerSession::is_finished)
                {
                    // The fake closed the connection (after ERROR or DISCONNECT).
                    self.fake.sessions.remove(id);
                    self.fake.gone(*id);
                    let _ = self.broker.upstream_closed(*id, self.now);
                    progressed = true;
                }
            }
            // Broker -> clients, events.
            while let Some(id) = self.broker.poll_ready() {
                while let Some(t) = self.broker.poll_transmit(id) {
                    progressed = true;
                    if let Some(c) = self.clients.get_mut(&id) {
                        c.buf.extend_from_slice(&t.to_vec());
                        while let Some(f) = c.parser.parse(&mut c.buf).expect("valid output") {
                            c.frames.push(f);
                        }
                        c.heartbeats = c.parser.heartbeats();
                    }
                }
            }
            while let Some(ev) = self.broker.poll_event() {
                progressed = true;
                if let Event::Closed { session, reason } = &ev
                    && *reason != CloseReason::TransportClosed
                {
                    while let Some(t) = self.broker.poll_transmit(*session) {
                        if let Some(c) = self.clients.get_mut(session) {
                            c.buf.extend_from_slice(&t.to_vec());
                            while let Some(f) = c.parser.parse(&mut c.buf).expect("valid output") {
                                c.frames.push(f);
                            }
                        }
                    }
                    self.broker.transport_closed(*session).expect("known");
                }
                self.events.push(ev);
            }
            if !progressed {
                break;
            }
        }
    }

    fn drain_fake_events(&mut self, id: UpstreamId) -> bool {
        let mut any = false;
        loop {
            let Some(ev) = self
                .fake
                .sessions
                .get_mut(&id)
                .and_then(ServerSession::poll_event)
            else {
                break;
            };
            any = true;
            self.fake.on_event(id, ev);
        }
        any
    }

    /// Frames received by `id` since the last take.
    pub fn take(&mut self, id: SessionId) -> Vec<Frame> {
        self.pump();
        std::mem::take(&mut self.clients.get_mut(&id).expect("client").frames)
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        self.pump();
        std::mem::take(&mut self.events)
    }

    /// The upstream of client `id`.
    pub fn upstream(&self, id: SessionId) -> UpstreamId {
        self.broker.session_upstream(id).expect("upstream")
    }

    /// Simulates the upstream broker going away: every transport drops.
    pub fn kill_upstream(&mut self) {
        let ids: Vec<UpstreamId> = self.fake.sessions.keys().copied().collect();
        for id in ids {
            self.fake.sessions.remove(&id);
            self.fake.gone(id);
            let _ = self.broker.upstream_closed(id, self.now);
        }
        self.pump();
    }
}
