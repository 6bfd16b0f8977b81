//! The library entry point: [`ServerBuilder`].

use std::net::SocketAddr;

use stompbox::ConnectionConfig;

use crate::app::AppHandler;
use crate::config::{Config, User};
use crate::hub::{Hub, HubConfig};
use crate::server::{Server, StartError};

/// What a CONNECT authentication hook sees.
#[derive(Debug, Clone)]
pub struct AuthRequest<'a> {
    /// The `login` header, if any.
    pub login: Option<&'a str>,
    /// The `passcode` header, if any.
    pub passcode: Option<&'a str>,
    /// The `host` header, if any.
    pub host: Option<&'a str>,
    /// The client's address.
    pub peer: Option<SocketAddr>,
}

/// The answer of an authentication hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// Accept, optionally naming the principal (the user of `/user/...` destinations).
    Accept(Option<String>),
    /// Reject: the client gets an ERROR frame with this message and is disconnected.
    Reject(String),
}

/// An authentication hook.
pub type AuthHook = Box<dyn FnMut(&AuthRequest<'_>) -> AuthDecision + Send>;

/// Everything the event loop needs, resolved from the builder.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) http: Option<SocketAddr>,
    pub(crate) stomp: Option<SocketAddr>,
    pub(crate) connection: ConnectionConfig,
    pub(crate) max_connections: usize,
    pub(crate) max_output: usize,
    pub(crate) shutdown_timeout_ms: u64,
    pub(crate) stats_interval_ms: Option<u64>,
    pub(crate) handle_signals: bool,
    /// The upstream broker's address when relaying (`--relay`).
    pub(crate) relay: Option<String>,
}

/// Builds a [`Server`]: listeners, prefixes, limits, authentication, Origin allow-list and
/// `/app` handlers.
///
/// ```no_run
/// use stompbox_server::{AppMessage, Reply, ServerBuilder};
///
/// let server = ServerBuilder::new()
///     .http("127.0.0.1:8080".parse().unwrap())
///     .no_stomp()
///     .handler("/app/hello", |m: &AppMessage, r: &mut Reply| {
///         r.to_sender("/user/queue/hello", format!("hello, {}", m.user.as_deref().unwrap_or("you")));
///     })
///     .build()
///     .expect("bind");
/// server.run().expect("event loop");
/// ```
pub struct ServerBuilder {
    settings: Settings,
    hub: HubConfig,
    handlers: Vec<(String, Box<dyn AppHandler + Send>)>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("settings", &self.settings)
            .field(
                "handlers",
                &self.handlers.iter().map(|(d, _)| d).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerBuilder {
    /// Defaults: HTTP + WebSocket on 127.0.0.1:8080 (STOMP at `/ws`), STOMP/TCP on
    /// 127.0.0.1:61613, heart-beats 10 s each way, small limits, any login accepted, any Origin,
    /// prefixes `/app` (application) and `/topic`, `/queue` (broker), no handlers, SIGINT/SIGTERM
    /// handled.
    pub fn new() -> Self {
        let defaults = Config::default();
        let mut b = Self {
            settings: Settings {
                http: defaults.http,
                stomp: defaults.stomp,
                connection: ConnectionConfig::default(),
                max_connections: defaults.max_connections,
                max_output: defaults.max_output,
                shutdown_timeout_ms: defaults.shutdown_timeout_ms,
                stats_interval_ms: Some(defaults.stats_interval_s * 1000),
                handle_signals: true,
                relay: None,
            },
            hub: HubConfig::default(),
            handlers: Vec::new(),
        };
        b = b.limits(
            defaults.max_frame,
            defaults.max_message,
            defaults.max_output,
        );
        b.heartbeat_ms(defaults.heartbeat_ms)
    }

    /// Applies the binary's [`Config`] (flags, config file, users file).
    pub fn from_config(config: &Config) -> Self {
        let mut b = Self::new();
        b.settings.http = config.http;
        b.settings.stomp = config.stomp;
        b.settings.max_connections = config.max_connections;
        b.settings.shutdown_timeout_ms = config.shutdown_timeout_ms;
        b = b.handshake_timeout_ms(config.handshake_timeout_ms);
        b.settings.stats_interval_ms =
            (config.stats_interval_s > 0).then_some(config.stats_interval_s * 1000);
        b = b
            .limits(config.max_frame, config.max_message, config.max_output)
            .heartbeat_ms(config.heartbeat_ms);
        for origin in &config.allowed_origins {
            b = b.allow_origin(origin.clone());
        }
        if let Some(path) = &config.ws_echo {
            b = b.ws_echo(path.clone());
        }
        b = b.deflate(config.deflate.then(|| {
            let nct = config.deflate_no_context_takeover;
            stompbox::upgrade::DeflatePolicy {
                server_no_context_takeover: nct,
                client_no_context_takeover: nct,
                ..stompbox::upgrade::DeflatePolicy::default()
            }
        }));
        if !config.users.is_empty() {
            b = b.users(config.users.clone());
        }
        if let Some(r) = &config.relay {
            b = b.relay(r.clone());
        }
        b
    }

    /// Relays broker destinations (by default `/topic` and `/queue`) to an upstream STOMP
    /// broker (RabbitMQ, ActiveMQ, Artemis) instead of the in-memory broker: one upstream
    /// session per client session plus a system session for application publishes, on the
    /// server's own event loop.
    #[must_use]
    pub fn relay(mut self, relay: crate::RelaySettings) -> Self {
        self.hub.relay = Some(relay.broker_config());
        self.settings.relay = Some(relay.address);
        self
    }

    /// The HTTP + WebSocket listener's address.
    #[must_use]
    pub fn http(mut self, addr: SocketAddr) -> Self {
        self.settings.http = Some(addr);
        self
    }

    /// No HTTP + WebSocket listener.
    #[must_use]
    pub fn no_http(mut self) -> Self {
        self.settings.http = None;
        self
    }

    /// The raw STOMP/TCP listener's address.
    #[must_use]
    pub fn stomp(mut self, addr: SocketAddr) -> Self {
        self.settings.stomp = Some(addr);
        self
    }

    /// No raw STOMP/TCP listener.
    #[must_use]
    pub fn no_stomp(mut self) -> Self {
        self.settings.stomp = None;
        self
    }

    /// The WebSocket path of STOMP (default `/ws`).
    #[must_use]
    pub fn stomp_path(mut self, path: impl Into<String>) -> Self {
        self.settings.connection.stomp_path = path.into();
        self
    }

    /// Adds a WebSocket echo route (for Autobahn), with limits raised to what Autobahn sends
    /// (16 MiB messages).
    #[must_use]
    pub fn ws_echo(mut self, path: impl Into<String>) -> Self {
        self.settings.connection.echo_path = Some(path.into());
        self
    }

    /// The permessage-deflate (RFC 7692) policy for clients that offer it, or `None` to never
    /// negotiate it. Default on ([`DeflatePolicy::default`](stompbox::upgrade::DeflatePolicy)).
    #[must_use]
    pub fn deflate(mut self, policy: Option<stompbox::upgrade::DeflatePolicy>) -> Self {
        self.settings.connection.deflate = policy;
        self
    }

    /// Allows an Origin to open a WebSocket (once any is given, others get 403).
    #[must_use]
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.settings.connection.allowed_origins.push(origin.into());
        self
    }

    /// Application destination prefixes (default `["/app"]`).
    #[must_use]
    pub fn app_prefixes(mut self, prefixes: &[&str]) -> Self {
        self.hub.app_prefixes = prefixes.iter().map(|p| (*p).to_owned()).collect();
        self
    }

    /// Broker destination prefixes: publish-subscribe (default `["/topic"]`) and point-to-point
    /// (default `["/queue"]`).
    #[must_use]
    pub fn broker_prefixes(mut self, topics: &[&str], queues: &[&str]) -> Self {
        self.hub.topic_prefixes = topics.iter().map(|p| (*p).to_owned()).collect();
        self.hub.queue_prefixes = queues.iter().map(|p| (*p).to_owned()).collect();
        self
    }

    /// Limits: WebSocket frame size, message size (also the STOMP body size), and queued output
    /// per client (past it a client is a slow consumer). Before CONNECT is accepted the STOMP
    /// codec's smaller limits apply (64 KiB body, 8 KiB head).
    #[must_use]
    pub fn limits(mut self, frame: usize, message: usize, output: usize) -> Self {
        self.settings.connection.max_frame = frame;
        self.settings.connection.max_message = message;
        self.settings.max_output = output;
        self.hub.max_frame = message;
        self.hub.max_output = output;
        self
    }

    /// Heart-beat interval offered each way, in milliseconds (0: off).
    #[must_use]
    pub fn heartbeat_ms(mut self, ms: u64) -> Self {
        self.hub.heartbeat_ms = ms;
        self
    }

    /// Maximum simultaneous connections (others are refused with 503 or an ERROR frame).
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.settings.max_connections = n;
        self.hub.max_sessions = n;
        self
    }

    /// How long a graceful stop may take.
    #[must_use]
    pub fn shutdown_timeout_ms(mut self, ms: u64) -> Self {
        self.settings.shutdown_timeout_ms = ms;
        self
    }

    /// How long a client may take to send its HTTP head (default 10 s; then 408 and close).
    #[must_use]
    pub fn handshake_timeout_ms(mut self, ms: u64) -> Self {
        self.settings.connection.upgrade.handshake_timeout_ms = Some(ms);
        self
    }

    /// Seconds between periodic stats log lines (`None`: off).
    #[must_use]
    pub fn stats_interval_ms(mut self, ms: Option<u64>) -> Self {
        self.settings.stats_interval_ms = ms;
        self
    }

    /// Whether `run` handles SIGINT/SIGTERM itself (default: yes). Turn off when the host has its
    /// own signal handling and stops the server with a [`ShutdownHandle`](crate::ShutdownHandle).
    #[must_use]
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.settings.handle_signals = on;
        self
    }

    /// The CONNECT authentication hook (default: accept any login; the principal is the login).
    #[must_use]
    pub fn authenticate(
        mut self,
        hook: impl FnMut(&AuthRequest<'_>) -> AuthDecision + Send + 'static,
    ) -> Self {
        self.hub.auth = Some(Box::new(hook));
        self
    }

    /// Built-in authentication against a user list (what `--user` and `--users-file` do).
    #[must_use]
    pub fn users(self, users: Vec<User>) -> Self {
        self.authenticate(move |req| {
            let ok = users.iter().any(|u| {
                Some(u.name.as_str()) == req.login
                    && constant_time_eq(
                        u.passcode.as_bytes(),
                        req.passcode.unwrap_or("").as_bytes(),
                    )
            });
            if ok {
                AuthDecision::Accept(req.login.map(str::to_owned))
            } else {
                AuthDecision::Reject("bad login or passcode".to_owned())
            }
        })
    }

    /// Registers a handler for one application destination (e.g. `/app/chat`).
    #[must_use]
    pub fn handler(
        mut self,
        destination: impl Into<String>,
        handler: impl AppHandler + Send + 'static,
    ) -> Self {
        self.handlers.push((destination.into(), Box::new(handler)));
        self
    }

    /// Binds the listeners.
    pub fn build(self) -> Result<Server, StartError> {
        let hub = Hub::new(self.hub);
        Server::bind(self.settings, self.handlers, hub)
    }
}

/// Compares passcodes without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_table() {
        for (a, b, want) in [
            ("", "", true),
            ("pw", "pw", true),
            ("pw", "pW", false),
            ("pw", "pw1", false),
            ("", "x", false),
        ] {
            assert_eq!(
                constant_time_eq(a.as_bytes(), b.as_bytes()),
                want,
                "{a:?} {b:?}"
            );
        }
    }
}
