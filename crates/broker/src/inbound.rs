//! Client frames after the session layer (`stompbox_stomp::ServerSession`), as the routing
//! core sees them, and the texts of the ERRORs the session sends for violations.

use bytes::Bytes;
use stompbox_stomp::server::{AckEvent, SendEvent, SubscribeEvent, SubscriptionKey};
use stompbox_stomp::{Command, Frame, Violation};

use crate::broker::is_broker_header;

/// Acknowledgement mode of a subscription (STOMP 1.2 "SUBSCRIBE ack Header").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckMode {
    /// The message counts as delivered once sent.
    #[default]
    Auto,
    /// Cumulative: an ACK (or NACK) covers the message and every earlier one of the
    /// subscription.
    Client,
    /// Individual: an ACK (or NACK) covers exactly one message.
    ClientIndividual,
}

impl AckMode {
    /// Parses the `ack` header value (`None` for an absent header is `Auto`).
    pub fn parse(v: Option<&str>) -> Option<AckMode> {
        match v {
            None | Some("auto") => Some(AckMode::Auto),
            Some("client") => Some(AckMode::Client),
            Some("client-individual") => Some(AckMode::ClientIndividual),
            Some(_) => None,
        }
    }
}

impl From<stompbox_stomp::AckMode> for AckMode {
    fn from(m: stompbox_stomp::AckMode) -> AckMode {
        match m {
            stompbox_stomp::AckMode::Auto => AckMode::Auto,
            stompbox_stomp::AckMode::Client => AckMode::Client,
            stompbox_stomp::AckMode::ClientIndividual => AckMode::ClientIndividual,
        }
    }
}

/// A validated client frame for the routing core (CONNECT, heart-beats, transactions and
/// acknowledgement books are the session's; frames held in a transaction arrive at COMMIT).
#[derive(Debug, Clone)]
pub(crate) enum Inbound {
    Subscribe {
        id: String,
        destination: String,
        ack: AckMode,
        headers: Vec<(String, String)>,
        receipt: Option<String>,
        /// The session's key for it (deliveries name the subscription by it).
        key: SubscriptionKey,
    },
    Unsubscribe {
        id: String,
        receipt: Option<String>,
    },
    Send {
        destination: String,
        headers: Vec<(String, String)>,
        body: Bytes,
        receipt: Option<String>,
        /// The transaction it was committed in.
        transaction: Option<String>,
    },
    /// ACK (`nack == false`) or NACK, resolved by the session to the messages it covers.
    Ack {
        nack: bool,
        subscription: String,
        /// The `message-id`s covered, oldest first.
        message_ids: Vec<String>,
        receipt: Option<String>,
        /// The transaction it was committed in.
        transaction: Option<String>,
    },
    Begin {
        transaction: String,
        receipt: Option<String>,
    },
    /// COMMIT (`commit == true`, after the frames it released) or ABORT.
    End {
        commit: bool,
        transaction: String,
        receipt: Option<String>,
    },
    Disconnect {
        receipt: Option<String>,
    },
}

impl Inbound {
    pub(crate) fn receipt(&self) -> Option<&str> {
        match self {
            Inbound::Subscribe { receipt, .. }
            | Inbound::Unsubscribe { receipt, .. }
            | Inbound::Send { receipt, .. }
            | Inbound::Ack { receipt, .. }
            | Inbound::Begin { receipt, .. }
            | Inbound::End { receipt, .. }
            | Inbound::Disconnect { receipt } => receipt.as_deref(),
        }
    }

    pub(crate) fn send(e: SendEvent) -> Inbound {
        let destination = e.destination().to_owned();
        let mut headers: Vec<(String, String)> = Vec::with_capacity(e.frame.header_count());
        for (k, v) in e.frame.headers() {
            // Repeated headers: the first one wins (STOMP 1.2 "Repeated Header Entries");
            // later ones are not forwarded.
            if !is_broker_header(k) && !headers.iter().any(|(hk, _)| hk == k) {
                headers.push((k.to_owned(), v.to_owned()));
            }
        }
        Inbound::Send {
            destination,
            headers,
            body: e.frame.body().clone(),
            receipt: e.receipt,
            transaction: e.transaction,
        }
    }

    pub(crate) fn subscribe(e: SubscribeEvent) -> Inbound {
        let headers = e
            .frame
            .headers()
            .filter(|(k, _)| !matches!(*k, "destination" | "id" | "ack" | "receipt"))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Inbound::Subscribe {
            id: e.id,
            destination: e.destination,
            ack: e.ack.into(),
            headers,
            receipt: e.receipt,
            key: e.key,
        }
    }

    pub(crate) fn ack(e: AckEvent, nack: bool) -> Inbound {
        Inbound::Ack {
            nack,
            subscription: e.subscription,
            message_ids: e.message_ids,
            receipt: e.receipt,
            transaction: e.transaction,
        }
    }
}

/// The ERROR `message` for a client's violation: the broker's texts, which its clients and
/// tests know (`ServerConfig::violation_message`).
pub(crate) fn violation_message(v: &Violation, f: Option<&Frame>) -> String {
    let header = |name: &str| f.and_then(|f| f.header(name)).unwrap_or_default();
    match v {
        Violation::Parse(e) => e.as_str().to_owned(),
        Violation::NotConnected(_) => "expected CONNECT".to_owned(),
        Violation::UnexpectedCommand(Command::Connect | Command::Stomp) => {
            "already connected".to_owned()
        }
        Violation::UnexpectedCommand(Command::Nack) => "NACK is not part of STOMP 1.0".to_owned(),
        Violation::UnexpectedCommand(c) => format!("{} is not a client frame", c.as_str()),
        Violation::UnsupportedVersion => "supported protocol versions are 1.0,1.1,1.2".to_owned(),
        Violation::MissingHeader(c, h) => format!("{} frame requires a {h} header", c.as_str()),
        Violation::InvalidHeader(_, h) => format!("invalid {h} header"),
        Violation::BodyNotAllowed(c) => format!("{} frame must not have a body", c.as_str()),
        Violation::DuplicateSubscription => format!("duplicate subscription id {}", header("id")),
        Violation::UnknownSubscription => {
            let id = f
                .and_then(|f| f.header("id").or_else(|| f.header("subscription")))
                .or_else(|| f.and_then(|f| f.header("destination")))
                .unwrap_or_default();
            format!("no subscription {id}")
        }
        Violation::UnknownAckId => {
            let id = f
                .and_then(|f| f.header("id").or_else(|| f.header("message-id")))
                .unwrap_or_default();
            format!("unknown ack id {id}")
        }
        Violation::DuplicateTransaction => {
            format!("transaction {} already begun", header("transaction"))
        }
        Violation::UnknownTransaction => format!("unknown transaction {}", header("transaction")),
        Violation::LimitExceeded("subscriptions") => "too many subscriptions".to_owned(),
        Violation::LimitExceeded("transactions") => "too many transactions".to_owned(),
        Violation::LimitExceeded("frames in a transaction" | "bytes held in transactions") => {
            "transaction too large".to_owned()
        }
        Violation::HeartBeatTimeout => "heart-beat timeout".to_owned(),
        Violation::ConnectTimeout => "no CONNECT in time".to_owned(),
        other => other.to_string(),
    }
}
