//! [`ClientConnection`]: the client side, stacked: the HTTP/1.1 Upgrade, the WebSocket, and a
//! [`ClientSession`] (CONNECT, heart-beats, receipts, acks) — or the session over raw TCP.

use std::collections::VecDeque;
use std::fmt;

use bytes::{Bytes, BytesMut};
use stompbox_stomp::client::{ClientConfig, ClientEvent as StompEvent, ClientSession};
use stompbox_upgrade::{
    ClientEvent as HsEvent, ClientHandshake, ClientRequest, ClientState, DeflateOffer,
    DeflateParams,
};
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
    /// The server broke STOMP (or sent ERROR); the session's own event says more.
    Stomp(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Handshake(e) => write!(f, "handshake failed: {e}"),
            ClientError::WebSocket(e) => write!(f, "WebSocket error: {e}"),
            ClientError::Stomp(e) => write!(f, "STOMP error: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// What a [`ClientConnection`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "events are handed out one at a time, not stored in bulk; boxing would cost every message"
)]
pub enum ClientEvent {
    /// The WebSocket is open (after the 101), with the chosen subprotocol.
    Open {
        /// `v12.stomp` etc., or `None` when the server chose none.
        subprotocol: Option<String>,
    },
    /// An event of the STOMP session: `Connected`, `Message`, `Receipt`, `Error`,
    /// `HeartBeatTimeout`, `Closed`.
    Stomp(StompEvent),
    /// The transport failed (the reply, e.g. a Close frame, is queued).
    Error(ClientError),
    /// The transport is done (WebSocket closed, or EOF).
    Closed(String),
}

enum Layer {
    Handshake(Box<ClientHandshake>, Box<dyn MaskSource + Send>),
    WebSocket(Box<WsConnection>),
    Raw,
    Done,
}

/// A STOMP client connection as a sans-IO machine: it queues the HTTP Upgrade request (offering
/// `v12.stomp`, `v11.stomp`, `v10.stomp`), then carries the [`ClientSession`]'s output as
/// masked WebSocket messages and feeds the server's messages to the session. On raw TCP the
/// session's bytes are the socket bytes. The CONNECT frame is queued at construction (from the
/// [`ClientConfig`]); commands go through [`session`](Self::session) once
/// `ClientEvent::Stomp(Connected)` arrived.
///
/// The drain contract: after every `handle_*` call or command, drain
/// [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event) and
/// [`poll_timeout`](Self::poll_timeout) before the next input. Heart-beats are sent from
/// [`handle_timeout`](Self::handle_timeout).
pub struct ClientConnection {
    layer: Layer,
    session: ClientSession,
    out: VecDeque<Bytes>,
    events: VecDeque<ClientEvent>,
    ws_config: stompbox_ws::Config,
    deflate_offer: Option<DeflateOffer>,
    deflate: Option<DeflateParams>,
    failed: bool,
    scratch: BytesMut,
}

impl fmt::Debug for ClientConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConnection")
            .field("session", &self.session.state())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl ClientConnection {
    /// A client that upgrades `GET path` on `host` to a WebSocket. `nonce` is 16 random bytes
    /// (the `Sec-WebSocket-Key`); `masks` supplies one masking key per frame (use a strong
    /// random source against real servers); `config` is the STOMP session's (host, login,
    /// heart-beat, ...).
    pub fn websocket(
        host: &str,
        path: &str,
        nonce: [u8; 16],
        masks: impl MaskSource + Send + 'static,
        config: ClientConfig,
    ) -> Self {
        Self::websocket_with_deflate(host, path, nonce, masks, config, None)
    }

    /// Like [`websocket`](Self::websocket), also offering permessage-deflate (RFC 7692) when
    /// `deflate` is given. If the server accepts, messages are compressed both ways (see
    /// [`deflate`](Self::deflate)); an answer that breaks the offer fails the handshake.
    pub fn websocket_with_deflate(
        host: &str,
        path: &str,
        nonce: [u8; 16],
        masks: impl MaskSource + Send + 'static,
        config: ClientConfig,
        deflate: Option<DeflateOffer>,
    ) -> Self {
        let mut request = ClientRequest::new(host, path).protocols(&STOMP_SUBPROTOCOLS);
        if let Some(offer) = &deflate {
            request = request.extension(offer.extension());
        }
        let mut c = Self::with_layer(Layer::Done, config);
        c.deflate_offer = deflate;
        match ClientHandshake::new(&request, nonce, stompbox_upgrade::Limits::default()) {
            Ok(hs) => c.layer = Layer::Handshake(Box::new(hs), Box::new(masks)),
            Err(e) => c.fail(ClientError::Handshake(format!(
                "cannot build the request: {e}"
            ))),
        }
        c
    }

    /// A client speaking raw STOMP over TCP.
    pub fn raw_stomp(config: ClientConfig) -> Self {
        Self::with_layer(Layer::Raw, config)
    }

    fn with_layer(layer: Layer, config: ClientConfig) -> Self {
        Self {
            layer,
            session: ClientSession::new(config),
            out: VecDeque::new(),
            events: VecDeque::new(),
            ws_config: stompbox_ws::Config::default(),
            deflate_offer: None,
            deflate: None,
            failed: false,
            scratch: BytesMut::new(),
        }
    }

    /// The permessage-deflate parameters the server accepted, if any (known once open).
    pub fn deflate(&self) -> Option<DeflateParams> {
        self.deflate
    }

    /// Replaces the WebSocket limits (before the connection opens).
    pub fn set_ws_config(&mut self, config: stompbox_ws::Config) {
        self.ws_config = config;
    }

    /// The STOMP session: send, subscribe, ack, nack, transactions, disconnect, state. Its
    /// output leaves through [`poll_transmit`](Self::poll_transmit).
    pub fn session(&mut self) -> &mut ClientSession {
        &mut self.session
    }

    /// Queues STOMP bytes as they are, outside the session (e.g. for tests of a server's
    /// error handling); on a WebSocket, one message.
    pub fn send_raw(&mut self, bytes: Bytes) {
        match &mut self.layer {
            Layer::WebSocket(ws) => {
                let _ = ws.send_bytes(kind_of(&bytes), bytes);
            }
            Layer::Raw | Layer::Handshake(..) => self.out.push_back(bytes),
            Layer::Done => {}
        }
    }

    /// Closes the WebSocket (1000) or ends the raw stream (after DISCONNECT, say).
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
                    let mut ws_config = self.ws_config.clone();
                    if let Some(offer) = &self.deflate_offer {
                        match offer.check_response(&up.negotiated.extensions) {
                            Ok(params) => self.deflate = params,
                            Err(e) => {
                                self.fail(ClientError::Handshake(format!(
                                    "bad permessage-deflate answer: {e}"
                                )));
                                return;
                            }
                        }
                    }
                    if let Some(p) = self.deflate {
                        ws_config =
                            ws_config.deflate(Some(stompbox_ws::DeflateConfig::negotiated(
                                p.server_no_context_takeover,
                                p.client_no_context_takeover,
                                p.server_max_window_bits,
                                p.client_max_window_bits,
                            )));
                    }
                    let ws = WsConnection::client(ws_config, move || masks.mask_key());
                    self.layer = Layer::WebSocket(Box::new(ws));
                    self.events.push_back(ClientEvent::Open {
                        subprotocol: up.negotiated.protocol.clone(),
                    });
                    // Raw bytes queued before the upgrade go first, as one message each.
                    for b in std::mem::take(&mut self.out) {
                        self.send_raw(b);
                    }
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
            Layer::Raw => self.feed_session(data),
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

    /// Advances time: the session's heart-beats and liveness, the WebSocket close timeout.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.session.handle_timeout(now_ms);
        self.drain_session();
        if let Layer::WebSocket(ws) = &mut self.layer {
            ws.handle_timeout(now_ms);
            self.drain_ws();
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let ws = match &self.layer {
            Layer::WebSocket(ws) => ws.poll_timeout(),
            _ => None,
        };
        match (self.session.poll_timeout(), ws) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
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
        match &mut self.layer {
            Layer::Handshake(hs, _) => hs.poll_transmit_vec().map(Bytes::from),
            Layer::WebSocket(ws) => {
                // The session's pending output becomes one WebSocket message.
                while let Some(b) = self.session.poll_transmit() {
                    self.scratch.extend_from_slice(&b);
                }
                if !self.scratch.is_empty() {
                    let msg = self.scratch.split().freeze();
                    let _ = ws.send_bytes(kind_of(&msg), msg);
                }
                let b = ws.poll_transmit();
                self.drain_ws();
                b
            }
            Layer::Raw => self
                .out
                .pop_front()
                .or_else(|| self.session.poll_transmit()),
            Layer::Done => None,
        }
    }

    /// Whether the host should close the socket now.
    pub fn should_close_transport(&self) -> bool {
        match &self.layer {
            Layer::WebSocket(ws) => ws.should_close_transport(),
            Layer::Done => true,
            Layer::Raw => self.failed || self.session.is_finished(),
            Layer::Handshake(..) => self.failed,
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

    fn feed_session(&mut self, data: &[u8]) {
        let r = self.session.handle_read(data);
        self.drain_session();
        if let Err(e) = r {
            if let Layer::WebSocket(ws) = &mut self.layer {
                let _ = ws.close(Some(CloseCode::PROTOCOL_ERROR), "STOMP error");
            }
            self.fail(ClientError::Stomp(e.to_string()));
        }
    }

    fn drain_session(&mut self) {
        while let Some(e) = self.session.poll_event() {
            self.events.push_back(ClientEvent::Stomp(e));
        }
    }

    fn drain_ws(&mut self) {
        let Layer::WebSocket(ws) = &mut self.layer else {
            return;
        };
        let mut input = Vec::new();
        let mut closed = None;
        while let Some(ev) = ws.poll_event() {
            match ev {
                WsEvent::Text(b) | WsEvent::Binary(b) => input.push(b),
                WsEvent::Fragment(f) => input.push(f.data),
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
        for b in input {
            self.feed_session(&b);
        }
        if let Some(c) = closed {
            self.events.push_back(ClientEvent::Closed(c));
        }
    }
}

fn kind_of(bytes: &[u8]) -> MessageKind {
    if std::str::from_utf8(bytes).is_ok() {
        MessageKind::Text
    } else {
        MessageKind::Binary
    }
}
