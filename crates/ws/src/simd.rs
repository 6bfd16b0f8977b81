//! The receive path's hot loops: fused copy-and-unmask straight into a buffer's uninitialised
//! spare capacity (no zero-fill pass), and the masking XOR compiled for the widest vector unit
//! the CPU has (AVX-512BW or AVX2, detected at run time with the `std` feature; the baseline
//! build otherwise).
//!
//! This is the only module of the crate with `unsafe` code, in two places:
//! - [`extend_masked`] sets a `BytesMut`'s length after the safe kernel initialised exactly
//!   those bytes of its spare capacity;
//! - the dispatchers call `#[target_feature]` copies of the safe kernels after checking that
//!   the CPU has the features.
//!
//! The kernels themselves are safe code (writing `MaybeUninit` is safe), a loop over 8-byte
//! words that LLVM vectorises at the width the target features allow. Tests below compare
//! every kernel and every dispatch with the byte-at-a-time reference on all lengths, offsets
//! and alignments; the connection fuzz targets run through them.
#![allow(unsafe_code)]

use core::mem::MaybeUninit;

use bytes::BytesMut;

/// Inputs shorter than this stay on the inlined baseline kernel: dispatching costs more
/// than wider vectors save.
#[cfg(all(feature = "std", any(target_arch = "x86", target_arch = "x86_64")))]
const DISPATCH_MIN: usize = 64;

/// The key rotated to payload `offset` and repeated over a 64-bit word.
#[inline]
pub(crate) fn key_word(key: [u8; 4], offset: usize) -> u64 {
    let rot = offset & 3;
    let k = [
        key[rot],
        key[(rot + 1) & 3],
        key[(rot + 2) & 3],
        key[(rot + 3) & 3],
    ];
    u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]])
}

/// Writes `src ^ word` (repeated) into `dst` (the shorter length of both) and returns the OR
/// of every written byte spread over a word: `result & 0x8080_8080_8080_8080 == 0` iff all
/// written bytes are ASCII.
#[allow(
    clippy::inline_always,
    reason = "inlined into each #[target_feature] copy, so it is compiled at that width"
)]
#[inline(always)]
fn xor_copy_kernel(dst: &mut [MaybeUninit<u8>], src: &[u8], word: u64) -> u64 {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let (dst_words, dst_tail) = dst.as_chunks_mut::<8>();
    let (src_words, src_tail) = src.as_chunks::<8>();
    let mut acc = 0u64;
    for (d, s) in dst_words.iter_mut().zip(src_words) {
        let v = u64::from_ne_bytes(*s) ^ word;
        acc |= v;
        *d = v.to_ne_bytes().map(MaybeUninit::new);
    }
    let key = word.to_ne_bytes();
    for ((d, s), k) in dst_tail.iter_mut().zip(src_tail).zip(key) {
        let v = *s ^ k;
        acc |= u64::from(v);
        d.write(v);
    }
    acc
}

/// XORs `buf` in place with `word` (repeated).
#[allow(
    clippy::inline_always,
    reason = "inlined into each #[target_feature] copy, so it is compiled at that width"
)]
#[inline(always)]
fn xor_in_place_kernel(buf: &mut [u8], word: u64) {
    let (words, tail) = buf.as_chunks_mut::<8>();
    for w in words {
        *w = (u64::from_ne_bytes(*w) ^ word).to_ne_bytes();
    }
    for (b, k) in tail.iter_mut().zip(word.to_ne_bytes()) {
        *b ^= k;
    }
}

#[cfg(all(feature = "std", any(target_arch = "x86", target_arch = "x86_64")))]
mod x86 {
    use super::{MaybeUninit, xor_copy_kernel, xor_in_place_kernel};

    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn xor_copy_avx512(dst: &mut [MaybeUninit<u8>], src: &[u8], word: u64) -> u64 {
        xor_copy_kernel(dst, src, word)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn xor_copy_avx2(dst: &mut [MaybeUninit<u8>], src: &[u8], word: u64) -> u64 {
        xor_copy_kernel(dst, src, word)
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn xor_in_place_avx512(buf: &mut [u8], word: u64) {
        xor_in_place_kernel(buf, word);
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn xor_in_place_avx2(buf: &mut [u8], word: u64) {
        xor_in_place_kernel(buf, word);
    }
}

/// [`xor_copy_kernel`] at the widest vector width this CPU has.
#[inline]
pub(crate) fn xor_copy(dst: &mut [MaybeUninit<u8>], src: &[u8], word: u64) -> u64 {
    #[cfg(all(feature = "std", any(target_arch = "x86", target_arch = "x86_64")))]
    if src.len() >= DISPATCH_MIN {
        if std::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU has AVX-512F and AVX-512BW (checked just above); the function
            // is otherwise safe.
            return unsafe { x86::xor_copy_avx512(dst, src, word) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above); the function is otherwise safe.
            return unsafe { x86::xor_copy_avx2(dst, src, word) };
        }
    }
    xor_copy_kernel(dst, src, word)
}

/// XORs `buf` in place with `word` (repeated), at the widest vector width this CPU has.
#[inline]
pub(crate) fn xor_in_place(buf: &mut [u8], word: u64) {
    #[cfg(all(feature = "std", any(target_arch = "x86", target_arch = "x86_64")))]
    if buf.len() >= DISPATCH_MIN {
        if std::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU has AVX-512F and AVX-512BW (checked just above); the function
            // is otherwise safe.
            unsafe { x86::xor_in_place_avx512(buf, word) };
            return;
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above); the function is otherwise safe.
            unsafe { x86::xor_in_place_avx2(buf, word) };
            return;
        }
    }
    xor_in_place_kernel(buf, word);
}

/// Appends `src` to `dst`, XORed with the masking `key` at payload `offset` (copied as is
/// with `None`), in one pass into `dst`'s spare capacity: no zero-fill. Returns whether the
/// appended bytes are all ASCII.
#[inline]
pub(crate) fn extend_masked(
    dst: &mut BytesMut,
    src: &[u8],
    key: Option<[u8; 4]>,
    offset: usize,
) -> bool {
    dst.reserve(src.len());
    let word = key.map_or(0, |k| key_word(k, offset));
    let spare = &mut dst.spare_capacity_mut()[..src.len()];
    let acc = xor_copy(spare, src, word);
    let len = dst.len() + src.len();
    // SAFETY: `reserve` made room for `src.len()` more bytes and `xor_copy` initialised the
    // first `src.len()` bytes of the spare capacity (`spare` has exactly that length and
    // the kernel writes `min(dst.len(), src.len())` bytes, i.e. all of them).
    unsafe { dst.set_len(len) };
    acc & 0x8080_8080_8080_8080 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::apply_mask_reference;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn reference(src: &[u8], key: [u8; 4], offset: usize) -> Vec<u8> {
        let mut v = src.to_vec();
        apply_mask_reference(&mut v, key, offset);
        v
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len as u32).map(|i| (i * 7 + 3) as u8).collect()
    }

    /// Every kernel this CPU can run (baseline and, where detected, the wide ones), for the
    /// copy.
    type CopyKernel = fn(&mut [MaybeUninit<u8>], &[u8], u64) -> u64;

    fn copy_kernels() -> Vec<CopyKernel> {
        let mut k: Vec<CopyKernel> = alloc::vec![|d, s, w| xor_copy_kernel(d, s, w), xor_copy];
        #[cfg(all(feature = "std", any(target_arch = "x86", target_arch = "x86_64")))]
        {
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY (test): called only when AVX2 is present.
                k.push(|d, s, w| unsafe { x86::xor_copy_avx2(d, s, w) });
            }
            if std::is_x86_feature_detected!("avx512bw") {
                // SAFETY (test): called only when AVX-512BW is present.
                k.push(|d, s, w| unsafe { x86::xor_copy_avx512(d, s, w) });
            }
        }
        k
    }

    fn in_place_kernels() -> Vec<fn(&mut [u8], u64)> {
        let mut k: Vec<fn(&mut [u8], u64)> =
            alloc::vec![|b, w| xor_in_place_kernel(b, w), xor_in_place];
        #[cfg(all(feature = "std", any(target_arch = "x86", target_arch = "x86_64")))]
        {
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY (test): called only when AVX2 is present.
                k.push(|b, w| unsafe { x86::xor_in_place_avx2(b, w) });
            }
            if std::is_x86_feature_detected!("avx512bw") {
                // SAFETY (test): called only when AVX-512BW is present.
                k.push(|b, w| unsafe { x86::xor_in_place_avx512(b, w) });
            }
        }
        k
    }

    fn check_copy(src: &[u8], key: [u8; 4], offset: usize) {
        let want = reference(src, key, offset);
        let want_ascii = want.is_ascii();
        for (i, kernel) in copy_kernels().into_iter().enumerate() {
            let mut out = alloc::vec![MaybeUninit::new(0xa5u8); src.len() + 3];
            let acc = kernel(&mut out[..src.len()], src, key_word(key, offset));
            let got: Vec<u8> = out[..src.len()]
                .iter()
                // SAFETY (test): every byte was initialised above.
                .map(|b| unsafe { b.assume_init() })
                .collect();
            assert_eq!(got, want, "kernel {i} len {} offset {offset}", src.len());
            assert_eq!(
                acc & 0x8080_8080_8080_8080 == 0,
                want_ascii,
                "kernel {i} ascii"
            );
            // SAFETY (test): initialised above; bytes past the length are left alone.
            assert!(
                out[src.len()..]
                    .iter()
                    .all(|b| unsafe { b.assume_init() } == 0xa5)
            );
        }
    }

    #[test]
    fn every_length_offset_and_alignment_matches_reference() {
        let key = [0xde, 0xad, 0x3e, 0x7f];
        let src = data(400);
        for start in 0..8 {
            for len in 0..(400 - start) {
                for offset in 0..4 {
                    check_copy(&src[start..start + len], key, offset);
                    for (i, kernel) in in_place_kernels().into_iter().enumerate() {
                        let mut got = src[start..start + len].to_vec();
                        kernel(&mut got, key_word(key, offset));
                        let want = reference(&src[start..start + len], key, offset);
                        assert_eq!(got, want, "in-place kernel {i} len {len} offset {offset}");
                    }
                }
            }
        }
    }

    #[test]
    fn ascii_flag_sees_a_high_bit_at_every_position() {
        // The key is 0: output = input. One non-ASCII byte anywhere must clear the flag.
        for len in 1..300 {
            for at in 0..len {
                let mut src = alloc::vec![b'a'; len];
                src[at] = 0x80;
                let mut dst = BytesMut::new();
                assert!(
                    !extend_masked(&mut dst, &src, Some([0; 4]), 0),
                    "len {len} at {at}"
                );
                assert!(!extend_masked(&mut dst, &src, None, 0));
                assert!(extend_masked(&mut dst, &src[..at], None, 0));
            }
        }
    }

    proptest! {
        #[test]
        fn extend_masked_appends_the_reference(
            prefix in proptest::collection::vec(any::<u8>(), 0..40),
            src in proptest::collection::vec(any::<u8>(), 0..3000),
            key in any::<Option<[u8; 4]>>(),
            offset in any::<usize>(),
        ) {
            let mut dst = BytesMut::from(&prefix[..]);
            let ascii = extend_masked(&mut dst, &src, key, offset);
            let mut want = prefix.clone();
            let tail = match key {
                Some(k) => reference(&src, k, offset),
                None => src.clone(),
            };
            prop_assert_eq!(ascii, tail.is_ascii());
            want.extend_from_slice(&tail);
            prop_assert_eq!(&dst[..], &want[..]);
        }

        #[test]
        fn kernels_equal_reference(
            src in proptest::collection::vec(any::<u8>(), 0..5000),
            key in any::<[u8; 4]>(),
            offset in any::<usize>(),
        ) {
            check_copy(&src, key, offset);
        }

        #[test]
        fn split_anywhere_equals_whole(
            src in proptest::collection::vec(any::<u8>(), 0..2000),
            key in any::<[u8; 4]>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let cut = cut.index(src.len() + 1);
            let mut whole = BytesMut::new();
            extend_masked(&mut whole, &src, Some(key), 0);
            let mut split = BytesMut::new();
            extend_masked(&mut split, &src[..cut], Some(key), 0);
            extend_masked(&mut split, &src[cut..], Some(key), cut);
            prop_assert_eq!(whole, split);
        }
    }
}
