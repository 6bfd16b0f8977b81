//! The STOMP frame encoder: escaping per version and command, `content-length` on every
//! non-empty body, output into a `BytesMut`.

use crate::frame::{Command, Frame, Version};
use bytes::{BufMut, Bytes, BytesMut};
use core::fmt;

/// Why a frame cannot be written for a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncodeError {
    /// A header name or value contains a byte that this version (or this command, for
    /// CONNECT/STOMP/CONNECTED, which are never escaped) cannot represent: LF or CR anywhere
    /// in 1.0, CR in 1.1, `:` in a header name without escaping.
    Unencodable,
    /// A header name is empty.
    EmptyHeaderName,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodeError::Unencodable => "header cannot be represented in this STOMP version",
            EncodeError::EmptyHeaderName => "empty header name",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}

/// Encodes `frame` for `version` into `out`: command, headers in order (escaped per version
/// and command; any `content-length` of the frame is replaced by the body's real length),
/// blank line, body, NUL. On error nothing is appended.
pub fn encode(frame: &Frame, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
    let body = frame.body();
    out.reserve(frame.head.len() + frame.header_count() * 2 + body.len() + 40);
    encode_head(frame, version, body.len(), out)?;
    out.put_slice(body);
    out.put_u8(0);
    Ok(())
}

/// Encodes `frame` into a new `Bytes`.
pub fn encode_to_bytes(frame: &Frame, version: Version) -> Result<Bytes, EncodeError> {
    let mut out = BytesMut::new();
    encode(frame, version, &mut out)?;
    Ok(out.freeze())
}

/// Encodes only the head of `frame` (command, headers, `content-length: body_len` when
/// `body_len > 0`, blank line). The caller sends the body and a NUL after it: this lets one
/// body `Bytes` be shared by many encoded heads (fan-out without re-encoding the body).
pub fn encode_head(
    frame: &Frame,
    version: Version,
    body_len: usize,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let mark = out.len();
    let mut w = HeadWriter::start(out, frame.command(), version);
    if frame.plain {
        // Fast path: nothing to escape or reject.
        for (name, value) in frame.raw_headers() {
            if name == b"content-length" {
                continue;
            }
            match name.first() {
                None => {
                    w.out.truncate(mark);
                    return Err(EncodeError::EmptyHeaderName);
                }
                Some(0) => {
                    w.out.truncate(mark);
                    return Err(EncodeError::Unencodable);
                }
                Some(_) => {}
            }
            w.out.reserve(name.len() + value.len() + 2);
            w.out.put_slice(name);
            w.out.put_u8(b':');
            w.out.put_slice(value);
            w.out.put_u8(b'\n');
        }
        w.finish(body_len);
        return Ok(());
    }
    for (name, value) in frame.headers() {
        if name == "content-length" {
            continue;
        }
        if let Err(e) = w.header(name, value) {
            out.truncate(mark);
            return Err(e);
        }
    }
    w.finish(body_len);
    Ok(())
}

/// Writes a frame head incrementally, escaping per version and command.
#[derive(Debug)]
pub struct HeadWriter<'a> {
    out: &'a mut BytesMut,
    mode: Escaping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escaping {
    None,
    V11,
    V12,
}

impl<'a> HeadWriter<'a> {
    /// Writes the command line.
    pub fn start(out: &'a mut BytesMut, command: Command, version: Version) -> HeadWriter<'a> {
        out.put_slice(command.as_str().as_bytes());
        out.put_u8(b'\n');
        HeadWriter::resume(out, command, version)
    }

    /// Continues a head whose command line is already written (or a run of header lines
    /// encoded on their own, to be copied into heads later with [`HeadWriter::put_encoded`]).
    pub(crate) fn resume(
        out: &'a mut BytesMut,
        command: Command,
        version: Version,
    ) -> HeadWriter<'a> {
        let mode = if command.escapes_headers() {
            match version {
                Version::V1_0 => Escaping::None,
                Version::V1_1 => Escaping::V11,
                Version::V1_2 => Escaping::V12,
            }
        } else {
            Escaping::None
        };
        HeadWriter { out, mode }
    }

    /// Bytes in the output buffer so far.
    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    /// Appends header lines encoded earlier by a writer of the same command and version.
    pub(crate) fn put_encoded(&mut self, lines: &[u8]) {
        self.out.put_slice(lines);
    }

    /// Writes one header line whose name the caller knows is plain (a constant such as
    /// `message-id`): only the value is checked for escapes. On error nothing is written.
    #[inline]
    pub(crate) fn known_header(
        &mut self,
        name: &'static str,
        value: &str,
    ) -> Result<(), EncodeError> {
        let v = value.as_bytes();
        if special(v) {
            return self.header(name, value);
        }
        self.out.reserve(name.len() + v.len() + 2);
        self.out.put_slice(name.as_bytes());
        self.out.put_u8(b':');
        self.out.put_slice(v);
        self.out.put_u8(b'\n');
        Ok(())
    }

    /// Writes one header line of a frame parsed without escapes (`Frame::plain`): its name
    /// and value need no escaping in any version, so they are copied as they are. On error
    /// nothing is written.
    #[inline]
    pub(crate) fn plain_header(&mut self, name: &[u8], value: &[u8]) -> Result<(), EncodeError> {
        match name.first() {
            None => Err(EncodeError::EmptyHeaderName),
            // A line starting with NUL would end the frame.
            Some(0) => Err(EncodeError::Unencodable),
            Some(_) => {
                self.out.reserve(name.len() + value.len() + 2);
                self.out.put_slice(name);
                self.out.put_u8(b':');
                self.out.put_slice(value);
                self.out.put_u8(b'\n');
                Ok(())
            }
        }
    }

    /// Writes one header line. On error nothing is written.
    #[inline]
    pub fn header(&mut self, name: &str, value: &str) -> Result<(), EncodeError> {
        if name.is_empty() {
            return Err(EncodeError::EmptyHeaderName);
        }
        let (n, v) = (name.as_bytes(), value.as_bytes());
        if n[0] == 0 {
            // A line starting with NUL would end the frame.
            return Err(EncodeError::Unencodable);
        }
        if !special(n) && !special(v) {
            self.out.reserve(n.len() + v.len() + 2);
            self.out.put_slice(n);
            self.out.put_u8(b':');
            self.out.put_slice(v);
            self.out.put_u8(b'\n');
            return Ok(());
        }
        match self.mode {
            Escaping::None => {
                if n.contains(&b':') || has_eol(n) || has_eol(v) {
                    return Err(EncodeError::Unencodable);
                }
                self.out.put_slice(n);
                self.out.put_u8(b':');
                self.out.put_slice(v);
            }
            Escaping::V11 => {
                if n.contains(&b'\r') || v.contains(&b'\r') {
                    return Err(EncodeError::Unencodable);
                }
                escape(n, self.out);
                self.out.put_u8(b':');
                escape(v, self.out);
            }
            Escaping::V12 => {
                escape(n, self.out);
                self.out.put_u8(b':');
                escape(v, self.out);
            }
        }
        self.out.put_u8(b'\n');
        Ok(())
    }

    /// Writes `content-length` (when `body_len > 0`) and the blank line.
    pub fn finish(self, body_len: usize) {
        if body_len > 0 {
            self.out.put_slice(b"content-length:");
            put_usize(self.out, body_len);
            self.out.put_u8(b'\n');
        }
        self.out.put_u8(b'\n');
    }
}

/// Whether any byte needs a second look (escape or rejection).
#[inline]
fn special(s: &[u8]) -> bool {
    if s.len() >= 64 {
        // A byte-wise OR of four comparisons, without early exit, vectorizes well.
        let hits = s.iter().fold(0u8, |acc, &b| {
            acc | u8::from(b == b'\\')
                | u8::from(b == b'\n')
                | u8::from(b == b'\r')
                | u8::from(b == b':')
        });
        return hits != 0;
    }
    // Header names and most values are short: eight bytes at a time in a general register
    // beats the vector loop's set-up and tail.
    if s.len() < 8 {
        return s.iter().any(|&b| matches!(b, b'\\' | b'\n' | b'\r' | b':'));
    }
    let mut hits = 0;
    let mut words = s.chunks_exact(8);
    for w in &mut words {
        hits |= special_word(w);
    }
    if !words.remainder().is_empty() {
        // The last eight bytes, overlapping what was checked already.
        hits |= special_word(&s[s.len() - 8..]);
    }
    hits != 0
}

/// Non-zero when one of the eight bytes is `\\`, LF, CR or `:` (`chunk` is 8 bytes).
#[inline]
fn special_word(chunk: &[u8]) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut b = [0u8; 8];
    b.copy_from_slice(chunk);
    let w = u64::from_le_bytes(b);
    // Some byte of `x` is zero iff `(x - LO) & !x & HI` is non-zero.
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    zero(w ^ (LO * u64::from(b'\\')))
        | zero(w ^ (LO * u64::from(b'\n')))
        | zero(w ^ (LO * u64::from(b'\r')))
        | zero(w ^ (LO * u64::from(b':')))
}

fn has_eol(s: &[u8]) -> bool {
    s.iter().any(|&b| b == b'\n' || b == b'\r')
}

fn escape(s: &[u8], out: &mut BytesMut) {
    for &b in s {
        match b {
            b'\\' => out.put_slice(b"\\\\"),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            b':' => out.put_slice(b"\\c"),
            _ => out.put_u8(b),
        }
    }
}

/// Appends the decimal form of `n`.
pub(crate) fn put_usize(out: &mut BytesMut, mut n: usize) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&tmp[i..]);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
mod tests {
    use super::*;

    #[test]
    fn special_matches_a_byte_scan() {
        let naive = |s: &[u8]| s.iter().any(|&b| matches!(b, b'\\' | b'\n' | b'\r' | b':'));
        for len in 0..80 {
            let plain: alloc::vec::Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(!special(&plain), "len {len}");
            for at in 0..len {
                for c in [
                    b'\\', b'\n', b'\r', b':', 0, 0x80, 0xff, b';', b'[', b'\t', 0x0b,
                ] {
                    let mut v = plain.clone();
                    v[at] = c;
                    assert_eq!(special(&v), naive(&v), "len {len} at {at} byte {c}");
                }
            }
        }
    }

    #[test]
    fn put_usize_table() {
        for (n, s) in [(0usize, "0"), (7, "7"), (10, "10"), (1_048_576, "1048576")] {
            let mut b = BytesMut::new();
            put_usize(&mut b, n);
            assert_eq!(&b[..], s.as_bytes());
        }
        let mut b = BytesMut::new();
        put_usize(&mut b, usize::MAX);
        assert_eq!(
            core::str::from_utf8(&b).unwrap().parse::<usize>().unwrap(),
            usize::MAX
        );
    }
}
