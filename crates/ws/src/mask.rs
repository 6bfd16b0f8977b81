//! WebSocket payload masking (RFC 6455 section 5.3).
//!
//! The buffer is processed as 8-byte words XORed with the (rotated) key repeated, a loop shape
//! LLVM turns into full-width vector XORs at any alignment (unaligned vector loads and
//! stores), compiled for AVX-512BW / AVX2 when the CPU has them (the `simd` module), so it
//! runs at memory speed; the last 0-7 bytes go one by one.

/// XORs `buf` in place with the 4-byte masking `key`, starting at byte `offset` of the
/// frame's payload (so a payload can be (un)masked in pieces: pass the number of payload bytes
/// already processed). Masking and unmasking are the same operation.
///
/// ```
/// use stompbox_ws::apply_mask;
/// let key = [1, 2, 3, 4];
/// let mut data = *b"Hello, world";
/// apply_mask(&mut data[..5], key, 0);
/// apply_mask(&mut data[5..], key, 5); // continue where the first piece stopped
/// apply_mask(&mut data, key, 0);      // unmask in one go
/// assert_eq!(&data, b"Hello, world");
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // 8-byte words XORed with the key (rotated to `offset`) repeated twice: every word starts
    // at a multiple of 4 bytes, so the key phase never changes. The loop is compiled for the
    // widest vector unit the CPU has (see the `simd` module).
    crate::simd::xor_in_place(buf, crate::simd::key_word(key, offset));
}

/// The byte-at-a-time reference implementation of [`apply_mask`] (used by tests and benches).
pub fn apply_mask_reference(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    #[test]
    fn rfc6455_5_7_masked_hello() {
        // RFC 6455 section 5.7: "A single-frame masked text message".
        let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&payload, b"Hello");
    }

    #[test]
    fn every_length_offset_and_alignment_matches_reference() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for start in 0..8 {
            for len in 0..(300 - start) {
                for offset in 0..4 {
                    let mut a = data[start..start + len].to_vec();
                    let mut b = a.clone();
                    apply_mask(&mut a, key, offset);
                    apply_mask_reference(&mut b, key, offset);
                    assert_eq!(a, b, "start {start} len {len} offset {offset}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn equals_reference(data in proptest::collection::vec(any::<u8>(), 0..2000),
                            key in any::<[u8; 4]>(), offset in any::<usize>(), skip in 0usize..16) {
            let skip = skip.min(data.len());
            let mut a = data.clone();
            let mut b = data.clone();
            apply_mask(&mut a[skip..], key, offset);
            apply_mask_reference(&mut b[skip..], key, offset);
            prop_assert_eq!(&a, &b);
            apply_mask(&mut a[skip..], key, offset);
            prop_assert_eq!(&a, &data);
        }

        #[test]
        fn split_anywhere_equals_whole(data in proptest::collection::vec(any::<u8>(), 0..600),
                                       key in any::<[u8; 4]>(), cut in any::<prop::sample::Index>()) {
            let cut = cut.index(data.len() + 1);
            let mut a = data.clone();
            let mut b = data;
            apply_mask(&mut a, key, 0);
            let (x, y) = b.split_at_mut(cut);
            apply_mask(x, key, 0);
            apply_mask(y, key, cut);
            prop_assert_eq!(a, b);
        }
    }
}
