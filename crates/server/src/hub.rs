//! The server's side of the broker: configuration, authentication, application replies, and the
//! session bookkeeping the event loop needs.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;
use stompbox::broker::{self, AuthDecision as BrokerAuth, CloseReason, ConnectRequest, Event};
use stompbox::{Broker, SessionId, Transmit};
use tracing::{debug, info, warn};

use crate::app::{Reply, Target};
use crate::builder::{AuthDecision, AuthRequest};

/// An authentication hook as the hub keeps it.
pub(crate) type Hook = Box<dyn FnMut(&AuthRequest<'_>) -> AuthDecision + Send>;

/// Broker settings collected by the builder.
pub(crate) struct HubConfig {
    pub(crate) app_prefixes: Vec<String>,
    pub(crate) topic_prefixes: Vec<String>,
    pub(crate) queue_prefixes: Vec<String>,
    pub(crate) heartbeat_ms: u64,
    pub(crate) max_frame: usize,
    pub(crate) max_output: usize,
    pub(crate) max_sessions: usize,
    pub(crate) auth: Option<Hook>,
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig")
            .field("app_prefixes", &self.app_prefixes)
            .field("topic_prefixes", &self.topic_prefixes)
            .field("queue_prefixes", &self.queue_prefixes)
            .field("heartbeat_ms", &self.heartbeat_ms)
            .field("auth", &self.auth.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            app_prefixes: vec!["/app".into()],
            topic_prefixes: vec!["/topic".into()],
            queue_prefixes: vec!["/queue".into()],
            heartbeat_ms: 10_000,
            max_frame: 1 << 20,
            max_output: 4 << 20,
            max_sessions: 10_000,
            auth: None,
        }
    }
}

/// An application event, as the event loop hands it to a handler.
#[derive(Debug)]
pub(crate) struct AppEvent {
    pub(crate) session: SessionId,
    pub(crate) user: Option<String>,
    pub(crate) destination: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
    pub(crate) subscribe: bool,
}

pub(crate) struct Hub {
    broker: Broker,
    now: u64,
    /// Sessions the broker ended, with the reason, until the transport is closed.
    finished: HashMap<SessionId, String>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("sessions", &self.broker.session_count())
            .finish_non_exhaustive()
    }
}

fn describe(reason: &CloseReason) -> String {
    match reason {
        CloseReason::ClientDisconnect => "client sent DISCONNECT".into(),
        CloseReason::TransportClosed => "transport closed".into(),
        CloseReason::AuthRejected => "authentication failed".into(),
        CloseReason::ProtocolError(m) => format!("STOMP protocol error: {m}"),
        CloseReason::SlowConsumer => "slow consumer (output limit exceeded)".into(),
        CloseReason::HeartbeatTimeout => "heart-beat timeout".into(),
    }
}

impl Hub {
    pub(crate) fn new(mut c: HubConfig) -> Self {
        let hb = u32::try_from(c.heartbeat_ms).unwrap_or(u32::MAX);
        let mut frame_limits = broker::Config::default().frame_limits;
        frame_limits.max_body_bytes = c.max_frame;
        let config = broker::Config {
            app_prefixes: c.app_prefixes.clone(),
            topic_prefixes: c.topic_prefixes.clone(),
            queue_prefixes: c.queue_prefixes.clone(),
            heart_beat: (hb, hb),
            max_output_bytes: c.max_output,
            max_sessions: c.max_sessions,
            frame_limits,
            ..broker::Config::default()
        };
        let broker = match c.auth.take() {
            Some(mut hook) => Broker::with_authenticator(config, move |r: &ConnectRequest<'_>| {
                let req = AuthRequest {
                    login: r.login,
                    passcode: r.passcode,
                    host: r.host,
                    peer: r.transport.remote_addr,
                };
                match hook(&req) {
                    AuthDecision::Accept(user) => BrokerAuth::Accept {
                        user: user.or_else(|| r.login.map(str::to_owned)),
                    },
                    AuthDecision::Reject(message) => BrokerAuth::Reject { message },
                }
            }),
            // Any login is accepted; the login names the user (for /user destinations).
            None => {
                Broker::with_authenticator(config, |r: &ConnectRequest<'_>| BrokerAuth::Accept {
                    user: r.login.map(str::to_owned),
                })
            }
        };
        Self {
            broker,
            now: 0,
            finished: HashMap::new(),
        }
    }

    pub(crate) fn open(&mut self, peer: SocketAddr, now: u64) -> Result<SessionId, String> {
        self.now = now;
        let info = broker::TransportInfo {
            remote_addr: Some(peer),
            ..Default::default()
        };
        self.broker
            .open_session(info, now)
            .map_err(|e| e.to_string())
    }

    pub(crate) fn handle_read(&mut self, id: SessionId, bytes: &[u8], now: u64) {
        self.now = now;
        if let Err(e) = self.broker.handle_read(id, bytes, now) {
            debug!(session = %id, error = %e, "input for a session the broker no longer knows");
        }
    }

    pub(crate) fn poll_transmit(&mut self, id: SessionId) -> Option<Transmit> {
        self.broker.poll_transmit(id)
    }

    /// The reason the broker ended session `id` (its last frames are still to be drained).
    pub(crate) fn finished(&mut self, id: SessionId) -> Option<String> {
        self.finished.remove(&id)
    }

    pub(crate) fn transport_closed(&mut self, id: SessionId) {
        self.finished.remove(&id);
        // Unknown after the broker reported it closed itself: fine.
        let _ = self.broker.transport_closed(id);
    }

    pub(crate) fn handle_timeout(&mut self, now: u64) {
        self.now = now;
        self.broker.handle_timeout(now);
    }

    pub(crate) fn poll_timeout(&mut self) -> Option<u64> {
        self.broker.poll_timeout()
    }

    /// Sessions with output, each once.
    pub(crate) fn ready_sessions(&mut self) -> Vec<SessionId> {
        let mut v = Vec::new();
        while let Some(id) = self.broker.poll_ready() {
            v.push(id);
        }
        v.extend(self.finished.keys().copied());
        v
    }

    /// The next application event; host events (connected, closed) are logged and recorded.
    pub(crate) fn poll_app_event(&mut self) -> Option<AppEvent> {
        loop {
            match self.broker.poll_event()? {
                Event::Connected { session, user } => {
                    info!(session = %session, user = user.as_deref().unwrap_or("-"), "STOMP session connected");
                }
                Event::Closed { session, reason } => {
                    if reason != CloseReason::TransportClosed {
                        self.finished.insert(session, describe(&reason));
                    }
                }
                Event::Message(m) => {
                    return Some(AppEvent {
                        session: m.session,
                        user: m.user.as_deref().map(str::to_owned),
                        destination: m.destination,
                        headers: m.headers,
                        body: m.body,
                        subscribe: false,
                    });
                }
                Event::Subscribe(s) => {
                    return Some(AppEvent {
                        session: s.session,
                        user: s.user.as_deref().map(str::to_owned),
                        destination: s.destination,
                        headers: s.headers,
                        body: Bytes::new(),
                        subscribe: true,
                    });
                }
            }
        }
    }

    /// Applies a handler's replies for a message from `session`.
    pub(crate) fn apply_reply(&mut self, session: SessionId, reply: Reply) {
        for o in reply.out {
            let mut headers: Vec<(&str, &str)> = Vec::with_capacity(o.headers.len() + 1);
            headers.push(("content-type", o.content_type.as_str()));
            headers.extend(o.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let r = match &o.target {
                Target::Publish(d) => self.broker.publish(d, &headers, o.body),
                Target::Sender(d) => self.broker.send_to_session(session, d, &headers, o.body),
                Target::User { user, destination } => {
                    self.broker
                        .send_to_user(user, destination, &headers, o.body)
                }
            };
            if let Err(e) = r {
                warn!(session = %session, target = ?o.target, error = %e, "application reply refused");
            }
        }
    }

    pub(crate) fn stats_json(&self) -> String {
        self.broker.stats().to_json()
    }

    pub(crate) fn stats_line(&self) -> String {
        let s = self.broker.stats();
        format!(
            "sessions={} connected={} published={} delivered={} slow_consumers={} protocol_errors={} heartbeat_timeouts={}",
            s.sessions_current,
            s.sessions_connected,
            s.messages_published,
            s.messages_delivered,
            s.slow_consumer_disconnects,
            s.protocol_errors,
            s.heartbeat_timeouts
        )
    }
}
