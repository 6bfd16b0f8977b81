//! [`ServerConnection`]: one accepted transport, stacked handshake -> WebSocket -> STOMP bytes.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use stompbox_upgrade::{
    Accept, DeflateParams, DeflatePolicy, ServerEvent as HsEvent, ServerHandshake,
};
use stompbox_ws::{CloseCode, Connection as WsConnection, Event as WsEvent, MessageKind};

use crate::HttpRequest;

/// The STOMP subprotocols, in our order of preference (STOMP 1.2 spec, "WebSocket" section of
/// the de-facto convention used by stomp.js, Spring and RabbitMQ).
pub const STOMP_SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// Which listener a connection came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// HTTP/1.1: plain requests (pages) or an Upgrade to WebSocket carrying STOMP.
    WebSocket,
    /// Raw STOMP over TCP (the STOMP bytes are the socket bytes).
    RawStomp,
}

impl Transport {
    /// `"websocket"` or `"tcp"`, for logs.
    pub fn name(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::RawStomp => "tcp",
        }
    }
}

/// What a WebSocket carries once open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// STOMP frames (the configured STOMP path), with the negotiated subprotocol if any.
    Stomp {
        /// `v12.stomp`, `v11.stomp`, `v10.stomp`, or `None` when the client offered none.
        subprotocol: Option<String>,
    },
    /// The echo route: every message is sent back as it came (for Autobahn); no events.
    Echo,
}

impl Route {
    /// Is this the echo route?
    pub fn is_echo(&self) -> bool {
        matches!(self, Route::Echo)
    }
}

/// Configuration shared by every [`ServerConnection`] of a listener.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// The WebSocket path of STOMP. Default `/ws`.
    pub stomp_path: String,
    /// An optional WebSocket echo path (for conformance suites). Default none.
    pub echo_path: Option<String>,
    /// Origins allowed to open a WebSocket; empty allows any. A request whose Origin is not
    /// listed gets 403.
    pub allowed_origins: Vec<String>,
    /// Largest WebSocket frame payload. Default 1 MiB.
    pub max_frame: usize,
    /// Largest WebSocket message (and so STOMP bytes per message). Default 1 MiB.
    pub max_message: usize,
    /// Largest output a WebSocket connection buffers. Default 8 MiB.
    pub max_output: usize,
    /// Limits of the HTTP head (size, header count, time to arrive).
    pub upgrade: stompbox_upgrade::Limits,
    /// How long to wait for the peer's Close after ours, in milliseconds. Default 2,000.
    pub close_timeout_ms: u64,
    /// Limits of the echo route: message and frame size (Autobahn 9.x sends 16 MiB). Default
    /// 16 MiB + 1 KiB.
    pub echo_max_message: usize,
    /// permessage-deflate (RFC 7692): the policy used to answer a client's offer, or `None`
    /// to never negotiate it. Default on, with [`DeflatePolicy::default`] (context takeover and
    /// 15-bit windows both ways). A connection that negotiates it keeps about 300 KiB of zlib
    /// state ([`ServerConnection::deflate_memory`]); set `server_no_context_takeover` and
    /// `client_no_context_takeover` so that no LZ77 history outlives a message (the zlib state
    /// itself stays allocated; smaller `*_max_window_bits` shrink it).
    pub deflate: Option<DeflatePolicy>,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            stomp_path: "/ws".to_owned(),
            echo_path: None,
            allowed_origins: Vec::new(),
            max_frame: 1 << 20,
            max_message: 1 << 20,
            max_output: 8 << 20,
            upgrade: stompbox_upgrade::Limits::default(),
            close_timeout_ms: 2_000,
            echo_max_message: (16 << 20) + 1024,
            deflate: Some(DeflatePolicy::default()),
        }
    }
}

impl ConnectionConfig {
    fn ws_config(
        &self,
        route: &Route,
        deflate: Option<stompbox_upgrade::DeflateParams>,
    ) -> stompbox_ws::Config {
        let c = stompbox_ws::Config::default()
            .close_timeout_ms(self.close_timeout_ms)
            .deflate(deflate.map(|p| {
                stompbox_ws::DeflateConfig::negotiated(
                    p.server_no_context_takeover,
                    p.client_no_context_takeover,
                    p.server_max_window_bits,
                    p.client_max_window_bits,
                )
            }));
        match route {
            // Streaming: STOMP is a byte stream, so pieces of a message go to the STOMP parser
            // as they arrive; no whole message is buffered here, and the broker's smaller
            // limits before CONNECT apply to the first bytes already.
            Route::Stomp { .. } => c
                .streaming(true)
                .max_frame_size(self.max_frame)
                .max_message_size(self.max_message)
                .max_output_buffer(self.max_output.max(2 * self.max_message)),
            Route::Echo => c
                .max_frame_size(self.echo_max_message)
                .max_message_size(self.echo_max_message)
                .max_fragments(1 << 17)
                .max_output_buffer(4 * self.echo_max_message),
        }
    }

    fn origin_allowed(&self, origin: Option<&str>) -> bool {
        if self.allowed_origins.is_empty() {
            return true;
        }
        origin.is_some_and(|o| {
            self.allowed_origins
                .iter()
                .any(|a| a.eq_ignore_ascii_case(o))
        })
    }
}

/// What a [`ServerConnection`] reports to its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A plain HTTP request (no upgrade): answer it with [`ServerConnection::respond`].
    Http(HttpRequest),
    /// The WebSocket is open (the 101 is queued). For [`Route::Stomp`], open a broker session.
    Open(Route),
    /// STOMP bytes from the client, in any split: feed them to the broker session.
    Stomp(Bytes),
    /// The handshake was refused (the HTTP error response is queued).
    Rejected(String),
    /// The peer broke the WebSocket protocol or a limit (the Close frame is queued). Sticky.
    Error(String),
    /// The transport is done from the protocol's view (the WebSocket closed, or EOF).
    Closed(String),
}

enum Layer {
    Handshake(Box<ServerHandshake>),
    WebSocket(Box<WsConnection>, Route),
    Raw,
    /// An HTTP response or a rejection is queued; nothing more is read.
    Done,
}

/// One accepted transport as a sans-IO machine: the HTTP/1.1 head (a page request, or an
/// Upgrade), then WebSocket frames whose messages carry STOMP — or, on a raw STOMP listener,
/// the socket bytes as STOMP. The host feeds socket bytes in, and gets STOMP bytes for its broker
/// session out as [`ServerEvent::Stomp`]; what the broker answers goes back with
/// [`send_stomp`](Self::send_stomp), framed as one WebSocket message per STOMP frame.
///
/// The drain contract: after every `handle_*` call or command, drain
/// [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event) and
/// [`poll_timeout`](Self::poll_timeout) before the next input.
pub struct ServerConnection {
    config: Arc<ConnectionConfig>,
    transport: Transport,
    layer: Layer,
    events: VecDeque<ServerEvent>,
    /// Output of this facade itself (raw STOMP, HTTP responses), before the layer's.
    out: VecDeque<Bytes>,
    out_len: usize,
    finished: bool,
    open: bool,
    scratch: BytesMut,
    deflate: Option<DeflateParams>,
}

impl fmt::Debug for ServerConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConnection")
            .field("transport", &self.transport)
            .field("handshaking", &self.is_handshaking())
            .field("open", &self.open)
            .field("finished", &self.finished)
            .field("pending_output", &self.pending_output())
            .finish_non_exhaustive()
    }
}

/// Whether `data` is valid UTF-8 (the text/binary choice of a WebSocket message).
fn is_utf8(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok()
}

impl ServerConnection {
    /// A connection accepted on an HTTP + WebSocket listener. `now_ms` (the host's monotonic
    /// milliseconds) arms the handshake deadline.
    pub fn websocket(config: &Arc<ConnectionConfig>, now_ms: u64) -> Self {
        let mut hs = ServerHandshake::new(config.upgrade);
        hs.handle_timeout(now_ms);
        Self::with_layer(config, Transport::WebSocket, Layer::Handshake(Box::new(hs)))
    }

    /// The permessage-deflate parameters negotiated in the handshake, if the client offered
    /// the extension and [`ConnectionConfig::deflate`] accepted it.
    pub fn deflate(&self) -> Option<DeflateParams> {
        self.deflate
    }

    /// Bytes of zlib state the permessage-deflate transform keeps for this connection (0
    /// without deflate).
    pub fn deflate_memory(&self) -> usize {
        match &self.layer {
            Layer::WebSocket(ws, _) => ws.deflate_memory(),
            _ => 0,
        }
    }

    /// A connection accepted on a raw STOMP/TCP listener.
    pub fn raw_stomp(config: &Arc<ConnectionConfig>) -> Self {
        let mut c = Self::with_layer(config, Transport::RawStomp, Layer::Raw);
        c.open = true;
        c
    }

    fn with_layer(config: &Arc<ConnectionConfig>, transport: Transport, layer: Layer) -> Self {
        Self {
            config: Arc::clone(config),
            transport,
            layer,
            events: VecDeque::new(),
            out: VecDeque::new(),
            out_len: 0,
            finished: false,
            open: false,
            scratch: BytesMut::new(),
            deflate: None,
        }
    }

    /// The listener kind.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Still reading the HTTP head.
    pub fn is_handshaking(&self) -> bool {
        matches!(self.layer, Layer::Handshake(_))
    }

    /// The STOMP carrier was open at some point (WebSocket upgraded, or raw STOMP).
    pub fn was_open(&self) -> bool {
        self.open
    }

    /// Feeds bytes read from the socket. Results come out as events; errors are events too
    /// ([`ServerEvent::Rejected`], [`ServerEvent::Error`]) with their reply already queued.
    pub fn handle_read(&mut self, data: &[u8]) {
        match &mut self.layer {
            Layer::Handshake(hs) => {
                if let Err(e) = hs.handle_read(data) {
                    self.events.push_back(ServerEvent::Rejected(e.to_string()));
                    self.finish_handshake_output();
                    return;
                }
                self.drive_handshake();
            }
            Layer::WebSocket(ws, _) => {
                let r = ws.handle_read(data);
                self.drain_ws();
                if let Err(e) = r {
                    self.events.push_back(ServerEvent::Error(e.to_string()));
                }
            }
            Layer::Raw => {
                if !self.finished {
                    self.events
                        .push_back(ServerEvent::Stomp(Bytes::copy_from_slice(data)));
                }
            }
            Layer::Done => {}
        }
    }

    /// The peer closed its side (read returned 0) or the socket failed.
    pub fn handle_eof(&mut self) {
        match &mut self.layer {
            Layer::WebSocket(ws, _) => {
                ws.handle_eof();
                self.drain_ws();
            }
            Layer::Handshake(_) | Layer::Raw | Layer::Done => {
                if !self.finished {
                    self.events
                        .push_back(ServerEvent::Closed("peer closed the connection".into()));
                }
                self.finished = true;
                self.layer = Layer::Done;
            }
        }
    }

    /// Advances time (the host's monotonic milliseconds): the handshake deadline (408) and the
    /// WebSocket close timeout.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        match &mut self.layer {
            Layer::Handshake(hs) => {
                hs.handle_timeout(now_ms);
                if let stompbox_upgrade::ServerState::Rejected(e) = hs.state() {
                    self.events.push_back(ServerEvent::Rejected(e.to_string()));
                    self.finish_handshake_output();
                }
            }
            Layer::WebSocket(ws, _) => {
                ws.handle_timeout(now_ms);
                self.drain_ws();
            }
            Layer::Raw | Layer::Done => {}
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        match &self.layer {
            Layer::Handshake(hs) => hs.poll_timeout(),
            Layer::WebSocket(ws, _) => ws.poll_timeout(),
            Layer::Raw | Layer::Done => None,
        }
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// The next bytes to write to the socket, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if let Some(b) = self.out.pop_front() {
            self.out_len -= b.len();
            return Some(b);
        }
        match &mut self.layer {
            Layer::Handshake(hs) => hs.poll_transmit_vec().map(Bytes::from),
            Layer::WebSocket(ws, _) => {
                let b = ws.poll_transmit();
                if b.is_some() {
                    // Draining the Close echo may complete the close handshake.
                    self.drain_ws();
                }
                b
            }
            Layer::Raw | Layer::Done => None,
        }
    }

    /// Bytes queued for the socket (for backpressure).
    pub fn pending_output(&self) -> usize {
        self.out_len
            + match &self.layer {
                Layer::WebSocket(ws, _) => ws.pending_output(),
                Layer::Handshake(hs) => usize::from(hs.wants_transmit()),
                Layer::Raw | Layer::Done => 0,
            }
    }

    /// The host should close the socket once [`pending_output`](Self::pending_output) is 0.
    pub fn is_finished(&self) -> bool {
        match &self.layer {
            Layer::WebSocket(ws, _) => ws.should_close_transport(),
            _ => self.finished,
        }
    }

    /// Sends one STOMP frame (or any STOMP bytes) from the broker: on a WebSocket, one message
    /// (text when valid UTF-8, else binary); on raw STOMP, the bytes as they are. Dropped
    /// silently only when the connection is already closing (the broker session is ending).
    pub fn send_stomp(&mut self, parts: &[&[u8]]) {
        match &mut self.layer {
            Layer::WebSocket(ws, Route::Stomp { .. }) => {
                let total: usize = parts.iter().map(|p| p.len()).sum();
                self.scratch.reserve(total);
                for p in parts {
                    self.scratch.extend_from_slice(p);
                }
                let msg = self.scratch.split().freeze();
                let kind = if is_utf8(&msg) {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                if let Err(e) = ws.send_bytes(kind, msg)
                    && !matches!(e, stompbox_ws::SendError::Closed)
                {
                    {
                        // Output full: the host let the buffer grow past its bound.
                        let _ = ws.close(Some(CloseCode::POLICY), "output limit");
                        self.events
                            .push_back(ServerEvent::Error(format!("cannot send: {e}")));
                    }
                }
            }
            Layer::Raw if !self.finished => {
                for p in parts {
                    if !p.is_empty() {
                        self.push_out(Bytes::copy_from_slice(p));
                    }
                }
            }
            _ => {}
        }
    }

    /// Sends STOMP bytes that are already `Bytes` (no copy on raw STOMP).
    pub fn send_stomp_bytes(&mut self, data: Bytes) {
        if matches!(self.layer, Layer::Raw) && !self.finished {
            self.push_out(data);
        } else {
            self.send_stomp(&[&data]);
        }
    }

    /// Answers a plain HTTP request ([`ServerEvent::Http`]); the connection closes after it.
    pub fn respond(&mut self, status: u16, content_type: &str, body: &[u8], head_only: bool) {
        if !matches!(self.layer, Layer::Handshake(_)) {
            return;
        }
        let mut out = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            reason_phrase(status),
            body.len()
        )
        .into_bytes();
        if !head_only {
            out.extend_from_slice(body);
        }
        self.layer = Layer::Done;
        self.finished = true;
        self.push_out(Bytes::from(out));
    }

    /// The broker ended the session (after its last frames were sent with `send_stomp`): close
    /// the WebSocket with 1000, or end the raw STOMP stream.
    pub fn finish(&mut self) {
        self.close_with(CloseCode::NORMAL, "");
    }

    /// The session could not be opened (e.g. the session limit): WebSocket close 1013 (try
    /// again later), or an ERROR frame on raw STOMP.
    pub fn refuse(&mut self, why: &str) {
        self.close_with(CloseCode(1013), why);
    }

    /// The server is stopping: WebSocket close 1001 (going away), an ERROR frame on raw STOMP,
    /// a 503 for a connection still in its handshake.
    pub fn shutdown(&mut self, why: &str) {
        self.close_with(CloseCode::GOING_AWAY, why);
    }

    fn close_with(&mut self, code: CloseCode, why: &str) {
        match &mut self.layer {
            Layer::WebSocket(ws, _) => {
                let reason = truncate_utf8(why, 120);
                // Already closing: nothing to add.
                let _ = ws.close(Some(code), reason);
            }
            Layer::Raw => {
                if !self.finished && code != CloseCode::NORMAL {
                    let frame = error_frame(why);
                    self.push_out(frame);
                }
                self.finished = true;
            }
            Layer::Handshake(_) => {
                if code == CloseCode::GOING_AWAY {
                    self.layer = Layer::Done;
                    self.push_out(Bytes::from_static(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ));
                } else {
                    self.layer = Layer::Done;
                }
                self.finished = true;
            }
            Layer::Done => self.finished = true,
        }
    }

    fn push_out(&mut self, b: Bytes) {
        self.out_len += b.len();
        self.out.push_back(b);
    }

    fn finish_handshake_output(&mut self) {
        if let Layer::Handshake(hs) = &mut self.layer
            && let Some(v) = hs.poll_transmit_vec()
        {
            let b = Bytes::from(v);
            self.out_len += b.len();
            self.out.push_back(b);
        }
        self.layer = Layer::Done;
        self.finished = true;
    }

    fn drive_handshake(&mut self) {
        let Layer::Handshake(hs) = &mut self.layer else {
            return;
        };
        let Some(ev) = hs.poll_event() else { return };
        match ev {
            HsEvent::Http(head) => {
                let req = HttpRequest {
                    method: head.method().to_owned(),
                    path: head.path().to_owned(),
                    query: head.query().map(str::to_owned),
                    headers: head
                        .headers()
                        .map(|h| (h.name.to_owned(), h.value.to_vec()))
                        .collect(),
                };
                self.events.push_back(ServerEvent::Http(req));
            }
            HsEvent::Upgrade(req) => {
                let route = if req.path() == self.config.stomp_path {
                    Route::Stomp { subprotocol: None }
                } else if self.config.echo_path.as_deref() == Some(req.path()) {
                    Route::Echo
                } else {
                    let msg = format!("no WebSocket endpoint at {}", req.path());
                    self.layer = Layer::Done;
                    self.finished = true;
                    self.push_out(Bytes::from_static(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ));
                    self.events.push_back(ServerEvent::Rejected(msg));
                    return;
                };
                if !self.config.origin_allowed(req.origin()) {
                    let _ = hs.reject(stompbox_upgrade::RequestError::ForbiddenOrigin);
                    let origin = req.origin().unwrap_or("(none)").to_owned();
                    self.events.push_back(ServerEvent::Rejected(format!(
                        "origin {origin} not allowed"
                    )));
                    self.finish_handshake_output();
                    return;
                }
                let (protocol, route) = match route {
                    Route::Stomp { .. } => {
                        let p = req.choose_protocol(&STOMP_SUBPROTOCOLS);
                        (
                            p,
                            Route::Stomp {
                                subprotocol: p.map(str::to_owned),
                            },
                        )
                    }
                    Route::Echo => (None, Route::Echo),
                };
                let mut accept = Accept::new().protocol(protocol);
                // permessage-deflate when the client offers it and the policy allows; an
                // offer we cannot accept is simply not answered (RFC 7692 section 5).
                let agreed = self
                    .config
                    .deflate
                    .as_ref()
                    .and_then(|policy| req.negotiate_deflate(policy));
                let params = agreed.as_ref().map(|a| a.params);
                if let Some(a) = agreed {
                    accept = accept.extension(a.response);
                }
                match hs.accept(&req, accept) {
                    Ok(up) => {
                        let handshake_out = hs.poll_transmit_vec();
                        if let Some(v) = handshake_out {
                            self.push_out(Bytes::from(v));
                        }
                        let ws = WsConnection::server(self.config.ws_config(&route, params));
                        self.deflate = params;
                        self.layer = Layer::WebSocket(Box::new(ws), route.clone());
                        self.open = true;
                        self.events.push_back(ServerEvent::Open(route));
                        if !up.leftover.is_empty() {
                            self.handle_read(&up.leftover);
                        }
                    }
                    Err(e) => {
                        self.events
                            .push_back(ServerEvent::Rejected(format!("cannot accept: {e}")));
                        self.finish_handshake_output();
                    }
                }
            }
        }
    }

    fn drain_ws(&mut self) {
        let Layer::WebSocket(ws, route) = &mut self.layer else {
            return;
        };
        while let Some(ev) = ws.poll_event() {
            match ev {
                // The echo route answers at once, before a later event of the same read (e.g.
                // Closed after a violation) is taken: the echo leaves before the Close frame.
                WsEvent::Text(b) if route.is_echo() => {
                    let _ = ws.send_bytes(MessageKind::Text, b);
                }
                WsEvent::Binary(b) if route.is_echo() => {
                    let _ = ws.send_bytes(MessageKind::Binary, b);
                }
                WsEvent::Text(b) | WsEvent::Binary(b) => {
                    self.events.push_back(ServerEvent::Stomp(b));
                }
                WsEvent::Fragment(f) => {
                    if let Route::Stomp { .. } = route {
                        self.events.push_back(ServerEvent::Stomp(f.data));
                    }
                }
                WsEvent::Ping(_) | WsEvent::Pong(_) => {}
                WsEvent::Closed(info) => {
                    let reason = String::from_utf8_lossy(&info.reason).into_owned();
                    self.events.push_back(ServerEvent::Closed(format!(
                        "WebSocket closed: code {}{}{}",
                        info.code.0,
                        if reason.is_empty() { "" } else { ", " },
                        reason
                    )));
                }
            }
        }
    }
}

/// An ERROR frame with a `message` header (used on raw STOMP when the server refuses or stops).
fn error_frame(message: &str) -> Bytes {
    let clean: String = message
        .chars()
        .map(|c| {
            if c == '\n' || c == '\r' || c == ':' {
                ' '
            } else {
                c
            }
        })
        .collect();
    Bytes::from(format!("ERROR\nmessage:{clean}\n\n\0"))
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
