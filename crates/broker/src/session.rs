//! The per-session STOMP machine the broker runs for each client: framing (via the
//! `stompbox-stomp` codec), CONNECT negotiation, heart-beats, frame validation.
//!
//! It turns the client's bytes into [`ProtoEvent`]s for the routing core and queues its own
//! replies (CONNECTED, heart-beats, ERROR after a violation) as [`Transmit`]s. A violation is
//! sticky: the ERROR is queued and every later byte is ignored.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use stompbox_stomp::{Command, Frame, HeartBeat, Limits, Negotiated, Parser, Version};

use crate::broker::{SessionId, is_broker_header};
use crate::config::Config;
use crate::inbound::{AckMode, Inbound};
use crate::wire::{self, Escaping, Transmit};

/// What the session machine reports to the broker.
#[derive(Debug)]
pub(crate) enum ProtoEvent {
    /// A CONNECT (or STOMP) frame, version already negotiated; answer with
    /// [`Proto::accept`] or close with an ERROR.
    Connect {
        login: Option<String>,
        passcode: Option<String>,
        host: Option<String>,
    },
    /// A validated client frame.
    Frame(Inbound),
    /// A heart-beat EOL.
    HeartBeat,
    /// The client broke the protocol; the ERROR is queued already.
    ProtocolError(String),
    /// The client went silent past its negotiated heart-beat (times the grace); ERROR queued.
    HeartbeatTimeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitConnect,
    Authenticating,
    Connected,
    Failed,
}

/// One client's STOMP protocol state.
#[derive(Debug)]
pub(crate) struct Proto {
    parser: Parser,
    input: BytesMut,
    phase: Phase,
    version: Version,
    client_hb: HeartBeat,
    hb: Negotiated,
    grace: u64,
    last_rx: u64,
    last_tx: u64,
    connect_deadline: u64,
    out: VecDeque<Transmit>,
    events: VecDeque<ProtoEvent>,
    heartbeats_seen: u64,
}

impl Proto {
    pub(crate) fn new(config: &Config, now: u64) -> Proto {
        Proto {
            parser: Parser::new(Limits::unauthenticated()),
            input: BytesMut::new(),
            phase: Phase::AwaitConnect,
            version: Version::V1_2,
            client_hb: HeartBeat::NONE,
            hb: Negotiated::default(),
            grace: u64::from(config.heart_beat_grace.max(1)),
            last_rx: now,
            last_tx: now,
            connect_deadline: now.saturating_add(config.connect_timeout_ms),
            out: VecDeque::new(),
            events: VecDeque::new(),
            heartbeats_seen: 0,
        }
    }

    /// The escaping rules of the negotiated version.
    pub(crate) fn escaping(&self) -> Escaping {
        match self.version {
            Version::V1_0 => Escaping::V10,
            Version::V1_1 => Escaping::V11,
            Version::V1_2 => Escaping::V12,
        }
    }

    /// The negotiated version (1.2 until CONNECT).
    pub(crate) fn version(&self) -> Version {
        self.version
    }

    /// The negotiated heart-beat intervals.
    pub(crate) fn heart_beat(&self) -> Negotiated {
        self.hb
    }

    pub(crate) fn handle_read(&mut self, bytes: &[u8], now: u64) {
        if self.phase == Phase::Failed {
            return;
        }
        if !bytes.is_empty() {
            // STOMP 1.2 "Heart-beating": any byte received counts as liveness.
            self.last_rx = now;
        }
        self.input.extend_from_slice(bytes);
        self.parse();
    }

    fn parse(&mut self) {
        loop {
            if self.phase == Phase::Failed || self.phase == Phase::Authenticating {
                // Frames after CONNECT wait for the authentication decision.
                return;
            }
            let r = self.parser.parse(&mut self.input);
            let hb = self.parser.heartbeats();
            while self.heartbeats_seen < hb {
                self.heartbeats_seen += 1;
                if self.phase == Phase::Connected {
                    self.events.push_back(ProtoEvent::HeartBeat);
                }
            }
            match r {
                Ok(None) => return,
                Ok(Some(frame)) => self.on_frame(frame),
                Err(e) => {
                    self.fail(e.as_str(), None);
                    return;
                }
            }
        }
    }

    /// Queues an ERROR, reports the violation and ignores all further input.
    fn fail(&mut self, message: &str, receipt: Option<&str>) {
        if self.phase == Phase::Failed {
            return;
        }
        self.phase = Phase::Failed;
        self.input = BytesMut::new();
        self.out.push_back(Transmit::whole(wire::error(
            message,
            receipt,
            self.escaping(),
        )));
        self.events
            .push_back(ProtoEvent::ProtocolError(message.to_owned()));
    }

    fn on_frame(&mut self, frame: Frame) {
        let receipt = frame.header("receipt").map(str::to_owned);
        match self.phase {
            Phase::AwaitConnect => self.on_connect(&frame),
            Phase::Connected => match self.validate(frame) {
                Ok(inb) => self.events.push_back(ProtoEvent::Frame(inb)),
                Err(msg) => self.fail(&msg, receipt.as_deref()),
            },
            Phase::Authenticating | Phase::Failed => {}
        }
    }

    fn on_connect(&mut self, frame: &Frame) {
        if !matches!(frame.command(), Command::Connect | Command::Stomp) {
            self.version = Version::V1_2;
            self.fail("expected CONNECT", None);
            return;
        }
        // STOMP 1.2 "Protocol Negotiation": the highest version both sides support; no
        // accept-version header means 1.0.
        let version = match frame.header("accept-version") {
            None => Some(Version::V1_0),
            Some(list) => list.split(',').filter_map(Version::parse).max(),
        };
        let Some(version) = version else {
            self.version = Version::V1_2;
            self.fail("supported protocol versions are 1.0,1.1,1.2", None);
            return;
        };
        self.version = version;
        self.parser.set_version(version);
        self.client_hb = match frame.header("heart-beat") {
            None => HeartBeat::NONE,
            Some(v) => match HeartBeat::parse(v) {
                Some(hb) if version != Version::V1_0 => hb,
                Some(_) => HeartBeat::NONE,
                None => {
                    self.fail("invalid heart-beat header", None);
                    return;
                }
            },
        };
        self.phase = Phase::Authenticating;
        self.events.push_back(ProtoEvent::Connect {
            login: frame.header("login").map(str::to_owned),
            passcode: frame.header("passcode").map(str::to_owned),
            host: frame.header("host").map(str::to_owned),
        });
    }

    /// The broker accepted the CONNECT: queue CONNECTED and start heart-beating.
    pub(crate) fn accept(
        &mut self,
        config: &Config,
        session: SessionId,
        user: Option<&str>,
        now: u64,
    ) {
        if self.phase != Phase::Authenticating {
            return;
        }
        let ours = HeartBeat {
            send_ms: config.heart_beat.0,
            receive_ms: config.heart_beat.1,
        };
        self.hb = if self.version == Version::V1_0 {
            Negotiated::default()
        } else {
            Negotiated::negotiate(ours, self.client_hb)
        };
        // CONNECTED headers are never escaped: keep values on one line.
        let clean =
            |s: &str| -> String { s.chars().filter(|c| !matches!(c, '\n' | '\r')).collect() };
        let mut out = BytesMut::with_capacity(128);
        out.put_slice(b"CONNECTED\nversion:");
        out.put_slice(self.version.as_str().as_bytes());
        out.put_slice(b"\nheart-beat:");
        out.put_slice(ours_for_reply(ours, self.version).as_bytes());
        out.put_slice(b"\nserver:");
        out.put_slice(clean(&config.server_name).as_bytes());
        out.put_slice(b"\nsession:");
        out.put_slice(session.to_string().as_bytes());
        if let Some(u) = user {
            out.put_slice(b"\nuser-name:");
            out.put_slice(clean(u).as_bytes());
        }
        out.put_slice(b"\n\n\0");
        self.out.push_back(Transmit::whole(out.freeze()));
        self.last_tx = now;
        self.last_rx = now;
        self.parser.set_limits(config.frame_limits);
        self.phase = Phase::Connected;
        // Frames that arrived behind the CONNECT.
        self.parse();
    }

    /// The broker rejected the CONNECT (it queues the ERROR itself).
    pub(crate) fn reject(&mut self) {
        self.phase = Phase::Failed;
        self.input = BytesMut::new();
    }

    /// The broker queued a frame for this session at `now`.
    pub(crate) fn on_transmit(&mut self, now: u64) {
        self.last_tx = self.last_tx.max(now);
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    pub(crate) fn poll_event(&mut self) -> Option<ProtoEvent> {
        self.events.pop_front()
    }

    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        match self.phase {
            Phase::AwaitConnect | Phase::Authenticating => Some(self.connect_deadline),
            Phase::Failed => None,
            Phase::Connected => {
                let send =
                    (self.hb.send_ms > 0).then(|| self.last_tx.saturating_add(self.hb.send_ms));
                let recv = (self.hb.receive_ms > 0)
                    .then(|| self.last_rx.saturating_add(self.hb.receive_ms * self.grace));
                match (send, recv) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: u64) {
        match self.phase {
            Phase::AwaitConnect | Phase::Authenticating => {
                if now >= self.connect_deadline {
                    self.phase = Phase::Failed;
                    self.out.push_back(Transmit::whole(wire::error(
                        "no CONNECT in time",
                        None,
                        self.escaping(),
                    )));
                    self.events
                        .push_back(ProtoEvent::ProtocolError("no CONNECT in time".to_owned()));
                }
            }
            Phase::Failed => {}
            Phase::Connected => {
                // A late wake-up first sends the overdue heart-beat, then judges liveness.
                if self.hb.send_ms > 0 && now >= self.last_tx.saturating_add(self.hb.send_ms) {
                    self.out
                        .push_back(Transmit::whole(Bytes::from_static(b"\n")));
                    self.last_tx = now;
                }
                if self.hb.receive_ms > 0
                    && now >= self.last_rx.saturating_add(self.hb.receive_ms * self.grace)
                {
                    self.phase = Phase::Failed;
                    self.out.push_back(Transmit::whole(wire::error(
                        "heart-beat timeout",
                        None,
                        self.escaping(),
                    )));
                    self.events.push_back(ProtoEvent::HeartbeatTimeout);
                }
            }
        }
    }

    /// Checks a client frame (STOMP 1.2 "Client Frames", with the 1.0/1.1 differences) and
    /// turns it into an [`Inbound`].
    fn validate(&self, mut f: Frame) -> Result<Inbound, String> {
        let v = self.version;
        let req = |f: &Frame, name: &str| -> Result<String, String> {
            f.header(name)
                .map(str::to_owned)
                .ok_or_else(|| format!("{} frame requires a {name} header", f.command().as_str()))
        };
        let receipt = f.header("receipt").map(str::to_owned);
        let transaction = f.header("transaction").map(str::to_owned);
        if !f.body().is_empty() && !f.command().allows_body() {
            // STOMP 1.2 "Frames and Headers": only SEND, MESSAGE and ERROR have bodies.
            return Err(format!(
                "{} frame must not have a body",
                f.command().as_str()
            ));
        }
        Ok(match f.command() {
            Command::Send => {
                let destination = req(&f, "destination")?;
                let mut headers = Vec::with_capacity(f.header_count());
                for (k, val) in f.headers() {
                    if !is_broker_header(k) {
                        // Repeated headers: the first one wins (STOMP 1.2 "Repeated Header
                        // Entries"); later ones are not forwarded.
                        if !headers.iter().any(|(hk, _): &(String, String)| hk == k) {
                            headers.push((k.to_owned(), val.to_owned()));
                        }
                    }
                }
                Inbound::Send {
                    destination,
                    headers,
                    body: f.take_body(),
                    receipt,
                    transaction,
                }
            }
            Command::Subscribe => {
                let destination = req(&f, "destination")?;
                let id = match (v, f.header("id")) {
                    (_, Some(id)) => id.to_owned(),
                    (Version::V1_0, None) => destination.clone(),
                    (_, None) => return Err("SUBSCRIBE frame requires an id header".into()),
                };
                let ack = AckMode::parse(f.header("ack"))
                    .ok_or_else(|| "invalid ack header".to_owned())?;
                let headers = f
                    .headers()
                    .filter(|(k, _)| !matches!(*k, "destination" | "id" | "ack" | "receipt"))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                Inbound::Subscribe {
                    id,
                    destination,
                    ack,
                    headers,
                    receipt,
                }
            }
            Command::Unsubscribe => {
                let id = match (v, f.header("id"), f.header("destination")) {
                    (_, Some(id), _) => id.to_owned(),
                    (Version::V1_0, None, Some(d)) => d.to_owned(),
                    _ => return Err("UNSUBSCRIBE frame requires an id header".into()),
                };
                Inbound::Unsubscribe { id, receipt }
            }
            c @ (Command::Ack | Command::Nack) => {
                let nack = c == Command::Nack;
                if nack && v == Version::V1_0 {
                    return Err("NACK is not part of STOMP 1.0".into());
                }
                let (id, subscription) = match v {
                    Version::V1_2 => (req(&f, "id")?, None),
                    Version::V1_1 => (req(&f, "message-id")?, Some(req(&f, "subscription")?)),
                    Version::V1_0 => (req(&f, "message-id")?, None),
                };
                Inbound::Ack {
                    nack,
                    id,
                    subscription,
                    receipt,
                    transaction,
                }
            }
            Command::Begin => Inbound::Begin {
                transaction: req(&f, "transaction")?,
                receipt,
            },
            c @ (Command::Commit | Command::Abort) => Inbound::End {
                commit: c == Command::Commit,
                transaction: req(&f, "transaction")?,
                receipt,
            },
            Command::Disconnect => Inbound::Disconnect { receipt },
            Command::Connect | Command::Stomp => return Err("already connected".into()),
            c => return Err(format!("{} is not a client frame", c.as_str())),
        })
    }
}

/// The `heart-beat` header of CONNECTED: what the server offers (1.0 has none, sent as 0,0).
fn ours_for_reply(ours: HeartBeat, v: Version) -> String {
    if v == Version::V1_0 {
        "0,0".to_owned()
    } else {
        ours.to_header_value()
    }
}
