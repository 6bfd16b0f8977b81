//! The receive path's hot loops: fused copy-and-unmask straight into a buffer's uninitialised
//! spare capacity (no zero-fill pass), and the masking XOR compiled for the widest vector unit
//! the CPU has (AVX-512BW or AVX2, detected at run time with the `std` feature; the baseline
//! build otherwise).
//!
//! Text payloads of at least 64 bytes take one fused pass: unmask, store and validate UTF-8
//! (the Keiser-Lemire lookup algorithm that simdjson and simdutf8 use, 64 bytes a step with
//! AVX-512BW, 32 with AVX2), so the text is read once, from registers.
//!
//! Binary messages past 1 MiB are appended with streaming (non-temporal) stores
//! ([`extend_masked_streaming`]).
//!
//! Long copies go a page at a time and touch the source page two pages ahead first
//! ([`xor_copy_paged`]): the hardware prefetchers stop at 4 KiB page boundaries.
//!
//! This is the only module of the crate with `unsafe` code, in four places:
//! - [`extend_masked`], [`extend_masked_streaming`] and [`extend_masked_utf8`] set a
//!   `BytesMut`'s length after a kernel initialised exactly those bytes of its spare capacity;
//! - the dispatchers call `#[target_feature]` functions after checking that the CPU has the
//!   features;
//! - the UTF-8 and streaming kernels load and store vectors through pointers (full blocks in
//!   bounds; the last partial block with byte masks (AVX-512) or through a stack copy (AVX2);
//!   streamed blocks aligned);
//! - [`prefetch`] calls the x86-64 prefetch hint on a reference into the source.
//!
//! The masking kernels themselves are safe code (writing `MaybeUninit` is safe), a loop over
//! 8-byte words that LLVM vectorises at the width the target features allow. Tests below
//! compare every kernel and every dispatch with the byte-at-a-time reference on all lengths,
//! offsets and alignments, and the UTF-8 kernel with `core::str::from_utf8` on every 4-byte
//! sequence of class-boundary bytes at the block edges, truncated characters and random,
//! mutated text; the connection fuzz targets (and `ws_receive_differential`, which checks
//! bytes and UTF-8 verdicts against `core`) run through all of them.
#![allow(unsafe_code)]

use core::mem::MaybeUninit;

use bytes::BytesMut;

/// Inputs shorter than this stay on the inlined baseline kernel: dispatching and aligning
/// cost more than wider vectors save.
const DISPATCH_MIN: usize = 64;

/// The key rotated to payload `offset` and repeated over a 64-bit word.
#[inline]
pub(crate) fn key_word(key: [u8; 4], offset: usize) -> u64 {
    // Byte i of the rotated key is key[(offset + i) & 3]: a right rotation of the
    // little-endian word by whole bytes.
    let k = u32::from_le_bytes(key)
        .rotate_right(8 * (offset & 3) as u32)
        .to_le_bytes();
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

/// `word` for a payload position `bytes` further on.
#[inline]
fn advance_word(word: u64, bytes: usize) -> u64 {
    // The word repeats the key every 4 bytes: byte i becomes byte i + bytes (mod 4).
    let r = 8 * (bytes & 3) as u32;
    if cfg!(target_endian = "little") {
        word.rotate_right(r)
    } else {
        word.rotate_left(r)
    }
}

/// Where the 64-byte-aligned part of a buffer at `ptr` starts (at most `len`).
#[inline]
fn aligned_start<T>(ptr: *const T, len: usize) -> usize {
    ptr.align_offset(64).min(len)
}

/// [`xor_in_place_kernel`] with the stores 64-byte aligned after a short head.
#[allow(
    clippy::inline_always,
    reason = "inlined into each #[target_feature] copy, so it is compiled at that width"
)]
#[inline(always)]
fn xor_in_place_aligned(buf: &mut [u8], word: u64) {
    let head = aligned_start(buf.as_ptr(), buf.len());
    let (buf_head, buf_body) = buf.split_at_mut(head);
    xor_in_place_kernel(buf_head, word);
    xor_in_place_kernel(buf_body, advance_word(word, head));
}

/// Bytes of source copied per step of [`xor_copy_paged`]: one 4 KiB page.
const PAGE: usize = 4096;

/// How far ahead of the copy [`xor_copy_paged`] touches the source: two pages.
const PAGE_AHEAD: usize = 2 * PAGE;

/// Asks the CPU to start loading the cache line at `line` (a hint: it never faults and
/// changes no memory).
#[inline]
fn prefetch(line: &u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints the cache; it reads nothing into the program and does
    // not fault, and `line` is a valid reference anyway.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            core::ptr::from_ref(line).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = line;
}

/// Touches the start of the source page `PAGE_AHEAD` bytes past `src[done]`, if `src`
/// reaches that far.
#[inline]
fn prefetch_page_ahead(src: &[u8], done: usize) {
    let addr = src.as_ptr() as usize;
    let ahead = ((addr + done + PAGE_AHEAD) & !(PAGE - 1)) - addr;
    if let Some(line) = src.get(ahead) {
        prefetch(line);
    }
}

/// [`xor_copy_kernel`] with the stores 64-byte aligned after a short head, a page of the
/// source at a time, first touching the source page two pages ahead. Why: the hardware
/// prefetchers stop at every 4 KiB page boundary (they work on physical addresses), so each
/// new page of a long copy otherwise starts with a TLB miss and a cold stream; one software
/// prefetch per page starts both early. Measured on W2 (131 MB of payload from DRAM): about
/// 10% less time than the same copy without it. Inputs shorter than the look-ahead take one
/// or two steps and prefetch nothing.
#[allow(
    clippy::inline_always,
    reason = "inlined into each #[target_feature] copy, so it is compiled at that width"
)]
#[inline(always)]
fn xor_copy_paged(dst: &mut [MaybeUninit<u8>], src: &[u8], word: u64) -> u64 {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let head = aligned_start(dst.as_ptr(), n);
    let mut acc = xor_copy_kernel(&mut dst[..head], &src[..head], word);
    let mut done = head;
    while done < n {
        prefetch_page_ahead(src, done);
        // PAGE is a multiple of 64: every step's stores start 64-byte aligned like the first.
        let step = PAGE.min(n - done);
        acc |= xor_copy_kernel(
            &mut dst[done..done + step],
            &src[done..done + step],
            advance_word(word, done),
        );
        done += step;
    }
    acc
}

#[cfg(all(feature = "std", any(target_arch = "x86", target_arch = "x86_64")))]
mod x86 {
    use super::{MaybeUninit, xor_copy_paged, xor_in_place_aligned};

    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn xor_copy_avx512(dst: &mut [MaybeUninit<u8>], src: &[u8], word: u64) -> u64 {
        xor_copy_paged(dst, src, word)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn xor_copy_avx2(dst: &mut [MaybeUninit<u8>], src: &[u8], word: u64) -> u64 {
        xor_copy_paged(dst, src, word)
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn xor_in_place_avx512(buf: &mut [u8], word: u64) {
        xor_in_place_aligned(buf, word);
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn xor_in_place_avx2(buf: &mut [u8], word: u64) {
        xor_in_place_aligned(buf, word);
    }
}

/// Whether the CPU has AVX-512F and AVX-512BW (cached by `std`'s detection).
#[cfg(all(feature = "std", any(target_arch = "x86", target_arch = "x86_64")))]
#[inline]
fn has_avx512() -> bool {
    std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw")
}

/// [`xor_copy_kernel`] at the widest vector width this CPU has.
#[inline]
pub(crate) fn xor_copy(dst: &mut [MaybeUninit<u8>], src: &[u8], word: u64) -> u64 {
    #[cfg(all(feature = "std", any(target_arch = "x86", target_arch = "x86_64")))]
    if src.len() >= DISPATCH_MIN {
        if has_avx512() {
            // SAFETY: the CPU has AVX-512F and AVX-512BW (checked just above); the function
            // is otherwise safe.
            return unsafe { x86::xor_copy_avx512(dst, src, word) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above); the function is otherwise safe.
            return unsafe { x86::xor_copy_avx2(dst, src, word) };
        }
    }
    if src.len() >= DISPATCH_MIN {
        return xor_copy_paged(dst, src, word);
    }
    xor_copy_kernel(dst, src, word)
}

/// XORs `buf` in place with `word` (repeated), at the widest vector width this CPU has.
#[inline]
pub(crate) fn xor_in_place(buf: &mut [u8], word: u64) {
    #[cfg(all(feature = "std", any(target_arch = "x86", target_arch = "x86_64")))]
    if buf.len() >= DISPATCH_MIN {
        if has_avx512() {
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
    if buf.len() >= DISPATCH_MIN {
        xor_in_place_aligned(buf, word);
    } else {
        xor_in_place_kernel(buf, word);
    }
}

/// Appends `src` to `dst`, XORed with the masking `key` at payload `offset` (copied as is
/// with `None`), in one pass into `dst`'s spare capacity: no zero-fill. Returns whether the
/// appended bytes are all ASCII.
#[allow(
    clippy::inline_always,
    reason = "per-message hot path: a call costs more than a 16-byte payload's copy"
)]
#[inline(always)]
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

/// Appends `src` to `dst` like [`extend_masked`], but with non-temporal (streaming) stores
/// where the CPU has AVX-512: for the bulk of large binary messages, which do not stay in
/// cache anyway. Streaming stores skip reading the destination lines first (a third of the
/// memory traffic of a copy) and leave the caches to the data being read.
#[inline]
pub(crate) fn extend_masked_streaming(
    dst: &mut BytesMut,
    src: &[u8],
    key: Option<[u8; 4]>,
    offset: usize,
) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if src.len() >= 4096 && has_avx512() {
        dst.reserve(src.len());
        let word = key.map_or(0, |k| key_word(k, offset));
        let spare = &mut dst.spare_capacity_mut()[..src.len()];
        // SAFETY: the CPU has AVX-512F and AVX-512BW (checked just above).
        unsafe { streaming::xor_copy_streaming(spare, src, word) };
        let len = dst.len() + src.len();
        // SAFETY: `reserve` made room for `src.len()` more bytes and `xor_copy_streaming`
        // initialised all `spare.len() == src.len()` bytes of `spare`.
        unsafe { dst.set_len(len) };
        return;
    }
    extend_masked(dst, src, key, offset);
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod streaming {
    use core::arch::x86_64::{
        __m512i, _mm_sfence, _mm512_loadu_si512, _mm512_set1_epi64, _mm512_stream_si512,
        _mm512_xor_si512,
    };
    use core::mem::MaybeUninit;

    use super::{PAGE, advance_word, aligned_start, prefetch_page_ahead, xor_copy_kernel};

    /// Writes `src ^ word` (repeated) into `dst` (the shorter length of both): the 64-byte
    /// aligned blocks with streaming stores, head and tail with ordinary ones.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn xor_copy_streaming(dst: &mut [MaybeUninit<u8>], src: &[u8], word: u64) {
        let n = dst.len().min(src.len());
        let head = aligned_start(dst.as_ptr(), n);
        let blocks = (n - head) / 64 * 64;
        let (dst_head, rest) = dst[..n].split_at_mut(head);
        let (dst_body, dst_tail) = rest.split_at_mut(blocks);
        let (src_head, rest) = src[..n].split_at(head);
        let (src_body, src_tail) = rest.split_at(blocks);
        xor_copy_kernel(dst_head, src_head, word);
        let body_word = advance_word(word, head);
        let key = _mm512_set1_epi64(body_word.cast_signed());
        // A page of source at a time, touching the page PAGE_AHEAD on first (see
        // `xor_copy_paged`); PAGE is a multiple of 64, so every page is whole blocks.
        let pages = dst_body.chunks_mut(PAGE).zip(src_body.chunks(PAGE));
        for (done, (dst_page, src_page)) in (0..).step_by(PAGE).zip(pages) {
            prefetch_page_ahead(src_body, done);
            for (d, s) in dst_page.chunks_exact_mut(64).zip(src_page.chunks_exact(64)) {
                // SAFETY: `s` is 64 readable bytes.
                let v = _mm512_xor_si512(unsafe { _mm512_loadu_si512(s.as_ptr().cast()) }, key);
                // SAFETY (the store below): `d` is 64 writable bytes, 64-byte aligned (the
                // body starts at the first aligned address of `dst`, blocks are 64 bytes);
                // storing initialises them.
                #[allow(clippy::cast_ptr_alignment, reason = "aligned: see the SAFETY note")]
                let block = d.as_mut_ptr().cast::<__m512i>();
                debug_assert!(block.is_aligned());
                // SAFETY: as above.
                unsafe { _mm512_stream_si512(block, v) };
            }
        }
        // Streaming stores are weakly ordered: make them visible before anything after.
        _mm_sfence();
        xor_copy_kernel(dst_tail, src_tail, advance_word(word, head + blocks));
    }
}

/// Appends `src` to `dst` like [`extend_masked`] (offset 0) and returns whether the appended
/// bytes are valid UTF-8 (complete: a truncated last character is invalid). The caller
/// truncates `dst` back on `false` if it keeps the buffer.
#[allow(
    clippy::inline_always,
    reason = "per-message hot path: a call costs more than a 16-byte payload's copy"
)]
#[inline(always)]
pub(crate) fn extend_masked_utf8(dst: &mut BytesMut, src: &[u8], key: Option<[u8; 4]>) -> bool {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if src.len() >= DISPATCH_MIN && has_avx512() {
        dst.reserve(src.len());
        let word = key.map_or(0, |k| key_word(k, 0));
        let spare = &mut dst.spare_capacity_mut()[..src.len()];
        // SAFETY: the CPU has AVX-512F and AVX-512BW (checked just above).
        let valid = unsafe { utf8::xor_copy_validate(spare, src, word) };
        let len = dst.len() + src.len();
        // SAFETY: `reserve` made room for `src.len()` more bytes and `xor_copy_validate`
        // initialised all `spare.len() == src.len()` bytes of `spare`.
        unsafe { dst.set_len(len) };
        return valid;
    }
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if src.len() >= DISPATCH_MIN && std::is_x86_feature_detected!("avx2") {
        dst.reserve(src.len());
        let word = key.map_or(0, |k| key_word(k, 0));
        let spare = &mut dst.spare_capacity_mut()[..src.len()];
        // SAFETY: the CPU has AVX2 (checked just above).
        let valid = unsafe { utf8_avx2::xor_copy_validate(spare, src, word) };
        let len = dst.len() + src.len();
        // SAFETY: `reserve` made room for `src.len()` more bytes and `xor_copy_validate`
        // initialised all `spare.len() == src.len()` bytes of `spare`.
        unsafe { dst.set_len(len) };
        return valid;
    }
    let start = dst.len();
    extend_masked(dst, src, key, 0) || simdutf8::basic::from_utf8(&dst[start..]).is_ok()
}

/// The fused unmask + UTF-8 validation kernel for AVX-512BW: the lookup algorithm of
/// Keiser and Lemire, "Validating UTF-8 In Less Than One Instruction Per Byte" (2021), as in
/// simdjson and simdutf8, on 64-byte blocks.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod utf8 {
    use core::arch::x86_64::{
        __m512i, _mm_setr_epi8, _mm512_alignr_epi8, _mm512_alignr_epi64, _mm512_and_si512,
        _mm512_broadcast_i32x4, _mm512_loadu_si512, _mm512_mask_storeu_epi8,
        _mm512_maskz_loadu_epi8, _mm512_maskz_mov_epi8, _mm512_or_si512, _mm512_set_epi64,
        _mm512_set1_epi8, _mm512_set1_epi64, _mm512_setzero_si512, _mm512_shuffle_epi8,
        _mm512_srli_epi16, _mm512_storeu_si512, _mm512_subs_epu8, _mm512_ternarylogic_epi64,
        _mm512_test_epi8_mask, _mm512_xor_si512,
    };
    use core::mem::MaybeUninit;

    use super::{PAGE, prefetch_page_ahead};

    // Error classes of a (byte 1, byte 2) pair; a pair is an error iff the three lookups
    // below agree on one class.
    const TOO_SHORT: u8 = 1 << 0; // a lead byte not followed by a continuation
    const TOO_LONG: u8 = 1 << 1; // a continuation after an ASCII byte
    const OVERLONG_3: u8 = 1 << 2; // E0 followed by 80..9F
    const TOO_LARGE: u8 = 1 << 3; // F4 followed by 90..BF, or a lead F5..FF
    const SURROGATE: u8 = 1 << 4; // ED followed by A0..BF
    const OVERLONG_2: u8 = 1 << 5; // C0, C1
    const TOO_LARGE_1000: u8 = 1 << 6; // F5..FF followed by 80..8F
    const OVERLONG_4: u8 = 1 << 6; // F0 followed by 80..8F
    const TWO_CONTS: u8 = 1 << 7; // two continuations in a row (checked by length below)
    const CARRY: u8 = TOO_SHORT | TOO_LONG | TWO_CONTS;

    /// Indexed by the high nibble of the previous byte.
    pub(super) const BYTE_1_HIGH: [u8; 16] = [
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TWO_CONTS,
        TWO_CONTS,
        TWO_CONTS,
        TWO_CONTS,
        TOO_SHORT | OVERLONG_2,
        TOO_SHORT,
        TOO_SHORT | OVERLONG_3 | SURROGATE,
        TOO_SHORT | TOO_LARGE | TOO_LARGE_1000 | OVERLONG_4,
    ];
    /// Indexed by the low nibble of the previous byte.
    pub(super) const BYTE_1_LOW: [u8; 16] = [
        CARRY | OVERLONG_3 | OVERLONG_2 | OVERLONG_4,
        CARRY | OVERLONG_2,
        CARRY,
        CARRY,
        CARRY | TOO_LARGE,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000 | SURROGATE,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
    ];
    /// Indexed by the high nibble of the current byte.
    pub(super) const BYTE_2_HIGH: [u8; 16] = [
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
    ];

    /// A 16-byte table in every 128-bit lane, for `vpshufb` lookups.
    #[target_feature(enable = "avx512f,avx512bw")]
    fn table(t: [u8; 16]) -> __m512i {
        let t = t.map(u8::cast_signed);
        _mm512_broadcast_i32x4(_mm_setr_epi8(
            t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13],
            t[14], t[15],
        ))
    }

    /// The stream `prev ++ input` shifted by `16 - SHIFT` bytes: byte `i` of the result is
    /// byte `i - (16 - SHIFT)` of `input` (reaching back into `prev`). `SHIFT` is 15, 14, 13
    /// for the byte 1, 2, 3 positions back.
    #[target_feature(enable = "avx512f,avx512bw")]
    fn back<const SHIFT: i32>(input: __m512i, prev: __m512i) -> __m512i {
        // Lanes [prev.3, input.0, input.1, input.2]: each lane's predecessor.
        let before = _mm512_alignr_epi64::<6>(input, prev);
        _mm512_alignr_epi8::<SHIFT>(input, before)
    }

    struct Tables {
        byte_1_high: __m512i,
        byte_1_low: __m512i,
        byte_2_high: __m512i,
        nibble: __m512i,
    }

    /// The error bits of the 64 bytes `input` following `prev` (non-zero: invalid).
    #[target_feature(enable = "avx512f,avx512bw")]
    fn block_errors(t: &Tables, input: __m512i, prev: __m512i) -> __m512i {
        let prev1 = back::<15>(input, prev);
        let b1_high = _mm512_shuffle_epi8(
            t.byte_1_high,
            _mm512_and_si512(_mm512_srli_epi16::<4>(prev1), t.nibble),
        );
        let b1_low = _mm512_shuffle_epi8(t.byte_1_low, _mm512_and_si512(prev1, t.nibble));
        let b2_high = _mm512_shuffle_epi8(
            t.byte_2_high,
            _mm512_and_si512(_mm512_srli_epi16::<4>(input), t.nibble),
        );
        // 0x80: a AND b AND c.
        let special = _mm512_ternarylogic_epi64::<0x80>(b1_high, b1_low, b2_high);
        // Bytes 2 and 3 after a 3- or 4-byte lead must be continuations (TWO_CONTS there is
        // expected, elsewhere an error): saturating 0xe0 - 0x80 and 0xf0 - 0x80 off them
        // leaves the high bit set only after such a lead.
        let third = _mm512_subs_epu8(back::<14>(input, prev), _mm512_set1_epi8(0x60));
        let fourth = _mm512_subs_epu8(back::<13>(input, prev), _mm512_set1_epi8(0x70));
        let must23 = _mm512_and_si512(
            _mm512_or_si512(third, fourth),
            _mm512_set1_epi8(0x80_u8.cast_signed()),
        );
        _mm512_xor_si512(must23, special)
    }

    /// Writes `src ^ word` (repeated) into `dst` (both the same length; the shorter one
    /// counts) and returns whether the written bytes are complete, valid UTF-8.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn xor_copy_validate(dst: &mut [MaybeUninit<u8>], src: &[u8], word: u64) -> bool {
        let n = dst.len().min(src.len());
        let t = Tables {
            byte_1_high: table(BYTE_1_HIGH),
            byte_1_low: table(BYTE_1_LOW),
            byte_2_high: table(BYTE_2_HIGH),
            nibble: _mm512_set1_epi8(0x0f),
        };
        let key = _mm512_set1_epi64(word.cast_signed());
        let mut prev = _mm512_setzero_si512();
        let mut errors = _mm512_setzero_si512();
        let mut i = 0;
        while i + 64 <= n {
            if i % PAGE == 0 {
                prefetch_page_ahead(src, i);
            }
            // SAFETY: bytes i..i + 64 are within `src` (i + 64 <= n <= src.len()).
            let input = unsafe { _mm512_loadu_si512(src.as_ptr().add(i).cast()) };
            let input = _mm512_xor_si512(input, key);
            // SAFETY: bytes i..i + 64 are within `dst` (i + 64 <= n <= dst.len()); storing
            // initialises them.
            unsafe { _mm512_storeu_si512(dst.as_mut_ptr().add(i).cast(), input) };
            errors = _mm512_or_si512(errors, block_errors(&t, input, prev));
            prev = input;
            i += 64;
        }
        if i < n {
            let mask = (1u64 << (n - i)) - 1; // n - i < 64
            // SAFETY: only the bytes i..n selected by `mask` are read (within `src`); masked
            // AVX-512 loads do not touch (or fault on) the others.
            let input = unsafe { _mm512_maskz_loadu_epi8(mask, src.as_ptr().add(i).cast()) };
            // The key on the padding would make it non-ASCII: zero it again.
            let input = _mm512_maskz_mov_epi8(mask, _mm512_xor_si512(input, key));
            // SAFETY: only the bytes i..n selected by `mask` are written (within `dst`).
            unsafe { _mm512_mask_storeu_epi8(dst.as_mut_ptr().add(i).cast(), mask, input) };
            errors = _mm512_or_si512(errors, block_errors(&t, input, prev));
            prev = input;
        }
        // A character cut off by the end: a lead byte in the last three positions with too
        // few bytes after it (the zero padding of a partial block is caught above as
        // TOO_SHORT).
        // Bytes 61, 62, 63 above EF, DF, BF: leads of 4-, 3+-, 2+-byte characters.
        let last = _mm512_set_epi64(
            0xbfdf_efff_ffff_ffff_u64.cast_signed(),
            -1,
            -1,
            -1,
            -1,
            -1,
            -1,
            -1,
        );
        let incomplete = _mm512_subs_epu8(prev, last);
        errors = _mm512_or_si512(errors, incomplete);
        _mm512_test_epi8_mask(errors, errors) == 0
    }
}

/// The fused unmask + UTF-8 validation kernel for AVX2 CPUs without AVX-512: the same
/// algorithm and tables on 32-byte blocks.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod utf8_avx2 {
    use core::arch::x86_64::{
        __m256i, _mm_setr_epi8, _mm256_alignr_epi8, _mm256_and_si256, _mm256_broadcastsi128_si256,
        _mm256_loadu_si256, _mm256_or_si256, _mm256_permute2x128_si256, _mm256_set_epi64x,
        _mm256_set1_epi8, _mm256_set1_epi64x, _mm256_setzero_si256, _mm256_shuffle_epi8,
        _mm256_srli_epi16, _mm256_storeu_si256, _mm256_subs_epu8, _mm256_testz_si256,
        _mm256_xor_si256,
    };
    use core::mem::MaybeUninit;

    use super::utf8::{BYTE_1_HIGH, BYTE_1_LOW, BYTE_2_HIGH};
    use super::{PAGE, prefetch_page_ahead};

    /// A 16-byte table in both 128-bit lanes, for `vpshufb` lookups.
    #[target_feature(enable = "avx2")]
    fn table(t: [u8; 16]) -> __m256i {
        let t = t.map(u8::cast_signed);
        _mm256_broadcastsi128_si256(_mm_setr_epi8(
            t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13],
            t[14], t[15],
        ))
    }

    /// Byte `i` of the result is byte `i - (16 - SHIFT)` of the stream `prev ++ input`.
    #[target_feature(enable = "avx2")]
    fn back<const SHIFT: i32>(input: __m256i, prev: __m256i) -> __m256i {
        // Lanes [prev.1, input.0]: each lane's predecessor.
        let before = _mm256_permute2x128_si256::<0x21>(prev, input);
        _mm256_alignr_epi8::<SHIFT>(input, before)
    }

    struct Tables {
        byte_1_high: __m256i,
        byte_1_low: __m256i,
        byte_2_high: __m256i,
        nibble: __m256i,
    }

    /// The error bits of the 32 bytes `input` following `prev` (non-zero: invalid).
    #[target_feature(enable = "avx2")]
    fn block_errors(t: &Tables, input: __m256i, prev: __m256i) -> __m256i {
        let prev1 = back::<15>(input, prev);
        let b1_high = _mm256_shuffle_epi8(
            t.byte_1_high,
            _mm256_and_si256(_mm256_srli_epi16::<4>(prev1), t.nibble),
        );
        let b1_low = _mm256_shuffle_epi8(t.byte_1_low, _mm256_and_si256(prev1, t.nibble));
        let b2_high = _mm256_shuffle_epi8(
            t.byte_2_high,
            _mm256_and_si256(_mm256_srli_epi16::<4>(input), t.nibble),
        );
        let special = _mm256_and_si256(_mm256_and_si256(b1_high, b1_low), b2_high);
        let third = _mm256_subs_epu8(back::<14>(input, prev), _mm256_set1_epi8(0x60));
        let fourth = _mm256_subs_epu8(back::<13>(input, prev), _mm256_set1_epi8(0x70));
        let must23 = _mm256_and_si256(
            _mm256_or_si256(third, fourth),
            _mm256_set1_epi8(0x80_u8.cast_signed()),
        );
        _mm256_xor_si256(must23, special)
    }

    /// Writes `src ^ word` (repeated) into `dst` (the shorter length of both counts) and
    /// returns whether the written bytes are complete, valid UTF-8.
    #[target_feature(enable = "avx2")]
    pub(super) fn xor_copy_validate(dst: &mut [MaybeUninit<u8>], src: &[u8], word: u64) -> bool {
        let n = dst.len().min(src.len());
        let t = Tables {
            byte_1_high: table(BYTE_1_HIGH),
            byte_1_low: table(BYTE_1_LOW),
            byte_2_high: table(BYTE_2_HIGH),
            nibble: _mm256_set1_epi8(0x0f),
        };
        let key = _mm256_set1_epi64x(word.cast_signed());
        let mut prev = _mm256_setzero_si256();
        let mut errors = _mm256_setzero_si256();
        let mut i = 0;
        while i + 32 <= n {
            if i % PAGE == 0 {
                prefetch_page_ahead(src, i);
            }
            // SAFETY: bytes i..i + 32 are within `src` (i + 32 <= n <= src.len()).
            let input = unsafe { _mm256_loadu_si256(src.as_ptr().add(i).cast()) };
            let input = _mm256_xor_si256(input, key);
            // SAFETY: bytes i..i + 32 are within `dst` (i + 32 <= n <= dst.len()); storing
            // initialises them.
            unsafe { _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast(), input) };
            errors = _mm256_or_si256(errors, block_errors(&t, input, prev));
            prev = input;
            i += 32;
        }
        if i < n {
            // The last 1-31 bytes through a zero-padded block on the stack (i is a multiple
            // of 32, so the key phase restarts with the word).
            let mut last = [0u8; 32];
            let key = word.to_ne_bytes();
            for (j, (out, b)) in last.iter_mut().zip(&src[i..n]).enumerate() {
                *out = b ^ key[j & 7];
            }
            for (d, b) in dst[i..n].iter_mut().zip(last) {
                d.write(b);
            }
            // SAFETY: `last` is 32 readable bytes.
            let input = unsafe { _mm256_loadu_si256(last.as_ptr().cast()) };
            errors = _mm256_or_si256(errors, block_errors(&t, input, prev));
            prev = input;
        }
        // Bytes 29, 30, 31 above EF, DF, BF: a character cut off by the end.
        let last = _mm256_set_epi64x(0xbfdf_efff_ffff_ffff_u64.cast_signed(), -1, -1, -1);
        errors = _mm256_or_si256(errors, _mm256_subs_epu8(prev, last));
        _mm256_testz_si256(errors, errors) == 1
    }
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
        #[allow(unused_mut, reason = "extended on x86 with std")]
        let mut k: Vec<CopyKernel> = alloc::vec![
            |d, s, w| xor_copy_kernel(d, s, w),
            |d, s, w| xor_copy_paged(d, s, w),
            xor_copy
        ];
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
        #[allow(unused_mut, reason = "extended on x86 with std")]
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

    /// Every copy kernel writes the reference into `dst_skip` bytes into a buffer (so the
    /// destination's alignment varies independently of the source's).
    fn check_copy(src: &[u8], key: [u8; 4], offset: usize, dst_skip: usize) {
        let want = reference(src, key, offset);
        let want_ascii = want.is_ascii();
        for (i, kernel) in copy_kernels().into_iter().enumerate() {
            let mut out = alloc::vec![MaybeUninit::new(0xa5u8); dst_skip + src.len() + 3];
            let out = &mut out[dst_skip..];
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

    /// The page-at-a-time copy, over inputs that start at many points of a page and end
    /// around its step and look-ahead distances.
    #[test]
    fn long_copies_match_reference_at_every_page_phase() {
        let key = [0x3c, 0x91, 0x07, 0xe2];
        let src = data(PAGE + 66_000);
        for start in (0..PAGE).step_by(509).chain([PAGE - 1]) {
            for len in [
                PAGE_AHEAD - 1,
                PAGE_AHEAD,
                PAGE_AHEAD + 1,
                PAGE_AHEAD + PAGE + 63,
                65_536 + 14,
            ] {
                for offset in 0..4 {
                    check_copy(&src[start..start + len], key, offset, (start * 7) % 67);
                }
            }
        }
    }

    #[test]
    fn every_length_offset_and_alignment_matches_reference() {
        let key = [0xde, 0xad, 0x3e, 0x7f];
        let src = data(400);
        for start in 0..64 {
            for len in 0..(400 - 64) {
                for offset in 0..4 {
                    check_copy(&src[start..start + len], key, offset, (start * 5) % 67);
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

    /// Bytes at the edges of every UTF-8 class (ASCII, continuations, each lead range and its
    /// special second-byte ranges, never-valid bytes).
    const EDGES: [u8; 24] = [
        0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec,
        0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff,
    ];

    /// `extend_masked_utf8` on `text` masked with `key`: the bytes appended and the verdict
    /// must equal the unmasked text and `core::str::from_utf8`.
    fn check_utf8(text: &[u8], key: [u8; 4]) {
        let mut masked = text.to_vec();
        apply_mask_reference(&mut masked, key, 0);
        check_utf8_masked(text, &masked, key);
    }

    /// [`check_utf8`] with the masked input given (`masked` is `text` masked with `key`).
    fn check_utf8_masked(text: &[u8], masked: &[u8], key: [u8; 4]) {
        let want = core::str::from_utf8(text).is_ok();
        let mut dst = BytesMut::from(&b"ab"[..]);
        let valid = extend_masked_utf8(&mut dst, masked, Some(key));
        assert_eq!(&dst[2..], text, "unmasked bytes");
        assert_eq!(valid, want, "verdict for {text:02x?}");
        // The AVX2 kernel too (the dispatch above prefers AVX-512 where the CPU has it).
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if std::is_x86_feature_detected!("avx2") {
            let mut out = alloc::vec![MaybeUninit::new(0xa5u8); text.len()];
            // SAFETY (test): called only when AVX2 is present.
            let valid = unsafe { utf8_avx2::xor_copy_validate(&mut out, masked, key_word(key, 0)) };
            // SAFETY (test): the kernel initialised every byte (they were initialised before
            // too).
            let got: Vec<u8> = out.iter().map(|b| unsafe { b.assume_init() }).collect();
            assert_eq!(got, text, "AVX2 unmasked bytes");
            assert_eq!(valid, want, "AVX2 verdict for {text:02x?}");
        }
    }

    /// Long text (the kernels touch the source a page ahead) starting at many points of a
    /// page, valid and with a bad byte past the look-ahead distance or at the end.
    #[test]
    fn long_text_at_every_page_phase_matches_core() {
        let key = [0x5e, 0x02, 0xb7, 0x44];
        let text = "a\u{f1}\u{20ac}\u{1d11e} plain ascii between "
            .repeat(700)
            .into_bytes();
        for phase in (0..PAGE).step_by(509) {
            for bad_at in [None, Some(PAGE_AHEAD + 3), Some(text.len() - 1)] {
                let mut text = text.clone();
                if let Some(at) = bad_at {
                    text[at] = 0xff;
                }
                let mut buf = alloc::vec![0u8; phase + text.len()];
                buf[phase..].copy_from_slice(&text);
                apply_mask_reference(&mut buf[phase..], key, 0);
                check_utf8_masked(&text, &buf[phase..], key);
            }
        }
    }

    #[test]
    fn utf8_every_edge_sequence_of_four_at_block_edges() {
        // Every sequence of 4 edge bytes, at the start, across 16-byte lane and 32/64-byte
        // block boundaries and at the very end of a payload (full and partial last blocks),
        // for the AVX-512 and the AVX2 kernel.
        let key = [0x5a, 0xc3, 0x01, 0xfe];
        let mut text = alloc::vec![b'x'; 130];
        for &a in &EDGES {
            for &b in &EDGES {
                for &c in &EDGES {
                    for &d in &EDGES {
                        for (at, len) in [
                            (0, 64),
                            (14, 40),
                            (30, 100),
                            (61, 130),
                            (62, 70),
                            (124, 128),
                            (60, 64),
                        ] {
                            text.fill(b'x');
                            text[at..at + 4].copy_from_slice(&[a, b, c, d]);
                            check_utf8(&text[..len], key);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn utf8_truncated_characters_at_every_end() {
        // A multi-byte character cut at every length, ending a payload of every length
        // from 64 to 200: invalid unless whole.
        for ch in [
            'é',
            'ᛗ',
            '日',
            '🦀',
            '\u{10ffff}',
            '\u{ffff}',
            '\u{800}',
            '\u{80}',
        ] {
            let mut buf = [0u8; 4];
            let enc = ch.encode_utf8(&mut buf).as_bytes();
            for len in 64..200 {
                for cut in 1..=enc.len() {
                    let mut text = alloc::vec![b'a'; len - cut];
                    text.extend_from_slice(&enc[..cut]);
                    check_utf8(&text, [1, 2, 3, 4]);
                }
            }
        }
    }

    fn text_or_noise() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            // Valid text of any characters, then some bytes overwritten with edge bytes.
            (
                ".{0,300}",
                proptest::collection::vec((any::<prop::sample::Index>(), 0..EDGES.len()), 0..3)
            )
                .prop_map(|(s, edits)| {
                    let mut v = s.into_bytes();
                    for (at, e) in edits {
                        if !v.is_empty() {
                            let i = at.index(v.len());
                            v[i] = EDGES[e];
                        }
                    }
                    v
                }),
            ".{0,300}".prop_map(alloc::string::String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..300),
        ]
    }

    proptest! {
        #[test]
        fn utf8_kernel_agrees_with_core(text in text_or_noise(), key in any::<[u8; 4]>()) {
            check_utf8(&text, key);
        }

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
        fn streaming_appends_the_reference(
            prefix in 0usize..130,
            src in proptest::collection::vec(any::<u8>(), 0..20_000),
            key in any::<Option<[u8; 4]>>(),
            offset in any::<usize>(),
        ) {
            let mut dst = BytesMut::with_capacity(prefix + src.len());
            dst.extend_from_slice(&alloc::vec![7u8; prefix]);
            extend_masked_streaming(&mut dst, &src, key, offset);
            let mut want = alloc::vec![7u8; prefix];
            match key {
                Some(k) => want.extend_from_slice(&reference(&src, k, offset)),
                None => want.extend_from_slice(&src),
            }
            prop_assert_eq!(&dst[..], &want[..]);
        }

        #[test]
        fn kernels_equal_reference(
            src in proptest::collection::vec(any::<u8>(), 0..5000),
            key in any::<[u8; 4]>(),
            offset in any::<usize>(),
            dst_skip in 0usize..128,
        ) {
            check_copy(&src, key, offset, dst_skip);
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
