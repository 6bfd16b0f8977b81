//! What the broker hands the host: whole frames from its sessions' `ServerSession`s.
//!
//! A MESSAGE is a [`Transmit`] of three parts — the per-subscriber head, the body shared by
//! every subscriber (`Bytes`, never copied) and the terminating NUL — so a fan-out to N
//! subscribers copies N small heads and no body.

use bytes::Bytes;

/// Header escaping, by negotiated STOMP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Escaping {
    /// STOMP 1.0: no escaping; CR and LF in values cannot be represented.
    V10,
    /// STOMP 1.1: `\\`, `\n`, `\c`.
    V11,
    /// STOMP 1.2: as 1.1 plus `\r`.
    V12,
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

impl From<stompbox_stomp::Transmit> for Transmit {
    /// A whole frame from a `ServerSession` (`poll_transmit_frame`): contiguous, or head,
    /// shared body and NUL.
    fn from(t: stompbox_stomp::Transmit) -> Transmit {
        match &t.tail[..] {
            b"" => Transmit {
                head: t.head,
                body: t.body,
                tail: b"",
            },
            b"\0" => Transmit {
                head: t.head,
                body: t.body,
                tail: b"\0",
            },
            // Not produced by whole-frame polling; stay correct with one copy.
            _ => Transmit::whole(t.to_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmit_parts_and_conversion() {
        let t = Transmit {
            head: Bytes::from_static(b"ab"),
            body: Bytes::from_static(b"c"),
            tail: b"\0",
        };
        assert_eq!(t.to_vec(), b"abc\0");
        assert_eq!(t.len(), 4);
        let shared = stompbox_stomp::Transmit {
            head: Bytes::from_static(b"MESSAGE\n\n"),
            body: Bytes::from_static(b"x"),
            tail: Bytes::from_static(b"\0"),
        };
        let t = Transmit::from(shared.clone());
        assert_eq!(
            (t.body.as_ptr(), t.tail),
            (shared.body.as_ptr(), &b"\0"[..])
        );
        let whole = Transmit::from(stompbox_stomp::Transmit {
            head: Bytes::from_static(b"\n"),
            ..stompbox_stomp::Transmit::default()
        });
        assert_eq!((whole.to_vec(), whole.tail), (b"\n".to_vec(), &b""[..]));
        // A partial remainder (never from whole-frame polling) is kept whole.
        let odd = Transmit::from(stompbox_stomp::Transmit {
            head: Bytes::from_static(b"a"),
            body: Bytes::from_static(b"b"),
            tail: Bytes::from_static(b"c\0"),
        });
        assert_eq!((odd.to_vec(), odd.tail), (b"abc\0".to_vec(), &b""[..]));
    }
}
