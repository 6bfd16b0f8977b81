//! permessage-deflate (RFC 7692): the per-message compression transform (feature `deflate`).
//!
//! The handshake negotiates the four parameters (e.g. `stompbox-upgrade`'s `DeflatePolicy`
//! or `DeflateOffer`, feature `deflate`); the host copies them into a [`DeflateConfig`] and
//! sets [`Config::deflate`](crate::Config::deflate). The connection then:
//!
//! - sends data messages of at least [`DeflateConfig::min_size`] bytes compressed: RSV1 on
//!   the first frame, the payload one DEFLATE stream segment ended by a sync flush with its
//!   trailing `00 00 ff ff` removed (section 7.2.1); smaller messages and every control frame
//!   go out uncompressed;
//! - inflates received messages with RSV1 set, restoring the `00 00 ff ff` tail (section
//!   7.2.2), into at most [`Config::max_message_size`](crate::Config::max_message_size) bytes:
//!   a larger message (a decompression bomb) fails the connection with close 1009 before
//!   more than that limit is allocated; undecodable data gets close 1007;
//! - in streaming mode ([`Config::streaming`](crate::Config::streaming)) inflates a
//!   compressed message when it is complete and hands it out as one `Fragment` (first and
//!   last); streaming sends (`send_fragment`) compress every fragment with a sync flush,
//!   whatever its size;
//! - keeps or resets the LZ77 context after each message per the `*_no_context_takeover`
//!   parameters of its own role and the peer's, and compresses with at most its role's
//!   negotiated window.
//!
//! Window bits: zlib cannot make raw DEFLATE streams with a 256-byte window (8 bits), so a
//! negotiated 8 compresses with a 9-bit window, whose longest match distance is 250 bytes
//! (512 minus zlib's 262-byte lookahead): the stream stays valid for an 8-bit inflater.

use alloc::boxed::Box;
use alloc::vec::Vec;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::connection::Role;
use crate::error::ProtocolError;

/// The tail a sync flush ends with, removed on send and restored on receive.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Smallest window flate2/zlib can make raw streams with (see the module notes on 8 bits).
const MIN_ZLIB_BITS: u8 = 9;

/// The negotiated permessage-deflate parameters plus this side's compression settings.
///
/// ```
/// use stompbox_ws::{Config, Connection, DeflateConfig, Event};
///
/// // What the handshake agreed (e.g. stompbox-upgrade's `DeflateParams`): context takeover
/// // off for the server, a 12-bit window for the client.
/// let deflate = DeflateConfig::negotiated(true, false, 15, 12).level(6).min_size(32);
/// let config = Config::default().deflate(Some(deflate));
/// let mut client = Connection::client(config.clone(), || [1, 2, 3, 4]);
/// let mut server = Connection::server(config);
/// let frame = "MESSAGE\ndestination:/topic/a\n\n".to_owned() + &"tick ".repeat(200) + "\0";
/// client.send_text(&frame)?;
/// let mut wire = 0;
/// while let Some(bytes) = client.poll_transmit() {
///     wire += bytes.len();
///     server.handle_read(&bytes)?;
/// }
/// assert!(wire < frame.len() / 10, "{wire} bytes on the wire");
/// assert_eq!(server.poll_event(), Some(Event::Text(frame.clone().into())));
/// assert!(server.deflate_memory() > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The four parameters are RFC 7692's, named as on the wire, as the handshake agreed them
/// (the same fields as `stompbox_upgrade::DeflateParams`). Which of them apply to compressing
/// and which to inflating follows from the connection's [`Role`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// The server resets its compression context after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after every message.
    pub client_no_context_takeover: bool,
    /// The server's largest LZ77 window, in bits (8-15).
    pub server_max_window_bits: u8,
    /// The client's largest LZ77 window, in bits (8-15).
    pub client_max_window_bits: u8,
    /// zlib compression level, 0-9 (default 6; 1 is fastest).
    pub level: u32,
    /// Messages shorter than this are sent uncompressed (default 32 bytes: below that the
    /// DEFLATE block overhead outweighs any gain).
    pub min_size: usize,
}

impl Default for DeflateConfig {
    /// Context takeover on both sides, 15-bit windows (a bare `permessage-deflate`), level 6,
    /// messages from 32 bytes on compressed.
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: 6,
            min_size: 32,
        }
    }
}

impl DeflateConfig {
    /// The config for negotiated parameters (the two `*_no_context_takeover` flags and the
    /// two window sizes, as the handshake agreed them), with the default level and minimum
    /// size.
    pub fn negotiated(
        server_no_context_takeover: bool,
        client_no_context_takeover: bool,
        server_max_window_bits: u8,
        client_max_window_bits: u8,
    ) -> Self {
        Self {
            server_no_context_takeover,
            client_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
            ..Self::default()
        }
    }

    /// Sets [`DeflateConfig::level`] (clamped to 0-9).
    #[must_use]
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Sets [`DeflateConfig::min_size`].
    #[must_use]
    pub fn min_size(mut self, bytes: usize) -> Self {
        self.min_size = bytes;
        self
    }
}

/// Memory zlib keeps for a deflate stream with `bits` and memLevel 8:
/// `(1 << (bits + 2)) + (1 << (8 + 9))` (zlib's zconf.h formula).
const fn deflate_memory(bits: u8) -> usize {
    (1 << (bits as usize + 2)) + (1 << 17)
}

/// Memory zlib keeps for an inflate stream: the window plus about 7 KiB of state.
const fn inflate_memory(bits: u8) -> usize {
    (1 << bits as usize) + 7 * 1024
}

/// The per-connection transform: one compressor, one decompressor.
pub(crate) struct Codec {
    compress: Compress,
    decompress: Decompress,
    /// Reset the compressor after each sent message (our `*_no_context_takeover`).
    reset_send: bool,
    /// Reset the decompressor after each received message (the peer's).
    reset_recv: bool,
    min_size: usize,
    send_bits: u8,
    recv_bits: u8,
    /// Compressed output of the message being sent (reused).
    scratch: Vec<u8>,
    /// Inflated output of the message received (reused up to `KEEP` bytes of capacity).
    inflated: Vec<u8>,
}

/// Reusable buffers are kept up to this capacity; larger ones are handed out or dropped.
const KEEP: usize = 64 * 1024;

impl core::fmt::Debug for Codec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Codec")
            .field("reset_send", &self.reset_send)
            .field("reset_recv", &self.reset_recv)
            .field("send_bits", &self.send_bits)
            .field("recv_bits", &self.recv_bits)
            .finish_non_exhaustive()
    }
}

impl Codec {
    pub(crate) fn new(role: Role, config: &DeflateConfig) -> Box<Self> {
        let (own_bits, peer_bits, reset_send, reset_recv) = match role {
            Role::Server => (
                config.server_max_window_bits,
                config.client_max_window_bits,
                config.server_no_context_takeover,
                config.client_no_context_takeover,
            ),
            Role::Client => (
                config.client_max_window_bits,
                config.server_max_window_bits,
                config.client_no_context_takeover,
                config.server_no_context_takeover,
            ),
        };
        let send_bits = own_bits.clamp(MIN_ZLIB_BITS, 15);
        // An inflater with a larger window accepts every stream of a smaller one.
        let recv_bits = peer_bits.clamp(MIN_ZLIB_BITS, 15);
        Box::new(Self {
            compress: Compress::new_with_window_bits(
                Compression::new(config.level.min(9)),
                false,
                send_bits,
            ),
            decompress: Decompress::new_with_window_bits(false, recv_bits),
            reset_send,
            reset_recv,
            min_size: config.min_size,
            send_bits,
            recv_bits,
            scratch: Vec::new(),
            inflated: Vec::new(),
        })
    }

    /// Bytes this transform keeps per connection: zlib's deflate and inflate state for the
    /// negotiated windows plus the reusable output buffer.
    pub(crate) fn memory(&self) -> usize {
        deflate_memory(self.send_bits)
            + inflate_memory(self.recv_bits)
            + self.scratch.capacity()
            + self.inflated.capacity()
    }

    /// Whether a whole message of `len` bytes is sent compressed.
    pub(crate) fn wants(&self, len: usize) -> bool {
        len >= self.min_size
    }

    /// An upper bound of the compressed size of `len` bytes (zlib's deflateBound plus the
    /// sync flush), for the output-room check before compressing.
    pub(crate) fn bound(len: usize) -> usize {
        len + (len >> 12) + (len >> 14) + (len >> 25) + 32
    }

    /// Compresses one message (`fin`) or one fragment of it into the scratch buffer and
    /// returns it: a sync flush, the `00 00 ff ff` tail removed at the end of the message.
    /// `None` if the output would not be smaller than `data` and the message can be sent
    /// uncompressed instead (only without context takeover, where skipping leaves no trace).
    /// The buffer is the codec's reusable one: hand it back with [`Codec::recycle`].
    pub(crate) fn compress(&mut self, data: &[u8], fin: bool, whole: bool) -> Option<Vec<u8>> {
        self.scratch.clear();
        self.scratch.reserve(Self::bound(data.len()));
        let mut input = data;
        loop {
            let before = self.compress.total_in();
            // Errors are impossible with a valid stream and room in the output; a Status
            // error is treated like "no progress" below.
            let status = self
                .compress
                .compress_vec(input, &mut self.scratch, FlushCompress::Sync);
            let used = (self.compress.total_in() - before) as usize;
            input = &input[used..];
            let full = self.scratch.len() == self.scratch.capacity();
            if input.is_empty() && !full {
                break;
            }
            if matches!(status, Err(_) | Ok(Status::BufError)) && !full && used == 0 {
                break;
            }
            self.scratch.reserve(4096.max(input.len()));
        }
        if fin && self.scratch.ends_with(&TAIL) {
            self.scratch.truncate(self.scratch.len() - TAIL.len());
        } else if fin && self.scratch.is_empty() {
            // Nothing new since the last flush (an empty message, or an empty last fragment):
            // zlib emits nothing, but the receiver appends `00 00 ff ff` and needs the 3-bit
            // header of that empty stored block first, which is the byte 0x00 (RFC 7692
            // section 7.2.3.6).
            self.scratch.push(0x00);
        }
        if fin && self.reset_send {
            self.compress.reset();
            if whole && self.scratch.len() >= data.len() {
                return None;
            }
        }
        Some(core::mem::take(&mut self.scratch))
    }

    /// Returns the output buffer of [`Codec::compress`] for reuse (kept up to 64 KiB).
    pub(crate) fn recycle(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() <= KEEP {
            buf.clear();
            self.scratch = buf;
        }
    }

    /// Inflates one whole received message (its frames' payloads, concatenated) into at most
    /// `limit` bytes.
    pub(crate) fn inflate(&mut self, data: &[u8], limit: usize) -> Result<Bytes, ProtocolError> {
        if data.is_empty() {
            // Not valid DEFLATE (the empty stored block needs its header byte `00`), but
            // some compressors send it for an empty message: read it as one, and leave the
            // inflater at the block boundary instead of feeding it a bare `00 00 ff ff`.
            return Ok(Bytes::new());
        }
        let mut out = core::mem::take(&mut self.inflated);
        out.clear();
        let result = self.inflate_into(data, limit, &mut out);
        if result.is_err() || self.reset_recv {
            self.decompress.reset(false);
        }
        result?;
        // Small messages: copied out of the reused buffer in one exact allocation, so the
        // inflater runs with room to spare; large ones are handed out without a copy.
        if out.capacity() <= KEEP {
            let bytes = Bytes::copy_from_slice(&out);
            self.inflated = out;
            Ok(bytes)
        } else {
            Ok(Bytes::from(out))
        }
    }

    fn inflate_into(
        &mut self,
        data: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtocolError> {
        // One byte beyond the limit proves the message is too large.
        let cap = limit.saturating_add(1);
        let first = data.len().saturating_mul(4).clamp(16 * 1024, KEEP);
        if out.capacity() < first.min(cap) {
            out.reserve_exact(first.min(cap));
        }
        for mut input in [data, &TAIL[..]] {
            loop {
                if out.len() == out.capacity() {
                    let room = cap - out.len();
                    if room == 0 {
                        return Err(ProtocolError::MessageTooLarge);
                    }
                    out.reserve_exact(out.len().max(4096).min(room));
                }
                let (in0, out0) = (self.decompress.total_in(), out.len());
                let status = self
                    .decompress
                    .decompress_vec(input, out, FlushDecompress::Sync)
                    .map_err(|_| ProtocolError::InvalidCompressedData)?;
                let used = (self.decompress.total_in() - in0) as usize;
                input = &input[used..];
                if out.len() > limit {
                    return Err(ProtocolError::MessageTooLarge);
                }
                if status == Status::StreamEnd {
                    // A final block (BFINAL): the stream is over; whatever follows in this
                    // message cannot belong to it. The next message starts a new stream.
                    self.decompress.reset(false);
                    if input.iter().any(|&b| b != 0) && input != &TAIL[..] {
                        return Err(ProtocolError::InvalidCompressedData);
                    }
                    return Ok(());
                }
                let full = out.len() == out.capacity();
                if input.is_empty() && !full {
                    break;
                }
                if used == 0 && out.len() == out0 && !full {
                    // No progress with input left and room for output: malformed.
                    return Err(ProtocolError::InvalidCompressedData);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn pair(config: &DeflateConfig) -> (Box<Codec>, Box<Codec>) {
        (
            Codec::new(Role::Client, config),
            Codec::new(Role::Server, config),
        )
    }

    /// RFC 7692 section 7.2.3.1: "Hello" compressed without context takeover is
    /// `f2 48 cd c9 c9 07 00`, and the sample decodes back.
    #[test]
    fn rfc_7692_sample_hello() {
        let config = DeflateConfig::negotiated(true, true, 15, 15).min_size(0);
        let (mut client, mut server) = pair(&config);
        assert_eq!(
            client.compress(b"Hello", true, false).as_deref(),
            Some(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..])
        );
        let got = server.inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100);
        assert_eq!(got.as_deref(), Ok(&b"Hello"[..]));
        // Section 7.2.3.3: a message of stored blocks (no compression) also inflates.
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, b'H', b'e', b'l', b'l', b'o', 0x00,
        ];
        assert_eq!(server.inflate(&stored, 100).as_deref(), Ok(&b"Hello"[..]));
        // Section 7.2.3.4: two blocks in one message.
        let two = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        assert_eq!(server.inflate(&two, 100).as_deref(), Ok(&b"Hello"[..]));
        // Section 7.2.3.5: a message ended by a final (BFINAL) block.
        let final_block = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        assert_eq!(
            server.inflate(&final_block, 100).as_deref(),
            Ok(&b"Hello"[..])
        );
        assert_eq!(
            server
                .inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100)
                .as_deref(),
            Ok(&b"Hello"[..])
        );
    }

    /// Section 7.2.3.2: with context takeover the second "Hello" is a back reference,
    /// `f2 00 11 00 00`, and decodes only with the first one's context.
    #[test]
    fn rfc_7692_sample_context_takeover() {
        let config = DeflateConfig::default().min_size(0);
        let (mut client, mut server) = pair(&config);
        let first = client.compress(b"Hello", true, true);
        assert_eq!(
            first.as_deref(),
            Some(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..])
        );
        let second = client.compress(b"Hello", true, true);
        assert_eq!(second.as_deref(), Some(&[0xf2, 0x00, 0x11, 0x00, 0x00][..]));
        assert_eq!(
            server.inflate(&first.unwrap_or_default(), 100).as_deref(),
            Ok(&b"Hello"[..])
        );
        assert_eq!(
            server
                .inflate(&second.clone().unwrap_or_default(), 100)
                .as_deref(),
            Ok(&b"Hello"[..])
        );
        // A fresh inflater (no context) cannot resolve the back reference.
        let (_, mut fresh) = pair(&config);
        assert_eq!(server.inflate(&[], 100).as_deref(), Ok(&b""[..]));
        assert_eq!(server.inflate(&[0x00], 100).as_deref(), Ok(&b""[..]));
        assert_eq!(
            server
                .inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], 100)
                .as_deref(),
            Ok(&b"Hello"[..])
        );
        assert_eq!(
            fresh.inflate(&second.unwrap_or_default(), 100),
            Err(ProtocolError::InvalidCompressedData)
        );
    }

    /// The inflated-size limit: a bomb stops at limit + 1 bytes, with 1009.
    #[test]
    fn decompression_bomb_is_bounded() {
        let config = DeflateConfig::default().min_size(0);
        let (mut client, mut server) = pair(&config);
        let zeros = vec![0u8; 4 << 20];
        let bomb = client.compress(&zeros, true, true).unwrap_or_default();
        assert!(bomb.len() < 8 * 1024, "{}", bomb.len());
        let e = server.inflate(&bomb, 64 * 1024);
        assert_eq!(e, Err(ProtocolError::MessageTooLarge));
        assert_eq!(
            e.err().map(ProtocolError::close_code),
            Some(crate::CloseCode::TOO_BIG)
        );
        // Exactly at the limit is fine.
        let (mut client, mut server) = pair(&config);
        let small = client
            .compress(&zeros[..1000], true, true)
            .unwrap_or_default();
        assert_eq!(server.inflate(&small, 1000).map(|b| b.len()), Ok(1000));
    }

    /// Garbage is a typed error, never a panic.
    #[test]
    fn invalid_data_is_an_error() {
        let (_, mut server) = pair(&DeflateConfig::default());
        for bad in [
            &[0xff_u8; 8][..],
            &[0x07],
            &[0x06],
            &[0x00, 0x05, 0x00, 0x00, 0x00, 1, 2, 3, 4, 5],
        ] {
            assert_eq!(
                server.inflate(bad, 1000),
                Err(ProtocolError::InvalidCompressedData),
                "{bad:?}"
            );
        }
    }

    /// A negotiated 8-bit window: both ends run zlib with 9 bits (its raw-stream minimum),
    /// whose longest match distance (250 bytes) also fits an 8-bit inflater; messages
    /// round-trip across several messages of shared context.
    #[test]
    fn window_bits_eight() {
        let config = DeflateConfig::negotiated(false, false, 8, 8).min_size(0);
        let (mut client, mut server) = pair(&config);
        assert_eq!((client.send_bits, server.recv_bits), (9, 9));
        let text: Vec<u8> = (0..20_000u32)
            .map(|i| b"abcdefghij"[(i * 7 % 10) as usize] ^ (i / 300) as u8)
            .collect();
        for _ in 0..3 {
            let c = client.compress(&text, true, true).unwrap_or_default();
            assert_eq!(server.inflate(&c, 1 << 20).as_deref(), Ok(&text[..]));
        }
    }
}
#[cfg(test)]
mod empty_message_tests {
    use super::*;

    /// An empty message (or empty last fragment) right after a flush compresses to `00`, and
    /// the context stays in step for the messages after it (every level and window).
    #[test]
    fn empty_messages_keep_the_context_in_step() {
        for bits in [8u8, 9, 12, 15] {
            for level in [0u32, 1, 6] {
                let config = DeflateConfig::negotiated(false, false, bits, bits)
                    .level(level)
                    .min_size(0);
                let mut sender = Codec::new(Role::Client, &config);
                let mut receiver = Codec::new(Role::Server, &config);
                let mut state = 12_345_u32;
                let mut rnd = |n: usize| -> Vec<u8> {
                    (0..n)
                        .map(|_| {
                            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                            (state >> 16) as u8
                        })
                        .collect()
                };
                let first = rnd(322);
                let second = rnd(341);
                let one = sender.compress(&first, true, true).unwrap_or_default();
                assert_eq!(
                    receiver.inflate(&one, 1 << 20).as_deref(),
                    Ok(&first[..]),
                    "bits {bits} level {level} msg 1"
                );
                let two = sender.compress(&second, true, true).unwrap_or_default();
                assert_eq!(
                    receiver.inflate(&two, 1 << 20).as_deref(),
                    Ok(&second[..]),
                    "bits {bits} level {level} msg 2"
                );
                let empty = sender.compress(&[], true, true).unwrap_or_default();
                assert_eq!(empty, [0x00], "bits {bits} level {level}");
                assert_eq!(
                    receiver.inflate(&empty, 1 << 20).as_deref(),
                    Ok(&[][..]),
                    "bits {bits} level {level} empty"
                );
                let f1 = sender
                    .compress(&second[..171], false, false)
                    .unwrap_or_default();
                let f2 = sender
                    .compress(&second[171..], false, false)
                    .unwrap_or_default();
                let f3 = sender.compress(&[], true, false).unwrap_or_default();
                let joined = [f1, f2, f3].concat();
                assert_eq!(
                    receiver.inflate(&joined, 1 << 20).as_deref(),
                    Ok(&second[..]),
                    "bits {bits} level {level} msg 3"
                );
            }
        }
    }
}
