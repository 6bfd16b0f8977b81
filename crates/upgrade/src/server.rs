//! The server side: parse and validate a request (RFC 6455 §4.2.1), answer it with a 101
//! (§4.2.2) or a typed rejection, or report a plain HTTP request to the host.

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Misuse, RequestError};
use crate::head::{
    self, Extension, HeadParse, Headers, RawHead, Span, Status, any_has_token, is_header_value,
    is_token, list_items,
};
use crate::key::{AcceptKey, Key};
use crate::{Limits, Negotiated};

/// A parsed HTTP request head (method, target, version, headers), owning its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    raw: RawHead,
    method: Span,
    target: Span,
    minor_version: u8,
}

impl RequestHead {
    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        self.method.get_str(&self.raw.buf)
    }

    /// The request target as sent, e.g. `/stomp?token=x`.
    pub fn target(&self) -> &str {
        self.target.get_str(&self.raw.buf)
    }

    /// The path part of the target (before `?`).
    pub fn path(&self) -> &str {
        let t = self.target();
        t.split_once('?').map_or(t, |(p, _)| p)
    }

    /// The query part of the target (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.target().split_once('?').map(|(_, q)| q)
    }

    /// The minor HTTP version: `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub fn minor_version(&self) -> u8 {
        self.minor_version
    }

    /// Every header line in the order received.
    pub fn headers(&self) -> Headers<'_> {
        self.raw.headers()
    }

    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.raw.first(name)
    }

    /// The values of every header called `name` (case-insensitive), in order.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.raw.all(name)
    }

    /// The first `name` header as `&str` (`None` when absent or not UTF-8).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| core::str::from_utf8(v).ok())
    }

    /// The raw head bytes, terminator included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw.buf
    }
}

/// A valid WebSocket upgrade request (RFC 6455 §4.2.1 checks passed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    head: RequestHead,
    key: Key,
    host: Span,
    origin: Option<Span>,
    /// The first `Sec-WebSocket-Protocol` value; `protocols_repeated` when there are more.
    protocol: Option<Span>,
    protocols_repeated: bool,
}

impl UpgradeRequest {
    /// The underlying HTTP head (all headers, method, version).
    pub fn head(&self) -> &RequestHead {
        &self.head
    }

    /// The path part of the target, e.g. `/stomp`.
    pub fn path(&self) -> &str {
        self.head.path()
    }

    /// The query part of the target, if any.
    pub fn query(&self) -> Option<&str> {
        self.head.query()
    }

    /// The `Host` header (exactly one is guaranteed).
    pub fn host(&self) -> &str {
        self.host.get_str(&self.head.raw.buf)
    }

    /// The `Origin` header, if sent (browsers always send it; check it against your allowed
    /// origins and [`ServerHandshake::reject`] with [`RequestError::ForbiddenOrigin`]).
    pub fn origin(&self) -> Option<&str> {
        self.origin
            .and_then(|o| core::str::from_utf8(o.get(&self.head.raw.buf)).ok())
    }

    /// The client's `Sec-WebSocket-Key`.
    pub fn key(&self) -> Key {
        self.key
    }

    /// The `Sec-WebSocket-Accept` value answering the key.
    pub fn accept_key(&self) -> AcceptKey {
        self.key.accept()
    }

    /// The offered subprotocols, in the client's order, over every `Sec-WebSocket-Protocol`
    /// header and comma list (each is a valid token).
    pub fn protocols(&self) -> impl Iterator<Item = &str> + '_ {
        self.protocol_items()
            .map(|p| core::str::from_utf8(p).unwrap_or_default())
    }

    fn protocol_items(&self) -> impl Iterator<Item = &[u8]> + '_ {
        // Usually one header: walk its value without searching the headers again.
        let single = (!self.protocols_repeated)
            .then(|| self.protocol.map(|p| p.get(&self.head.raw.buf)))
            .flatten();
        let repeated = self
            .protocols_repeated
            .then(|| self.head.header_all("sec-websocket-protocol"))
            .into_iter()
            .flatten();
        single.into_iter().chain(repeated).flat_map(list_items)
    }

    fn offers_protocol(&self, protocol: &str) -> bool {
        self.protocol_items().any(|p| p == protocol.as_bytes())
    }

    /// The first protocol of the server's preference list that the client offered.
    pub fn choose_protocol<'p>(&self, preferences: &[&'p str]) -> Option<&'p str> {
        preferences
            .iter()
            .copied()
            .find(|want| self.offers_protocol(want))
    }

    /// The offered extensions with their parameters, in order, over every
    /// `Sec-WebSocket-Extensions` header (RFC 6455 §9.1; quoted values unescaped).
    pub fn extensions(&self) -> Vec<Extension> {
        let mut collect = head::Collect(Vec::new());
        for v in self.head.header_all("sec-websocket-extensions") {
            head::parse_extensions(v, &mut collect);
        }
        collect.0
    }

    /// Checks `accept` against the offer and appends the `101 Switching Protocols` response
    /// to `out`. Returns what was negotiated; on error nothing is written.
    pub fn accept(&self, accept: Accept<'_>, out: &mut Vec<u8>) -> Result<Negotiated, Misuse> {
        let Accept {
            protocol,
            extensions,
            headers,
        } = accept;
        if let Some(p) = protocol
            && !self.offers_protocol(p)
        {
            return Err(Misuse::ProtocolNotOffered);
        }
        if !extensions.is_empty() {
            let offered = self.extensions();
            for e in &extensions {
                if !e.is_valid() {
                    return Err(Misuse::InvalidHeader);
                }
                if !offered.iter().any(|o| o.name.eq_ignore_ascii_case(&e.name)) {
                    return Err(Misuse::ExtensionNotOffered);
                }
            }
        }
        check_extra_headers(&headers)?;
        write_101(self.accept_key(), protocol, &extensions, &headers, out);
        Ok(Negotiated {
            protocol: protocol.map(String::from),
            extensions,
        })
    }
}

/// Checks extra headers a host wants to add to a handshake message.
pub(crate) fn check_extra_headers(headers: &[(&str, &[u8])]) -> Result<(), Misuse> {
    const RESERVED: &[&str] = &[
        "upgrade",
        "connection",
        "host",
        "sec-websocket-accept",
        "sec-websocket-key",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "sec-websocket-version",
        "content-length",
        "transfer-encoding",
    ];
    for (name, value) in headers {
        if !is_token(name.as_bytes()) || !is_header_value(value) {
            return Err(Misuse::InvalidHeader);
        }
        if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            return Err(Misuse::ReservedHeader);
        }
    }
    Ok(())
}

fn write_101(
    accept: AcceptKey,
    protocol: Option<&str>,
    extensions: &[Extension],
    headers: &[(&str, &[u8])],
    out: &mut Vec<u8>,
) {
    out.reserve(256);
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    out.extend_from_slice(accept.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(p) = protocol {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(p.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !extensions.is_empty() {
        out.extend_from_slice(b"Sec-WebSocket-Extensions: ");
        for (i, e) in extensions.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            e.write(out);
        }
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// What the server answers with when it accepts: the chosen subprotocol, the accepted
/// extensions (with the parameters of the server's answer) and extra headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accept<'a> {
    protocol: Option<&'a str>,
    extensions: Vec<Extension>,
    headers: Vec<(&'a str, &'a [u8])>,
}

impl<'a> Accept<'a> {
    /// Accept with no subprotocol, no extensions, no extra headers.
    pub fn new() -> Accept<'a> {
        Accept::default()
    }

    /// Selects a subprotocol (it must be one the client offered).
    #[must_use]
    pub fn protocol(mut self, protocol: Option<&'a str>) -> Accept<'a> {
        self.protocol = protocol;
        self
    }

    /// Accepts an extension (its name must be one the client offered).
    #[must_use]
    pub fn extension(mut self, extension: Extension) -> Accept<'a> {
        self.extensions.push(extension);
        self
    }

    /// Adds a header line to the 101, e.g. `Set-Cookie`.
    #[must_use]
    pub fn header(mut self, name: &'a str, value: &'a [u8]) -> Accept<'a> {
        self.headers.push((name, value));
        self
    }
}

/// A complete request head, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A valid WebSocket upgrade request.
    Upgrade(UpgradeRequest),
    /// A plain HTTP request (no WebSocket upgrade attempted): serve it as a page.
    Http(RequestHead),
}

/// Parses one request head from the start of `buf`.
///
/// Returns `Partial` until the head is complete, then the request and the number of bytes
/// the head used: `buf[consumed..]` belongs to what follows (WebSocket frames, or the next
/// request) and must be handed on. A request that tries to upgrade to WebSocket (it lists
/// `websocket` in `Upgrade`, or has a `Sec-WebSocket-Key` or `Sec-WebSocket-Version`) is
/// validated per RFC 6455 §4.2.1; any other request is reported as [`Incoming::Http`].
pub fn parse_request(
    buf: &[u8],
    limits: &Limits,
) -> Result<Status<(Incoming, usize)>, RequestError> {
    let parsed = head::with_header_array(limits, |headers| {
        let mut req = httparse::Request::new(&mut []);
        let result = req.parse_with_uninit_headers(buf, headers);
        head::classify(buf, limits, result, |n| build(buf, n, &req))
    });
    match parsed {
        HeadParse::Partial => Ok(Status::Partial),
        HeadParse::Complete(incoming, n) => Ok(Status::Complete((incoming?, n))),
        HeadParse::TooManyHeaders => Err(RequestError::TooManyHeaders),
        HeadParse::TooLarge => Err(RequestError::HeadTooLarge),
        HeadParse::Invalid(e) => Err(RequestError::Malformed(e)),
    }
}

/// What one pass over the headers found.
#[derive(Default)]
struct Scan<'b> {
    hosts: u8,
    host: &'b [u8],
    origin: Option<&'b [u8]>,
    protocol: Option<&'b [u8]>,
    protocol_headers: u8,
    upgrade_websocket: bool,
    connection_upgrade: bool,
    keys: u8,
    key: Option<&'b [u8]>,
    versions: u8,
    version_13: bool,
    protocols_ok: bool,
    extensions_ok: bool,
}

fn scan<'b>(headers: &[httparse::Header<'b>]) -> Scan<'b> {
    let mut s = Scan {
        protocols_ok: true,
        extensions_ok: true,
        ..Scan::default()
    };
    for h in headers {
        let name = h.name.as_bytes();
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                s.hosts = s.hosts.saturating_add(1);
                s.host = h.value;
            }
            6 if name.eq_ignore_ascii_case(b"origin") => {
                s.origin = s.origin.or(Some(h.value));
            }
            7 if name.eq_ignore_ascii_case(b"upgrade") => {
                s.upgrade_websocket |= any_has_token(core::iter::once(h.value), b"websocket");
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                s.connection_upgrade |= any_has_token(core::iter::once(h.value), b"upgrade");
            }
            17 if name.eq_ignore_ascii_case(b"sec-websocket-key") => {
                s.keys = s.keys.saturating_add(1);
                s.key = Some(h.value);
            }
            21 if name.eq_ignore_ascii_case(b"sec-websocket-version") => {
                s.versions = s.versions.saturating_add(1);
                s.version_13 = h.value.trim_ascii() == b"13";
            }
            22 if name.eq_ignore_ascii_case(b"sec-websocket-protocol") => {
                s.protocols_ok &= list_items(h.value).all(is_token);
                s.protocol_headers = s.protocol_headers.saturating_add(1);
                s.protocol = s.protocol.or(Some(h.value));
            }
            24 if name.eq_ignore_ascii_case(b"sec-websocket-extensions") => {
                s.extensions_ok &= head::parse_extensions(h.value, &mut head::Validate);
            }
            _ => {}
        }
    }
    s
}

fn build(buf: &[u8], n: usize, req: &httparse::Request<'_, '_>) -> Result<Incoming, RequestError> {
    let method = req.method.unwrap_or_default();
    let target = req.path.unwrap_or_default();
    let minor_version = req.version.unwrap_or_default();
    let s = scan(req.headers);
    let head = || RequestHead {
        raw: RawHead::new(buf, n, req.headers),
        method: Span::of(buf, method.as_bytes()),
        target: Span::of(buf, target.as_bytes()),
        minor_version,
    };
    if !s.upgrade_websocket && s.keys == 0 && s.versions == 0 {
        return Ok(Incoming::Http(head()));
    }
    if method != "GET" {
        return Err(RequestError::MethodNotAllowed);
    }
    if minor_version < 1 {
        return Err(RequestError::HttpVersion);
    }
    match s.hosts {
        0 => return Err(RequestError::MissingHost),
        1 => {}
        _ => return Err(RequestError::DuplicateHost),
    }
    if !s.upgrade_websocket {
        return Err(RequestError::MissingUpgrade);
    }
    if !s.connection_upgrade {
        return Err(RequestError::MissingConnectionUpgrade);
    }
    match (s.versions, s.version_13) {
        (0, _) => return Err(RequestError::MissingVersion),
        (1, true) => {}
        _ => return Err(RequestError::UnsupportedVersion),
    }
    let key = match (s.keys, s.key) {
        (1, Some(k)) => Key::parse(k).ok_or(RequestError::InvalidKey)?,
        (0, _) | (_, None) => return Err(RequestError::MissingKey),
        _ => return Err(RequestError::DuplicateKey),
    };
    if !s.protocols_ok {
        return Err(RequestError::InvalidProtocols);
    }
    if !s.extensions_ok {
        return Err(RequestError::InvalidExtensions);
    }
    Ok(Incoming::Upgrade(UpgradeRequest {
        head: head(),
        key,
        host: Span::of(buf, s.host),
        origin: s.origin.map(|o| Span::of(buf, o)),
        protocol: s.protocol.map(|p| Span::of(buf, p)),
        protocols_repeated: s.protocol_headers > 1,
    }))
}

// ---------------------------------------------------------------------------------------------
// The state machine.

/// An event of the server handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A valid upgrade request: decide with [`ServerHandshake::accept`] or
    /// [`ServerHandshake::reject`].
    Upgrade(UpgradeRequest),
    /// A plain HTTP request: the host answers it itself (the bytes behind it are in
    /// [`ServerHandshake::take_leftover`]).
    Http(RequestHead),
}

/// Where a [`ServerHandshake`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Waiting for the rest of the request head.
    Reading,
    /// A request was parsed; the host must accept or reject it.
    Deciding,
    /// A plain HTTP request was parsed; the host serves it.
    Http,
    /// The 101 is queued: the connection is a WebSocket now.
    Upgraded,
    /// The request was rejected; the error response is queued, then close the connection.
    Rejected(RequestError),
}

/// What an accepted server handshake hands to the WebSocket layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgraded {
    /// The chosen subprotocol and the accepted extensions.
    pub negotiated: Negotiated,
    /// Bytes the client sent behind the head: the first WebSocket bytes. Never dropped.
    /// (`bytes::Bytes::from(leftover)` takes it over without a copy.)
    pub leftover: Vec<u8>,
}

/// The server handshake as a sans-IO state machine.
///
/// Drive it like every stompbox machine (the drain contract): after each `handle_*` call or
/// command, drain [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event)
/// and [`poll_timeout`](Self::poll_timeout) before the next input.
///
/// | state | input | next state |
/// |---|---|---|
/// | `Reading` | `handle_read`, head incomplete | `Reading` |
/// | `Reading` | `handle_read`, upgrade request | `Deciding` (event `Upgrade`) |
/// | `Reading` | `handle_read`, plain HTTP | `Http` (event `Http`) |
/// | `Reading` | `handle_read`, bad request; `handle_timeout` past deadline | `Rejected` (response queued) |
/// | `Deciding` | `accept` | `Upgraded` (101 queued) |
/// | `Deciding`, `Http` | `reject` | `Rejected` (response queued) |
#[derive(Debug, Clone)]
pub struct ServerHandshake {
    limits: Limits,
    buf: Vec<u8>,
    head_len: usize,
    state: ServerState,
    event: Option<ServerEvent>,
    transmit: Vec<u8>,
    sent: usize,
    deadline: Option<u64>,
}

impl Default for ServerHandshake {
    fn default() -> Self {
        ServerHandshake::new(Limits::default())
    }
}

impl ServerHandshake {
    /// A handshake waiting for a request, with these limits.
    pub fn new(limits: Limits) -> ServerHandshake {
        ServerHandshake {
            limits,
            buf: Vec::new(),
            head_len: 0,
            state: ServerState::Reading,
            event: None,
            transmit: Vec::new(),
            sent: 0,
            deadline: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// Feeds bytes received from the client, in any split.
    ///
    /// Errors: a rejected request (sticky; the error response is already queued for
    /// [`poll_transmit`](Self::poll_transmit)), or [`Misuse::WrongState`] when called after a
    /// request was reported (decide first; the bytes are then not taken).
    pub fn handle_read(&mut self, data: &[u8]) -> Result<(), Error> {
        match self.state {
            ServerState::Reading => {}
            ServerState::Rejected(e) => return Err(Error::Request(e)),
            _ => return Err(Error::Misuse(Misuse::WrongState)),
        }
        // Fast path: the whole head in the first read is parsed from `data` directly, and
        // only the bytes behind it are kept (one copy less). Same window, same outcome.
        let first = self.buf.is_empty();
        let buffered = if first {
            data.len()
        } else {
            self.buf.len() + data.len()
        };
        if !head::line_arrived(data, buffered, &self.limits) {
            self.buf.extend_from_slice(data);
            return Ok(());
        }
        if !first {
            self.buf.extend_from_slice(data);
        }
        let source: &[u8] = if first { data } else { &self.buf };
        let result = parse_request(head::parse_window(source, &self.limits), &self.limits);
        match result {
            Ok(Status::Complete((incoming, n))) => {
                if first {
                    self.buf = data.get(n..).unwrap_or_default().to_vec();
                    self.head_len = 0;
                } else {
                    self.head_len = n;
                }
                let (state, event) = match incoming {
                    Incoming::Upgrade(r) => (ServerState::Deciding, ServerEvent::Upgrade(r)),
                    Incoming::Http(r) => (ServerState::Http, ServerEvent::Http(r)),
                };
                self.state = state;
                self.event = Some(event);
                Ok(())
            }
            Ok(Status::Partial) if buffered >= self.limits.max_head_bytes => {
                Err(self.fail(RequestError::HeadTooLarge))
            }
            Ok(Status::Partial) => {
                if first {
                    self.buf.extend_from_slice(data);
                }
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn fail(&mut self, e: RequestError) -> Error {
        e.write_response(&mut self.transmit);
        self.state = ServerState::Rejected(e);
        self.buf = Vec::new();
        Error::Request(e)
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.event.take()
    }

    /// Accepts the reported upgrade request: queues the 101 and returns the negotiated
    /// result and the bytes behind the head. `request` is the one from
    /// [`ServerEvent::Upgrade`]. On error the machine is unchanged.
    pub fn accept(
        &mut self,
        request: &UpgradeRequest,
        accept: Accept<'_>,
    ) -> Result<Upgraded, Misuse> {
        if self.state != ServerState::Deciding {
            return Err(Misuse::WrongState);
        }
        let negotiated = request.accept(accept, &mut self.transmit)?;
        let leftover = self.buf.split_off(self.head_len.min(self.buf.len()));
        self.buf = Vec::new();
        self.state = ServerState::Upgraded;
        self.event = None;
        Ok(Upgraded {
            negotiated,
            leftover,
        })
    }

    /// Rejects the reported request (e.g. [`RequestError::ForbiddenOrigin`] after checking
    /// [`UpgradeRequest::origin`]): queues the error response.
    pub fn reject(&mut self, error: RequestError) -> Result<(), Misuse> {
        if !matches!(self.state, ServerState::Deciding | ServerState::Http) {
            return Err(Misuse::WrongState);
        }
        self.event = None;
        let _ = self.fail(error);
        Ok(())
    }

    /// The bytes received behind the reported head (e.g. a pipelined request after a plain
    /// HTTP one). Empty before a head was reported and after `accept` (which returned them).
    pub fn take_leftover(&mut self) -> Vec<u8> {
        if matches!(self.state, ServerState::Deciding | ServerState::Http) {
            let rest = self.buf.split_off(self.head_len.min(self.buf.len()));
            self.head_len = self.buf.len();
            rest
        } else {
            Vec::new()
        }
    }

    /// Copies queued output into `out`; returns how many bytes were written (0 when
    /// nothing is pending).
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> usize {
        let pending = self.transmit.get(self.sent..).unwrap_or_default();
        let n = pending.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), pending.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.sent += n;
        if self.sent == self.transmit.len() {
            self.transmit.clear();
            self.sent = 0;
        }
        n
    }

    /// Takes all queued output at once, if any.
    pub fn poll_transmit_vec(&mut self) -> Option<Vec<u8>> {
        if self.sent >= self.transmit.len() {
            return None;
        }
        let mut out = core::mem::take(&mut self.transmit);
        out.drain(..self.sent);
        self.sent = 0;
        Some(out)
    }

    /// `true` while output is queued.
    pub fn wants_transmit(&self) -> bool {
        self.sent < self.transmit.len()
    }

    /// Tells the machine the time (a monotonic millisecond count chosen by the host). The
    /// first call arms the handshake deadline ([`Limits::handshake_timeout_ms`]); a call at
    /// or after the deadline while the head is still incomplete rejects with 408.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let Some(timeout) = self.limits.handshake_timeout_ms else {
            return;
        };
        match self.deadline {
            None => self.deadline = Some(now_ms.saturating_add(timeout)),
            Some(d) if now_ms >= d && self.state == ServerState::Reading => {
                let _ = self.fail(RequestError::Timeout);
            }
            Some(_) => {}
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next (while reading).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.state == ServerState::Reading {
            self.deadline
        } else {
            None
        }
    }
}
