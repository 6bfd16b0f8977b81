//! Outbound frames the broker writes itself: MESSAGE (head + shared body), RECEIPT and ERROR.
//!
//! A MESSAGE is handed to the host as a [`Transmit`] of three parts — the per-subscriber head,
//! the body shared by every subscriber (`Bytes`, never copied) and the terminating NUL — so a
//! fan-out to N subscribers copies N small heads and no body.

use bytes::{BufMut, Bytes, BytesMut};

/// Header escaping, by negotiated STOMP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Escaping {
    /// STOMP 1.0: no escaping; CR and LF in values are replaced by a space (they cannot be
    /// represented).
    V10,
    /// STOMP 1.1: `\\`, `\n`, `\c`.
    V11,
    /// STOMP 1.2: as 1.1 plus `\r`.
    V12,
}

impl Escaping {
    pub(crate) fn index(self) -> usize {
        match self {
            Escaping::V10 => 0,
            Escaping::V11 => 1,
            Escaping::V12 => 2,
        }
    }
}

/// Appends `v` escaped for `esc`.
pub(crate) fn put_escaped(out: &mut BytesMut, v: &str, esc: Escaping) {
    let bytes = v.as_bytes();
    if !bytes
        .iter()
        .any(|b| matches!(b, b'\\' | b'\n' | b'\r' | b':'))
    {
        out.put_slice(bytes);
        return;
    }
    for &b in bytes {
        match (esc, b) {
            (Escaping::V10, b'\n' | b'\r') | (Escaping::V11, b'\r') => out.put_u8(b' '),
            (Escaping::V10, b) => out.put_u8(b),
            (_, b'\\') => out.put_slice(b"\\\\"),
            (_, b'\n') => out.put_slice(b"\\n"),
            (_, b':') => out.put_slice(b"\\c"),
            (Escaping::V12, b'\r') => out.put_slice(b"\\r"),
            (_, b) => out.put_u8(b),
        }
    }
}

fn put_header(out: &mut BytesMut, k: &str, v: &str, esc: Escaping) {
    put_escaped(out, k, esc);
    out.put_u8(b':');
    put_escaped(out, v, esc);
    out.put_u8(b'\n');
}

fn put_u64(out: &mut BytesMut, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&buf[i..]);
}

/// One whole outbound frame (or heart-beat) for one session, in parts that share storage.
///
/// Write `head`, then `body`, then `tail` (e.g. with vectored I/O), or use
/// [`Transmit::to_vec`]. A heart-beat is a `head` of one `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Command and headers (or the whole frame for frames the broker builds in one piece).
    pub head: Bytes,
    /// The body, shared with every other subscriber of the same message.
    pub body: Bytes,
    /// The frame terminator (`\0`), or empty when `head` already holds the whole frame.
    pub tail: &'static [u8],
}

impl Transmit {
    /// A transmit made of one buffer.
    pub fn whole(b: Bytes) -> Self {
        Self {
            head: b,
            body: Bytes::new(),
            tail: b"",
        }
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len() + self.tail.len()
    }

    /// Is the transmit empty (never, for transmits the broker hands out)?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The parts in order, for vectored writes.
    pub fn parts(&self) -> [&[u8]; 3] {
        [&self.head, &self.body, self.tail]
    }

    /// Appends the whole frame to `out` (one copy).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        for p in self.parts() {
            out.extend_from_slice(p);
        }
    }

    /// The whole frame as one vector (one copy).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        self.write_to(&mut v);
        v
    }
}

/// The per-delivery part of a MESSAGE head.
pub(crate) struct Delivery<'a> {
    pub destination: &'a str,
    pub message_id: u64,
    pub subscription: &'a str,
    pub ack: bool,
    pub redelivered: bool,
}

/// Encodes the common tail of a MESSAGE head: the user headers, then `content-length`.
pub(crate) fn encode_common(headers: &[(String, String)], body_len: usize, esc: Escaping) -> Bytes {
    let mut out = BytesMut::with_capacity(64);
    for (k, v) in headers {
        put_header(&mut out, k, v, esc);
    }
    out.put_slice(b"content-length:");
    put_u64(&mut out, body_len as u64);
    out.put_slice(b"\n\n");
    out.freeze()
}

/// Builds a MESSAGE head: command, broker headers, then the pre-encoded common part.
pub(crate) fn message_head(d: &Delivery<'_>, common: &[u8], esc: Escaping) -> Bytes {
    let mut out =
        BytesMut::with_capacity(48 + d.destination.len() + d.subscription.len() * 2 + common.len());
    out.put_slice(b"MESSAGE\ndestination:");
    put_escaped(&mut out, d.destination, esc);
    out.put_slice(b"\nmessage-id:");
    put_u64(&mut out, d.message_id);
    out.put_slice(b"\nsubscription:");
    put_escaped(&mut out, d.subscription, esc);
    out.put_u8(b'\n');
    if d.ack && esc == Escaping::V12 {
        out.put_slice(b"ack:");
        put_u64(&mut out, d.message_id);
        out.put_u8(b'\n');
    }
    if d.redelivered {
        out.put_slice(b"redelivered:true\n");
    }
    out.put_slice(common);
    out.freeze()
}

/// A RECEIPT frame.
pub(crate) fn receipt(receipt_id: &str, esc: Escaping) -> Bytes {
    let mut out = BytesMut::with_capacity(24 + receipt_id.len());
    out.put_slice(b"RECEIPT\n");
    put_header(&mut out, "receipt-id", receipt_id, esc);
    out.put_slice(b"\n\0");
    out.freeze()
}

/// An ERROR frame with a short `message` header and a plain-text body.
pub(crate) fn error(message: &str, receipt_id: Option<&str>, esc: Escaping) -> Bytes {
    let mut out = BytesMut::with_capacity(64 + message.len() * 2);
    out.put_slice(b"ERROR\n");
    put_header(&mut out, "message", message, esc);
    if let Some(r) = receipt_id {
        put_header(&mut out, "receipt-id", r, esc);
    }
    out.put_slice(b"content-type:text/plain\ncontent-length:");
    put_u64(&mut out, message.len() as u64);
    out.put_slice(b"\n\n");
    out.put_slice(message.as_bytes());
    out.put_u8(0);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_by_version() {
        // STOMP 1.2 "Value Encoding": \r \n : \ are escaped; 1.1 has no \r; 1.0 has none.
        for (esc, want) in [
            (Escaping::V12, "a\\c\\\\\\n\\rb"),
            (Escaping::V11, "a\\c\\\\\\n b"),
            (Escaping::V10, "a:\\  b"),
        ] {
            let mut out = BytesMut::new();
            put_escaped(&mut out, "a:\\\n\rb", esc);
            assert_eq!(std::str::from_utf8(&out).unwrap_or(""), want, "{esc:?}");
        }
    }

    #[test]
    fn message_head_layout() {
        let common = encode_common(
            &[("content-type".into(), "text/plain".into())],
            5,
            Escaping::V12,
        );
        let d = Delivery {
            destination: "/topic/a",
            message_id: 42,
            subscription: "s:1",
            ack: true,
            redelivered: true,
        };
        let head = message_head(&d, &common, Escaping::V12);
        assert_eq!(
            &head[..],
            b"MESSAGE\ndestination:/topic/a\nmessage-id:42\nsubscription:s\\c1\nack:42\n\
              redelivered:true\ncontent-type:text/plain\ncontent-length:5\n\n"
        );
        // STOMP 1.1 has no ack header (ACK uses message-id + subscription).
        let head = message_head(&d, &common, Escaping::V11);
        assert!(!head.windows(4).any(|w| w == b"ack:"));
    }

    proptest::proptest! {
        /// MESSAGE heads round-trip through the stomp codec's parser for 1.1 and 1.2
        /// (values with CR only for 1.2, which can escape it).
        #[test]
        fn message_round_trips_through_the_parser(
            headers in proptest::collection::vec(("[a-z][a-z:\\\n\r-]{0,8}", "[ -~:\\\n\r]{0,12}"), 0..5),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            sub in "[ -~:\\\n]{1,8}",
            v12 in proptest::prelude::any::<bool>(),
        ) {
            use stompbox_stomp::{Command, Limits, Parser, Version};
            let (esc, version) = if v12 { (Escaping::V12, Version::V1_2) } else { (Escaping::V11, Version::V1_1) };
            let headers: Vec<(String, String)> = headers
                .into_iter()
                .map(|(k, v)| if v12 { (k, v) } else { (k.replace('\r', "-"), v.replace('\r', "-")) })
                .filter(|(k, _)| !crate::broker::is_broker_header(k))
                .collect();
            let common = encode_common(&headers, body.len(), esc);
            let d = Delivery { destination: "/topic/x:y", message_id: 7, subscription: &sub, ack: true, redelivered: false };
            let mut wire = BytesMut::new();
            wire.extend_from_slice(&message_head(&d, &common, esc));
            wire.extend_from_slice(&body);
            wire.extend_from_slice(b"\0");
            let mut p = Parser::new(Limits::default());
            p.set_version(version);
            let f = p.parse(&mut wire).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let f = f.ok_or_else(|| proptest::test_runner::TestCaseError::fail("partial"))?;
            proptest::prop_assert_eq!(f.command(), Command::Message);
            proptest::prop_assert_eq!(f.header("destination"), Some("/topic/x:y"));
            proptest::prop_assert_eq!(f.header("subscription"), Some(sub.as_str()));
            proptest::prop_assert_eq!(&f.body()[..], &body[..]);
            let got: Vec<(String, String)> = f
                .headers()
                .skip_while(|(k, _)| *k != "subscription")
                .skip(1)
                .filter(|(k, _)| *k != "ack" && *k != "content-length")
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            proptest::prop_assert_eq!(got, headers);
            proptest::prop_assert!(wire.is_empty());
        }
    }

    #[test]
    fn receipt_and_error() {
        assert_eq!(
            &receipt("r1", Escaping::V12)[..],
            b"RECEIPT\nreceipt-id:r1\n\n\0"
        );
        let e = error("queue full", Some("r7"), Escaping::V12);
        assert_eq!(
            &e[..],
            b"ERROR\nmessage:queue full\nreceipt-id:r7\ncontent-type:text/plain\n\
              content-length:10\n\nqueue full\0"
        );
        let t = Transmit {
            head: Bytes::from_static(b"ab"),
            body: Bytes::from_static(b"c"),
            tail: b"\0",
        };
        assert_eq!(t.to_vec(), b"abc\0");
        assert_eq!(t.len(), 4);
    }
}
