//! `apply_mask` on 64 KiB and 16 MiB beside a `copy_from_slice` of the same size (and the
//! byte-at-a-time reference loop for scale).
//!
//! `cargo bench -p stompbox-benches --bench ws_mask -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use stompbox_ws::{apply_mask, apply_mask_reference};

fn mask(c: &mut Criterion) {
    for (label, size) in [("64 KiB", 64usize << 10), ("16 MiB", 16 << 20)] {
        let mut g = c.benchmark_group(format!("apply_mask {label}"));
        g.throughput(Throughput::Bytes(size as u64));
        let src: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let mut buf = src.clone();
        // Offset by one byte so the buffer is not 8-byte aligned (the receive path's case).
        let mut unaligned = vec![0u8; size + 1];
        g.bench_function(BenchmarkId::new("apply_mask", "aligned"), |b| {
            b.iter(|| apply_mask(black_box(&mut buf), black_box([1, 2, 3, 4]), 0));
        });
        g.bench_function(BenchmarkId::new("apply_mask", "unaligned+offset"), |b| {
            b.iter(|| apply_mask(black_box(&mut unaligned[1..]), black_box([1, 2, 3, 4]), 3));
        });
        g.bench_function("copy_from_slice", |b| {
            b.iter(|| {
                buf.copy_from_slice(black_box(&src));
                black_box(&buf);
            });
        });
        if size <= 64 << 10 {
            g.bench_function("byte-at-a-time reference", |b| {
                b.iter(|| apply_mask_reference(black_box(&mut buf), black_box([1, 2, 3, 4]), 0));
            });
        }
        g.finish();
    }
}

criterion_group!(benches, mask);
criterion_main!(benches);
