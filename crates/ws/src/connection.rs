//! The connection state machine (RFC 6455 sections 5-7), for the client and the server role.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use core::fmt;

use bytes::{Buf, Bytes, BytesMut};

use crate::close::CloseCode;
use crate::error::{ProtocolError, SendError};
use crate::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, Status};
use crate::simd::{extend_masked, extend_masked_streaming, extend_masked_utf8};

/// A binary message's bytes past this many are written with streaming (non-temporal) stores:
/// beyond the L2 cache size such a message does not stay in cache anyway.
const STREAM_AFTER: usize = 1 << 20;

/// In a run's length queue: the message is text.
const RUN_TEXT: u16 = 0x8000;

/// Server-role `Bytes` payloads at least this large are queued for transmission without a
/// copy (as their own output segment).
const ZERO_COPY_MIN: usize = 2048;

/// Which end of the connection this machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The client: masks every frame it sends, rejects masked frames.
    Client,
    /// The server: sends unmasked frames, rejects unmasked frames; closes the TCP connection
    /// first at the end of the close handshake.
    Server,
}

/// The kind of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text (validated on receipt).
    Text,
    /// Arbitrary bytes.
    Binary,
}

/// Configuration and limits. The defaults are small and safe for untrusted peers; raise them
/// for trusted or bulk traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest payload of a single received frame (default 1 MiB). Larger: close 1009.
    pub max_frame_size: usize,
    /// Largest received message, all fragments together (default 1 MiB). Larger: close 1009.
    /// Also enforced in streaming mode.
    pub max_message_size: usize,
    /// Most fragments (frames) in one received message (default 4096). More: close 1009.
    pub max_fragments: usize,
    /// Largest pending output in bytes (default 2 MiB): a send that would exceed it fails
    /// with [`SendError::OutputFull`]. Automatic replies are never refused: Pongs over the
    /// limit collapse into one Pong for the latest Ping.
    pub max_output_buffer: usize,
    /// Answer every Ping with a Pong automatically (default `true`).
    pub auto_pong: bool,
    /// Streaming receive (default `false`): data messages are handed out as
    /// [`Event::Fragment`] pieces as their bytes arrive instead of whole.
    pub streaming: bool,
    /// After this connection sends a Close frame, how long (in the host's milliseconds) to
    /// wait for the end of the close handshake before giving up (default 10 000). See
    /// [`Connection::poll_timeout`].
    pub close_timeout_ms: u64,
    /// permessage-deflate (RFC 7692) as negotiated in the handshake (default `None`: off).
    /// With it, RSV1 marks compressed messages; see [`crate::DeflateConfig`].
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::DeflateConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_size: 1 << 20,
            max_message_size: 1 << 20,
            max_fragments: 4096,
            max_output_buffer: 2 << 20,
            auto_pong: true,
            streaming: false,
            close_timeout_ms: 10_000,
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}

impl Config {
    /// Sets [`Config::max_frame_size`].
    #[must_use]
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }
    /// Sets [`Config::max_message_size`].
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }
    /// Sets [`Config::max_fragments`].
    #[must_use]
    pub fn max_fragments(mut self, count: usize) -> Self {
        self.max_fragments = count;
        self
    }
    /// Sets [`Config::max_output_buffer`].
    #[must_use]
    pub fn max_output_buffer(mut self, bytes: usize) -> Self {
        self.max_output_buffer = bytes;
        self
    }
    /// Sets [`Config::auto_pong`].
    #[must_use]
    pub fn auto_pong(mut self, on: bool) -> Self {
        self.auto_pong = on;
        self
    }
    /// Sets [`Config::streaming`].
    #[must_use]
    pub fn streaming(mut self, on: bool) -> Self {
        self.streaming = on;
        self
    }
    /// Sets [`Config::deflate`].
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn deflate(mut self, deflate: Option<crate::DeflateConfig>) -> Self {
        self.deflate = deflate;
        self
    }
    /// Sets [`Config::close_timeout_ms`].
    #[must_use]
    pub fn close_timeout_ms(mut self, ms: u64) -> Self {
        self.close_timeout_ms = ms;
        self
    }
}

/// A source of client masking keys (RFC 6455 section 5.3 asks for unpredictable keys from a
/// strong source of entropy). Any `FnMut() -> [u8; 4]` is one; with the `getrandom` feature,
/// [`crate::GetrandomMask`] is one.
pub trait MaskSource {
    /// The masking key for the next frame.
    fn mask_key(&mut self) -> [u8; 4];
}

impl<F: FnMut() -> [u8; 4]> MaskSource for F {
    fn mask_key(&mut self) -> [u8; 4] {
        self()
    }
}

/// A piece of a data message in streaming mode ([`Config::streaming`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The kind of the message this piece belongs to.
    pub kind: MessageKind,
    /// The bytes. For text, every piece is valid UTF-8 on its own (a character split across
    /// reads is held back until it is complete).
    pub data: Bytes,
    /// This is the first piece of the message.
    pub first: bool,
    /// This is the last piece of the message (the message is complete and valid).
    pub last: bool,
}

/// How the connection ended; carried by [`Event::Closed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The peer's close code: the code of its Close frame, 1005 if that frame had none, 1006
    /// if there was no Close frame from the peer (transport lost, timeout, or this side failed
    /// the connection).
    pub code: CloseCode,
    /// The peer's close reason (valid UTF-8; empty if none).
    pub reason: Bytes,
    /// Which side sent the first Close frame (or gave up).
    pub initiator: Initiator,
    /// Whether both Close frames were exchanged.
    pub clean: bool,
}

/// Which side started closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// This side (a `close` call, a protocol violation by the peer, a timeout).
    Local,
    /// The peer (its Close frame, or the transport ended).
    Remote,
}

/// Something that happened on the connection; drain with [`Connection::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete text message; the bytes are valid UTF-8.
    Text(Bytes),
    /// A complete binary message.
    Binary(Bytes),
    /// A piece of a data message (only in streaming mode).
    Fragment(Fragment),
    /// A Ping and its payload (already answered if `auto_pong`).
    Ping(Bytes),
    /// A Pong and its payload.
    Pong(Bytes),
    /// The connection closed; emitted exactly once. See [`State`] for when to close the
    /// transport.
    Closed(CloseInfo),
}

/// The close handshake state (RFC 6455 section 7).
///
/// | state | entered by | next |
/// | --- | --- | --- |
/// | `Open` | construction | `LocalClosing` on [`Connection::close`]; `RemoteClosing` when the peer's Close arrives |
/// | `LocalClosing` | our Close was queued | `Closed` when the peer's Close arrives (event `Closed`), on timeout or EOF |
/// | `RemoteClosing` | the peer's Close arrived, our echo is queued | `Closed` once the echo is drained by `poll_transmit` |
/// | `Closed` | handshake done, protocol violation by the peer, EOF, timeout | - |
///
/// In `Closed`, [`Connection::should_close_transport`] says when the host closes the
/// transport: at once for a server (or after a failure) once output is drained; a client waits
/// for the server to close TCP (RFC 6455 section 7.1.1), until the close timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent Close and wait for the peer's; received messages are still delivered.
    LocalClosing,
    /// The peer sent Close; our echo is queued but not yet drained.
    RemoteClosing,
    /// Both Close frames are exchanged, or the connection failed.
    Closed,
}

#[derive(Debug, Clone, Copy)]
enum Recv {
    Header,
    Payload {
        remaining: u64,
        mask: Option<[u8; 4]>,
        offset: usize,
        opcode: OpCode,
        fin: bool,
    },
}

/// An entry of the event queue.
#[derive(Debug)]
enum Queued {
    Event(Event),
    /// The payloads of this many whole small text/binary frames, already unmasked and
    /// validated, back to back; their lengths wait in `Connection::run_lens`. `poll_event`
    /// splits one message off per call.
    Run(BytesMut, usize),
}

#[derive(Debug, Clone, Copy)]
struct InMessage {
    kind: MessageKind,
    /// RSV1 on the first frame: the payload is transformed by an extension (RFC 7692).
    /// Reserved for the `deflate` feature; never set without a negotiated extension.
    compressed: bool,
    total: u64,
    fragments: usize,
    /// Bytes of `buf` known to be valid UTF-8 (text only).
    utf8_checked: usize,
    streamed: bool,
}

/// A WebSocket connection after the handshake, for either role.
///
/// # The drain contract
///
/// After every `handle_*` call or command (`send_*`, `close`), the host drains
/// [`poll_transmit`](Self::poll_transmit) (bytes to write to the transport),
/// [`poll_event`](Self::poll_event) (until `None`) and [`poll_timeout`](Self::poll_timeout)
/// before feeding the next input. Automatic replies (Pong, the Close echo, the Close after a
/// protocol violation) only ever leave through `poll_transmit`.
pub struct Connection {
    role: Role,
    config: Config,
    // --- receive
    recv: Recv,
    hdr: [u8; MAX_HEADER_LEN],
    hdr_len: usize,
    msg: Option<InMessage>,
    /// Unmasked payload of the data message in progress (and spare capacity for the next).
    buf: BytesMut,
    ctrl: BytesMut,
    events: VecDeque<Queued>,
    /// Payload length (and [`RUN_TEXT`]) of each message in the queued runs, in order.
    run_lens: VecDeque<u16>,
    /// RSV bits a negotiated extension may set on the first frame of a message (0 = none).
    rsv_allowed: u8,
    // --- send
    out: VecDeque<Bytes>,
    staging: BytesMut,
    pending: usize,
    pending_pong: Option<Bytes>,
    sending: Option<MessageKind>,
    masks: Option<Box<dyn MaskSource + Send>>,
    // --- lifecycle
    /// Our Close frame is queued (in `close_frame`) or sent.
    close_sent: bool,
    /// The host called `close`.
    host_closed: bool,
    /// Our Close frame, held back so it always leaves after everything queued before it.
    close_frame: Option<Bytes>,
    /// `poll_transmit` has handed out our Close frame.
    close_on_wire: bool,
    /// The host has polled `Event::Closed`.
    closed_polled: bool,
    close_received: bool,
    remote_initiated: bool,
    failed: Option<ProtocolError>,
    transport_gone: bool,
    timed_out: bool,
    closed_emitted: bool,
    now: u64,
    close_deadline: Option<u64>,
    /// The permessage-deflate transform, if negotiated.
    #[cfg(feature = "deflate")]
    deflate: Option<Box<crate::deflate::Codec>>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state())
            .field("config", &self.config)
            .field("buffered_input", &self.buf.len())
            .field("pending_events", &self.events.len())
            .field("pending_output", &self.pending)
            .field("error", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A server-side connection.
    pub fn server(config: Config) -> Self {
        Self::new(Role::Server, config, None)
    }

    /// A client-side connection; `masks` supplies one masking key per sent frame.
    pub fn client(config: Config, masks: impl MaskSource + Send + 'static) -> Self {
        Self::new(Role::Client, config, Some(Box::new(masks)))
    }

    fn new(role: Role, config: Config, masks: Option<Box<dyn MaskSource + Send>>) -> Self {
        #[cfg(feature = "deflate")]
        let deflate = config
            .deflate
            .as_ref()
            .map(|d| crate::deflate::Codec::new(role, d));
        #[cfg(feature = "deflate")]
        let rsv_allowed = if deflate.is_some() { 0b100 } else { 0 };
        #[cfg(not(feature = "deflate"))]
        let rsv_allowed = 0;
        Self {
            role,
            config,
            recv: Recv::Header,
            hdr: [0; MAX_HEADER_LEN],
            hdr_len: 0,
            msg: None,
            buf: BytesMut::new(),
            ctrl: BytesMut::new(),
            events: VecDeque::new(),
            run_lens: VecDeque::new(),
            rsv_allowed,
            out: VecDeque::new(),
            staging: BytesMut::new(),
            pending: 0,
            pending_pong: None,
            sending: None,
            masks,
            close_sent: false,
            host_closed: false,
            close_frame: None,
            close_on_wire: false,
            closed_polled: false,
            close_received: false,
            remote_initiated: false,
            failed: None,
            transport_gone: false,
            timed_out: false,
            closed_emitted: false,
            now: 0,
            close_deadline: None,
            #[cfg(feature = "deflate")]
            deflate,
        }
    }

    /// Bytes of memory the permessage-deflate transform keeps for this connection (zlib's
    /// compressor and inflater state for the negotiated windows, and the reused output
    /// buffer); 0 without it.
    pub fn deflate_memory(&self) -> usize {
        #[cfg(feature = "deflate")]
        if let Some(codec) = &self.deflate {
            return codec.memory();
        }
        0
    }

    /// This connection's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The close handshake state (see [`State`] for the table).
    pub fn state(&self) -> State {
        if self.failed.is_some() || self.transport_gone || self.timed_out {
            State::Closed
        } else if self.close_received {
            if self.remote_initiated && self.pending > 0 {
                State::RemoteClosing
            } else {
                State::Closed
            }
        } else if self.close_sent {
            State::LocalClosing
        } else {
            State::Open
        }
    }

    /// The sticky protocol error, if the peer violated the protocol.
    pub fn error(&self) -> Option<ProtocolError> {
        self.failed
    }

    /// Whether the host should now close the transport: the output is drained and either the
    /// connection failed, timed out or lost its transport, or (server role) the close
    /// handshake is complete. A client waits for the server to close TCP after a clean close
    /// handshake, at most until [`poll_timeout`](Self::poll_timeout).
    pub fn should_close_transport(&self) -> bool {
        self.pending == 0
            && self.pending_pong.is_none()
            && (self.failed.is_some()
                || self.transport_gone
                || self.timed_out
                || (self.close_sent && self.close_received && self.role == Role::Server))
    }

    // ------------------------------------------------------------------ receiving

    /// Feeds bytes received from the transport, in any split. Complete messages and control
    /// frames become events; replies are queued for `poll_transmit`. Bytes after the peer's
    /// Close frame are ignored (RFC 6455 section 5.5.1).
    ///
    /// # Errors
    /// A [`ProtocolError`] if the peer violated RFC 6455 or a limit; it is sticky and its
    /// Close frame is already queued. Events decoded before the violation stay available.
    pub fn handle_read(&mut self, mut input: &[u8]) -> Result<(), ProtocolError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.close_received || self.transport_gone || self.timed_out {
            return Ok(());
        }
        while !input.is_empty() {
            match self.recv {
                Recv::Header if self.hdr_len == 0 && self.msg.is_none() => {
                    let used = self.small_frames_fast_path(input);
                    if used > 0 {
                        input = &input[used..];
                        continue;
                    }
                    match self.whole_frame_fast_path(input) {
                        Ok(Some(used)) => {
                            input = &input[used..];
                            continue;
                        }
                        Ok(None) => {}
                        Err(e) => return Err(self.fail(e)),
                    }
                    let used = match self.read_header(input) {
                        Ok(Some(used)) => used,
                        Ok(None) => break,
                        Err(e) => return Err(self.fail(e)),
                    };
                    input = &input[used..];
                }
                Recv::Header => {
                    let used = match self.read_header(input) {
                        Ok(Some(used)) => used,
                        Ok(None) => break,
                        Err(e) => return Err(self.fail(e)),
                    };
                    input = &input[used..];
                }
                Recv::Payload { remaining, .. } => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    let (chunk, rest) = input.split_at(n);
                    input = rest;
                    if let Err(e) = self.read_payload(chunk) {
                        return Err(self.fail(e));
                    }
                }
            }
            if self.close_received {
                break;
            }
        }
        if self.config.streaming {
            self.flush_stream();
        }
        Ok(())
    }

    /// Whether `h` is a whole unfragmented text or binary frame that this connection accepts
    /// as is: no reserved bits, masked as the role requires, within the limits.
    #[inline]
    fn plain_message_frame(&self, h: &FrameHeader) -> bool {
        matches!(h.opcode, OpCode::Text | OpCode::Binary)
            && h.fin
            && !(h.rsv1 || h.rsv2 || h.rsv3)
            && h.mask.is_some() == (self.role == Role::Server)
            && h.payload_len <= self.config.max_frame_size as u64
            && h.payload_len <= self.config.max_message_size as u64
            && !self.config.streaming
    }

    /// Many small messages: copies the run of whole, plain small frames at the start of
    /// `input` into the receive buffer, payloads back to back, each unmasked in one fused pass
    /// (which also tells whether it is ASCII) and validated; `poll_event` splits the messages
    /// off lazily. Returns the bytes used (0: not applicable, or the first frame is not valid
    /// text: the general path reports it).
    #[inline]
    fn small_frames_fast_path(&mut self, input: &[u8]) -> usize {
        /// Frames up to this payload size take this path; larger ones are copied one by one.
        const SMALL: usize = 4096;
        /// Most payload bytes in one run (the room is reserved once per run).
        const RUN_MAX: usize = 256 * 1024;
        if self.config.streaming {
            return 0;
        }
        let limit = SMALL
            .min(self.config.max_frame_size)
            .min(self.config.max_message_size);
        let masked = self.role == Role::Server;
        if small_frame(input, masked, limit).is_none() {
            return 0;
        }
        debug_assert!(self.buf.is_empty(), "no message in progress");
        self.buf.clear();
        self.buf.reserve(input.len().min(RUN_MAX));
        let room = self.buf.capacity();
        let mut at = 0;
        let mut count = 0;
        while let Some((n, len, text)) = small_frame(&input[at..], masked, limit) {
            let start = self.buf.len();
            if start + len > room {
                break;
            }
            let key = match input[at..at + n] {
                [.., k0, k1, k2, k3] if masked => Some([k0, k1, k2, k3]),
                _ => None,
            };
            let payload = &input[at + n..at + n + len];
            let valid = if text {
                extend_masked_utf8(&mut self.buf, payload, key)
            } else {
                extend_masked(&mut self.buf, payload, key, 0);
                true
            };
            if !valid {
                // Not valid: leave this frame to the general path, which fails the
                // connection at exactly this frame.
                self.buf.truncate(start);
                break;
            }
            self.run_lens
                .push_back(len as u16 | if text { RUN_TEXT } else { 0 });
            count += 1;
            at += n + len;
        }
        if count > 0 {
            let run = self.buf.split();
            self.events.push_back(Queued::Run(run, count));
        }
        at
    }

    /// The common case in one step: `input` starts with a whole unfragmented text or binary
    /// frame, valid for this role and within the limits, and no message is in progress.
    /// Returns the bytes used, or `None` to take the general path (which also reports errors).
    #[inline]
    fn whole_frame_fast_path(&mut self, input: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let Ok(Status::Complete((h, n))) = FrameHeader::decode(input) else {
            return Ok(None);
        };
        let kind = match h.opcode {
            OpCode::Text => MessageKind::Text,
            OpCode::Binary => MessageKind::Binary,
            _ => return Ok(None),
        };
        let len = h.payload_len;
        if !self.plain_message_frame(&h) || len > (input.len() - n) as u64 {
            return Ok(None);
        }
        let payload = &input[n..n + len as usize];
        debug_assert!(self.buf.is_empty(), "no message in progress");
        if kind == MessageKind::Text {
            if !extend_masked_utf8(&mut self.buf, payload, h.mask) {
                return Err(ProtocolError::InvalidUtf8);
            }
        } else {
            extend_masked(&mut self.buf, payload, h.mask, 0);
        }
        let data = self.buf.split().freeze();
        self.push_event(match kind {
            MessageKind::Text => Event::Text(data),
            MessageKind::Binary => Event::Binary(data),
        });
        Ok(Some(n + len as usize))
    }

    /// Reads (the rest of) a frame header from `input`; `Ok(None)` if `input` ended first
    /// (the bytes are kept). Returns the bytes of `input` used.
    fn read_header(&mut self, input: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let (header, used) = if self.hdr_len == 0 {
            match FrameHeader::decode(input)? {
                Status::Complete(found) => found,
                Status::Partial => {
                    // Partial means shorter than the header, so it fits.
                    self.hdr[..input.len()].copy_from_slice(input);
                    self.hdr_len = input.len();
                    return Ok(None);
                }
            }
        } else {
            let old = self.hdr_len;
            let take = (MAX_HEADER_LEN - old).min(input.len());
            self.hdr[old..old + take].copy_from_slice(&input[..take]);
            match FrameHeader::decode(&self.hdr[..old + take])? {
                Status::Complete((header, len)) => {
                    self.hdr_len = 0;
                    (header, len - old)
                }
                Status::Partial => {
                    self.hdr_len = old + take;
                    return Ok(None);
                }
            }
        };
        self.start_frame(&header)?;
        Ok(Some(used))
    }

    /// Validates a frame header against the connection state (RFC 6455 sections 5.1-5.5).
    fn start_frame(&mut self, h: &FrameHeader) -> Result<(), ProtocolError> {
        let rsv = u8::from(h.rsv1) << 2 | u8::from(h.rsv2) << 1 | u8::from(h.rsv3);
        if rsv != 0 {
            // An extension's bits are only valid on the first frame of a data message.
            let first_data = matches!(h.opcode, OpCode::Text | OpCode::Binary);
            if !first_data || rsv & !self.rsv_allowed != 0 {
                return Err(ProtocolError::ReservedBits);
            }
        }
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if h.opcode.is_control() {
            if !h.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if h.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlFrameTooLong);
            }
            self.ctrl.clear();
        } else {
            match (h.opcode, self.msg.is_some()) {
                (OpCode::Continuation, false) => return Err(ProtocolError::UnexpectedContinuation),
                (OpCode::Text | OpCode::Binary, true) => {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                _ => {}
            }
            if h.payload_len > self.config.max_frame_size as u64 {
                return Err(ProtocolError::FrameTooLarge);
            }
            let msg = self.msg.get_or_insert(InMessage {
                kind: if h.opcode == OpCode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                },
                compressed: h.rsv1,
                total: 0,
                fragments: 0,
                utf8_checked: 0,
                streamed: false,
            });
            msg.total += h.payload_len;
            msg.fragments += 1;
            if msg.total > self.config.max_message_size as u64 {
                return Err(ProtocolError::MessageTooLarge);
            }
            if msg.fragments > self.config.max_fragments {
                return Err(ProtocolError::TooManyFragments);
            }
            // Room for the whole payload at once (it is within `max_frame_size`), so it is
            // copied exactly once as it arrives.
            self.buf.reserve(h.payload_len as usize);
        }
        self.recv = Recv::Payload {
            remaining: h.payload_len,
            mask: h.mask,
            offset: 0,
            opcode: h.opcode,
            fin: h.fin,
        };
        if h.payload_len == 0 {
            self.end_frame()?;
        }
        Ok(())
    }

    /// Copies and unmasks a piece of the current frame's payload.
    fn read_payload(&mut self, chunk: &[u8]) -> Result<(), ProtocolError> {
        let Recv::Payload {
            remaining,
            mask,
            offset,
            opcode,
            fin,
        } = self.recv
        else {
            return Ok(());
        };
        let bulk = !opcode.is_control()
            && self.buf.len() >= STREAM_AFTER
            && self
                .msg
                .is_some_and(|m| m.kind == MessageKind::Binary && !m.compressed);
        let ascii = if bulk {
            extend_masked_streaming(&mut self.buf, chunk, mask, offset);
            false
        } else if opcode.is_control() {
            extend_masked(&mut self.ctrl, chunk, mask, offset)
        } else {
            extend_masked(&mut self.buf, chunk, mask, offset)
        };
        let remaining = remaining - chunk.len() as u64;
        self.recv = Recv::Payload {
            remaining,
            mask,
            offset: offset + chunk.len(),
            opcode,
            fin,
        };
        if !opcode.is_control() {
            self.check_utf8(chunk.len(), ascii)?;
        }
        if remaining == 0 {
            self.end_frame()?;
        }
        Ok(())
    }

    /// Validates the newly arrived text bytes, failing as soon as they cannot be UTF-8.
    /// `ascii`: the `appended` bytes just appended are all ASCII.
    fn check_utf8(&mut self, appended: usize, ascii: bool) -> Result<(), ProtocolError> {
        let Some(msg) = self.msg.as_mut() else {
            return Ok(());
        };
        if msg.kind != MessageKind::Text || msg.compressed {
            return Ok(());
        }
        if ascii && msg.utf8_checked + appended == self.buf.len() {
            // No character was left incomplete before them: all valid.
            msg.utf8_checked = self.buf.len();
            return Ok(());
        }
        let new = &self.buf[msg.utf8_checked..];
        msg.utf8_checked += utf8_prefix(new)?;
        Ok(())
    }

    /// A frame's payload is complete.
    fn end_frame(&mut self) -> Result<(), ProtocolError> {
        let Recv::Payload { opcode, fin, .. } = self.recv else {
            return Ok(());
        };
        self.recv = Recv::Header;
        match opcode {
            OpCode::Ping => {
                let payload = self.ctrl.split().freeze();
                if self.config.auto_pong && !self.close_sent {
                    self.queue_pong(payload.clone());
                }
                self.push_event(Event::Ping(payload));
            }
            OpCode::Pong => {
                let payload = self.ctrl.split().freeze();
                self.push_event(Event::Pong(payload));
            }
            OpCode::Close => self.received_close()?,
            OpCode::Continuation | OpCode::Text | OpCode::Binary => {
                if fin {
                    self.end_message()?;
                }
            }
        }
        Ok(())
    }

    fn end_message(&mut self) -> Result<(), ProtocolError> {
        let Some(msg) = self.msg.take() else {
            return Ok(());
        };
        if msg.kind == MessageKind::Text && !msg.compressed && msg.utf8_checked != self.buf.len() {
            return Err(ProtocolError::InvalidUtf8);
        }
        let data = self.buf.split().freeze();
        #[cfg(feature = "deflate")]
        let data = if msg.compressed {
            let Some(codec) = self.deflate.as_mut() else {
                return Err(ProtocolError::ReservedBits);
            };
            let data = codec.inflate(&data, self.config.max_message_size)?;
            if msg.kind == MessageKind::Text && utf8_prefix(&data)? != data.len() {
                return Err(ProtocolError::InvalidUtf8);
            }
            data
        } else {
            data
        };
        let event = if self.config.streaming {
            Event::Fragment(Fragment {
                kind: msg.kind,
                data,
                first: !msg.streamed,
                last: true,
            })
        } else if msg.kind == MessageKind::Text {
            Event::Text(data)
        } else {
            Event::Binary(data)
        };
        self.push_event(event);
        Ok(())
    }

    /// Streaming mode: hands out what has arrived of the message in progress.
    fn flush_stream(&mut self) {
        let Some(msg) = self.msg.as_mut() else { return };
        let ready = if msg.kind == MessageKind::Text && !msg.compressed {
            msg.utf8_checked
        } else {
            self.buf.len()
        };
        if ready == 0 || msg.compressed {
            return;
        }
        let data = self.buf.split_to(ready).freeze();
        if msg.kind == MessageKind::Text {
            msg.utf8_checked = 0;
        }
        let first = !msg.streamed;
        msg.streamed = true;
        let kind = msg.kind;
        self.push_event(Event::Fragment(Fragment {
            kind,
            data,
            first,
            last: false,
        }));
    }

    /// The peer's Close frame (RFC 6455 sections 5.5.1 and 7).
    fn received_close(&mut self) -> Result<(), ProtocolError> {
        let payload = self.ctrl.split().freeze();
        let (code, reason) = match payload.len() {
            0 => (None, Bytes::new()),
            1 => return Err(ProtocolError::InvalidClosePayload),
            _ => {
                let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
                if !code.is_valid_on_wire() {
                    return Err(ProtocolError::InvalidCloseCode(code.0));
                }
                if core::str::from_utf8(&payload[2..]).is_err() {
                    return Err(ProtocolError::InvalidUtf8);
                }
                (Some(code), payload.slice(2..))
            }
        };
        self.close_received = true;
        self.msg = None;
        self.buf.clear();
        self.pending_pong = None;
        let initiator = if self.close_sent {
            Initiator::Local
        } else {
            self.remote_initiated = true;
            self.close_sent = true;
            let body = code.map(|c| c.0.to_be_bytes());
            self.queue_close(body.as_ref().map_or(&[][..], |b| &b[..]));
            self.arm_close_timer();
            Initiator::Remote
        };
        self.emit_closed(CloseInfo {
            code: code.unwrap_or(CloseCode::NO_STATUS),
            reason,
            initiator,
            clean: true,
        });
        Ok(())
    }

    /// Fails the connection: queues our Close with the error's code, makes it sticky.
    fn fail(&mut self, e: ProtocolError) -> ProtocolError {
        self.failed = Some(e);
        self.msg = None;
        self.buf.clear();
        self.pending_pong = None;
        if !self.close_sent {
            self.close_sent = true;
            self.queue_close(&e.close_code().0.to_be_bytes());
        }
        self.emit_closed(CloseInfo {
            code: CloseCode::ABNORMAL,
            reason: Bytes::new(),
            initiator: Initiator::Local,
            clean: false,
        });
        e
    }

    fn emit_closed(&mut self, info: CloseInfo) {
        if !self.closed_emitted {
            self.closed_emitted = true;
            self.close_deadline = if self.role == Role::Client && info.clean {
                self.close_deadline
            } else {
                None
            };
            self.push_event(Event::Closed(info));
        }
    }

    /// The transport reached end of file (the peer closed TCP). Emits `Closed` (code 1006,
    /// not clean) unless the close handshake had completed.
    pub fn handle_eof(&mut self) {
        self.transport_gone = true;
        self.close_deadline = None;
        self.emit_closed(CloseInfo {
            code: CloseCode::ABNORMAL,
            reason: Bytes::new(),
            initiator: Initiator::Remote,
            clean: false,
        });
    }

    /// Pops the next event, in wire order.
    #[must_use]
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        loop {
            match self.events.front_mut()? {
                Queued::Run(run, count) => {
                    // A run and its lengths are queued together, so both are there.
                    let Some(l) = self.run_lens.pop_front() else {
                        self.events.pop_front();
                        continue;
                    };
                    let data = run
                        .split_to(usize::from(l & !RUN_TEXT).min(run.len()))
                        .freeze();
                    *count -= 1;
                    if *count == 0 {
                        self.events.pop_front();
                    }
                    return Some(if l & RUN_TEXT != 0 {
                        Event::Text(data)
                    } else {
                        Event::Binary(data)
                    });
                }
                Queued::Event(_) => {
                    let Some(Queued::Event(event)) = self.events.pop_front() else {
                        return None;
                    };
                    if let Event::Closed(_) = event {
                        self.closed_polled = true;
                    }
                    return Some(event);
                }
            }
        }
    }

    fn push_event(&mut self, event: Event) {
        self.events.push_back(Queued::Event(event));
    }

    // ------------------------------------------------------------------ time

    /// Tells the machine the host's monotonic time in milliseconds. The close timer
    /// ([`Config::close_timeout_ms`]) starts from the latest time passed in when a Close is
    /// sent; when it expires the connection gives up (`Closed`, code 1006, and
    /// [`should_close_transport`](Self::should_close_transport)).
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.now = self.now.max(now_ms);
        if let Some(deadline) = self.close_deadline
            && self.now >= deadline
        {
            self.close_deadline = None;
            self.timed_out = true;
            self.emit_closed(CloseInfo {
                code: CloseCode::ABNORMAL,
                reason: Bytes::new(),
                initiator: Initiator::Local,
                clean: false,
            });
        }
    }

    /// When the host should call [`handle_timeout`](Self::handle_timeout) next, if at all.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.should_close_transport() {
            None
        } else {
            self.close_deadline
        }
    }

    fn arm_close_timer(&mut self) {
        if self.close_deadline.is_none() {
            self.close_deadline = Some(self.now.saturating_add(self.config.close_timeout_ms));
        }
    }

    // ------------------------------------------------------------------ sending

    /// Sends a text message in one frame.
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.send(MessageKind::Text, text.as_bytes())
    }

    /// Sends a binary message in one frame.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send(MessageKind::Binary, data)
    }

    /// Sends a message in one frame, copying `data` into the output buffer (masked for a
    /// client). For text, `data` must be UTF-8 (use [`send_text`](Self::send_text) to have
    /// the type system check it).
    pub fn send(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), SendError> {
        self.check_send_data()?;
        #[cfg(feature = "deflate")]
        if self.send_compressed(kind, data)? {
            return Ok(());
        }
        self.check_room(data.len())?;
        self.write_frame(true, data_opcode(kind), data);
        Ok(())
    }

    /// Sends a message in one frame from `Bytes`. A server sends large payloads without
    /// copying them (they become their own `poll_transmit` segment).
    pub fn send_bytes(&mut self, kind: MessageKind, data: Bytes) -> Result<(), SendError> {
        self.check_send_data()?;
        #[cfg(feature = "deflate")]
        if self.send_compressed(kind, &data)? {
            return Ok(());
        }
        self.check_room(data.len())?;
        if self.role == Role::Server && data.len() >= ZERO_COPY_MIN {
            let (h, n) = FrameHeader::new(data_opcode(kind), data.len() as u64).to_bytes();
            self.staging.extend_from_slice(&h[..n]);
            self.pending += n + data.len();
            self.flush_staging();
            self.out.push_back(data);
        } else {
            self.write_frame(true, data_opcode(kind), &data);
        }
        Ok(())
    }

    /// Sends one fragment of a message (streaming send, RFC 6455 section 5.4): the first call
    /// starts a message of `kind`, later calls continue it (same `kind`), and `fin = true` ends
    /// it. Control frames may be sent between fragments. For text, the concatenation of the
    /// fragments must be UTF-8.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        if !self.can_send() {
            return Err(SendError::Closed);
        }
        let opcode = match self.sending {
            None => data_opcode(kind),
            Some(k) if k == kind => OpCode::Continuation,
            Some(_) => return Err(SendError::KindMismatch),
        };
        #[cfg(feature = "deflate")]
        if self.deflate.is_some() {
            self.check_room(crate::deflate::Codec::bound(data.len()))?;
        }
        #[cfg(feature = "deflate")]
        if let Some(codec) = self.deflate.as_mut()
            && let Some(payload) = codec.compress(data, fin, false)
        {
            self.write_frame_rsv(fin, opcode != OpCode::Continuation, opcode, &payload);
            if let Some(codec) = self.deflate.as_mut() {
                codec.recycle(payload);
            }
            self.sending = if fin { None } else { Some(kind) };
            return Ok(());
        }
        self.check_room(data.len())?;
        self.write_frame(fin, opcode, data);
        self.sending = if fin { None } else { Some(kind) };
        Ok(())
    }

    /// Sends a whole message compressed if permessage-deflate is on and the message is large
    /// enough; `Ok(false)`: send it uncompressed.
    #[cfg(feature = "deflate")]
    fn send_compressed(&mut self, kind: MessageKind, data: &[u8]) -> Result<bool, SendError> {
        let Some(codec) = self.deflate.as_mut() else {
            return Ok(false);
        };
        if !codec.wants(data.len()) {
            return Ok(false);
        }
        // Checked before compressing: a refused send must leave the shared context untouched.
        self.check_room(crate::deflate::Codec::bound(data.len()))?;
        let Some(codec) = self.deflate.as_mut() else {
            return Ok(false);
        };
        let Some(payload) = codec.compress(data, true, true) else {
            return Ok(false);
        };
        self.write_frame_rsv(true, true, data_opcode(kind), &payload);
        if let Some(codec) = self.deflate.as_mut() {
            codec.recycle(payload);
        }
        Ok(true)
    }

    /// Whether a fragmented message is being sent (started by `send_fragment`, not finished).
    pub fn is_sending_fragmented(&self) -> bool {
        self.sending.is_some()
    }

    /// Sends a Ping (payload at most 125 bytes).
    pub fn send_ping(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_control(OpCode::Ping, data)
    }

    /// Sends an unsolicited Pong (payload at most 125 bytes).
    pub fn send_pong(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_control(OpCode::Pong, data)
    }

    fn send_control(&mut self, opcode: OpCode, data: &[u8]) -> Result<(), SendError> {
        if !self.can_send() {
            return Err(SendError::Closed);
        }
        if data.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlPayloadTooLong);
        }
        self.check_room(data.len())?;
        self.write_frame(true, opcode, data);
        Ok(())
    }

    /// Starts the close handshake (RFC 6455 section 7.1.2): queues a Close frame with `code`
    /// and `reason` (at most 123 bytes), or an empty Close frame if `code` is `None`. Moves
    /// `Open` to `LocalClosing`; the handshake completes when the peer's Close arrives.
    pub fn close(&mut self, code: Option<CloseCode>, reason: &str) -> Result<(), SendError> {
        if !self.can_send() {
            return Err(SendError::Closed);
        }
        let mut body = [0u8; MAX_CONTROL_PAYLOAD];
        let len = match code {
            Some(c) => {
                if !c.is_valid_on_wire() {
                    return Err(SendError::InvalidCloseCode(c.0));
                }
                if reason.len() > MAX_CONTROL_PAYLOAD - 2 {
                    return Err(SendError::ControlPayloadTooLong);
                }
                body[..2].copy_from_slice(&c.0.to_be_bytes());
                body[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
                2 + reason.len()
            }
            None => 0,
        };
        self.close_sent = true;
        self.host_closed = true;
        self.queue_close(&body[..len]);
        self.arm_close_timer();
        Ok(())
    }

    /// Whether data and control frames may still be queued. After the peer's Close or a
    /// violation, replies to the events before it may still be sent until the host polls
    /// `Event::Closed` or our Close frame leaves through `poll_transmit`: they go out before
    /// the Close frame.
    pub fn can_send(&self) -> bool {
        !self.host_closed
            && !self.close_on_wire
            && !self.closed_polled
            && !self.transport_gone
            && !self.timed_out
    }

    fn queue_close(&mut self, body: &[u8]) {
        let mask = self.masks.as_mut().map(|m| m.mask_key());
        let header = FrameHeader {
            mask,
            ..FrameHeader::new(OpCode::Close, body.len() as u64)
        };
        let (h, n) = header.to_bytes();
        let mut frame = BytesMut::with_capacity(n + body.len());
        frame.extend_from_slice(&h[..n]);
        extend_masked(&mut frame, body, mask, 0);
        self.pending += frame.len();
        self.close_frame = Some(frame.freeze());
    }

    fn check_send_data(&self) -> Result<(), SendError> {
        if !self.can_send() {
            return Err(SendError::Closed);
        }
        if self.sending.is_some() {
            return Err(SendError::MessageInProgress);
        }
        Ok(())
    }

    fn check_room(&self, payload: usize) -> Result<(), SendError> {
        let needed = payload + MAX_HEADER_LEN;
        if self.pending + needed > self.config.max_output_buffer {
            return Err(SendError::OutputFull {
                pending: self.pending,
                needed,
            });
        }
        Ok(())
    }

    fn queue_pong(&mut self, payload: Bytes) {
        if self.pending + payload.len() + MAX_HEADER_LEN > self.config.max_output_buffer {
            self.pending_pong = Some(payload); // collapses into one Pong for the latest Ping
        } else {
            self.write_frame(true, OpCode::Pong, &payload);
        }
    }

    /// Encodes one frame into the output (masked for a client).
    fn write_frame(&mut self, fin: bool, opcode: OpCode, payload: &[u8]) {
        self.write_frame_rsv(fin, false, opcode, payload);
    }

    /// Encodes one frame, with RSV1 as given (permessage-deflate's "compressed" bit).
    fn write_frame_rsv(&mut self, fin: bool, rsv1: bool, opcode: OpCode, payload: &[u8]) {
        let mask = self.masks.as_mut().map(|m| m.mask_key());
        let header = FrameHeader {
            fin,
            rsv1,
            rsv2: false,
            rsv3: false,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        let (h, n) = header.to_bytes();
        self.staging.reserve(n + payload.len());
        self.staging.extend_from_slice(&h[..n]);
        extend_masked(&mut self.staging, payload, mask, 0);
        self.pending += n + payload.len();
    }

    fn flush_staging(&mut self) {
        if !self.staging.is_empty() {
            self.out.push_back(self.staging.split().freeze());
        }
    }

    /// Bytes queued for the transport and not yet taken by `poll_transmit` (for backpressure).
    pub fn pending_output(&self) -> usize {
        self.pending
    }

    /// Takes the next piece of output to write to the transport, without copying.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            if let Some(pong) = self.pending_pong.take()
                && !self.close_sent
            {
                self.write_frame(true, OpCode::Pong, &pong);
            }
            self.flush_staging();
        }
        if let Some(next) = self.out.pop_front() {
            self.pending -= next.len();
            return Some(next);
        }
        let close = self.close_frame.take()?;
        self.close_on_wire = true;
        self.pending -= close.len();
        Some(close)
    }

    /// Copies as much pending output as fits into `out`; returns the number of bytes written
    /// (0 when nothing is pending).
    pub fn poll_transmit_into(&mut self, out: &mut [u8]) -> usize {
        let mut written = 0;
        while written < out.len() {
            let Some(mut seg) = self.poll_transmit() else {
                break;
            };
            let n = seg.len().min(out.len() - written);
            out[written..written + n].copy_from_slice(&seg[..n]);
            written += n;
            if n < seg.len() {
                seg.advance(n);
                self.pending += seg.len();
                self.out.push_front(seg);
            }
        }
        written
    }
}

const fn data_opcode(kind: MessageKind) -> OpCode {
    match kind {
        MessageKind::Text => OpCode::Text,
        MessageKind::Binary => OpCode::Binary,
    }
}

/// If `b` starts with a whole final text or binary frame with no reserved bits, masked iff
/// `masked`, with at most `limit` payload bytes and a 7- or 16-bit length: its header length,
/// payload length and whether it is text.
#[inline]
fn small_frame(b: &[u8], masked: bool, limit: usize) -> Option<(usize, usize, bool)> {
    let [b0, b1, ..] = *b else { return None };
    let text = match b0 {
        0x81 => true,
        0x82 => false,
        _ => return None,
    };
    if (b1 & 0x80 != 0) != masked {
        return None;
    }
    let key_len = if masked { 4 } else { 0 };
    let (n, len) = match b1 & 0x7f {
        126 => match b.get(2..4) {
            Some(&[x, y]) => (4 + key_len, usize::from(u16::from_be_bytes([x, y]))),
            _ => return None,
        },
        127 => return None,
        len => (2 + key_len, usize::from(len)),
    };
    (len <= limit && b.len() >= n + len).then_some((n, len, text))
}

/// The length of the longest prefix of `bytes` that is valid UTF-8, if the rest could still
/// become valid with more bytes; an error if `bytes` can never be completed to UTF-8.
fn utf8_prefix(bytes: &[u8]) -> Result<usize, ProtocolError> {
    if bytes.is_ascii() || simdutf8::basic::from_utf8(bytes).is_ok() {
        return Ok(bytes.len());
    }
    match simdutf8::compat::from_utf8(bytes) {
        Ok(_) => Ok(bytes.len()),
        Err(e) if e.error_len().is_none() => Ok(e.valid_up_to()),
        Err(_) => Err(ProtocolError::InvalidUtf8),
    }
}
