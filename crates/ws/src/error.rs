//! Error types: peer violations ([`ProtocolError`], sticky) and host misuse ([`SendError`]).

use core::fmt;

use crate::close::CloseCode;
use crate::frame::HeaderError;

/// A protocol violation by the peer. It is sticky: the connection has already queued a Close
/// frame with [`ProtocolError::close_code`] (unless it had sent one before), accepts no more
/// input and reports the same error from every later `handle_read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A server received an unmasked frame (RFC 6455 section 5.1).
    UnmaskedFrame,
    /// A client received a masked frame (RFC 6455 section 5.1).
    MaskedFrame,
    /// RSV1/2/3 set without a negotiated extension that defines them (section 5.2).
    ReservedBits,
    /// A reserved opcode (section 5.2); the raw value.
    ReservedOpcode(u8),
    /// A 64-bit payload length with the most significant bit set (section 5.2).
    LengthOverflow,
    /// A control frame with FIN clear (section 5.5).
    FragmentedControlFrame,
    /// A control frame with a payload over 125 bytes (section 5.5).
    ControlFrameTooLong,
    /// A continuation frame with no message in progress (section 5.4).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is in progress (section 5.4).
    ExpectedContinuation,
    /// A text message or close reason that is not valid UTF-8 (section 8.1); close code 1007.
    InvalidUtf8,
    /// A Close frame with a 1-byte payload (section 5.5.1).
    InvalidClosePayload,
    /// A Close frame with a code that may not be sent (section 7.4).
    InvalidCloseCode(u16),
    /// A frame whose payload is larger than `Config::max_frame_size`; close code 1009.
    FrameTooLarge,
    /// A message larger than `Config::max_message_size`; close code 1009.
    MessageTooLarge,
    /// A message in more fragments than `Config::max_fragments`; close code 1009.
    TooManyFragments,
    /// A compressed (RSV1) message whose payload is not a valid DEFLATE stream (RFC 7692
    /// section 6.2); close code 1007. An inflated message over `Config::max_message_size`
    /// is [`ProtocolError::MessageTooLarge`] (1009).
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code this violation is answered with (1002, 1007 or 1009).
    pub const fn close_code(self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::InvalidCompressedData => CloseCode::INVALID_DATA,
            Self::FrameTooLarge | Self::MessageTooLarge | Self::TooManyFragments => {
                CloseCode::TOO_BIG
            }
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl From<HeaderError> for ProtocolError {
    fn from(e: HeaderError) -> Self {
        match e {
            HeaderError::ReservedOpcode(op) => Self::ReservedOpcode(op),
            HeaderError::LengthOverflow => Self::LengthOverflow,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::UnmaskedFrame => "unmasked frame from a client",
            Self::MaskedFrame => "masked frame from a server",
            Self::ReservedBits => "reserved bits set without a negotiated extension",
            Self::ReservedOpcode(op) => return write!(f, "reserved opcode {op:#x}"),
            Self::LengthOverflow => "64-bit payload length with the top bit set",
            Self::FragmentedControlFrame => "fragmented control frame",
            Self::ControlFrameTooLong => "control frame payload over 125 bytes",
            Self::UnexpectedContinuation => "continuation frame without a message in progress",
            Self::ExpectedContinuation => "new message inside a fragmented message",
            Self::InvalidUtf8 => "invalid UTF-8 in a text message or close reason",
            Self::InvalidClosePayload => "close frame with a 1-byte payload",
            Self::InvalidCloseCode(code) => return write!(f, "invalid close code {code}"),
            Self::FrameTooLarge => "frame larger than the configured limit",
            Self::MessageTooLarge => "message larger than the configured limit",
            Self::TooManyFragments => "message in more fragments than the configured limit",
            Self::InvalidCompressedData => "compressed message is not a valid DEFLATE stream",
        };
        f.write_str(text)
    }
}

impl core::error::Error for ProtocolError {}

/// Host misuse of a sending command. The connection is unchanged and stays usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// A Close frame was already sent, or the connection is closed: nothing more may be sent.
    Closed,
    /// Queuing this frame would take the pending output over `Config::max_output_buffer`;
    /// drain `poll_transmit` and retry.
    OutputFull {
        /// Bytes pending now.
        pending: usize,
        /// Bytes this frame would add.
        needed: usize,
    },
    /// A control frame payload (ping, pong, close code + reason) over 125 bytes.
    ControlPayloadTooLong,
    /// A close code that may not be sent (1005, 1006, 1015 or outside 1000-4999, ...).
    InvalidCloseCode(u16),
    /// A new message was started while a fragmented message is being sent.
    MessageInProgress,
    /// A continuation of a message of another kind than the one in progress.
    KindMismatch,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("connection is closing or closed"),
            Self::OutputFull { pending, needed } => {
                write!(
                    f,
                    "output buffer full: {pending} bytes pending, {needed} more needed"
                )
            }
            Self::ControlPayloadTooLong => f.write_str("control frame payload over 125 bytes"),
            Self::InvalidCloseCode(code) => write!(f, "close code {code} may not be sent"),
            Self::MessageInProgress => f.write_str("a fragmented message is being sent"),
            Self::KindMismatch => f.write_str("continuation of a message of another kind"),
        }
    }
}

impl core::error::Error for SendError {}
