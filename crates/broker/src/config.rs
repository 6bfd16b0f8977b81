//! Broker configuration: prefixes, policies and limits (small, secure defaults).

use stompbox_stomp::Limits;

/// What to do with a SEND whose destination is under no configured prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownDestination {
    /// Answer with an ERROR frame (with `receipt-id` when asked) and close the session.
    #[default]
    Error,
    /// Drop the message (counted in [`Stats::messages_dropped`](crate::Stats)); a receipt, if
    /// asked for, is still sent.
    Drop,
}

/// Broker configuration. Every limit is enforced; exceeding one is a typed outcome (an ERROR to
/// the client, a slow-consumer disconnect, or an error returned to the host), never unbounded
/// growth.
#[derive(Debug, Clone)]
pub struct Config {
    /// Prefixes of application destinations (SEND and SUBSCRIBE become [`Event`](crate::Event)s).
    /// Default: `["/app"]`.
    pub app_prefixes: Vec<String>,
    /// Prefixes of publish-subscribe destinations. Default: `["/topic"]`.
    pub topic_prefixes: Vec<String>,
    /// Prefixes of point-to-point destinations. Default: `["/queue"]`.
    pub queue_prefixes: Vec<String>,
    /// Prefix of user destinations: SUBSCRIBE to `{prefix}/queue/x` is private to the session;
    /// SEND to `{prefix}/{user}/queue/x` reaches every session of that user. Default: `"/user"`.
    pub user_prefix: String,
    /// Segment separator for subscription patterns (`*`, `**`). Default: `'/'`.
    pub separator: char,
    /// Policy for destinations under no prefix. Default: [`UnknownDestination::Error`].
    pub unknown_destination: UnknownDestination,
    /// Maximum open sessions. Default: 10,000.
    pub max_sessions: usize,
    /// Maximum subscriptions per session. Default: 256.
    pub max_subscriptions_per_session: usize,
    /// Maximum number of queues (destinations under a queue prefix). Default: 10,000.
    pub max_queues: usize,
    /// Maximum messages waiting in one queue; a SEND to a full queue gets an ERROR. Default:
    /// 1,000. Redelivered messages are never dropped: they may take a queue above this depth
    /// by at most what its consumers held unacknowledged.
    pub max_queue_depth: usize,
    /// Maximum unacknowledged messages per subscription in a client ack mode (a queue skips a
    /// consumer at the limit; a topic subscriber over it is a slow consumer). Default: 1,000.
    pub max_unacked_per_subscription: usize,
    /// Maximum bytes queued for output per session; a session over it is a slow consumer and is
    /// disconnected with an ERROR. Default: 4 MiB.
    pub max_output_bytes: usize,
    /// Maximum frames queued for output per session. Default: 10,000.
    pub max_output_frames: usize,
    /// Maximum open transactions per session. Default: 16.
    pub max_transactions_per_session: usize,
    /// Maximum frames buffered in one transaction. Default: 1,000.
    pub max_frames_per_transaction: usize,
    /// Maximum length of a destination, in bytes. Default: 1,024.
    pub max_destination_len: usize,
    /// Server name sent in CONNECTED (`server` header). Default: `"stompbox"`.
    pub server_name: String,
    /// Heart-beat the server offers (send, receive) in milliseconds; 0 disables. Default:
    /// (10,000, 10,000).
    pub heart_beat: (u32, u32),
    /// A client is judged dead after `grace` times its negotiated heart-beat interval without
    /// a byte. Default: 2.
    pub heart_beat_grace: u32,
    /// Milliseconds a new session has to send CONNECT. Default: 30,000.
    pub connect_timeout_ms: u64,
    /// STOMP frame limits after CONNECT is accepted (before it, the codec's small
    /// `Limits::unauthenticated()` apply). Default: `Limits::default()` (8 KiB head, 64
    /// headers, 1 MiB body).
    pub frame_limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            app_prefixes: vec!["/app".into()],
            topic_prefixes: vec!["/topic".into()],
            queue_prefixes: vec!["/queue".into()],
            user_prefix: "/user".into(),
            separator: '/',
            unknown_destination: UnknownDestination::Error,
            max_sessions: 10_000,
            max_subscriptions_per_session: 256,
            max_queues: 10_000,
            max_queue_depth: 1_000,
            max_unacked_per_subscription: 1_000,
            max_output_bytes: 4 << 20,
            max_output_frames: 10_000,
            max_transactions_per_session: 16,
            max_frames_per_transaction: 1_000,
            max_destination_len: 1_024,
            server_name: "stompbox".into(),
            heart_beat: (10_000, 10_000),
            heart_beat_grace: 2,
            connect_timeout_ms: 30_000,
            frame_limits: Limits::default(),
        }
    }
}

/// The kind of a destination, by prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    App,
    Topic,
    Queue,
    User,
    Unknown,
}

/// Is `dest` equal to `prefix` or under it (the next character is `/` or the separator)?
pub(crate) fn under(dest: &str, prefix: &str, sep: char) -> bool {
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    match dest.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => rest.starts_with('/') || rest.starts_with(sep) || prefix.is_empty(),
        None => false,
    }
}

impl Config {
    pub(crate) fn kind(&self, dest: &str) -> Kind {
        let sep = self.separator;
        if under(dest, &self.user_prefix, sep) {
            Kind::User
        } else if self.app_prefixes.iter().any(|p| under(dest, p, sep)) {
            Kind::App
        } else if self.topic_prefixes.iter().any(|p| under(dest, p, sep)) {
            Kind::Topic
        } else if self.queue_prefixes.iter().any(|p| under(dest, p, sep)) {
            Kind::Queue
        } else {
            Kind::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let c = Config::default();
        for (d, k) in [
            ("/app/greet", Kind::App),
            ("/app", Kind::App),
            ("/apple", Kind::Unknown),
            ("/topic/a", Kind::Topic),
            ("/topics/a", Kind::Unknown),
            ("/queue/a", Kind::Queue),
            ("/user/queue/a", Kind::User),
            ("/user/bob/queue/a", Kind::User),
            ("/users", Kind::Unknown),
            ("", Kind::Unknown),
            ("/other", Kind::Unknown),
        ] {
            assert_eq!(c.kind(d), k, "{d}");
        }
        let dotted = Config {
            separator: '.',
            topic_prefixes: vec!["/topic/".into()],
            ..Config::default()
        };
        assert_eq!(dotted.kind("/topic.a"), Kind::Topic);
        assert_eq!(dotted.kind("/topic/a"), Kind::Topic);
    }
}
