//! Session errors: a peer's protocol violation ([`PeerError`], sticky, its reply already
//! queued) and host misuse ([`UsageError`], the session stays usable).

use crate::encoder::EncodeError;
use crate::frame::{Command, Frame};
use crate::parser::ParseError;
use alloc::boxed::Box;
use core::fmt;

/// What the peer did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Violation {
    /// The byte stream is not valid STOMP.
    Parse(ParseError),
    /// A frame other than CONNECT/STOMP before the session was established (server), or
    /// other than CONNECTED/ERROR before it (client).
    NotConnected(Command),
    /// A command the peer must not send in this state or role (e.g. MESSAGE from a client,
    /// a second CONNECT, NACK in STOMP 1.0).
    UnexpectedCommand(Command),
    /// No protocol version in common.
    UnsupportedVersion,
    /// A required header is missing.
    MissingHeader(Command, &'static str),
    /// A header has an invalid value.
    InvalidHeader(Command, &'static str),
    /// A body on a command that must not have one.
    BodyNotAllowed(Command),
    /// SUBSCRIBE with an `id` already in use on this session.
    DuplicateSubscription,
    /// UNSUBSCRIBE / ACK / NACK naming a subscription that does not exist.
    UnknownSubscription,
    /// ACK / NACK for a message that is not awaiting acknowledgement.
    UnknownAckId,
    /// BEGIN of a transaction that is already active.
    DuplicateTransaction,
    /// A frame naming a transaction that is not active.
    UnknownTransaction,
    /// A session limit was exceeded (subscriptions, transactions, frames held in a
    /// transaction, buffered input).
    LimitExceeded(&'static str),
    /// Nothing was received from the peer within the negotiated interval times the grace.
    HeartBeatTimeout,
    /// The session was not established within the connect timeout (server: no valid
    /// CONNECT/STOMP, or the host did not accept or reject it, in time).
    ConnectTimeout,
    /// The server sent an ERROR frame (client side).
    ServerError,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Parse(e) => write!(f, "malformed frame: {e}"),
            Violation::NotConnected(c) => {
                write!(f, "{c} frame received before the session was established")
            }
            Violation::UnexpectedCommand(c) => write!(f, "{c} frame not allowed here"),
            Violation::UnsupportedVersion => f.write_str("no supported protocol version in common"),
            Violation::MissingHeader(c, h) => {
                write!(f, "{c} frame is missing the required '{h}' header")
            }
            Violation::InvalidHeader(c, h) => write!(f, "{c} frame has an invalid '{h}' header"),
            Violation::BodyNotAllowed(c) => write!(f, "{c} frame must not have a body"),
            Violation::DuplicateSubscription => f.write_str("subscription id already in use"),
            Violation::UnknownSubscription => f.write_str("unknown subscription"),
            Violation::UnknownAckId => {
                f.write_str("no message awaiting acknowledgement with this id")
            }
            Violation::DuplicateTransaction => f.write_str("transaction already active"),
            Violation::UnknownTransaction => f.write_str("unknown transaction"),
            Violation::LimitExceeded(what) => write!(f, "limit exceeded: {what}"),
            Violation::HeartBeatTimeout => {
                f.write_str("heart-beat timeout: peer silent for too long")
            }
            Violation::ConnectTimeout => f.write_str("connect timeout"),
            Violation::ServerError => f.write_str("the server sent an ERROR frame"),
        }
    }
}

/// A protocol violation by the peer. Sticky: the session is closed and returns it again on
/// further input. On the server side `reply` is the ERROR frame that was already queued for
/// transmission; drain `poll_transmit`, then close the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerError {
    /// What went wrong.
    pub violation: Violation,
    /// The ERROR frame queued as the reply (server side), or the ERROR frame received from
    /// the server (client side, with [`Violation::ServerError`]).
    pub reply: Option<Box<Frame>>,
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.violation, f)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PeerError {}

/// Misuse by the host. The session is unchanged and stays usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsageError {
    /// The session is not established yet (or is waiting for the host to accept it).
    NotConnected,
    /// The session is closed (or closing after DISCONNECT / ERROR).
    Closed,
    /// No CONNECT is waiting for `accept` / `reject`.
    NoPendingConnect,
    /// The subscription id is unknown to this session.
    UnknownSubscription,
    /// The subscription id is already in use.
    DuplicateSubscription,
    /// The transaction is not active.
    UnknownTransaction,
    /// The transaction is already active.
    DuplicateTransaction,
    /// The negotiated version has no such operation (NACK in STOMP 1.0).
    NotInVersion,
    /// The frame's command cannot be sent by this side (e.g. MESSAGE from a client).
    WrongCommand(Command),
    /// A required header is missing from a frame given by the host.
    MissingHeader(&'static str),
    /// A limit of this session would be exceeded (e.g. messages awaiting acknowledgement).
    LimitExceeded(&'static str),
    /// A header cannot be represented in the negotiated version.
    Encode(EncodeError),
    /// A [`crate::server::SharedMessage`] encoded for another version than the session's.
    WrongVersion,
    /// Output is queued in the session that a frame handed straight back would overtake
    /// ([`crate::server::ServerSession::send_shared_frame`]): take it first.
    OutputPending,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::NotConnected => f.write_str("session not established"),
            UsageError::Closed => f.write_str("session closed"),
            UsageError::NoPendingConnect => f.write_str("no CONNECT awaiting accept or reject"),
            UsageError::UnknownSubscription => f.write_str("unknown subscription"),
            UsageError::DuplicateSubscription => f.write_str("subscription id already in use"),
            UsageError::UnknownTransaction => f.write_str("unknown transaction"),
            UsageError::DuplicateTransaction => f.write_str("transaction already active"),
            UsageError::NotInVersion => f.write_str("not available in the negotiated version"),
            UsageError::WrongCommand(c) => write!(f, "{c} cannot be sent by this side"),
            UsageError::MissingHeader(h) => write!(f, "missing required header '{h}'"),
            UsageError::LimitExceeded(what) => write!(f, "limit exceeded: {what}"),
            UsageError::Encode(e) => fmt::Display::fmt(e, f),
            UsageError::WrongVersion => f.write_str("message encoded for another version"),
            UsageError::OutputPending => f.write_str("queued output must be taken first"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for UsageError {}

impl From<EncodeError> for UsageError {
    fn from(e: EncodeError) -> UsageError {
        UsageError::Encode(e)
    }
}
