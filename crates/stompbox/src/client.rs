//! [`ClientConnection`]: the client side, stacked (handshake -> WebSocket -> STOMP frames), or
//! raw STOMP over TCP.

use std::collections::VecDeque;
use std::fmt;

use bytes::{Bytes, BytesMut};
use stompbox_stomp::{Command, Frame, Limits, ParseError, Parser, Version};
use stompbox_upgrade::{ClientEvent as HsEvent, ClientHandshake, ClientRequest, ClientState};
use stompbox_ws::{
    CloseCode, Connection as WsConnection, Event as WsEvent, MaskSource, MessageKind,
};

use crate::server::STOMP_SUBPROTOCOLS;

/// Why a [`ClientConnection`] failed. Sticky.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The server refused the upgrade (or answered something that is not a WebSocket).
    Handshake(String),
    /// The server broke the WebSocket protocol.
    WebSocket(String),
    /// The server sent bytes that are not STOMP.
    Stomp(ParseError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Handshake(e) => write!(f, "handshake failed: {e}"),
            ClientError::WebSocket(e) => write!(f, "WebSocket error: {e}"),
            ClientError::Stomp(e) => write!(f, "STOMP error: {e:?}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// What a [`ClientConnection`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The WebSocket is open (after the 101), with the chosen subprotocol.
    Open {
        /// `v12.stomp` etc., or `None` when the server chose none.
        subprotocol: Option<String>,
    },
    /// A STOMP frame from the server (CONNECTED, MESSAGE, RECEIPT, ERROR).
    Frame(Frame),
    /// A heart-beat EOL from the server.
    Heartbeat,
    /// The connection failed (the reply, e.g. a Close frame, is queued).
    Error(ClientError),
    /// The transport is done (WebSocket closed or EOF).
    Closed(String),
}

enum Layer {
    Handshake(Box<ClientHandshake>, Box<dyn MaskSource + Send>),
    WebSocket(Box<WsConnection>),
    Raw,
    Done,
}

/// A STOMP client connection as a sans-IO machine: it queues the HTTP Upgrade request, then
/// frames every STOMP frame as one WebSocket message (masked), and parses what the server sends
/// into [`Frame`]s. STOMP frames written before the WebSocket opens wait for it.
///
/// The drain contract: after every `handle_*` call or command, drain
/// [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event) and
/// [`poll_timeout`](Self::poll_timeout) before the next input.
pub struct ClientConnection {
    layer: Layer,
    host: String,
    parser: Parser,
    input: BytesMut,
    heartbeats_seen: u64,
    waiting: VecDeque<Bytes>,
    out: VecDeque<Bytes>,
    events: VecDeque<ClientEvent>,
    version: Version,
    ws_config: stompbox_ws::Config,
    failed: bool,
}

impl fmt::Debug for ClientConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConnection")
            .field("host", &self.host)
            .field("version", &self.version)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl ClientConnection {
    /// A client that upgrades `GET path` on `host` to a WebSocket offering the STOMP
    /// subprotocols. `nonce` is 16 random bytes (the `Sec-WebSocket-Key`); `masks` supplies
    /// one masking key per frame (use a strong random source against real servers).
    pub fn websocket(
        host: &str,
        path: &str,
        nonce: [u8; 16],
        masks: impl MaskSource + Send + 'static,
    ) -> Self {
        let request = ClientRequest::new(host, path).protocols(&STOMP_SUBPROTOCOLS);
        let mut c = Self::with_layer(host, Layer::Done);
        match ClientHandshake::new(&request, nonce, stompbox_upgrade::Limits::default()) {
            Ok(hs) => c.layer = Layer::Handshake(Box::new(hs), Box::new(masks)),
            Err(e) => {
                c.fail(ClientError::Handshake(format!(
                    "cannot build the request: {e}"
                )));
            }
        }
        c
    }

    /// A client speaking raw STOMP over TCP (`host` goes in CONNECT's `host` header).
    pub fn raw_stomp(host: &str) -> Self {
        Self::with_layer(host, Layer::Raw)
    }

    fn with_layer(host: &str, layer: Layer) -> Self {
        Self {
            layer,
            host: host.to_owned(),
            parser: Parser::new(Limits::default()),
            input: BytesMut::new(),
            heartbeats_seen: 0,
            waiting: VecDeque::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            version: Version::V1_2,
            ws_config: stompbox_ws::Config::default(),
            failed: false,
        }
    }

    /// Replaces the WebSocket limits (before the connection opens).
    pub fn set_ws_config(&mut self, config: stompbox_ws::Config) {
        self.ws_config = config;
    }

    /// The STOMP version in use (1.2 until CONNECTED says otherwise).
    pub fn version(&self) -> Version {
        self.version
    }

    /// Queues CONNECT (accept-version 1.2,1.1,1.0, host, heart-beat 0,0 unless given in
    /// `headers`, plus `headers`).
    pub fn connect(&mut self, headers: &[(&str, &str)]) {
        let mut b = Frame::builder(Command::Connect)
            .header("accept-version", "1.2,1.1,1.0")
            .header("host", &self.host.clone());
        if !headers.iter().any(|(k, _)| *k == "heart-beat") {
            b = b.header("heart-beat", "0,0");
        }
        for (k, v) in headers {
            b = b.header(k, v);
        }
        self.send_frame(&b.build());
    }

    /// Queues SUBSCRIBE with `ack:auto`.
    pub fn subscribe(&mut self, id: &str, destination: &str) {
        let f = Frame::builder(Command::Subscribe)
            .header("id", id)
            .header("destination", destination)
            .header("ack", "auto")
            .build();
        self.send_frame(&f);
    }

    /// Queues SEND.
    pub fn send(&mut self, destination: &str, content_type: &str, body: &[u8]) {
        let f = Frame::builder(Command::Send)
            .header("destination", destination)
            .header("content-type", content_type)
            .body(Bytes::copy_from_slice(body))
            .build();
        self.send_frame(&f);
    }

    /// Queues DISCONNECT with a receipt.
    pub fn disconnect(&mut self, receipt: &str) {
        let f = Frame::builder(Command::Disconnect)
            .header("receipt", receipt)
            .build();
        self.send_frame(&f);
    }

    /// Queues any frame (encoded for the negotiated version).
    pub fn send_frame(&mut self, frame: &Frame) {
        let mut buf = BytesMut::new();
        if stompbox_stomp::encode(frame, self.version, &mut buf).is_err() {
            self.events
                .push_back(ClientEvent::Error(ClientError::Handshake(
                    "frame cannot be encoded for this STOMP version".into(),
                )));
            return;
        }
        self.send_raw(buf.freeze());
    }

    /// Queues STOMP bytes as they are (one WebSocket message), e.g. a heart-beat `b"\n"`.
    pub fn send_raw(&mut self, bytes: Bytes) {
        match &mut self.layer {
            Layer::Handshake(..) => self.waiting.push_back(bytes),
            Layer::WebSocket(ws) => {
                let kind = if std::str::from_utf8(&bytes).is_ok() {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                let _ = ws.send_bytes(kind, bytes);
            }
            Layer::Raw => self.out.push_back(bytes),
            Layer::Done => {}
        }
    }

    /// Closes the WebSocket (1000) or ends the raw stream.
    pub fn close(&mut self) {
        match &mut self.layer {
            Layer::WebSocket(ws) => {
                let _ = ws.close(Some(CloseCode::NORMAL), "");
            }
            _ => self.layer = Layer::Done,
        }
    }

    /// Feeds bytes read from the socket.
    pub fn handle_read(&mut self, data: &[u8]) {
        match &mut self.layer {
            Layer::Handshake(hs, _) => {
                if let Err(e) = hs.handle_read(data) {
                    self.fail(ClientError::Handshake(e.to_string()));
                    return;
                }
                if let ClientState::Failed(e) = hs.state() {
                    let e = e.to_string();
                    self.fail(ClientError::Handshake(e));
                    return;
                }
                if let Some(HsEvent::Upgraded(up)) = hs.poll_event() {
                    let Layer::Handshake(_, masks) =
                        std::mem::replace(&mut self.layer, Layer::Done)
                    else {
                        return;
                    };
                    let mut masks = masks;
                    let mut ws =
                        WsConnection::client(self.ws_config.clone(), move || masks.mask_key());
                    for b in self.waiting.drain(..) {
                        let kind = if std::str::from_utf8(&b).is_ok() {
                            MessageKind::Text
                        } else {
                            MessageKind::Binary
                        };
                        let _ = ws.send_bytes(kind, b);
                    }
                    self.layer = Layer::WebSocket(Box::new(ws));
                    self.events.push_back(ClientEvent::Open {
                        subprotocol: up.negotiated.protocol.clone(),
                    });
                    if !up.leftover.is_empty() {
                        self.handle_read(&up.leftover);
                    }
                }
            }
            Layer::WebSocket(ws) => {
                let r = ws.handle_read(data);
                self.drain_ws();
                if let Err(e) = r {
                    self.fail(ClientError::WebSocket(e.to_string()));
                }
            }
            Layer::Raw => {
                self.input.extend_from_slice(data);
                self.parse();
            }
            Layer::Done => {}
        }
    }

    /// The server closed the socket.
    pub fn handle_eof(&mut self) {
        if let Layer::WebSocket(ws) = &mut self.layer {
            ws.handle_eof();
            self.drain_ws();
        } else {
            self.events
                .push_back(ClientEvent::Closed("server closed the connection".into()));
            self.layer = Layer::Done;
        }
    }

    /// Advances time (WebSocket close timeout).
    pub fn handle_timeout(&mut self, now_ms: u64) {
        if let Layer::WebSocket(ws) = &mut self.layer {
            ws.handle_timeout(now_ms);
            self.drain_ws();
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        match &self.layer {
            Layer::WebSocket(ws) => ws.poll_timeout(),
            _ => None,
        }
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The next bytes to write to the socket.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if let Some(b) = self.out.pop_front() {
            return Some(b);
        }
        match &mut self.layer {
            Layer::Handshake(hs, _) => hs.poll_transmit_vec().map(Bytes::from),
            Layer::WebSocket(ws) => {
                let b = ws.poll_transmit();
                self.drain_ws();
                b
            }
            Layer::Raw | Layer::Done => None,
        }
    }

    /// Whether the host should close the socket now.
    pub fn should_close_transport(&self) -> bool {
        match &self.layer {
            Layer::WebSocket(ws) => ws.should_close_transport(),
            Layer::Done => true,
            _ => self.failed,
        }
    }

    fn fail(&mut self, e: ClientError) {
        if !self.failed {
            self.failed = true;
            self.events.push_back(ClientEvent::Error(e));
        }
        if let Layer::Handshake(..) = self.layer {
            self.layer = Layer::Done;
        }
    }

    fn drain_ws(&mut self) {
        let Layer::WebSocket(ws) = &mut self.layer else {
            return;
        };
        let mut closed = None;
        while let Some(ev) = ws.poll_event() {
            match ev {
                WsEvent::Text(b) | WsEvent::Binary(b) => self.input.extend_from_slice(&b),
                WsEvent::Fragment(f) => self.input.extend_from_slice(&f.data),
                WsEvent::Ping(_) | WsEvent::Pong(_) => {}
                WsEvent::Closed(info) => {
                    closed = Some(format!(
                        "WebSocket closed: code {} {}",
                        info.code.0,
                        String::from_utf8_lossy(&info.reason)
                    ));
                }
            }
        }
        self.parse();
        if let Some(c) = closed {
            self.events.push_back(ClientEvent::Closed(c));
        }
    }

    fn parse(&mut self) {
        loop {
            match self.parser.parse(&mut self.input) {
                Ok(Some(frame)) => {
                    self.note_heartbeats();
                    if frame.command() == Command::Connected
                        && let Some(v) = frame.header("version").and_then(Version::parse)
                    {
                        self.version = v;
                        self.parser.set_version(v);
                    }
                    self.events.push_back(ClientEvent::Frame(frame));
                }
                Ok(None) => {
                    self.note_heartbeats();
                    return;
                }
                Err(e) => {
                    if let Layer::WebSocket(ws) = &mut self.layer {
                        let _ = ws.close(Some(CloseCode::PROTOCOL_ERROR), "not STOMP");
                    }
                    self.fail(ClientError::Stomp(e));
                    return;
                }
            }
        }
    }

    fn note_heartbeats(&mut self) {
        let n = self.parser.heartbeats();
        while self.heartbeats_seen < n {
            self.heartbeats_seen += 1;
            self.events.push_back(ClientEvent::Heartbeat);
        }
    }
}
