//! Errors: what a peer did wrong ([`RequestError`], [`ResponseError`]) and what the host did
//! wrong ([`Misuse`]), united in [`Error`].

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use crate::client::ResponseHead;

/// Why a server rejects a request. Each variant knows its HTTP response
/// ([`RequestError::status`]) and [`RequestError::write_response`] writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// 400: the head is not valid HTTP/1.x (httparse's reason).
    Malformed(httparse::Error),
    /// 400: the request line says HTTP/1.0; WebSocket needs HTTP/1.1 or later (§4.2.1 item 1).
    HttpVersion,
    /// 400: no `Host` header (§4.2.1 item 2).
    MissingHost,
    /// 400: more than one `Host` header (RFC 9112 §3.2).
    DuplicateHost,
    /// 400: `Upgrade` does not list the `websocket` token (§4.2.1 item 3).
    MissingUpgrade,
    /// 400: `Connection` does not list the `upgrade` token (§4.2.1 item 4).
    MissingConnectionUpgrade,
    /// 400: no `Sec-WebSocket-Key` (§4.2.1 item 5).
    MissingKey,
    /// 400: more than one `Sec-WebSocket-Key`.
    DuplicateKey,
    /// 400: `Sec-WebSocket-Key` is not base64 of exactly 16 bytes.
    InvalidKey,
    /// 400: no `Sec-WebSocket-Version` (§4.2.1 item 6).
    MissingVersion,
    /// 400: `Sec-WebSocket-Protocol` is not a comma-separated list of tokens (§4.2.1 item 8).
    InvalidProtocols,
    /// 400: `Sec-WebSocket-Extensions` does not follow the §9.1 grammar.
    InvalidExtensions,
    /// 405: a WebSocket upgrade with another method than GET (§4.2.1 item 1).
    MethodNotAllowed,
    /// 426: `Sec-WebSocket-Version` is not 13; the response lists 13 (§4.2.2 item 4).
    UnsupportedVersion,
    /// 431: the head is larger than [`Limits::max_head_bytes`](crate::Limits::max_head_bytes).
    HeadTooLarge,
    /// 431: more header lines than [`Limits::max_headers`](crate::Limits::max_headers).
    TooManyHeaders,
    /// 403: the host rejected the request's `Origin` (§4.2.2 item 4, §10.2).
    ForbiddenOrigin,
    /// 408: the head did not arrive before
    /// [`Limits::handshake_timeout_ms`](crate::Limits::handshake_timeout_ms).
    Timeout,
}

impl RequestError {
    /// The HTTP status code of the response this rejection gets.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::MethodNotAllowed => 405,
            RequestError::UnsupportedVersion => 426,
            RequestError::HeadTooLarge | RequestError::TooManyHeaders => 431,
            RequestError::ForbiddenOrigin => 403,
            RequestError::Timeout => 408,
            _ => 400,
        }
    }

    /// The reason phrase for [`RequestError::status`].
    pub fn reason(&self) -> &'static str {
        match self.status() {
            405 => "Method Not Allowed",
            426 => "Upgrade Required",
            431 => "Request Header Fields Too Large",
            403 => "Forbidden",
            408 => "Request Timeout",
            _ => "Bad Request",
        }
    }

    /// Headers the response must carry besides `Connection: close`, `Content-Type` and
    /// `Content-Length`: `Allow: GET` for 405; `Sec-WebSocket-Version: 13` and
    /// `Upgrade: websocket` for 426 (RFC 6455 §4.2.2 item 4, RFC 9110 §15.5.22).
    pub fn extra_headers(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            RequestError::MethodNotAllowed => &[("Allow", "GET")],
            RequestError::UnsupportedVersion => {
                &[("Sec-WebSocket-Version", "13"), ("Upgrade", "websocket")]
            }
            _ => &[],
        }
    }

    /// Appends the complete HTTP/1.1 response (status line, headers, a short plain-text body
    /// naming the problem) to `out`. The connection should be closed after it is sent.
    ///
    /// ```
    /// let mut out = Vec::new();
    /// stompbox_upgrade::RequestError::UnsupportedVersion.write_response(&mut out);
    /// assert!(out.starts_with(b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n"));
    /// ```
    pub fn write_response(&self, out: &mut Vec<u8>) {
        use core::fmt::Write as _;
        let mut body = alloc::string::String::new();
        let _ = writeln!(body, "{self}");
        let mut head = alloc::string::String::new();
        let _ = write!(head, "HTTP/1.1 {} {}\r\n", self.status(), self.reason());
        for (name, value) in self.extra_headers() {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str("Connection: close\r\n");
        let _ = write!(
            head,
            "Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body.as_bytes());
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Malformed(e) => write!(f, "malformed HTTP request: {e}"),
            RequestError::HttpVersion => f.write_str("WebSocket needs HTTP/1.1 or later"),
            RequestError::MissingHost => f.write_str("missing Host header"),
            RequestError::DuplicateHost => f.write_str("more than one Host header"),
            RequestError::MissingUpgrade => f.write_str("Upgrade header lacks the websocket token"),
            RequestError::MissingConnectionUpgrade => {
                f.write_str("Connection header lacks the upgrade token")
            }
            RequestError::MissingKey => f.write_str("missing Sec-WebSocket-Key header"),
            RequestError::DuplicateKey => f.write_str("more than one Sec-WebSocket-Key header"),
            RequestError::InvalidKey => {
                f.write_str("Sec-WebSocket-Key is not base64 of exactly 16 bytes")
            }
            RequestError::MissingVersion => f.write_str("missing Sec-WebSocket-Version header"),
            RequestError::InvalidProtocols => {
                f.write_str("Sec-WebSocket-Protocol is not a list of tokens")
            }
            RequestError::InvalidExtensions => {
                f.write_str("Sec-WebSocket-Extensions does not follow RFC 6455 section 9.1")
            }
            RequestError::MethodNotAllowed => f.write_str("a WebSocket upgrade must use GET"),
            RequestError::UnsupportedVersion => {
                f.write_str("only Sec-WebSocket-Version 13 is supported")
            }
            RequestError::HeadTooLarge => f.write_str("request head too large"),
            RequestError::TooManyHeaders => f.write_str("too many request headers"),
            RequestError::ForbiddenOrigin => f.write_str("origin not allowed"),
            RequestError::Timeout => f.write_str("request head not received in time"),
        }
    }
}

/// Why a client rejects the server's response (RFC 6455 §4.1, the client's checks).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// The response is not valid HTTP/1.x.
    Malformed(httparse::Error),
    /// The response head exceeds [`Limits::max_head_bytes`](crate::Limits::max_head_bytes).
    HeadTooLarge,
    /// More header lines than [`Limits::max_headers`](crate::Limits::max_headers).
    TooManyHeaders,
    /// The status is not 101: the whole head is kept (status, reason, headers) so the host can
    /// act on 401, 403 or a 3xx `Location`.
    Status(Box<ResponseHead>),
    /// A 101 over HTTP/1.0.
    HttpVersion,
    /// `Upgrade` does not list `websocket`.
    MissingUpgrade,
    /// `Connection` does not list `upgrade`.
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Accept` is missing, repeated or does not match the nonce.
    BadAccept,
    /// `Sec-WebSocket-Protocol` names a protocol the client did not offer, or several.
    ProtocolNotOffered,
    /// `Sec-WebSocket-Extensions` is not valid §9.1 grammar.
    InvalidExtensions,
    /// `Sec-WebSocket-Extensions` names an extension the client did not offer.
    ExtensionNotOffered,
    /// No complete response before
    /// [`Limits::handshake_timeout_ms`](crate::Limits::handshake_timeout_ms).
    Timeout,
}

impl ResponseError {
    /// The status code when the server answered something other than 101.
    pub fn status(&self) -> Option<u16> {
        match self {
            ResponseError::Status(head) => Some(head.status()),
            _ => None,
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Malformed(e) => write!(f, "malformed HTTP response: {e}"),
            ResponseError::HeadTooLarge => f.write_str("response head too large"),
            ResponseError::TooManyHeaders => f.write_str("too many response headers"),
            ResponseError::Status(head) => {
                write!(
                    f,
                    "server answered {} {} instead of 101",
                    head.status(),
                    head.reason()
                )
            }
            ResponseError::HttpVersion => f.write_str("101 response over HTTP/1.0"),
            ResponseError::MissingUpgrade => {
                f.write_str("Upgrade header lacks the websocket token")
            }
            ResponseError::MissingConnectionUpgrade => {
                f.write_str("Connection header lacks the upgrade token")
            }
            ResponseError::BadAccept => {
                f.write_str("Sec-WebSocket-Accept is missing or does not match the key")
            }
            ResponseError::ProtocolNotOffered => {
                f.write_str("server chose a subprotocol the client did not offer")
            }
            ResponseError::InvalidExtensions => {
                f.write_str("Sec-WebSocket-Extensions does not follow RFC 6455 section 9.1")
            }
            ResponseError::ExtensionNotOffered => {
                f.write_str("server accepted an extension the client did not offer")
            }
            ResponseError::Timeout => f.write_str("no handshake response before the deadline"),
        }
    }
}

/// A mistake by the host: the machine or builder is left as it was and stays usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Misuse {
    /// The chosen subprotocol was not offered by the client.
    ProtocolNotOffered,
    /// An accepted extension was not offered by the client.
    ExtensionNotOffered,
    /// A subprotocol, extension, header name or value cannot be written on the wire
    /// (not a token, or a value with CR, LF or NUL).
    InvalidHeader,
    /// An extra header would override one the handshake writes itself
    /// (`Upgrade`, `Connection`, `Sec-WebSocket-*`, `Host`).
    ReservedHeader,
    /// The host or path cannot be sent in a request line (empty, whitespace or control bytes,
    /// or a path not starting with `/`).
    InvalidTarget,
    /// The call does not fit the machine's state (e.g. `accept` before a request arrived,
    /// `handle_read` while a decision is pending, anything after the handshake ended).
    WrongState,
}

impl fmt::Display for Misuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Misuse::ProtocolNotOffered => "the chosen subprotocol was not offered",
            Misuse::ExtensionNotOffered => "an accepted extension was not offered",
            Misuse::InvalidHeader => "a header name or value cannot be sent",
            Misuse::ReservedHeader => "an extra header would override a handshake header",
            Misuse::InvalidTarget => "host or path cannot be sent in a request",
            Misuse::WrongState => "call not allowed in the handshake's current state",
        })
    }
}

/// Any error of this crate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The server rejected the client's request; the response is queued for transmission.
    Request(RequestError),
    /// The client rejected the server's response.
    Response(ResponseError),
    /// The host called something at the wrong time or with bad arguments.
    Misuse(Misuse),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Request(e) => write!(f, "request rejected: {e}"),
            Error::Response(e) => write!(f, "response rejected: {e}"),
            Error::Misuse(e) => write!(f, "misuse: {e}"),
        }
    }
}

impl From<RequestError> for Error {
    fn from(e: RequestError) -> Error {
        Error::Request(e)
    }
}

impl From<ResponseError> for Error {
    fn from(e: ResponseError) -> Error {
        Error::Response(e)
    }
}

impl From<Misuse> for Error {
    fn from(e: Misuse) -> Error {
        Error::Misuse(e)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RequestError {}
#[cfg(feature = "std")]
impl std::error::Error for ResponseError {}
#[cfg(feature = "std")]
impl std::error::Error for Misuse {}
#[cfg(feature = "std")]
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Request(e) => Some(e),
            Error::Response(e) => Some(e),
            Error::Misuse(e) => Some(e),
        }
    }
}
