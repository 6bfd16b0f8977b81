//! Application handlers: Rust code behind `/app/...` destinations.
//!
//! A client SENDs to `/app/chat`; the broker does not route it to subscribers but hands it to the
//! handler registered for `/app/chat`, which answers through a [`Reply`]: publish to a broker
//! destination, send to the sending session only, or send to every session of a user.
//!
//! ```
//! use stompbox_server::{AppMessage, Reply, ServerBuilder};
//!
//! let builder = ServerBuilder::new().handler("/app/shout", |msg: &AppMessage, reply: &mut Reply| {
//!     let loud = String::from_utf8_lossy(&msg.body).to_uppercase();
//!     reply.publish("/topic/shouts", loud);
//! });
//! # drop(builder);
//! ```

use bytes::Bytes;

/// A SEND (or SUBSCRIBE) to an application destination, as the handler sees it.
#[derive(Debug, Clone)]
pub struct AppMessage {
    /// The broker's id of the sending session, as text (for logs).
    pub session: String,
    /// The authenticated user name of the session, if any.
    pub user: Option<String>,
    /// The full destination, e.g. `/app/chat`.
    pub destination: String,
    /// The frame's headers in order (transport headers included).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
    /// `true` for a SUBSCRIBE to an application destination (answer once, like Spring's
    /// `@SubscribeMapping`), `false` for a SEND.
    pub subscribe: bool,
    /// Milliseconds since the Unix epoch when the server received it.
    pub received_unix_ms: u64,
}

impl AppMessage {
    /// The first value of a header, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text, if it is valid UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }
}

/// Where a reply goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Publish to a broker destination (`/topic/...`, `/queue/...`).
    Publish(String),
    /// Send to the session that sent the message, on this destination (e.g. `/user/queue/echo`
    /// is delivered to its subscription of `/user/queue/echo`).
    Sender(String),
    /// Send to every session of a user, on this destination (e.g. `/queue/notes` reaches their
    /// subscriptions of `/user/queue/notes`).
    User {
        /// The user name.
        user: String,
        /// The destination.
        destination: String,
    },
}

/// One reply of a handler.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Where it goes.
    pub target: Target,
    /// Extra headers of the MESSAGE (content-type is set from `content_type`).
    pub headers: Vec<(String, String)>,
    /// The `content-type` header.
    pub content_type: String,
    /// The body.
    pub body: Bytes,
}

/// The replies a handler makes; applied to the broker in order after the handler returns.
#[derive(Debug, Default)]
pub struct Reply {
    pub(crate) out: Vec<Outgoing>,
}

impl Reply {
    /// Publishes a text body to a broker destination.
    pub fn publish(
        &mut self,
        destination: impl Into<String>,
        body: impl Into<Bytes>,
    ) -> &mut Outgoing {
        self.push(Target::Publish(destination.into()), body.into())
    }

    /// Sends a text body to the sending session on `destination` (usually `/user/queue/...`).
    pub fn to_sender(
        &mut self,
        destination: impl Into<String>,
        body: impl Into<Bytes>,
    ) -> &mut Outgoing {
        self.push(Target::Sender(destination.into()), body.into())
    }

    /// Sends a text body to every session of `user` on `destination`.
    pub fn to_user(
        &mut self,
        user: impl Into<String>,
        destination: impl Into<String>,
        body: impl Into<Bytes>,
    ) -> &mut Outgoing {
        self.push(
            Target::User {
                user: user.into(),
                destination: destination.into(),
            },
            body.into(),
        )
    }

    /// The replies made so far.
    pub fn outgoing(&self) -> &[Outgoing] {
        &self.out
    }

    fn push(&mut self, target: Target, body: Bytes) -> &mut Outgoing {
        self.out.push(Outgoing {
            target,
            headers: Vec::new(),
            content_type: "text/plain;charset=utf-8".to_owned(),
            body,
        });
        let last = self.out.len() - 1;
        &mut self.out[last]
    }
}

impl Outgoing {
    /// Adds a header to the MESSAGE.
    pub fn header(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the `content-type`.
    pub fn content_type(&mut self, value: impl Into<String>) -> &mut Self {
        self.content_type = value.into();
        self
    }
}

/// A handler for one application destination.
pub trait AppHandler {
    /// Handles one message; replies go into `reply`.
    fn handle(&mut self, message: &AppMessage, reply: &mut Reply);
}

impl<F: FnMut(&AppMessage, &mut Reply)> AppHandler for F {
    fn handle(&mut self, message: &AppMessage, reply: &mut Reply) {
        self(message, reply);
    }
}

/// The binary's demo handler for `/app/chat`: broadcasts to `/topic/chat` with the sender's
/// `nick` header (or user name) and a server `timestamp` header (Unix milliseconds).
pub fn chat_handler(message: &AppMessage, reply: &mut Reply) {
    let nick = message
        .header("nick")
        .map(str::to_owned)
        .or_else(|| message.user.clone())
        .unwrap_or_else(|| "anonymous".to_owned());
    let nick: String = nick.chars().filter(|c| !c.is_control()).take(64).collect();
    reply
        .publish("/topic/chat", message.body.clone())
        .header("nick", nick)
        .header("timestamp", message.received_unix_ms.to_string());
}

/// The binary's demo handler for `/app/echo`: answers the sender on `/user/queue/echo` with the
/// same body and content-type.
pub fn echo_handler(message: &AppMessage, reply: &mut Reply) {
    let content_type = message
        .header("content-type")
        .unwrap_or("text/plain;charset=utf-8")
        .to_owned();
    reply
        .to_sender("/user/queue/echo", message.body.clone())
        .content_type(content_type)
        .header("timestamp", message.received_unix_ms.to_string());
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
mod tests {
    use super::*;

    fn msg(headers: &[(&str, &str)], body: &str) -> AppMessage {
        AppMessage {
            session: "1".into(),
            user: Some("alice".into()),
            destination: "/app/chat".into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: Bytes::copy_from_slice(body.as_bytes()),
            subscribe: false,
            received_unix_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn chat_broadcasts_with_nick_and_timestamp() {
        let mut r = Reply::default();
        chat_handler(&msg(&[("nick", "bob\nx")], "hi"), &mut r);
        let [o] = r.outgoing() else {
            panic!("one reply")
        };
        assert_eq!(o.target, Target::Publish("/topic/chat".into()));
        assert_eq!(&o.body[..], b"hi");
        assert!(o.headers.contains(&("nick".into(), "bobx".into())));
        assert!(
            o.headers
                .contains(&("timestamp".into(), "1700000000123".into()))
        );
    }

    #[test]
    fn chat_falls_back_to_user_name() {
        let mut r = Reply::default();
        chat_handler(&msg(&[], "hi"), &mut r);
        assert!(
            r.outgoing()[0]
                .headers
                .contains(&("nick".into(), "alice".into()))
        );
    }

    #[test]
    fn echo_answers_the_sender_only() {
        let mut r = Reply::default();
        echo_handler(&msg(&[("content-type", "application/json")], "{}"), &mut r);
        let [o] = r.outgoing() else {
            panic!("one reply")
        };
        assert_eq!(o.target, Target::Sender("/user/queue/echo".into()));
        assert_eq!(o.content_type, "application/json");
        assert_eq!(&o.body[..], b"{}");
    }
}
