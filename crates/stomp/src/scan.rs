//! Byte classification for the frame-head scanner: one pass over 64 bytes gives bit masks of
//! the line ends, the colons and the bytes that force the slow path (`\`, CR, non-ASCII).
//!
//! The head parser walks these masks with `trailing_zeros` instead of calling `memchr` per line
//! and per colon: a STOMP head is many short lines, where the per-call setup of a search
//! dominated the profile.
//!
//! On x86_64 the classification uses SSE2, which is part of the x86_64 baseline (no runtime
//! detection needed, and `no_std`-friendly); elsewhere a portable loop computes the same masks.
//! [`classify_reference`] is the definition both are tested against.

/// Bit `i` of each mask describes byte `i` of a 64-byte block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Masks {
    /// `\n`.
    pub(crate) eol: u64,
    /// `:`.
    pub(crate) colon: u64,
    /// `\`, `\r` or a byte >= 0x80: the head needs escape decoding, CR checks or UTF-8
    /// validation.
    pub(crate) special: u64,
}

/// Classifies a 64-byte block.
#[inline]
pub(crate) fn classify(block: &[u8; 64]) -> Masks {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        // SAFETY: `classify_sse2` only requires the `sse2` target feature, and this branch
        // is compiled only when `sse2` is enabled for the whole build (it is part of the
        // x86_64 baseline), so every CPU that runs this code has it.
        #[allow(unsafe_code)]
        unsafe {
            sse2::classify_sse2(block)
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        classify_reference(block)
    }
}

/// The index of the first NUL in `hay`. Bodies are mostly short: the first 128 bytes are
/// searched inline, 16 at a time, which saves `memchr`'s call and set-up; longer bodies go to
/// `memchr`, which is faster on long runs.
#[inline]
pub(crate) fn find_nul(hay: &[u8]) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        const INLINE: usize = 128;
        let (head, rest) = hay.split_at(hay.len().min(INLINE));
        // SAFETY: as in `classify`: `sse2` is enabled for the whole build.
        #[allow(unsafe_code)]
        let found = unsafe { sse2::find_nul_sse2(head) };
        found.or_else(|| memchr::memchr(0, rest).map(|i| head.len() + i))
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        memchr::memchr(0, hay)
    }
}

/// The definition of [`classify`], one byte at a time (the portable implementation, and the
/// reference the SIMD one is tested against).
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline]
pub(crate) fn classify_reference(block: &[u8; 64]) -> Masks {
    let mut m = Masks::default();
    for (i, &b) in block.iter().enumerate() {
        m.eol |= u64::from(b == b'\n') << i;
        m.colon |= u64::from(b == b':') << i;
        m.special |= u64::from(b == b'\\' || b == b'\r' || b >= 0x80) << i;
    }
    m
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use super::Masks;
    use core::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x, _mm_set1_epi8,
        _mm_setzero_si128,
    };

    /// 16 bytes into a vector register. Two safe 8-byte reads, which LLVM fuses into one
    /// unaligned vector load: no pointer is dereferenced by hand.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn load(bytes: &[u8; 16]) -> __m128i {
        let [
            a0,
            a1,
            a2,
            a3,
            a4,
            a5,
            a6,
            a7,
            b0,
            b1,
            b2,
            b3,
            b4,
            b5,
            b6,
            b7,
        ] = *bytes;
        let lo = i64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]);
        let hi = i64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
        _mm_set_epi64x(hi, lo)
    }

    /// The bit mask of the lanes whose top bit is set (compare results or non-ASCII bytes).
    #[inline]
    #[target_feature(enable = "sse2")]
    fn bits(v: __m128i) -> u64 {
        // movemask yields 16 bits in the low half of an i32: reinterpret, never sign-extend.
        u64::from(_mm_movemask_epi8(v).cast_unsigned())
    }

    /// The first NUL of `hay`, 16 bytes per step.
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn find_nul_sse2(hay: &[u8]) -> Option<usize> {
        let zero = _mm_setzero_si128();
        let (chunks, tail) = hay.as_chunks::<16>();
        for (k, chunk) in chunks.iter().enumerate() {
            let hits = bits(_mm_cmpeq_epi8(load(chunk), zero));
            if hits != 0 {
                return Some(16 * k + hits.trailing_zeros() as usize);
            }
        }
        tail.iter()
            .position(|&b| b == 0)
            .map(|i| 16 * chunks.len() + i)
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn classify_sse2(block: &[u8; 64]) -> Masks {
        let eol = _mm_set1_epi8(b'\n'.cast_signed());
        let colon = _mm_set1_epi8(b':'.cast_signed());
        let backslash = _mm_set1_epi8(b'\\'.cast_signed());
        let cr = _mm_set1_epi8(b'\r'.cast_signed());
        let mut m = Masks::default();
        for (k, chunk) in block.as_chunks::<16>().0.iter().enumerate() {
            let v = load(chunk);
            let shift = 16 * k;
            m.eol |= bits(_mm_cmpeq_epi8(v, eol)) << shift;
            m.colon |= bits(_mm_cmpeq_epi8(v, colon)) << shift;
            // A lane's top bit is set by either compare or by a non-ASCII byte itself.
            let special = _mm_or_si128(
                v,
                _mm_or_si128(_mm_cmpeq_epi8(v, backslash), _mm_cmpeq_epi8(v, cr)),
            );
            m.special |= bits(special) << shift;
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_byte_value_in_every_lane() {
        for lane in 0..64 {
            for b in 0..=255u8 {
                let mut block = [b'a'; 64];
                block[lane] = b;
                assert_eq!(
                    classify(&block),
                    classify_reference(&block),
                    "{b:#x} @ {lane}"
                );
            }
        }
    }

    #[test]
    fn reference_table() {
        let mut block = [b'x'; 64];
        block[0] = b'\n';
        block[5] = b':';
        block[6] = b'\\';
        block[7] = b'\r';
        block[63] = 0xC3;
        let m = classify_reference(&block);
        assert_eq!(m.eol, 1);
        assert_eq!(m.colon, 1 << 5);
        assert_eq!(m.special, (1 << 6) | (1 << 7) | (1 << 63));
    }

    #[test]
    fn find_nul_every_position_and_length() {
        for len in 0..300 {
            let mut hay = alloc::vec![b'x'; len];
            assert_eq!(find_nul(&hay), None, "len {len}");
            for at in 0..len {
                hay[at] = 0;
                assert_eq!(find_nul(&hay), Some(at), "len {len} at {at}");
                hay[at] = b'x';
            }
        }
    }

    proptest! {
        #[test]
        fn find_nul_matches_memchr(hay in proptest::collection::vec(
            prop_oneof![Just(0u8), 1u8..=255], 0..400)) {
            prop_assert_eq!(find_nul(&hay), memchr::memchr(0, &hay));
        }

        #[test]
        fn simd_matches_reference(bytes in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b':'), Just(b'\\'), Just(b'\r'), any::<u8>()], 64)) {
            let block: [u8; 64] = bytes.try_into().unwrap_or([0; 64]);
            prop_assert_eq!(classify(&block), classify_reference(&block));
        }
    }
}
