//! The plain-HTTP side of the HTTP listener: the demo page, its script, `/stats`, 404.

use std::fmt::Write as _;
use std::time::Duration;

use stompbox::HttpRequest;

use crate::server::Counters;

/// The demo page, embedded in the binary.
pub const INDEX_HTML: &str = include_str!("../demo/index.html");
/// The demo page's STOMP client, embedded in the binary.
pub const STOMPBOX_JS: &str = include_str!("../demo/stompbox.js");

/// A response to a plain HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
}

fn response(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
    Response {
        status,
        content_type,
        body: body.into(),
    }
}

/// Routes a plain HTTP request.
pub(crate) fn serve(req: &HttpRequest, stats: &dyn Fn() -> String) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return response(405, "text/plain; charset=utf-8", "method not allowed\n");
    }
    match req.path.as_str() {
        "/" | "/index.html" => response(200, "text/html; charset=utf-8", INDEX_HTML),
        "/stompbox.js" => response(200, "text/javascript; charset=utf-8", STOMPBOX_JS),
        "/stats" => response(200, "application/json", stats()),
        "/ws" => response(
            426,
            "text/plain; charset=utf-8",
            "this is the STOMP WebSocket endpoint: connect with a WebSocket client\n",
        ),
        _ => response(404, "text/plain; charset=utf-8", "not found\n"),
    }
}

/// Renders the `/stats` JSON document: `{"server": {...}, "broker": <broker stats>}`.
pub(crate) fn stats_json(c: &Counters, broker_json: &str, uptime: Duration) -> String {
    let mut s = String::with_capacity(256 + broker_json.len());
    let _ = write!(
        s,
        "{{\"server\":{{\"uptime_s\":{},\"connections_current\":{},\"connections_total\":{},\
         \"websocket_current\":{},\"tcp_current\":{},\"http_requests\":{},\
         \"refused_over_limit\":{},\"accept_errors\":{},\"handshake_failures\":{},\
         \"handshake_timeouts\":{},\
         \"bytes_in\":{},\"bytes_out\":{},\"unhandled_app_messages\":{}}},\"broker\":{}}}",
        uptime.as_secs(),
        c.connections_current,
        c.connections_total,
        c.websocket_current,
        c.tcp_current,
        c.http_requests,
        c.refused_over_limit,
        c.accept_errors,
        c.handshake_failures,
        c.handshake_timeouts,
        c.bytes_in,
        c.bytes_out,
        c.unhandled_app_messages,
        if broker_json.is_empty() {
            "{}"
        } else {
            broker_json
        },
    );
    s
}
