//! Owned HTTP heads (request and response) with zero-copy header access, and the small
//! grammar helpers the handshake needs: RFC 9110 tokens, comma-separated lists (`1#token`)
//! and the RFC 6455 §9.1 extension grammar.

use alloc::string::String;
use alloc::vec::Vec;
use core::mem::MaybeUninit;
use core::ops::Range;

use crate::Limits;

/// One header line of a parsed head: a name (a token, as sent) and its raw value bytes
/// (leading and trailing whitespace removed by the parser).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The header name exactly as received (compare case-insensitively).
    pub name: &'a str,
    /// The header value as received; usually ASCII, but HTTP allows obs-text bytes.
    pub value: &'a [u8],
}

impl Header<'_> {
    /// The value as `&str` if it is valid UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        core::str::from_utf8(self.value).ok()
    }
}

/// A byte range into a head buffer (`u32` keeps a head index small; heads are bounded by
/// [`Limits::max_head_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    pub(crate) fn of(base: &[u8], part: &[u8]) -> Span {
        // Both slices come from the same buffer: the offset is the pointer difference.
        let start = (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize);
        Span {
            start: start as u32,
            end: (start + part.len()) as u32,
        }
    }

    pub(crate) fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    pub(crate) fn get(self, buf: &[u8]) -> &[u8] {
        buf.get(self.range()).unwrap_or_default()
    }

    pub(crate) fn get_str(self, buf: &[u8]) -> &str {
        core::str::from_utf8(self.get(buf)).unwrap_or_default()
    }
}

/// The bytes of one head plus the positions of its header lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawHead {
    pub(crate) buf: Vec<u8>,
    pub(crate) headers: Vec<(Span, Span)>,
}

impl RawHead {
    /// Copies the head (`buf[..len]`) and records the header positions.
    pub(crate) fn new(buf: &[u8], len: usize, headers: &[httparse::Header<'_>]) -> RawHead {
        let headers = headers
            .iter()
            .map(|h| (Span::of(buf, h.name.as_bytes()), Span::of(buf, h.value)))
            .collect();
        RawHead {
            buf: buf.get(..len).unwrap_or(buf).to_vec(),
            headers,
        }
    }

    pub(crate) fn headers(&self) -> Headers<'_> {
        Headers {
            buf: &self.buf,
            iter: self.headers.iter(),
        }
    }

    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    pub(crate) fn first(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// Iterator over the header lines of a head, in the order received.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    buf: &'a [u8],
    iter: core::slice::Iter<'a, (Span, Span)>,
}

impl<'a> Iterator for Headers<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        let (name, value) = self.iter.next()?;
        Some(Header {
            name: name.get_str(self.buf),
            value: value.get(self.buf),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.iter.size_hint()
    }
}

impl ExactSizeIterator for Headers<'_> {}

/// How far a head parse got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status<T> {
    /// The head is not complete yet: feed more bytes. Never an error.
    Partial,
    /// The head is complete.
    Complete(T),
}

impl<T> Status<T> {
    /// `Some` when complete.
    pub fn complete(self) -> Option<T> {
        match self {
            Status::Complete(t) => Some(t),
            Status::Partial => None,
        }
    }

    /// `true` while more bytes are needed.
    pub fn is_partial(&self) -> bool {
        matches!(self, Status::Partial)
    }
}

/// What an incremental reader parses: the complete lines within the head limit.
///
/// The result is a function of the buffered bytes alone, so input split at any points gives
/// the same outcome as input fed whole; and the parser runs at most once per `handle_read`
/// that completes a line (see [`line_arrived`]), never once per byte.
pub(crate) fn parse_window<'a>(buf: &'a [u8], limits: &Limits) -> &'a [u8] {
    let view = buf.get(..limits.max_head_bytes).unwrap_or(buf);
    memchr::memrchr(b'\n', view)
        .and_then(|last| view.get(..=last))
        .unwrap_or_default()
}

/// `true` when new `data` may change the parse: it ends a line, or the buffer reached the
/// head limit.
pub(crate) fn line_arrived(data: &[u8], buffered: usize, limits: &Limits) -> bool {
    buffered >= limits.max_head_bytes || memchr::memchr(b'\n', data).is_some()
}

/// The outcome of running httparse over a buffer with the limits applied.
pub(crate) enum HeadParse<T> {
    Partial,
    Complete(T, usize),
    TooManyHeaders,
    TooLarge,
    Invalid(httparse::Error),
}

/// Runs `parse` with an uninitialised header array sized by the limits (on the stack for
/// usual limits; httparse initialises only the entries it fills).
pub(crate) fn with_header_array<'b, R>(
    limits: &Limits,
    parse: impl FnOnce(&mut [MaybeUninit<httparse::Header<'b>>]) -> R,
) -> R {
    const STACK: usize = 64;
    if limits.max_headers <= STACK {
        let mut headers = [const { MaybeUninit::uninit() }; STACK];
        parse(headers.get_mut(..limits.max_headers).unwrap_or_default())
    } else {
        let mut headers = Vec::with_capacity(limits.max_headers);
        headers.resize_with(limits.max_headers, MaybeUninit::uninit);
        parse(&mut headers)
    }
}

/// Maps an httparse result to [`HeadParse`] with the head-size limit applied.
pub(crate) fn classify<T>(
    buf: &[u8],
    limits: &Limits,
    result: httparse::Result<usize>,
    done: impl FnOnce(usize) -> T,
) -> HeadParse<T> {
    match result {
        Ok(httparse::Status::Complete(n)) if n > limits.max_head_bytes => HeadParse::TooLarge,
        Ok(httparse::Status::Complete(n)) => HeadParse::Complete(done(n), n),
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head_bytes => HeadParse::TooLarge,
        Ok(httparse::Status::Partial) => HeadParse::Partial,
        Err(httparse::Error::TooManyHeaders) => HeadParse::TooManyHeaders,
        Err(e) => HeadParse::Invalid(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Grammar helpers.

/// RFC 9110 §5.6.2 `tchar`, as a table (a `match` over ranges is several times slower).
static TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = matches!(b,
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
            | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z');
        i += 1;
    }
    t
};

/// RFC 9110 §5.6.2 `tchar`.
#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

/// `true` when `s` is a non-empty RFC 9110 token.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// `true` for a header value a builder may send: no CR, LF or NUL (obs-fold is not allowed).
pub(crate) fn is_header_value(v: &[u8]) -> bool {
    !v.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0)
}

fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    s.get(start..end).unwrap_or_default()
}

/// The non-empty elements of a comma-separated list value (`#element`), OWS trimmed.
pub(crate) fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|s| !s.is_empty())
}

/// `true` when any of the header values lists `token` (case-insensitively).
pub(crate) fn any_has_token<'a>(mut values: impl Iterator<Item = &'a [u8]>, token: &[u8]) -> bool {
    values.any(|v| {
        // Fast path: the value is just the token (the usual `Upgrade: websocket`).
        v.eq_ignore_ascii_case(token) || list_items(v).any(|item| item.eq_ignore_ascii_case(token))
    })
}

// ---------------------------------------------------------------------------------------------
// Extensions (RFC 6455 §9.1).

/// One parameter of an extension: `name` or `name=value`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtensionParam {
    /// The parameter name (a token).
    pub name: String,
    /// The value, with quoted-string escapes removed (a token, per RFC 6455 §9.1).
    pub value: Option<String>,
}

/// An extension offer or acceptance, parsed generically: a name and its parameters in order.
///
/// `permessage-deflate; client_max_window_bits` is
/// `Extension { name: "permessage-deflate", params: [client_max_window_bits] }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Extension {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// The parameters in the order given.
    pub params: Vec<ExtensionParam>,
}

impl Extension {
    /// An extension without parameters.
    pub fn new(name: impl Into<String>) -> Extension {
        Extension {
            name: name.into(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter (`value: None` for a bare flag).
    #[must_use]
    pub fn with_param(mut self, name: impl Into<String>, value: Option<&str>) -> Extension {
        self.params.push(ExtensionParam {
            name: name.into(),
            value: value.map(String::from),
        });
        self
    }

    /// The first parameter called `name` (case-insensitive): `Some(None)` for a bare flag.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_deref())
    }

    /// `true` when the name and every parameter name and value are tokens, so the
    /// extension can be written on the wire as is.
    pub fn is_valid(&self) -> bool {
        is_token(self.name.as_bytes())
            && self.params.iter().all(|p| {
                is_token(p.name.as_bytes())
                    && p.value.as_ref().is_none_or(|v| is_token(v.as_bytes()))
            })
    }

    /// Writes `name; p1; p2=v` (the caller has checked [`Extension::is_valid`]).
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.name.as_bytes());
        for p in &self.params {
            out.extend_from_slice(b"; ");
            out.extend_from_slice(p.name.as_bytes());
            if let Some(v) = &p.value {
                out.push(b'=');
                out.extend_from_slice(v.as_bytes());
            }
        }
    }
}

impl core::fmt::Display for Extension {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.name)?;
        for p in &self.params {
            write!(f, "; {}", p.name)?;
            if let Some(v) = &p.value {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

/// Receives what the extension parser finds (so validation needs no allocation).
pub(crate) trait ExtensionSink {
    fn extension(&mut self, name: &[u8]);
    fn param(&mut self, name: &[u8], value: Option<&[u8]>);
}

/// Validation only.
pub(crate) struct Validate;

impl ExtensionSink for Validate {
    fn extension(&mut self, _: &[u8]) {}
    fn param(&mut self, _: &[u8], _: Option<&[u8]>) {}
}

/// Collects owned [`Extension`]s.
pub(crate) struct Collect(pub(crate) Vec<Extension>);

impl ExtensionSink for Collect {
    fn extension(&mut self, name: &[u8]) {
        self.0.push(Extension::new(String::from_utf8_lossy(name)));
    }

    fn param(&mut self, name: &[u8], value: Option<&[u8]>) {
        if let Some(ext) = self.0.last_mut() {
            ext.params.push(ExtensionParam {
                name: String::from_utf8_lossy(name).into_owned(),
                value: value.map(|v| String::from_utf8_lossy(v).into_owned()),
            });
        }
    }
}

/// A small cursor over one header value.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ows(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn token(&mut self) -> Option<&'a [u8]> {
        let rest = self.s.get(self.i..)?;
        let n = rest
            .iter()
            .position(|&b| !is_tchar(b))
            .unwrap_or(rest.len());
        self.i += n;
        rest.get(..n).filter(|t| !t.is_empty())
    }

    /// A quoted-string whose unescaped content must be a token (RFC 6455 §9.1); the
    /// content is written to `scratch`.
    fn quoted_token(&mut self, scratch: &mut [u8; 64]) -> Option<usize> {
        self.i += 1; // opening quote
        let mut n = 0;
        loop {
            let mut b = self.peek()?;
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    b = self.peek()?;
                    self.i += 1;
                }
                _ => {}
            }
            if !is_tchar(b) {
                return None;
            }
            *scratch.get_mut(n)? = b;
            n += 1;
        }
        (n > 0).then_some(n)
    }
}

/// Parses one `Sec-WebSocket-Extensions` value (`1#extension`, empty list elements allowed as
/// RFC 9110 §5.6.1 says) into `sink`. Returns `false` when the grammar is violated.
/// Quoted parameter values longer than 64 bytes are rejected (all registered ones are short).
pub(crate) fn parse_extensions(value: &[u8], sink: &mut impl ExtensionSink) -> bool {
    let mut c = Cursor { s: value, i: 0 };
    let mut scratch = [0u8; 64];
    let mut elements = 0usize;
    loop {
        c.skip_ows();
        match c.peek() {
            None => return elements > 0,
            Some(b',') => {
                c.i += 1;
                continue;
            }
            Some(_) => {}
        }
        let Some(name) = c.token() else { return false };
        sink.extension(name);
        elements += 1;
        loop {
            c.skip_ows();
            match c.peek() {
                None => return true,
                Some(b',') => {
                    c.i += 1;
                    break;
                }
                Some(b';') => c.i += 1,
                Some(_) => return false,
            }
            c.skip_ows();
            let Some(pname) = c.token() else { return false };
            c.skip_ows();
            if c.peek() == Some(b'=') {
                c.i += 1;
                c.skip_ows();
                if c.peek() == Some(b'"') {
                    let Some(n) = c.quoted_token(&mut scratch) else {
                        return false;
                    };
                    sink.param(pname, scratch.get(..n));
                } else {
                    let Some(v) = c.token() else { return false };
                    sink.param(pname, Some(v));
                }
            } else {
                sink.param(pname, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn exts(v: &str) -> Option<Vec<Extension>> {
        let mut c = Collect(Vec::new());
        parse_extensions(v.as_bytes(), &mut c).then_some(c.0)
    }

    #[test]
    fn rfc6455_9_1_extension_grammar() {
        let pmd = Extension::new("permessage-deflate");
        let table: &[(&str, Option<Vec<Extension>>)] = &[
            ("permessage-deflate", Some(vec![pmd.clone()])),
            (
                "permessage-deflate; client_max_window_bits",
                Some(vec![pmd.clone().with_param("client_max_window_bits", None)]),
            ),
            (
                "permessage-deflate;server_max_window_bits=10 ;client_no_context_takeover, x",
                Some(vec![
                    pmd.clone()
                        .with_param("server_max_window_bits", Some("10"))
                        .with_param("client_no_context_takeover", None),
                    Extension::new("x"),
                ]),
            ),
            // Quoted-string values are unescaped (RFC 6455 §9.1).
            (
                "foo; bar=\"baz\"; q=\"a\\-b\"",
                Some(vec![
                    Extension::new("foo")
                        .with_param("bar", Some("baz"))
                        .with_param("q", Some("a-b")),
                ]),
            ),
            // Empty list elements are tolerated (RFC 9110 §5.6.1).
            (
                " , a ,, b ,",
                Some(vec![Extension::new("a"), Extension::new("b")]),
            ),
            ("", None),
            (" , ", None),
            ("a;", None),
            ("a; =1", None),
            ("a; b=", None),
            ("a; b=\"\"", None),
            ("a; b=\"x y\"", None),
            ("a; b=\"unterminated", None),
            ("a b", None),
            ("a; b=c d", None),
            ("a=1", None),
            ("\"a\"", None),
        ];
        for (input, want) in table {
            assert_eq!(&exts(input), want, "input {input:?}");
        }
    }

    #[test]
    fn list_items_and_tokens() {
        let items: Vec<&[u8]> = list_items(b" keep-alive ,Upgrade,, ").collect();
        assert_eq!(items, vec![&b"keep-alive"[..], b"Upgrade"]);
        assert!(any_has_token(
            [&b"keep-alive, UPGRADE"[..]].into_iter(),
            b"upgrade"
        ));
        assert!(!any_has_token(
            [&b"keep-alive, upgrades"[..]].into_iter(),
            b"upgrade"
        ));
        assert!(is_token(b"v12.stomp"));
        assert!(!is_token(b"v12 stomp"));
        assert!(!is_token(b""));
    }
}
