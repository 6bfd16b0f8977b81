//! The incremental, zero-copy STOMP frame parser.
//!
//! [`Parser::parse`] takes frames off the front of a `BytesMut` that the host (or a session)
//! appends received bytes to. Input may be split anywhere: a partial frame is a state, never an
//! error, and the work already done on it (lines, header spans, the NUL search) is kept.
//!
//! Hot path: the head is classified 64 bytes at a time into bit masks of line ends, colons and
//! "special" bytes (`\\`, CR, non-ASCII; SSE2 on x86_64), and lines and colons are walked with
//! `trailing_zeros`. A head with no special byte is plain ASCII with no escapes and no CR, so it
//! needs no further check; otherwise one SIMD UTF-8 check and the CR and escape checks run over
//! the head. The body is found by `content-length` or by one `memchr` for NUL. The frame's head
//! and body are `Bytes` slices of the input; only a head that contains an escape sequence is
//! copied (decoded).

use crate::frame::{Command, Frame, Span, Spans, Version};
use crate::scan;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use core::fmt;

/// Parser limits. Exceeding one is a [`ParseError`]; nothing is allocated for what a peer
/// merely claims (a large `content-length` fails before any byte of the body is buffered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of a frame head: command line, header lines and the blank line.
    pub max_head_bytes: usize,
    /// Maximum number of header entries in a frame.
    pub max_headers: usize,
    /// Maximum length of the command line or of one header line (without its EOL).
    pub max_header_line: usize,
    /// Maximum body size.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    /// 8 KiB head, 64 headers, 4 KiB per line, 1 MiB body.
    fn default() -> Limits {
        Limits {
            max_head_bytes: 8 * 1024,
            max_headers: 64,
            max_header_line: 4 * 1024,
            max_body_bytes: 1024 * 1024,
        }
    }
}

impl Limits {
    /// Small limits for frames received before a session is established (CONNECT):
    /// 8 KiB head, 32 headers, 2 KiB per line, 64 KiB body.
    pub const fn unauthenticated() -> Limits {
        Limits {
            max_head_bytes: 8 * 1024,
            max_headers: 32,
            max_header_line: 2 * 1024,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Why the byte stream is not valid STOMP. Sticky: once returned, [`Parser::parse`] keeps
/// returning it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// The command line is not one of the STOMP commands.
    UnknownCommand,
    /// A header line has no `:`.
    MissingColon,
    /// A header line starts with `:` (empty header name).
    EmptyHeaderName,
    /// A `\` escape not defined for the negotiated version (or a trailing `\`).
    InvalidEscape,
    /// A CR that is not part of a CR LF line ending.
    BareCarriageReturn,
    /// The head is not valid UTF-8.
    InvalidUtf8,
    /// `content-length` is not a decimal number.
    InvalidContentLength,
    /// The `content-length` bytes of the body are not followed by NUL.
    MissingNul,
    /// The frame head exceeds [`Limits::max_head_bytes`].
    HeadTooLarge,
    /// More header entries than [`Limits::max_headers`].
    TooManyHeaders,
    /// A command or header line exceeds [`Limits::max_header_line`].
    HeaderLineTooLong,
    /// The body exceeds [`Limits::max_body_bytes`] (declared or received).
    BodyTooLarge,
}

impl ParseError {
    /// A short human-readable description, used as the ERROR frame's `message` header.
    pub const fn as_str(self) -> &'static str {
        match self {
            ParseError::UnknownCommand => "unknown command",
            ParseError::MissingColon => "malformed header: missing ':'",
            ParseError::EmptyHeaderName => "malformed header: empty name",
            ParseError::InvalidEscape => "undefined escape sequence in header",
            ParseError::BareCarriageReturn => "carriage return outside of an EOL",
            ParseError::InvalidUtf8 => "frame head is not valid UTF-8",
            ParseError::InvalidContentLength => "invalid content-length",
            ParseError::MissingNul => "body not terminated by NUL after content-length octets",
            ParseError::HeadTooLarge => "frame head too large",
            ParseError::TooManyHeaders => "too many headers",
            ParseError::HeaderLineTooLong => "header line too long",
            ParseError::BodyTooLarge => "frame body too large",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ParseError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between frames: heart-beat EOLs may come.
    Start,
    /// Command line and headers.
    Head,
    Body,
}

/// The incremental STOMP frame parser. See the [module docs](self).
///
/// ```
/// use bytes::BytesMut;
/// use stompbox_stomp::{Command, Parser, Version};
///
/// let mut parser = Parser::new(Default::default());
/// parser.set_version(Version::V1_2);
/// let mut buf = BytesMut::from(&b"\nSEND\ndestination:/queue/a\n\nhel"[..]);
/// assert_eq!(parser.parse(&mut buf), Ok(None)); // partial
/// buf.extend_from_slice(b"lo\0");
/// let frame = parser.parse(&mut buf).unwrap().unwrap();
/// assert_eq!(frame.command(), Command::Send);
/// assert_eq!(frame.header("destination"), Some("/queue/a"));
/// assert_eq!(&frame.body()[..], b"hello");
/// assert_eq!(parser.heartbeats(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Parser {
    limits: Limits,
    version: Version,
    phase: Phase,
    command: Command,
    line_start: usize,
    headers_start: usize,
    spans: Spans,
    body_start: usize,
    content_length: Option<usize>,
    scanned: usize,
    needs_decode: bool,
    plain: bool,
    /// Index of the first `content-length` header among `spans`.
    content_length_span: Option<usize>,
    /// A finished header line of the current head has `\\`, CR or a non-ASCII byte.
    head_special: bool,
    /// A finished header line of the current head has more than one `:`.
    extra_colon: bool,
    heartbeats: u64,
    error: Option<ParseError>,
}

impl Parser {
    /// A parser with the given limits, decoding headers as STOMP 1.2 until
    /// [`Parser::set_version`] says otherwise.
    pub fn new(limits: Limits) -> Parser {
        Parser {
            limits,
            version: Version::V1_2,
            phase: Phase::Start,
            command: Command::Send,
            line_start: 0,
            headers_start: 0,
            spans: Spans::default(),
            body_start: 0,
            content_length: None,
            scanned: 0,
            needs_decode: false,
            plain: false,
            content_length_span: None,
            head_special: false,
            extra_colon: false,
            heartbeats: 0,
            error: None,
        }
    }

    /// Sets the version whose escaping rules decode header values (CONNECT, STOMP and
    /// CONNECTED are never decoded).
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    /// The version used for decoding.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Replaces the limits (e.g. after a session is authenticated).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// EOLs received between frames (heart-beats), in total.
    pub fn heartbeats(&self) -> u64 {
        self.heartbeats
    }

    /// The sticky error, if any.
    pub fn error(&self) -> Option<ParseError> {
        self.error
    }

    /// Whether the parser is between frames (no partial frame is buffered).
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Start
    }

    fn fail(&mut self, e: ParseError) -> Result<Option<Frame>, ParseError> {
        self.error = Some(e);
        Err(e)
    }

    /// Takes the next complete frame off the front of `buf`.
    ///
    /// Returns `Ok(None)` when more input is needed (heart-beat EOLs are consumed and counted
    /// on the way). Consumed bytes are split off `buf`; a partial frame stays in `buf` and the
    /// parser remembers how far it got.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ParseError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.phase == Phase::Start {
            match self.skip_heartbeats(buf) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => return self.fail(e),
            }
            self.line_start = 0;
            self.headers_start = 0;
            self.spans.clear_raw();
            self.content_length_span = None;
            self.head_special = false;
            self.extra_colon = false;
            self.phase = Phase::Head;
        }
        if self.phase == Phase::Head {
            match self.parse_head(buf) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => return self.fail(e),
            }
        }
        match self.parse_body(buf) {
            Ok(frame) => Ok(frame),
            Err(e) => self.fail(e),
        }
    }

    /// Skips heart-beat EOLs between frames. Returns whether a frame starts at `buf[0]`.
    #[inline]
    fn skip_heartbeats(&mut self, buf: &mut BytesMut) -> Result<bool, ParseError> {
        let mut i = 0;
        let len = buf.len();
        while i < len {
            match buf[i] {
                b'\n' => {
                    i += 1;
                    self.heartbeats += 1;
                }
                b'\r' => {
                    if i + 1 >= len {
                        break;
                    }
                    if buf[i + 1] != b'\n' {
                        buf.advance(i);
                        return Err(ParseError::BareCarriageReturn);
                    }
                    i += 2;
                    self.heartbeats += 1;
                }
                _ => break,
            }
        }
        if i > 0 {
            buf.advance(i);
        }
        Ok(!(buf.is_empty() || buf[0] == b'\r'))
    }

    /// Reads the command line and the header lines up to the blank line, then validates the
    /// head. Returns whether the head is complete; a partial head is rescanned from the start
    /// of its unfinished line when more input arrives (lines are bounded by the limits).
    ///
    /// The scan classifies 64 bytes at a time into bit masks (see `scan`) and walks the line
    /// ends and colons with `trailing_zeros`: no per-line search calls, no per-byte branches.
    #[inline]
    fn parse_head(&mut self, buf: &BytesMut) -> Result<bool, ParseError> {
        let limits = self.limits;
        // Nothing past `max_head_bytes` can belong to a valid head: never scan further.
        let end = buf.len().min(limits.max_head_bytes.saturating_add(1));
        let mut line_start = self.line_start;
        let mut pos = line_start;
        // The unfinished line so far: its first colon, colon count and whether it has a
        // byte that needs the slow path.
        let mut first_colon: Option<usize> = None;
        let mut many_colons = false;
        let mut special = false;
        let mut complete = false;
        let mut missing_blank_line = false;
        let mut header_count = self.spans.len();
        if line_start > 0 && buf.get(line_start) == Some(&0) {
            // Lenient: NUL where a header line should start ends the frame with an empty
            // body (the spec's own DISCONNECT and RECEIPT examples omit the blank line).
            self.body_start = line_start;
            missing_blank_line = true;
            complete = true;
            pos = end;
        }
        'blocks: while pos < end {
            let padded: [u8; 64];
            let block: &[u8; 64] = match buf.get(pos..pos + 64) {
                Some(b) if pos + 64 <= end => b.try_into().unwrap_or(&[0; 64]),
                _ => {
                    // The last, short block: zero padding matches no class.
                    let mut tail = [0u8; 64];
                    tail[..end - pos].copy_from_slice(&buf[pos..end]);
                    padded = tail;
                    &padded
                }
            };
            let m = scan::classify(block);
            // Bits before the unfinished line's start were consumed by an earlier pass.
            let from = line_start.saturating_sub(pos);
            let live = u64::MAX << from;
            let mut eols = m.eol & live;
            let mut colon_bits = m.colon & live;
            let mut special_bits = m.special & live;
            while eols != 0 {
                let e = eols.trailing_zeros() as usize;
                eols &= eols - 1;
                let upto = u64::MAX >> (63 - e);
                let line_colons = colon_bits & upto;
                note_colons(line_colons, pos, &mut first_colon, &mut many_colons);
                special |= special_bits & upto != 0;
                colon_bits &= !upto;
                special_bits &= !upto;
                let eol = pos + e;
                let content_end = if special && eol > line_start && buf[eol - 1] == b'\r' {
                    eol - 1
                } else {
                    eol
                };
                if eol + 1 > limits.max_head_bytes {
                    return Err(ParseError::HeadTooLarge);
                }
                if content_end - line_start > limits.max_header_line {
                    return Err(ParseError::HeaderLineTooLong);
                }
                if self.headers_start == 0 {
                    // The command line.
                    self.command = Command::from_bytes(&buf[line_start..content_end])
                        .ok_or(ParseError::UnknownCommand)?;
                    self.headers_start = eol + 1;
                } else if content_end == line_start {
                    self.body_start = eol + 1;
                    complete = true;
                    break 'blocks;
                } else {
                    if header_count >= limits.max_headers {
                        return Err(ParseError::TooManyHeaders);
                    }
                    let c = match first_colon {
                        Some(c) if c < content_end => c,
                        _ => return Err(ParseError::MissingColon),
                    };
                    if c == line_start {
                        return Err(ParseError::EmptyHeaderName);
                    }
                    if self.content_length_span.is_none()
                        && &buf[line_start..c] == b"content-length"
                    {
                        self.content_length_span = Some(header_count);
                    }
                    self.spans.push_raw(line_start, c, content_end);
                    header_count += 1;
                    self.head_special |= special;
                    self.extra_colon |= many_colons;
                }
                line_start = eol + 1;
                first_colon = None;
                many_colons = false;
                special = false;
                if buf.get(line_start) == Some(&0) {
                    self.body_start = line_start;
                    missing_blank_line = true;
                    complete = true;
                    break 'blocks;
                }
            }
            // The unfinished line's colons in this block.
            note_colons(colon_bits, pos, &mut first_colon, &mut many_colons);
            special |= special_bits != 0;
            pos += 64;
        }
        self.line_start = line_start;
        if !complete {
            if self.headers_start == 0 && memchr::memchr(0, &buf[..end]).is_some() {
                // A NUL can never be part of a command line.
                return Err(ParseError::UnknownCommand);
            }
            // A CR at the very end may be the first half of the line's CR LF end, which
            // does not count towards the line.
            let partial_line =
                (buf.len() - line_start).saturating_sub(usize::from(buf.last() == Some(&b'\r')));
            if partial_line > limits.max_header_line {
                return Err(ParseError::HeaderLineTooLong);
            }
            if buf.len() > limits.max_head_bytes {
                return Err(ParseError::HeadTooLarge);
            }
            return Ok(false);
        }
        self.needs_decode = false;
        self.plain = !self.head_special && !self.extra_colon;
        if self.head_special {
            // Rare: validate the head exactly (UTF-8, CR only before LF, escapes).
            let region = &buf[self.headers_start..self.body_start];
            if simdutf8::basic::from_utf8(region).is_err() {
                return Err(ParseError::InvalidUtf8);
            }
            if memchr::memchr(b'\r', region).is_some() {
                check_cr(region)?;
            }
            self.needs_decode = self.command.escapes_headers()
                && self.version != Version::V1_0
                && memchr::memchr(b'\\', region).is_some();
        }
        self.content_length = None;
        if let Some(i) = self.content_length_span.filter(|_| !missing_blank_line)
            && let Some(s) = self.spans.get(i)
        {
            let v = &buf[s.value_start as usize..s.end as usize];
            let len = parse_len(v).ok_or(ParseError::InvalidContentLength)?;
            if len > limits.max_body_bytes {
                return Err(ParseError::BodyTooLarge);
            }
            self.content_length = Some(len);
        }
        self.scanned = 0;
        self.phase = Phase::Body;
        Ok(true)
    }

    /// Finds the end of the body and splits the frame off.
    #[inline]
    fn parse_body(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ParseError> {
        let body_start = self.body_start;
        let body_end = if let Some(len) = self.content_length {
            let end = body_start + len;
            match buf.get(end) {
                None => return Ok(None),
                Some(0) => end,
                Some(_) => return Err(ParseError::MissingNul),
            }
        } else {
            let from = body_start + self.scanned;
            let Some(k) = scan::find_nul(buf.get(from..).unwrap_or(&[])) else {
                self.scanned = buf.len() - body_start;
                if self.scanned > self.limits.max_body_bytes {
                    return Err(ParseError::BodyTooLarge);
                }
                return Ok(None);
            };
            let end = from + k;
            if end - body_start > self.limits.max_body_bytes {
                return Err(ParseError::BodyTooLarge);
            }
            end
        };
        let whole = buf.split_to(body_end + 1).freeze();
        let body = whole.slice(body_start..body_end);
        self.phase = Phase::Start;
        let mut spans = core::mem::take(&mut self.spans);
        let (head, plain) = if self.needs_decode {
            (decode_head(&whole, &mut spans, self.version)?, false)
        } else {
            (whole, self.plain)
        };
        Ok(Some(Frame {
            command: self.command,
            head,
            spans,
            body,
            plain,
        }))
    }
}

/// Records the colons `bits` (block starting at `pos`) of the line being scanned: its first
/// colon, and whether it has more than one (one seen in an earlier block, or two bits here).
#[inline]
fn note_colons(bits: u64, pos: usize, first: &mut Option<usize>, many: &mut bool) {
    if bits != 0 {
        *many |= first.is_some() || bits & (bits - 1) != 0;
        if first.is_none() {
            *first = Some(pos + bits.trailing_zeros() as usize);
        }
    }
}

/// Every CR in the head must be followed by LF.
fn check_cr(region: &[u8]) -> Result<(), ParseError> {
    for i in memchr::memchr_iter(b'\r', region) {
        if region.get(i + 1) != Some(&b'\n') {
            return Err(ParseError::BareCarriageReturn);
        }
    }
    Ok(())
}

/// Parses a decimal length (digits only, no sign, no spaces). At most 19 digits, so the
/// value always fits a u64 and the loop needs no overflow checks.
fn parse_len(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    usize::try_from(n).ok()
}

/// Decodes escapes in every header name and value into a new buffer and re-points the spans.
fn decode_head(src: &Bytes, spans: &mut Spans, version: Version) -> Result<Bytes, ParseError> {
    let mut out = BytesMut::with_capacity(src.len());
    let mut fresh = Spans::default();
    for s in spans.iter() {
        let start = out.len() as u32;
        unescape(
            &src[s.start as usize..s.name_end as usize],
            version,
            &mut out,
        )?;
        let name_end = out.len() as u32;
        unescape(
            &src[s.value_start as usize..s.end as usize],
            version,
            &mut out,
        )?;
        let end = out.len() as u32;
        fresh.push(Span {
            start,
            name_end,
            value_start: name_end,
            end,
        });
    }
    *spans = fresh;
    Ok(out.freeze())
}

/// Appends `raw` with its escape sequences resolved per `version` (1.1: `\n \c \\`;
/// 1.2 adds `\r`).
pub(crate) fn unescape(raw: &[u8], version: Version, out: &mut BytesMut) -> Result<(), ParseError> {
    let mut rest = raw;
    while let Some(i) = memchr::memchr(b'\\', rest) {
        out.put_slice(&rest[..i]);
        let decoded = match rest.get(i + 1) {
            Some(b'n') => b'\n',
            Some(b'c') => b':',
            Some(b'\\') => b'\\',
            Some(b'r') if version == Version::V1_2 => b'\r',
            _ => return Err(ParseError::InvalidEscape),
        };
        out.put_u8(decoded);
        rest = &rest[i + 2..];
    }
    out.put_slice(rest);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
mod tests {
    use super::*;

    #[test]
    fn parse_len_table() {
        for (input, want) in [
            (&b"0"[..], Some(0)),
            (b"123", Some(123)),
            (b"", None),
            (b"-1", None),
            (b" 1", None),
            (b"1a", None),
            (b"99999999999999999999", None),
        ] {
            assert_eq!(parse_len(input), want, "{input:?}");
        }
    }
}
