//! STOMP 1.0/1.1/1.2 as sans-IO state machines: a zero-copy frame codec, a server session
//! (what a broker runs per client) and a client session.
//!
//! Work in progress: the codec ([`Parser`], [`encode`], [`Frame`]) is usable now; sessions follow.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod encoder;
pub mod frame;
pub mod parser;

pub use encoder::{EncodeError, HeadWriter, encode, encode_head, encode_to_bytes};
pub use frame::{Command, Frame, FrameBuilder, HeartBeat, Negotiated, Version};
pub use parser::{Limits, ParseError, Parser};
