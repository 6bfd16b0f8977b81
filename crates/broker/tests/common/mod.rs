//! An in-memory host for the broker: clients are byte buffers, time is a number.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;

use bytes::BytesMut;
use stompbox_broker::{Broker, Config, Event, SessionId, TransportInfo};
use stompbox_stomp::{Command, Frame, Limits, Parser};

pub struct Client {
    parser: Parser,
    buf: BytesMut,
    pub frames: Vec<Frame>,
    pub heartbeats: usize,
    pub raw: Vec<u8>,
}

pub struct Host {
    pub broker: Broker,
    pub now: u64,
    pub clients: HashMap<SessionId, Client>,
    pub events: Vec<Event>,
    /// Call `transport_closed` automatically on `Event::Closed`.
    pub auto_close: bool,
}

/// Builds a frame's wire bytes: command, headers, blank line, body, NUL.
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

impl Host {
    pub fn new(config: Config) -> Host {
        Host::with_broker(Broker::new(config))
    }

    pub fn with_broker(broker: Broker) -> Host {
        Host {
            broker,
            now: 0,
            clients: HashMap::new(),
            events: Vec::new(),
            auto_close: true,
        }
    }

    pub fn open(&mut self) -> SessionId {
        let id = self
            .broker
            .open_session(TransportInfo::default(), self.now)
            .expect("session");
        self.clients.insert(
            id,
            Client {
                parser: Parser::new(Limits {
                    max_body_bytes: 64 << 20,
                    ..Limits::default()
                }),
                buf: BytesMut::new(),
                frames: Vec::new(),
                heartbeats: 0,
                raw: Vec::new(),
            },
        );
        id
    }

    /// Opens a session and connects it with STOMP 1.2, no heart-beats.
    pub fn connect(&mut self, login: Option<&str>) -> SessionId {
        let id = self.open();
        let mut h = vec![
            ("accept-version", "1.2"),
            ("host", "test"),
            ("heart-beat", "0,0"),
        ];
        if let Some(l) = login {
            h.push(("login", l));
        }
        self.feed(id, &frame("CONNECT", &h, ""));
        let f = self.take(id);
        assert_eq!(f.len(), 1, "one CONNECTED");
        assert_eq!(f[0].command(), Command::Connected);
        id
    }

    pub fn feed(&mut self, id: SessionId, bytes: &[u8]) {
        self.broker
            .handle_read(id, bytes, self.now)
            .expect("open session");
        self.drain();
    }

    pub fn send(&mut self, id: SessionId, cmd: &str, headers: &[(&str, &str)], body: &str) {
        self.feed(id, &frame(cmd, headers, body));
    }

    pub fn subscribe(&mut self, id: SessionId, sub: &str, dest: &str, ack: &str) {
        self.send(
            id,
            "SUBSCRIBE",
            &[("id", sub), ("destination", dest), ("ack", ack)],
            "",
        );
    }

    pub fn publish(&mut self, id: SessionId, dest: &str, body: &str) {
        self.send(id, "SEND", &[("destination", dest)], body);
    }

    /// Drains output of every session into its client, and events into `events`.
    pub fn drain(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(id) = self.broker.poll_ready() {
                while let Some(t) = self.broker.poll_transmit(id) {
                    progressed = true;
                    if let Some(c) = self.clients.get_mut(&id) {
                        t.write_to(&mut c.raw);
                        c.buf.extend_from_slice(&t.to_vec());
                        while let Some(f) = c.parser.parse(&mut c.buf).expect("valid output") {
                            c.frames.push(f);
                        }
                        c.heartbeats = c.parser.heartbeats() as usize;
                    }
                }
            }
            while let Some(ev) = self.broker.poll_event() {
                progressed = true;
                if let Event::Closed { session, reason } = &ev
                    && self.auto_close
                    && *reason != stompbox_broker::CloseReason::TransportClosed
                {
                    self.broker.transport_closed(*session).expect("known");
                }
                self.events.push(ev);
            }
            if !progressed {
                break;
            }
        }
    }

    /// Frames received by `id` since the last take.
    pub fn take(&mut self, id: SessionId) -> Vec<Frame> {
        self.drain();
        std::mem::take(&mut self.clients.get_mut(&id).expect("client").frames)
    }

    /// Bodies of the MESSAGE frames received by `id` since the last take.
    pub fn bodies(&mut self, id: SessionId) -> Vec<String> {
        self.take(id)
            .iter()
            .filter(|f| f.command() == Command::Message)
            .map(|f| String::from_utf8_lossy(f.body()).into_owned())
            .collect()
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        self.drain();
        std::mem::take(&mut self.events)
    }

    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.broker.handle_timeout(self.now);
        self.drain();
    }
}
