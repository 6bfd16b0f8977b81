//! STOMP frames: [`Command`], [`Version`], headers and [`Frame`].
//!
//! A [`Frame`] keeps its headers in wire order as spans over one `Bytes` buffer: a frame
//! parsed from the wire points into the received bytes (zero-copy) unless an escape sequence
//! forced a decode; a frame built with [`FrameBuilder`] owns a small buffer of its own. Header
//! names and values are always stored *decoded* (escapes resolved) and valid UTF-8; the encoder
//! escapes them again for the version it writes.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::{BufMut, Bytes, BytesMut};
use core::fmt;

/// A STOMP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// STOMP 1.0: no header escaping, no heart-beats, no NACK.
    V1_0,
    /// STOMP 1.1: escapes `\n`, `\c`, `\\`; heart-beats; NACK.
    V1_1,
    /// STOMP 1.2: adds the `\r` escape, CR LF line endings and the `ack` header.
    V1_2,
}

impl Version {
    /// All versions, oldest first.
    pub const ALL: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V1_2];

    /// The version as written in `accept-version` / `version` headers (`"1.2"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// Parses `"1.0"`, `"1.1"` or `"1.2"`.
    pub fn parse(s: &str) -> Option<Version> {
        match s.trim() {
            "1.0" => Some(Version::V1_0),
            "1.1" => Some(Version::V1_1),
            "1.2" => Some(Version::V1_2),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A STOMP command (the first line of a frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Client: open a session.
    Connect,
    /// Client: open a session (1.1+ synonym of CONNECT).
    Stomp,
    /// Server: the session is open.
    Connected,
    /// Client: send a message to a destination.
    Send,
    /// Client: subscribe to a destination.
    Subscribe,
    /// Client: end a subscription.
    Unsubscribe,
    /// Client: acknowledge a message.
    Ack,
    /// Client: negatively acknowledge a message (1.1+).
    Nack,
    /// Client: start a transaction.
    Begin,
    /// Client: commit a transaction.
    Commit,
    /// Client: abort a transaction.
    Abort,
    /// Client: close the session gracefully.
    Disconnect,
    /// Server: a message for a subscription.
    Message,
    /// Server: acknowledges a frame that carried a `receipt` header.
    Receipt,
    /// Server: an error; the server closes the connection after it.
    Error,
}

impl Command {
    /// Every command, in spec order.
    pub const ALL: [Command; 15] = [
        Command::Connect,
        Command::Stomp,
        Command::Connected,
        Command::Send,
        Command::Subscribe,
        Command::Unsubscribe,
        Command::Ack,
        Command::Nack,
        Command::Begin,
        Command::Commit,
        Command::Abort,
        Command::Disconnect,
        Command::Message,
        Command::Receipt,
        Command::Error,
    ];

    /// The command as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Connected => "CONNECTED",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Disconnect => "DISCONNECT",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// Parses a command line (without its EOL). Commands are case-sensitive.
    pub fn from_bytes(line: &[u8]) -> Option<Command> {
        Some(match line {
            b"CONNECT" => Command::Connect,
            b"STOMP" => Command::Stomp,
            b"CONNECTED" => Command::Connected,
            b"SEND" => Command::Send,
            b"SUBSCRIBE" => Command::Subscribe,
            b"UNSUBSCRIBE" => Command::Unsubscribe,
            b"ACK" => Command::Ack,
            b"NACK" => Command::Nack,
            b"BEGIN" => Command::Begin,
            b"COMMIT" => Command::Commit,
            b"ABORT" => Command::Abort,
            b"DISCONNECT" => Command::Disconnect,
            b"MESSAGE" => Command::Message,
            b"RECEIPT" => Command::Receipt,
            b"ERROR" => Command::Error,
            _ => return None,
        })
    }

    /// Whether header values of this command are escaped (never for CONNECT, STOMP and
    /// CONNECTED, per STOMP 1.2 "Value Encoding").
    pub const fn escapes_headers(self) -> bool {
        !matches!(self, Command::Connect | Command::Stomp | Command::Connected)
    }

    /// Whether the spec allows a body on this command (SEND, MESSAGE and ERROR).
    pub const fn allows_body(self) -> bool {
        matches!(self, Command::Send | Command::Message | Command::Error)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one header lives in a frame's head buffer: `name = head[start..name_end]`,
/// `value = head[value_start..end]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) name_end: u32,
    pub(crate) value_start: u32,
    pub(crate) end: u32,
}

/// One header in 16-bit offsets; its value starts `Spans::value_gap` bytes after the name.
#[derive(Debug, Clone, Copy, Default)]
struct ShortSpan {
    start: u16,
    name_end: u16,
    end: u16,
}

/// Number of header spans stored inline before spilling to the heap.
const INLINE: usize = 7;

/// A small vector of spans. The common frame (up to 7 headers, head under 64 KiB) needs no
/// allocation, and the whole `Frame` stays within 128 bytes: it is moved out of every
/// `parse` call, and a move that size is a few vector copies instead of a `memcpy` call.
#[derive(Clone, Default)]
pub(crate) struct Spans {
    /// Bytes between a name's end and its value's start: 1 for raw heads (the `:`), 0 for
    /// decoded and built heads. Set by the first push; a span that does not match it (or
    /// does not fit 16 bits) moves every span to `spilled`.
    value_gap: u8,
    /// Spans in `inline`, or `SPILLED` exactly when `spilled` is set (a sentinel, so the
    /// parser's push checks one byte instead of the `Option` too).
    inline_len: u8,
    inline: [ShortSpan; INLINE],
    /// All spans, once they do not fit `inline`.
    #[allow(
        clippy::box_collection,
        reason = "8 bytes instead of 24 keep `Frame` within 128 bytes; spilling is rare"
    )]
    spilled: Option<Box<Vec<Span>>>,
}

/// `Spans::inline_len` once the spans live in `Spans::spilled`.
const SPILLED: u8 = u8::MAX;

impl Spans {
    /// Appends a span (any offsets, any gap).
    #[inline]
    pub(crate) fn push(&mut self, span: Span) {
        let n = usize::from(self.inline_len);
        if n == 0 {
            self.value_gap = span.value_start.wrapping_sub(span.name_end) as u8;
        }
        if n < INLINE
            && u16::try_from(span.end).is_ok()
            && span.value_start.wrapping_sub(span.name_end) == u32::from(self.value_gap)
        {
            self.inline[n] = ShortSpan {
                start: span.start as u16,
                name_end: span.name_end as u16,
                end: span.end as u16,
            };
            self.inline_len += 1;
        } else {
            self.spill().push(span);
        }
    }

    /// Empties the list for a raw head, where each value starts one byte (the `:`) after
    /// its name: see [`Spans::push_raw`].
    #[inline]
    pub(crate) fn clear_raw(&mut self) {
        self.clear();
        self.value_gap = 1;
    }

    /// Appends `name = start..colon`, `value = colon + 1..end`. The list must have been
    /// emptied by [`Spans::clear_raw`] (and only raw spans pushed since).
    #[inline]
    pub(crate) fn push_raw(&mut self, start: usize, colon: usize, end: usize) {
        debug_assert_eq!(self.value_gap, 1);
        let n = usize::from(self.inline_len);
        if n < INLINE && u16::try_from(end).is_ok() {
            self.inline[n] = ShortSpan {
                start: start as u16,
                name_end: colon as u16,
                end: end as u16,
            };
            self.inline_len += 1;
        } else {
            self.push(Span {
                start: start as u32,
                name_end: colon as u32,
                value_start: (colon + 1) as u32,
                end: end as u32,
            });
        }
    }

    /// Moves the inline spans to the heap (once) and returns the heap list.
    #[cold]
    fn spill(&mut self) -> &mut Vec<Span> {
        if self.inline_len != SPILLED {
            let mut all = Vec::with_capacity(2 * INLINE);
            all.extend(self.inline_iter());
            self.inline_len = SPILLED;
            self.spilled = Some(Box::new(all));
        }
        // Set just above when it was not.
        self.spilled.get_or_insert_with(Box::default)
    }

    #[inline]
    fn widen(&self, s: ShortSpan) -> Span {
        Span {
            start: u32::from(s.start),
            name_end: u32::from(s.name_end),
            value_start: u32::from(s.name_end) + u32::from(self.value_gap),
            end: u32::from(s.end),
        }
    }

    /// The inline spans (none once spilled).
    #[inline]
    fn inline_slice(&self) -> &[ShortSpan] {
        self.inline
            .get(..usize::from(self.inline_len))
            .unwrap_or(&[])
    }

    #[inline]
    fn inline_iter(&self) -> impl Iterator<Item = Span> + Clone + '_ {
        self.inline_slice().iter().map(|&s| self.widen(s))
    }

    #[inline]
    fn spilled_slice(&self) -> &[Span] {
        self.spilled.as_deref().map_or(&[][..], Vec::as_slice)
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        if self.inline_len == SPILLED {
            self.spilled_slice().len()
        } else {
            usize::from(self.inline_len)
        }
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<Span> {
        if self.inline_len == SPILLED {
            self.spilled_slice().get(i).copied()
        } else {
            self.inline_slice().get(i).map(|&s| self.widen(s))
        }
    }

    #[inline]
    pub(crate) fn clear(&mut self) {
        self.inline_len = 0;
        self.spilled = None;
    }

    #[inline]
    pub(crate) fn iter(&self) -> impl Iterator<Item = Span> + Clone + '_ {
        self.inline_iter()
            .chain(self.spilled_slice().iter().copied())
    }
}

impl fmt::Debug for Spans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One STOMP frame: command, headers in wire order (repeats kept), body.
///
/// Header values are decoded (escapes resolved) UTF-8. For a repeated header,
/// [`Frame::header`] returns the first value, as STOMP 1.2 requires; [`Frame::headers`]
/// yields them all, for forwarding.
#[derive(Clone)]
pub struct Frame {
    pub(crate) command: Command,
    pub(crate) head: Bytes,
    pub(crate) spans: Spans,
    pub(crate) body: Bytes,
    /// No header name or value contains `\\`, CR, LF or `:`: the encoder can copy them
    /// without escaping or checks (always `false` when unsure).
    pub(crate) plain: bool,
}

impl Frame {
    /// A frame with no headers and an empty body.
    pub fn new(command: Command) -> Frame {
        Frame {
            command,
            head: Bytes::new(),
            spans: Spans::default(),
            body: Bytes::new(),
            plain: true,
        }
    }

    /// Starts building a frame.
    pub fn builder(command: Command) -> FrameBuilder {
        FrameBuilder::new(command)
    }

    /// A frame from a header list and a body.
    pub fn with_headers(
        command: Command,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Frame {
        let mut b = FrameBuilder::new(command);
        for (k, v) in headers {
            b = b.header(k, v);
        }
        b.body(body).build()
    }

    /// The command.
    #[inline]
    pub fn command(&self) -> Command {
        self.command
    }

    /// The body (empty when the frame has none).
    #[inline]
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Replaces the body.
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        self.body = body.into();
    }

    /// Takes the body out of the frame, leaving it empty.
    pub fn take_body(&mut self) -> Bytes {
        core::mem::take(&mut self.body)
    }

    /// The number of header entries (repeats included).
    #[inline]
    pub fn header_count(&self) -> usize {
        self.spans.len()
    }

    #[inline]
    fn str_at(&self, from: u32, to: u32) -> &str {
        // Spans are validated UTF-8 split at ASCII bytes, so this never fails; an empty
        // string is returned rather than a panic should that invariant ever break.
        self.head
            .get(from as usize..to as usize)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    #[inline]
    fn bytes_at(&self, from: u32, to: u32) -> &[u8] {
        self.head.get(from as usize..to as usize).unwrap_or(&[])
    }

    /// The first value of header `name` (exact, case-sensitive match).
    #[inline]
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.as_bytes();
        self.spans
            .iter()
            .find(|s| self.bytes_at(s.start, s.name_end) == name)
            .map(|s| self.str_at(s.value_start, s.end))
    }

    /// Whether header `name` is present.
    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// Every header entry in wire order, repeats included. The iterator is `Clone`, so a
    /// caller can walk the headers twice (e.g. to size a buffer, then to fill it).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + Clone + '_ {
        self.spans.iter().map(|s| {
            (
                self.str_at(s.start, s.name_end),
                self.str_at(s.value_start, s.end),
            )
        })
    }

    /// All values of header `name`, in order.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers()
            .filter(move |(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// Header names and values as raw (decoded) bytes, in wire order.
    #[inline]
    pub(crate) fn raw_headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans.iter().map(|s| {
            (
                self.bytes_at(s.start, s.name_end),
                self.bytes_at(s.value_start, s.end),
            )
        })
    }

    /// A builder holding this frame's command, headers and body, to add or drop headers.
    pub fn to_builder(&self) -> FrameBuilder {
        let mut b = FrameBuilder::new(self.command);
        for (k, v) in self.headers() {
            b = b.header(k, v);
        }
        b.body = self.body.clone();
        b
    }

    /// Whether the head of this frame is a slice of the parsed input (no decode happened).
    /// Exposed for tests of the zero-copy property.
    pub fn head_bytes(&self) -> &Bytes {
        &self.head
    }
}

impl PartialEq for Frame {
    fn eq(&self, other: &Frame) -> bool {
        self.command == other.command
            && self.body == other.body
            && self.spans.len() == other.spans.len()
            && self.headers().eq(other.headers())
    }
}

impl Eq for Frame {}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct H<'a>(&'a Frame);
        impl fmt::Debug for H<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.0.headers()).finish()
            }
        }
        f.debug_struct("Frame")
            .field("command", &self.command)
            .field("headers", &H(self))
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Frame`] header by header. Names and values are given decoded; the encoder
/// escapes them for the version it writes.
#[derive(Debug, Clone)]
pub struct FrameBuilder {
    command: Command,
    buf: BytesMut,
    spans: Spans,
    body: Bytes,
}

impl FrameBuilder {
    /// A builder for `command` with no headers and no body.
    pub fn new(command: Command) -> FrameBuilder {
        FrameBuilder {
            command,
            buf: BytesMut::new(),
            spans: Spans::default(),
            body: Bytes::new(),
        }
    }

    /// Appends a header (repeats are kept; the first one wins on lookup).
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> FrameBuilder {
        self.push_header(name, value);
        self
    }

    /// Appends a header unless `value` is `None`.
    #[must_use]
    pub fn header_opt(mut self, name: &str, value: Option<&str>) -> FrameBuilder {
        if let Some(v) = value {
            self.push_header(name, v);
        }
        self
    }

    /// Appends a header in place.
    pub fn push_header(&mut self, name: &str, value: &str) {
        let start = self.buf.len() as u32;
        self.buf.put_slice(name.as_bytes());
        let name_end = self.buf.len() as u32;
        self.buf.put_slice(value.as_bytes());
        let end = self.buf.len() as u32;
        self.spans.push(Span {
            start,
            name_end,
            value_start: name_end,
            end,
        });
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Bytes>) -> FrameBuilder {
        self.body = body.into();
        self
    }

    /// Finishes the frame.
    pub fn build(self) -> Frame {
        let plain = memchr::memchr3(b'\\', b'\n', b':', &self.buf).is_none()
            && memchr::memchr(b'\r', &self.buf).is_none();
        Frame {
            command: self.command,
            head: self.buf.freeze(),
            spans: self.spans,
            body: self.body,
            plain,
        }
    }
}

/// Heart-beat values `cx,cy` of a `heart-beat` header: milliseconds, 0 meaning "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct HeartBeat {
    /// The smallest interval at which the sender can send heart-beats (0: cannot).
    pub send_ms: u32,
    /// The interval at which the sender wants to receive heart-beats (0: does not want).
    pub receive_ms: u32,
}

impl HeartBeat {
    /// No heart-beats either way.
    pub const NONE: HeartBeat = HeartBeat {
        send_ms: 0,
        receive_ms: 0,
    };

    /// Parses `"cx,cy"` (two non-negative integers).
    pub fn parse(s: &str) -> Option<HeartBeat> {
        let (a, b) = s.split_once(',')?;
        Some(HeartBeat {
            send_ms: a.trim().parse().ok()?,
            receive_ms: b.trim().parse().ok()?,
        })
    }

    /// The header value `"cx,cy"`.
    pub fn to_header_value(self) -> String {
        alloc::format!("{},{}", self.send_ms, self.receive_ms)
    }
}

/// The negotiated heart-beat intervals of a session, in milliseconds (0: off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Negotiated {
    /// How often this side sends (at the latest) a heart-beat when otherwise idle.
    pub send_ms: u64,
    /// How often this side expects to hear from the peer (before the grace factor).
    pub receive_ms: u64,
}

impl Negotiated {
    /// Negotiation per STOMP 1.2 "Heart-beating": `ours` is what this side announced,
    /// `theirs` what the peer announced.
    pub fn negotiate(ours: HeartBeat, theirs: HeartBeat) -> Negotiated {
        let dir = |can: u32, want: u32| -> u64 {
            if can == 0 || want == 0 {
                0
            } else {
                u64::from(can.max(want))
            }
        };
        Negotiated {
            send_ms: dir(ours.send_ms, theirs.receive_ms),
            receive_ms: dir(theirs.send_ms, ours.receive_ms),
        }
    }
}

/// A subscription's acknowledgement mode (the SUBSCRIBE `ack` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AckMode {
    /// `auto`: messages count as acknowledged when sent (the default).
    #[default]
    Auto,
    /// `client`: an ACK acknowledges that message and all earlier ones of the subscription
    /// (cumulative).
    Client,
    /// `client-individual` (1.1+): an ACK acknowledges that message only.
    ClientIndividual,
}

impl AckMode {
    /// The header value.
    pub const fn as_str(self) -> &'static str {
        match self {
            AckMode::Auto => "auto",
            AckMode::Client => "client",
            AckMode::ClientIndividual => "client-individual",
        }
    }

    /// Parses a header value valid for `version` (`client-individual` is 1.1+).
    pub fn parse(s: &str, version: Version) -> Option<AckMode> {
        match s {
            "auto" => Some(AckMode::Auto),
            "client" => Some(AckMode::Client),
            "client-individual" if version >= Version::V1_1 => Some(AckMode::ClientIndividual),
            _ => None,
        }
    }

    /// Whether messages of this mode wait for an ACK or NACK.
    pub const fn needs_ack(self) -> bool {
        !matches!(self, AckMode::Auto)
    }
}

// A frame is moved out of every `Parser::parse` call; at 128 bytes or less that move is a
// few vector copies, not a `memcpy` call (measured: the copies were 18% of S1 parse time).
const _: () = assert!(core::mem::size_of::<Frame>() <= 128);

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
mod tests {
    use super::*;
    use alloc::format;
    use proptest::prelude::*;

    fn span_strategy() -> impl Strategy<Value = Span> {
        // Offsets around the 16-bit boundary and value gaps of 0, 1 and 2.
        (
            prop_oneof![0u32..300, 65_000u32..70_000],
            0u32..40,
            0u32..3,
            0u32..40,
        )
            .prop_map(|(start, name, gap, value)| Span {
                start,
                name_end: start + name,
                value_start: start + name + gap,
                end: start + name + gap + value,
            })
    }

    proptest! {
        /// `Spans` (inline 16-bit spans, spilling to the heap) holds exactly what a `Vec`
        /// would, in order, whatever the offsets and gaps.
        #[test]
        fn spans_behave_like_a_vec(list in proptest::collection::vec(span_strategy(), 0..20)) {
            let mut spans = Spans::default();
            for (i, s) in list.iter().enumerate() {
                spans.push(*s);
                prop_assert_eq!(spans.len(), i + 1);
            }
            prop_assert_eq!(spans.iter().collect::<Vec<_>>(), list.clone());
            for (i, s) in list.iter().enumerate() {
                prop_assert_eq!(spans.get(i), Some(*s));
            }
            prop_assert_eq!(spans.get(list.len()), None);
            let copy = spans.clone();
            prop_assert_eq!(copy.iter().collect::<Vec<_>>(), list);
            spans.clear();
            prop_assert_eq!(spans.len(), 0);
            prop_assert_eq!(spans.iter().count(), 0);
        }
    }

    #[test]
    fn frame_with_many_headers_and_a_large_head_keeps_them_all() {
        let big = "v".repeat(70_000);
        let mut b = Frame::builder(Command::Send);
        for i in 0..10 {
            let name = format!("h{i}");
            b = b.header(&name, if i == 8 { &big } else { "x" });
        }
        let f = b.build();
        assert_eq!(f.header_count(), 10);
        assert_eq!(f.header("h8"), Some(big.as_str()));
        assert_eq!(f.header("h9"), Some("x"));
        assert_eq!(f.headers().count(), 10);
    }
}
