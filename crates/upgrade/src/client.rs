//! The client side: build the upgrade request (RFC 6455 §4.1) and check the server's answer.

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Misuse, ResponseError};
use crate::head::{
    self, Extension, HeadParse, Headers, RawHead, Span, Status, any_has_token, is_header_value,
    is_token, list_items,
};
use crate::key::{AcceptKey, Key};
use crate::server::check_extra_headers;
use crate::{Limits, Negotiated};

/// The client's upgrade request, as a builder.
///
/// ```
/// use stompbox_upgrade::{ClientRequest, Extension};
/// let mut out = Vec::new();
/// let key = ClientRequest::new("example.com", "/stomp")
///     .origin("https://example.com")
///     .protocols(&["v12.stomp", "v11.stomp"])
///     .extension(Extension::new("permessage-deflate").with_param("client_max_window_bits", None))
///     .write(*b"the sample nonce", &mut out)
///     .unwrap();
/// assert_eq!(key.as_str(), "dGhlIHNhbXBsZSBub25jZQ==");
/// assert!(out.starts_with(b"GET /stomp HTTP/1.1\r\nHost: example.com\r\n"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest<'a> {
    host: &'a str,
    path: &'a str,
    origin: Option<&'a str>,
    protocols: Vec<&'a str>,
    extensions: Vec<Extension>,
    headers: Vec<(&'a str, &'a [u8])>,
}

impl<'a> ClientRequest<'a> {
    /// A request for `path` (starting with `/`, query included) on `host` (`name[:port]`).
    pub fn new(host: &'a str, path: &'a str) -> ClientRequest<'a> {
        ClientRequest {
            host,
            path,
            origin: None,
            protocols: Vec::new(),
            extensions: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Sends `Origin` (browsers always do; servers may check it).
    #[must_use]
    pub fn origin(mut self, origin: &'a str) -> ClientRequest<'a> {
        self.origin = Some(origin);
        self
    }

    /// Offers subprotocols, most preferred first.
    #[must_use]
    pub fn protocols(mut self, protocols: &[&'a str]) -> ClientRequest<'a> {
        self.protocols.extend_from_slice(protocols);
        self
    }

    /// Offers an extension (several offers of one name are allowed, as RFC 7692 §5 shows).
    #[must_use]
    pub fn extension(mut self, extension: Extension) -> ClientRequest<'a> {
        self.extensions.push(extension);
        self
    }

    /// Adds a header line, e.g. `Authorization` or `Cookie`.
    #[must_use]
    pub fn header(mut self, name: &'a str, value: &'a [u8]) -> ClientRequest<'a> {
        self.headers.push((name, value));
        self
    }

    /// The offered subprotocols.
    pub fn offered_protocols(&self) -> &[&'a str] {
        &self.protocols
    }

    /// The offered extensions.
    pub fn offered_extensions(&self) -> &[Extension] {
        &self.extensions
    }

    fn check(&self) -> Result<(), Misuse> {
        let target_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
        if !target_ok(self.host) || !target_ok(self.path) || !self.path.starts_with('/') {
            return Err(Misuse::InvalidTarget);
        }
        if self.origin.is_some_and(|o| !is_header_value(o.as_bytes()))
            || !self.protocols.iter().all(|p| is_token(p.as_bytes()))
            || !self.extensions.iter().all(Extension::is_valid)
        {
            return Err(Misuse::InvalidHeader);
        }
        check_extra_headers(&self.headers)?;
        if self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("origin"))
            && self.origin.is_some()
        {
            return Err(Misuse::ReservedHeader);
        }
        Ok(())
    }

    /// Appends the request head to `out`, with the key made from `nonce` (16 random bytes the
    /// caller draws: sans-IO, so no RNG inside; see `random_nonce` with feature
    /// `getrandom`). Returns the key. On error nothing is written.
    pub fn write(&self, nonce: [u8; 16], out: &mut Vec<u8>) -> Result<Key, Misuse> {
        self.check()?;
        let key = Key::from_nonce(nonce);
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(self.path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let mut line = |name: &str, value: &[u8]| {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        };
        line("Host", self.host.as_bytes());
        line("Upgrade", b"websocket");
        line("Connection", b"Upgrade");
        line("Sec-WebSocket-Key", key.as_str().as_bytes());
        line("Sec-WebSocket-Version", b"13");
        if let Some(origin) = self.origin {
            line("Origin", origin.as_bytes());
        }
        if !self.protocols.is_empty() {
            line(
                "Sec-WebSocket-Protocol",
                self.protocols.join(", ").as_bytes(),
            );
        }
        if !self.extensions.is_empty() {
            let mut v = Vec::new();
            for (i, e) in self.extensions.iter().enumerate() {
                if i > 0 {
                    v.extend_from_slice(b", ");
                }
                e.write(&mut v);
            }
            line("Sec-WebSocket-Extensions", &v);
        }
        for (name, value) in &self.headers {
            line(name, value);
        }
        out.extend_from_slice(b"\r\n");
        Ok(key)
    }
}

/// A parsed HTTP response head (status, reason, headers), owning its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    raw: RawHead,
    status: u16,
    reason: Span,
    minor_version: u8,
}

impl ResponseHead {
    /// The status code, e.g. 101, 401, 302.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase as sent (empty if missing or not valid).
    pub fn reason(&self) -> &str {
        self.reason.get_str(&self.raw.buf)
    }

    /// The minor HTTP version: `1` for HTTP/1.1.
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

    /// The `Location` header of a redirect, if any and UTF-8.
    pub fn location(&self) -> Option<&str> {
        self.header("location")
            .and_then(|v| core::str::from_utf8(v).ok())
    }

    /// The raw head bytes, terminator included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw.buf
    }
}

/// What the client offered: what a response is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    accept: AcceptKey,
    protocols: Vec<String>,
    extensions: Vec<String>,
}

impl Offer {
    /// The offer a request makes with the given key.
    pub fn new(request: &ClientRequest<'_>, key: Key) -> Offer {
        Offer {
            accept: key.accept(),
            protocols: request.protocols.iter().map(|p| String::from(*p)).collect(),
            extensions: request.extensions.iter().map(|e| e.name.clone()).collect(),
        }
    }
}

/// Parses the server's response head from the start of `buf` and checks it against `offer`
/// (RFC 6455 §4.1, the client's checks). Returns `Partial` until the head is complete, then
/// the response, what was negotiated and how many bytes the head used (`buf[consumed..]` are
/// the first WebSocket bytes).
pub fn parse_response(
    buf: &[u8],
    offer: &Offer,
    limits: &Limits,
) -> Result<Status<(ResponseHead, Negotiated, usize)>, ResponseError> {
    let parsed = head::with_header_array(limits, |headers| {
        let mut resp = httparse::Response::new(&mut []);
        let result = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, buf, headers);
        head::classify(buf, limits, result, |n| {
            let reason = resp.reason.unwrap_or_default();
            ResponseHead {
                raw: RawHead::new(buf, n, resp.headers),
                status: resp.code.unwrap_or_default(),
                reason: if reason.is_empty() {
                    Span::default()
                } else {
                    Span::of(buf, reason.as_bytes())
                },
                minor_version: resp.version.unwrap_or_default(),
            }
        })
    });
    let (head, n) = match parsed {
        HeadParse::Partial => return Ok(Status::Partial),
        HeadParse::Complete(head, n) => (head, n),
        HeadParse::TooManyHeaders => return Err(ResponseError::TooManyHeaders),
        HeadParse::TooLarge => return Err(ResponseError::HeadTooLarge),
        HeadParse::Invalid(e) => return Err(ResponseError::Malformed(e)),
    };
    let negotiated = check_response(&head, offer)?;
    Ok(Status::Complete((head, negotiated, n)))
}

fn check_response(head: &ResponseHead, offer: &Offer) -> Result<Negotiated, ResponseError> {
    if head.status != 101 {
        return Err(ResponseError::Status(alloc::boxed::Box::new(head.clone())));
    }
    if head.minor_version < 1 {
        return Err(ResponseError::HttpVersion);
    }
    if !any_has_token(head.header_all("upgrade"), b"websocket") {
        return Err(ResponseError::MissingUpgrade);
    }
    if !any_has_token(head.header_all("connection"), b"upgrade") {
        return Err(ResponseError::MissingConnectionUpgrade);
    }
    let mut accepts = head.header_all("sec-websocket-accept");
    match (accepts.next(), accepts.next()) {
        (Some(a), None) if a.trim_ascii() == offer.accept.as_bytes() => {}
        _ => return Err(ResponseError::BadAccept),
    }
    // §4.1 item 6: at most one protocol, and one the client offered.
    let mut chosen = head
        .header_all("sec-websocket-protocol")
        .flat_map(list_items);
    let protocol = match (chosen.next(), chosen.next()) {
        (None, _) => None,
        (Some(p), None) => {
            let p = core::str::from_utf8(p).map_err(|_| ResponseError::ProtocolNotOffered)?;
            if !offer.protocols.iter().any(|o| o == p) {
                return Err(ResponseError::ProtocolNotOffered);
            }
            Some(String::from(p))
        }
        _ => return Err(ResponseError::ProtocolNotOffered),
    };
    // §4.1 item 5: every extension must have been offered.
    let mut collect = head::Collect(Vec::new());
    for v in head.header_all("sec-websocket-extensions") {
        if !head::parse_extensions(v, &mut collect) {
            return Err(ResponseError::InvalidExtensions);
        }
    }
    let extensions = collect.0;
    if !extensions.iter().all(|e| {
        offer
            .extensions
            .iter()
            .any(|o| o.eq_ignore_ascii_case(&e.name))
    }) {
        return Err(ResponseError::ExtensionNotOffered);
    }
    Ok(Negotiated {
        protocol,
        extensions,
    })
}

// ---------------------------------------------------------------------------------------------
// The state machine.

/// What a successful client handshake hands to the WebSocket layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientUpgraded {
    /// The server's 101 response (e.g. for `Set-Cookie`).
    pub response: ResponseHead,
    /// The chosen subprotocol and the accepted extensions.
    pub negotiated: Negotiated,
    /// Bytes the server sent behind the head: the first WebSocket bytes. Never dropped.
    pub leftover: Vec<u8>,
}

/// An event of the client handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The server accepted: build the WebSocket connection from this.
    Upgraded(ClientUpgraded),
}

/// Where a [`ClientHandshake`] stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientState {
    /// The request is queued or sent; waiting for the response head.
    Reading,
    /// The server accepted; the connection is a WebSocket now.
    Upgraded,
    /// The response was rejected (sticky): close the connection.
    Failed(ResponseError),
}

/// The client handshake as a sans-IO state machine.
///
/// [`ClientHandshake::new`] queues the request; drain it with
/// [`poll_transmit`](Self::poll_transmit), feed the server's bytes to
/// [`handle_read`](Self::handle_read) and take [`ClientEvent::Upgraded`] from
/// [`poll_event`](Self::poll_event). The drain contract applies: after each `handle_*` call,
/// drain `poll_transmit`, `poll_event` and `poll_timeout` before the next input.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    limits: Limits,
    offer: Offer,
    key: Key,
    buf: Vec<u8>,
    state: ClientState,
    event: Option<ClientEvent>,
    transmit: Vec<u8>,
    sent: usize,
    deadline: Option<u64>,
}

impl ClientHandshake {
    /// Queues `request` with the key made from `nonce` (16 random bytes from the caller).
    pub fn new(
        request: &ClientRequest<'_>,
        nonce: [u8; 16],
        limits: Limits,
    ) -> Result<ClientHandshake, Misuse> {
        let mut transmit = Vec::new();
        let key = request.write(nonce, &mut transmit)?;
        Ok(ClientHandshake {
            limits,
            offer: Offer::new(request, key),
            key,
            buf: Vec::new(),
            state: ClientState::Reading,
            event: None,
            transmit,
            sent: 0,
            deadline: None,
        })
    }

    /// Like [`ClientHandshake::new`] with a nonce from the operating system.
    #[cfg(feature = "getrandom")]
    pub fn with_random_nonce(
        request: &ClientRequest<'_>,
        limits: Limits,
    ) -> Result<ClientHandshake, crate::RandomNonceError> {
        let nonce = crate::key::random_nonce().map_err(crate::RandomNonceError::Random)?;
        ClientHandshake::new(request, nonce, limits).map_err(crate::RandomNonceError::Misuse)
    }

    /// The `Sec-WebSocket-Key` sent.
    pub fn key(&self) -> Key {
        self.key
    }

    /// The current state.
    pub fn state(&self) -> &ClientState {
        &self.state
    }

    /// Feeds bytes received from the server, in any split. A rejected response is a sticky
    /// error (nothing is queued: close the connection); [`Misuse::WrongState`] after the
    /// upgrade (the bytes then belong to the WebSocket layer).
    pub fn handle_read(&mut self, data: &[u8]) -> Result<(), Error> {
        match &self.state {
            ClientState::Reading => {}
            ClientState::Failed(e) => return Err(Error::Response(e.clone())),
            ClientState::Upgraded => return Err(Error::Misuse(Misuse::WrongState)),
        }
        self.buf.extend_from_slice(data);
        if !head::line_arrived(data, self.buf.len(), &self.limits) {
            return Ok(());
        }
        let window = head::parse_window(&self.buf, &self.limits);
        match parse_response(window, &self.offer, &self.limits) {
            Ok(Status::Complete((response, negotiated, n))) => {
                let leftover = self.buf.split_off(n.min(self.buf.len()));
                self.buf = Vec::new();
                self.state = ClientState::Upgraded;
                self.event = Some(ClientEvent::Upgraded(ClientUpgraded {
                    response,
                    negotiated,
                    leftover,
                }));
                Ok(())
            }
            Ok(Status::Partial) if self.buf.len() >= self.limits.max_head_bytes => {
                Err(self.fail(ResponseError::HeadTooLarge))
            }
            Ok(Status::Partial) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn fail(&mut self, e: ResponseError) -> Error {
        self.state = ClientState::Failed(e.clone());
        self.buf = Vec::new();
        Error::Response(e)
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.event.take()
    }

    /// Copies queued output (the request) into `out`; returns how many bytes were written.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> usize {
        let pending = self.transmit.get(self.sent..).unwrap_or_default();
        let n = pending.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), pending.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.sent += n;
        n
    }

    /// Takes all queued output at once, if any.
    pub fn poll_transmit_vec(&mut self) -> Option<Vec<u8>> {
        if self.sent >= self.transmit.len() {
            return None;
        }
        let out = self.transmit.get(self.sent..).unwrap_or_default().to_vec();
        self.sent = self.transmit.len();
        Some(out)
    }

    /// Tells the machine the time (monotonic milliseconds chosen by the host). The first call
    /// arms the deadline ([`Limits::handshake_timeout_ms`]); a call at or after it while
    /// still reading fails the handshake with [`ResponseError::Timeout`] (sticky: the next
    /// [`handle_read`](Self::handle_read) returns it).
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let Some(timeout) = self.limits.handshake_timeout_ms else {
            return;
        };
        match self.deadline {
            None => self.deadline = Some(now_ms.saturating_add(timeout)),
            Some(d) if now_ms >= d && self.state == ClientState::Reading => {
                let _ = self.fail(ResponseError::Timeout);
            }
            Some(_) => {}
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.state == ClientState::Reading {
            self.deadline
        } else {
            None
        }
    }
}
