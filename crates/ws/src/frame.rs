//! Frame headers (RFC 6455 section 5.2), for hosts that manage their own buffers.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! ```

use core::fmt;

/// The largest possible frame header: 2 + 8 (64-bit length) + 4 (masking key) bytes.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload of a control frame (RFC 6455 section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame opcode (RFC 6455 section 5.2 and 11.8). Reserved opcodes are rejected by
/// [`FrameHeader::decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// `0x0`: continuation of a fragmented message.
    Continuation,
    /// `0x1`: first frame of a text message.
    Text,
    /// `0x2`: first frame of a binary message.
    Binary,
    /// `0x8`: connection close.
    Close,
    /// `0x9`: ping.
    Ping,
    /// `0xA`: pong.
    Pong,
}

impl OpCode {
    /// Decodes a 4-bit opcode; `None` for the reserved values 0x3-0x7 and 0xB-0xF.
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0x0 => Some(Self::Continuation),
            0x1 => Some(Self::Text),
            0x2 => Some(Self::Binary),
            0x8 => Some(Self::Close),
            0x9 => Some(Self::Ping),
            0xA => Some(Self::Pong),
            _ => None,
        }
    }

    /// The 4-bit wire value.
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Whether this is a control opcode (close, ping, pong).
    pub const fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// A decoded or to-be-encoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1 (used by extensions such as permessage-deflate).
    pub rsv1: bool,
    /// RSV2.
    pub rsv2: bool,
    /// RSV3.
    pub rsv3: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on frames sent by a client.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes (at most `2^63 - 1`).
    pub payload_len: u64,
}

/// The result of a decode that may need more input, as in `httparse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// The value and the number of bytes it occupied.
    Complete(T),
    /// More bytes are needed; nothing was consumed.
    Partial,
}

/// Why a frame header is malformed. Both are protocol errors (close code 1002).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// The opcode is one of the reserved values (the raw 4-bit value).
    ReservedOpcode(u8),
    /// A 64-bit payload length with its most significant bit set.
    LengthOverflow,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            Self::LengthOverflow => f.write_str("64-bit payload length with the top bit set"),
        }
    }
}

impl core::error::Error for HeaderError {}

/// The caller's buffer is too small for the encoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferTooSmall {
    /// How many bytes the header needs.
    pub needed: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "buffer too small for frame header: {} bytes needed",
            self.needed
        )
    }
}

impl core::error::Error for BufferTooSmall {}

impl FrameHeader {
    /// A final, unmasked frame header with no reserved bits.
    pub const fn new(opcode: OpCode, payload_len: u64) -> Self {
        Self {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: None,
            payload_len,
        }
    }

    /// Decodes a header from the start of `buf`. Returns `Partial` until the whole header
    /// (2 to 14 bytes) is present, then the header and its length in bytes. Non-minimal length
    /// encodings are accepted (be liberal in what you accept).
    #[inline]
    pub fn decode(buf: &[u8]) -> Result<Status<(Self, usize)>, HeaderError> {
        let [b0, b1, ..] = *buf else {
            return Ok(Status::Partial);
        };
        let Some(opcode) = OpCode::from_u8(b0 & 0x0f) else {
            return Err(HeaderError::ReservedOpcode(b0 & 0x0f));
        };
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut at) = match b1 & 0x7f {
            126 => match buf.get(2..4) {
                Some(&[a, b]) => (u64::from(u16::from_be_bytes([a, b])), 4),
                _ => return Ok(Status::Partial),
            },
            127 => match buf.get(2..10) {
                Some(bytes) => {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(bytes);
                    let len = u64::from_be_bytes(be);
                    if len >> 63 != 0 {
                        return Err(HeaderError::LengthOverflow);
                    }
                    (len, 10)
                }
                None => return Ok(Status::Partial),
            },
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            match buf.get(at..at + 4) {
                Some(&[a, b, c, d]) => {
                    at += 4;
                    Some([a, b, c, d])
                }
                _ => return Ok(Status::Partial),
            }
        } else {
            None
        };
        let header = Self {
            fin: b0 & 0x80 != 0,
            rsv1: b0 & 0x40 != 0,
            rsv2: b0 & 0x20 != 0,
            rsv3: b0 & 0x10 != 0,
            opcode,
            mask,
            payload_len,
        };
        Ok(Status::Complete((header, at)))
    }

    /// The encoded size of this header in bytes (minimal length encoding).
    pub const fn encoded_len(&self) -> usize {
        let len = if self.payload_len < 126 {
            2
        } else if self.payload_len <= 0xffff {
            4
        } else {
            10
        };
        if self.mask.is_some() { len + 4 } else { len }
    }

    /// Encodes this header into the start of `out` with the minimal length encoding and
    /// returns the number of bytes written. The payload length must be below `2^63`.
    #[inline]
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let (bytes, len) = self.to_bytes();
        match out.get_mut(..len) {
            Some(dst) => {
                dst.copy_from_slice(&bytes[..len]);
                Ok(len)
            }
            None => Err(BufferTooSmall { needed: len }),
        }
    }

    /// Encodes this header into a fixed array; returns the array and the used length.
    #[inline]
    pub fn to_bytes(&self) -> ([u8; MAX_HEADER_LEN], usize) {
        let mut out = [0u8; MAX_HEADER_LEN];
        out[0] = u8::from(self.fin) << 7
            | u8::from(self.rsv1) << 6
            | u8::from(self.rsv2) << 5
            | u8::from(self.rsv3) << 4
            | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut at = if self.payload_len < 126 {
            out[1] = mask_bit | self.payload_len as u8;
            2
        } else if self.payload_len <= 0xffff {
            out[1] = mask_bit | 0x7e;
            out[2..4].copy_from_slice(&(self.payload_len as u16).to_be_bytes());
            4
        } else {
            out[1] = mask_bit | 0x7f;
            out[2..10].copy_from_slice(&(self.payload_len & (u64::MAX >> 1)).to_be_bytes());
            10
        };
        if let Some(key) = self.mask {
            out[at..at + 4].copy_from_slice(&key);
            at += 4;
        }
        (out, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(bytes: &[u8]) -> Result<Status<(FrameHeader, usize)>, HeaderError> {
        FrameHeader::decode(bytes)
    }

    #[test]
    fn rfc6455_5_7_examples() {
        // (wire bytes, fin, opcode, mask, payload_len, header length)
        type Case<'a> = (&'a [u8], bool, OpCode, Option<[u8; 4]>, u64, usize);
        let cases: &[Case<'_>] = &[
            (&[0x81, 0x05], true, OpCode::Text, None, 5, 2),
            (
                &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d],
                true,
                OpCode::Text,
                Some([0x37, 0xfa, 0x21, 0x3d]),
                5,
                6,
            ),
            (&[0x01, 0x03], false, OpCode::Text, None, 3, 2),
            (&[0x80, 0x02], true, OpCode::Continuation, None, 2, 2),
            (&[0x89, 0x05], true, OpCode::Ping, None, 5, 2),
            (
                &[0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d],
                true,
                OpCode::Pong,
                Some([0x37, 0xfa, 0x21, 0x3d]),
                5,
                6,
            ),
            (
                &[0x82, 0x7E, 0x01, 0x00],
                true,
                OpCode::Binary,
                None,
                256,
                4,
            ),
            (
                &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0],
                true,
                OpCode::Binary,
                None,
                65536,
                10,
            ),
        ];
        for &(bytes, fin, opcode, mask, len, hlen) in cases {
            let Ok(Status::Complete((h, n))) = decode(bytes) else {
                panic!("{bytes:?}")
            };
            assert_eq!(
                (h.fin, h.opcode, h.mask, h.payload_len, n),
                (fin, opcode, mask, len, hlen)
            );
            let (enc, elen) = h.to_bytes();
            assert_eq!(&enc[..elen], bytes, "re-encode");
            for cut in 0..bytes.len() {
                assert_eq!(
                    decode(&bytes[..cut]),
                    Ok(Status::Partial),
                    "{bytes:?} cut {cut}"
                );
            }
        }
    }

    #[test]
    fn rfc6455_5_2_errors() {
        for op in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
            assert_eq!(
                decode(&[0x80 | op, 0]),
                Err(HeaderError::ReservedOpcode(op))
            );
        }
        assert_eq!(
            decode(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(HeaderError::LengthOverflow)
        );
        assert!(matches!(
            decode(&[0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Ok(Status::Complete((
                FrameHeader {
                    payload_len: 0x7fff_ffff_ffff_ffff,
                    ..
                },
                10
            )))
        ));
    }

    #[test]
    fn rsv_bits_and_non_minimal_lengths() {
        let Ok(Status::Complete((h, _))) = decode(&[0xf2, 0x00]) else {
            panic!()
        };
        assert!(h.rsv1 && h.rsv2 && h.rsv3 && h.fin);
        // 16-bit encoding of 5: accepted on receive, minimal on send.
        let Ok(Status::Complete((h, 4))) = decode(&[0x82, 0x7e, 0x00, 0x05]) else {
            panic!()
        };
        assert_eq!(h.payload_len, 5);
        assert_eq!(h.encoded_len(), 2);
    }

    #[test]
    fn minimal_length_boundaries() {
        for (len, hlen) in [
            (0u64, 2),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (u64::MAX >> 1, 10),
        ] {
            assert_eq!(FrameHeader::new(OpCode::Binary, len).encoded_len(), hlen);
        }
        let mut small = [0u8; 3];
        assert_eq!(
            FrameHeader::new(OpCode::Binary, 300).encode(&mut small),
            Err(BufferTooSmall { needed: 4 })
        );
    }

    fn any_header() -> impl Strategy<Value = FrameHeader> {
        let op = prop::sample::select(
            &[
                OpCode::Continuation,
                OpCode::Text,
                OpCode::Binary,
                OpCode::Close,
                OpCode::Ping,
                OpCode::Pong,
            ][..],
        );
        let len = prop_oneof![0u64..130, 60_000u64..70_000, 0u64..=(u64::MAX >> 1)];
        (any::<[bool; 4]>(), op, any::<Option<[u8; 4]>>(), len).prop_map(
            |(b, opcode, mask, payload_len)| FrameHeader {
                fin: b[0],
                rsv1: b[1],
                rsv2: b[2],
                rsv3: b[3],
                opcode,
                mask,
                payload_len,
            },
        )
    }

    proptest! {
        #[test]
        fn round_trip(h in any_header()) {
            let mut buf = [0u8; MAX_HEADER_LEN + 3];
            let n = h.encode(&mut buf).map_err(|e| TestCaseError::fail(alloc::format!("{e}")))?;
            prop_assert_eq!(n, h.encoded_len());
            prop_assert_eq!(decode(&buf), Ok(Status::Complete((h, n))));
            for cut in 0..n {
                prop_assert_eq!(decode(&buf[..cut]), Ok(Status::Partial));
            }
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
            if let Ok(Status::Complete((h, n))) = decode(&bytes) {
                prop_assert!(n <= bytes.len() && n == h.encoded_len() || n <= bytes.len());
            }
        }
    }
}
