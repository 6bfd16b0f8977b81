//! Client frames after the session layer, as the routing core sees them.

use bytes::Bytes;

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

/// A client frame for the routing core (CONNECT and heart-beats are handled by the session).
#[derive(Debug, Clone)]
pub(crate) enum Inbound {
    Subscribe {
        id: String,
        destination: String,
        ack: AckMode,
        headers: Vec<(String, String)>,
        receipt: Option<String>,
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
        transaction: Option<String>,
    },
    /// ACK (`nack == false`) or NACK.
    Ack {
        nack: bool,
        /// The `id` (1.2) or `message-id` (1.0, 1.1) value.
        id: String,
        /// The `subscription` header (1.1).
        subscription: Option<String>,
        receipt: Option<String>,
        transaction: Option<String>,
    },
    Begin {
        transaction: String,
        receipt: Option<String>,
    },
    /// COMMIT (`commit == true`) or ABORT.
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
    pub(crate) fn transaction(&self) -> Option<&str> {
        match self {
            Inbound::Send { transaction, .. } | Inbound::Ack { transaction, .. } => {
                transaction.as_deref()
            }
            _ => None,
        }
    }

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
}
