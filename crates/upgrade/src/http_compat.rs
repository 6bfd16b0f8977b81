//! Conversions from/to the `http` crate's types (feature `http`), so hyper and axum users can
//! reuse the same validation and accept logic. Each conversion goes through the same HTTP/1.1
//! head the wire path parses, so both paths accept and reject exactly the same things.

use alloc::vec::Vec;

use crate::client::{ClientRequest, Offer, parse_response};
use crate::error::{Misuse, RequestError, ResponseError};
use crate::head::Status;
use crate::key::Key;
use crate::server::{Accept, Incoming, UpgradeRequest, parse_request};
use crate::{Limits, Negotiated};

fn version_str(v: http::Version) -> &'static [u8] {
    if v == http::Version::HTTP_09 || v == http::Version::HTTP_10 {
        b"HTTP/1.0"
    } else {
        b"HTTP/1.1"
    }
}

fn write_headers(headers: &http::HeaderMap, out: &mut Vec<u8>) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Parses and validates an `http::Request` (its head; the body is ignored) exactly as
/// [`parse_request`] does on the wire. The target is the URI's path and query; a missing
/// `Host` header is taken from the URI's authority.
pub fn parse_http_request<B>(
    request: &http::Request<B>,
    limits: &Limits,
) -> Result<Incoming, RequestError> {
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(request.method().as_str().as_bytes());
    head.push(b' ');
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    head.extend_from_slice(if target.is_empty() {
        b"/"
    } else {
        target.as_bytes()
    });
    head.push(b' ');
    head.extend_from_slice(version_str(request.version()));
    head.extend_from_slice(b"\r\n");
    if !request.headers().contains_key(http::header::HOST)
        && let Some(authority) = request.uri().authority()
    {
        head.extend_from_slice(b"Host: ");
        head.extend_from_slice(authority.as_str().as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    write_headers(request.headers(), &mut head);
    head.extend_from_slice(b"\r\n");
    let limits = Limits {
        max_head_bytes: limits.max_head_bytes.max(head.len()),
        ..*limits
    };
    match parse_request(&head, &limits)? {
        Status::Complete((incoming, _)) => Ok(incoming),
        Status::Partial => Err(RequestError::Malformed(httparse::Error::NewLine)),
    }
}

/// Converts a complete response head written by this crate into an `http::Response`.
fn response_from_head(bytes: &[u8]) -> http::Response<Vec<u8>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let n = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => bytes.len(),
    };
    let mut builder = http::Response::builder()
        .status(parsed.code.unwrap_or(500))
        .version(http::Version::HTTP_11);
    for h in parsed.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    let body = bytes.get(n..).unwrap_or_default().to_vec();
    builder
        .body(body)
        .unwrap_or_else(|_| http::Response::new(Vec::new()))
}

impl UpgradeRequest {
    /// Like [`UpgradeRequest::accept`], as an `http::Response` (status 101, empty body) for
    /// hyper/axum to send.
    pub fn accept_http(
        &self,
        accept: Accept<'_>,
    ) -> Result<(http::Response<()>, Negotiated), Misuse> {
        let mut out = Vec::with_capacity(256);
        let negotiated = self.accept(accept, &mut out)?;
        let (parts, _) = response_from_head(&out).into_parts();
        Ok((http::Response::from_parts(parts, ()), negotiated))
    }
}

impl RequestError {
    /// The rejection as an `http::Response` (status, headers, plain-text body).
    pub fn to_http_response(&self) -> http::Response<Vec<u8>> {
        let mut out = Vec::with_capacity(256);
        self.write_response(&mut out);
        response_from_head(&out)
    }
}

impl ClientRequest<'_> {
    /// The request as an `http::Request` (URI = path, `Host` and the handshake headers set)
    /// plus the key it carries.
    pub fn to_http(&self, nonce: [u8; 16]) -> Result<(http::Request<()>, Key), Misuse> {
        let mut out = Vec::with_capacity(256);
        let key = self.write(nonce, &mut out)?;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        let _ = parsed.parse(&out);
        let mut builder = http::Request::builder()
            .method(http::Method::GET)
            .uri(parsed.path.unwrap_or("/"))
            .version(http::Version::HTTP_11);
        for h in parsed.headers.iter() {
            builder = builder.header(h.name, h.value);
        }
        let request = builder.body(()).map_err(|_| Misuse::InvalidTarget)?;
        Ok((request, key))
    }
}

/// Checks an `http::Response` against what the client offered, exactly as
/// [`parse_response`] does on the wire; returns what was negotiated.
pub fn check_http_response<B>(
    response: &http::Response<B>,
    offer: &Offer,
    limits: &Limits,
) -> Result<Negotiated, ResponseError> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(version_str(response.version()));
    head.push(b' ');
    head.extend_from_slice(response.status().as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(
        response
            .status()
            .canonical_reason()
            .unwrap_or("")
            .as_bytes(),
    );
    head.extend_from_slice(b"\r\n");
    write_headers(response.headers(), &mut head);
    head.extend_from_slice(b"\r\n");
    let limits = Limits {
        max_head_bytes: limits.max_head_bytes.max(head.len()),
        ..*limits
    };
    match parse_response(&head, offer, &limits)? {
        Status::Complete((_, negotiated, _)) => Ok(negotiated),
        Status::Partial => Err(ResponseError::Malformed(httparse::Error::NewLine)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Extension;

    #[test]
    fn http_request_round_trip() {
        let req = http::Request::builder()
            .uri("ws://example.com/stomp?x=1")
            .header("Upgrade", "websocket")
            .header("Connection", "keep-alive, Upgrade")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Protocol", "v12.stomp")
            .body(())
            .expect("request");
        let Ok(Incoming::Upgrade(up)) = parse_http_request(&req, &Limits::default()) else {
            panic!("not an upgrade")
        };
        assert_eq!(up.host(), "example.com");
        assert_eq!(up.path(), "/stomp");
        assert_eq!(up.query(), Some("x=1"));
        let (resp, n) = up
            .accept_http(Accept::new().protocol(Some("v12.stomp")))
            .expect("accept");
        assert_eq!(resp.status(), http::StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            resp.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(n.protocol.as_deref(), Some("v12.stomp"));

        let bad = http::Request::builder()
            .method("POST")
            .uri("/")
            .header("Upgrade", "websocket")
            .body(())
            .expect("request");
        let e = parse_http_request(&bad, &Limits::default()).expect_err("405");
        let resp = e.to_http_response();
        assert_eq!(resp.status(), http::StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resp.headers()["allow"], "GET");
        assert_eq!(resp.body(), b"a WebSocket upgrade must use GET\n");
    }

    #[test]
    fn http_client_round_trip() {
        let request = ClientRequest::new("example.com", "/chat")
            .protocols(&["chat"])
            .extension(Extension::new("permessage-deflate"));
        let (req, key) = request.to_http(*b"the sample nonce").expect("request");
        assert_eq!(req.uri(), "/chat");
        assert_eq!(req.headers()["host"], "example.com");
        let Ok(Incoming::Upgrade(up)) = parse_http_request(&req, &Limits::default()) else {
            panic!("not an upgrade")
        };
        let (resp, server_side) = up
            .accept_http(
                Accept::new()
                    .protocol(Some("chat"))
                    .extension(Extension::new("permessage-deflate")),
            )
            .expect("accept");
        let offer = Offer::new(&request, key);
        let negotiated = check_http_response(&resp, &offer, &Limits::default()).expect("valid");
        assert_eq!(negotiated, server_side);
        let denied = http::Response::builder()
            .status(401)
            .body(())
            .expect("response");
        assert_eq!(
            check_http_response(&denied, &offer, &Limits::default()).map_err(|e| e.status()),
            Err(Some(401))
        );
    }
}
