//! `Sec-WebSocket-Key` and `Sec-WebSocket-Accept` (RFC 6455 §1.3, §4.1, §4.2.2).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest as _, Sha1};

/// The GUID every WebSocket endpoint appends to the key (RFC 6455 §1.3).
pub const WEBSOCKET_GUID: &[u8; 36] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A `Sec-WebSocket-Key` value: 16 bytes, base64-encoded into 24 ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u8; 24]);

impl Key {
    /// Encodes a 16-byte nonce (which the caller draws from a good random source).
    pub fn from_nonce(nonce: [u8; 16]) -> Key {
        let mut out = [0u8; 24];
        // 16 bytes always encode to exactly 24 with padding.
        let _ = STANDARD.encode_slice(nonce, &mut out);
        Key(out)
    }

    /// Parses a received key: after trimming whitespace it must be base64 for exactly 16
    /// bytes (RFC 6455 §4.2.1 item 5).
    pub fn parse(value: &[u8]) -> Option<Key> {
        let value = value.trim_ascii();
        let raw: [u8; 24] = value.try_into().ok()?;
        // 16 bytes in canonical padded base64: 21 free characters, a 22nd that carries only
        // 2 data bits (so its low 4 bits are zero: A, Q, g or w), then "==". Checking this
        // directly is exact and cheaper than decoding.
        let (body, tail) = raw.split_at(21);
        let valid = body.iter().all(|&b| is_base64(b))
            && matches!(tail, [b'A' | b'Q' | b'g' | b'w', b'=', b'=']);
        valid.then_some(Key(raw))
    }

    /// The key as sent on the wire.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The `Sec-WebSocket-Accept` value that answers this key.
    pub fn accept(&self) -> AcceptKey {
        accept_key(&self.0)
    }
}

impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Key({})", self.as_str())
    }
}

/// A `Sec-WebSocket-Accept` value: base64 of SHA-1(key + GUID), 28 ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AcceptKey([u8; 28]);

impl AcceptKey {
    /// The value as sent on the wire.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The value's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl core::fmt::Debug for AcceptKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "AcceptKey({})", self.as_str())
    }
}

/// The standard base64 alphabet as a table.
static BASE64: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
        i += 1;
    }
    t
};

fn is_base64(b: u8) -> bool {
    BASE64[b as usize]
}

/// Computes `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` value as sent (the key bytes
/// are hashed as is, without decoding, per RFC 6455 §4.2.2 item 5.4).
///
/// ```
/// let accept = stompbox_upgrade::accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
/// assert_eq!(accept.as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> AcceptKey {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(WEBSOCKET_GUID);
    let digest = sha.finalize();
    let mut out = [0u8; 28];
    // 20 bytes always encode to exactly 28 with padding.
    let _ = STANDARD.encode_slice(digest, &mut out);
    AcceptKey(out)
}

/// Draws a 16-byte nonce from the operating system (feature `getrandom`).
#[cfg(feature = "getrandom")]
pub fn random_nonce() -> Result<[u8; 16], getrandom::Error> {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce)?;
    Ok(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 §1.3: the worked example.
    #[test]
    fn rfc6455_1_3_key_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ==").as_str(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let key = Key::parse(b" dGhlIHNhbXBsZSBub25jZQ== ").expect("valid key");
        assert_eq!(key.accept().as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        // "the sample nonce" is the RFC's 16-byte nonce.
        assert_eq!(
            Key::from_nonce(*b"the sample nonce").as_str(),
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
    }

    /// RFC 6455 §4.2.1 item 5: the key must decode to exactly 16 bytes.
    #[test]
    fn key_check_matches_base64_decoding() {
        // Every 22nd character, with a fixed body: the direct check agrees with a decoder.
        for c in 0..=255u8 {
            let mut raw = *b"dGhlIHNhbXBsZSBub25jZQ==";
            raw[21] = c;
            let mut out = [0u8; 18];
            let decodes = matches!(STANDARD.decode_slice(raw, &mut out), Ok(16));
            assert_eq!(Key::parse(&raw).is_some(), decodes, "char {c}");
            let mut raw = *b"dGhlIHNhbXBsZSBub25jZQ==";
            raw[3] = c;
            let decodes = matches!(STANDARD.decode_slice(raw, &mut out), Ok(16));
            assert_eq!(Key::parse(&raw).is_some(), decodes, "char {c}");
        }
    }

    #[test]
    fn rfc6455_4_2_1_key_must_be_16_bytes() {
        let table: &[(&[u8], bool)] = &[
            (b"dGhlIHNhbXBsZSBub25jZQ==", true),
            (b"dGhlIHNhbXBsZSBub25jZR==", false), // non-canonical trailing bits
            (b"AAAAAAAAAAAAAAAAAAA+/w==", true),
            (b"AAAAAAAAAAAAAAAAAAAAAA==", true),
            (b"dGhlIHNhbXBsZSBub25jZQ", false),    // no padding
            (b"dGhlIHNhbXBsZSBub25jZQ=", false),   // short
            (b"dGhlIHNhbXBsZSBub25jZQ===", false), // long
            (b"dGhlIHNhbXBsZSBub25jZSBzaXh0ZWVu", false), // 24 bytes of data
            (b"dGhlIHNhbXBsZSBub25j!Q==", false),  // not base64
            (b"dGhlIHNhbXBs ZSBub25jZQ=", false),  // inner space
            (b"", false),
        ];
        for (input, ok) in table {
            assert_eq!(Key::parse(input).is_some(), *ok, "key {input:?}");
        }
    }
}
