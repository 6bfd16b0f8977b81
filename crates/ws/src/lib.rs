//! Sans-IO WebSocket (RFC 6455) for both roles: frame headers, fast masking and the
//! connection state machine, with no sockets, clocks, threads or async runtime.
//!
//! The handshake is not part of this crate (see `stompbox-upgrade`): build a [`Connection`]
//! from the negotiated role and feed it the bytes that arrived behind the handshake.
//!
//! # A host loop
//!
//! Two in-memory peers: the client sends a text message and closes; the server echoes and the
//! close handshake completes. A real host does the same with a socket: write what
//! `poll_transmit` returns, feed what it reads to `handle_read`, act on `poll_event`.
//!
//! ```
//! use stompbox_ws::{CloseCode, Config, Connection, Event, MessageKind, State};
//!
//! let mut client = Connection::client(Config::default(), || [0x12, 0x34, 0x56, 0x78]);
//! let mut server = Connection::server(Config::default());
//! client.send_text("hello")?;
//!
//! let mut echoed = Vec::new();
//! let mut closed = None;
//! loop {
//!     // The drain contract: after each input, drain transmits and events.
//!     let mut moved = false;
//!     while let Some(bytes) = client.poll_transmit() {
//!         server.handle_read(&bytes)?;
//!         moved = true;
//!     }
//!     while let Some(event) = server.poll_event() {
//!         if let Event::Text(text) = event {
//!             server.send_bytes(MessageKind::Text, text)?; // echo, without a copy
//!         }
//!     }
//!     while let Some(bytes) = server.poll_transmit() {
//!         client.handle_read(&bytes)?;
//!         moved = true;
//!     }
//!     while let Some(event) = client.poll_event() {
//!         match event {
//!             Event::Text(text) => {
//!                 echoed.push(text);
//!                 client.close(Some(CloseCode::NORMAL), "bye")?; // LocalClosing
//!             }
//!             Event::Closed(info) => closed = Some(info),
//!             _ => {}
//!         }
//!     }
//!     if !moved {
//!         break;
//!     }
//! }
//! assert_eq!(echoed, ["hello"]);
//! let info = closed.expect("one Closed event");
//! assert!(info.clean && info.code == CloseCode::NORMAL);
//! assert_eq!(server.state(), State::Closed);
//! assert!(server.should_close_transport()); // the server closes TCP first
//! assert_eq!(client.state(), State::Closed);
//! assert!(!client.should_close_transport()); // the client waits for the server's TCP close
//! client.handle_eof();
//! assert!(client.should_close_transport());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Design notes
//!
//! - Payloads are copied once from the caller's slice into an internal `BytesMut`, unmasked in
//!   the same pass (straight into the buffer's spare capacity: no zero-fill), and handed out
//!   as `Bytes` split off that buffer: a message (single frame or fragmented) is never copied
//!   again. The pass runs at the CPU's widest vector width (AVX-512BW or AVX2, detected at run
//!   time with the `std` feature); on AVX-512 text of 64 bytes or more is UTF-8-validated in
//!   that same pass, and binary messages past 1 MiB are written with streaming stores. This
//!   is the crate's only `unsafe` code, in one module, tested against byte-at-a-time
//!   references and `core::str::from_utf8`, and fuzzed differentially.
//! - Text is validated incrementally as bytes arrive, so invalid UTF-8 fails the connection
//!   as early as possible (close 1007), also across fragments.
//! - Peer violations are sticky [`ProtocolError`]s whose Close frame (1002, 1007, 1009) is
//!   already queued; host misuse is a [`SendError`] that changes nothing.
//! - Limits ([`Config`]) are checked against frame headers before any payload is buffered.
//! - The close handshake is the table in [`State`]; [`Event::Closed`] is emitted once.
//! - Extensions: RSV1 on the first frame of a message marks it compressed by
//!   permessage-deflate (RFC 7692, feature `deflate`, [`Config::deflate`]); it is a protocol
//!   error unless deflate was negotiated. See the `deflate` module docs on
//!   [`DeflateConfig`] for the transform, its limits and [`Connection::deflate_memory`].
#![no_std]
// `unsafe` is denied everywhere but in the `simd` module (uninitialised buffer writes and
// run-time selected vector kernels), which allows it and is tested against references.
#![deny(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod close;
mod connection;
#[cfg(feature = "deflate")]
mod deflate;
mod error;
mod frame;
mod mask;
mod simd;

pub use close::CloseCode;
pub use connection::{
    CloseInfo, Config, Connection, Event, Fragment, Initiator, MaskSource, MessageKind, Role, State,
};
#[cfg(feature = "deflate")]
pub use deflate::DeflateConfig;
pub use error::{ProtocolError, SendError};
pub use frame::{
    BufferTooSmall, FrameHeader, HeaderError, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, Status,
};
pub use mask::{apply_mask, apply_mask_reference};

#[cfg(feature = "getrandom")]
mod random;
#[cfg(feature = "getrandom")]
pub use random::GetrandomMask;
