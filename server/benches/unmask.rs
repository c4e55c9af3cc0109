//! Unmask benchmark: `ws::mask::apply_mask` (8 bytes per step) against the byte-at-a-time loop,
//! for payload sizes from a small chat message to a large binary frame.
//!
//! `cargo bench -p gev --bench unmask`; the ratio of the two lines per size is the figure to
//! read (the machine may be shared, absolute numbers drift).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gev::ws::mask::{apply_mask, apply_mask_bytewise};
use std::hint::black_box;

fn unmask(c: &mut Criterion) {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut group = c.benchmark_group("unmask");
    for size in [16usize, 125, 1024, 16 * 1024, 1 << 20] {
        let mut buf: Vec<u8> = (0..size).map(|i| i as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("word", size), &size, |b, _| {
            // Offset 1: the unaligned-key case (a frame unmasked piecewise).
            b.iter(|| apply_mask(black_box(&mut buf), black_box(key), 1))
        });
        group.bench_with_input(BenchmarkId::new("bytewise", size), &size, |b, _| {
            b.iter(|| apply_mask_bytewise(black_box(&mut buf), black_box(key), 1))
        });
    }
    group.finish();
}

criterion_group!(benches, unmask);
criterion_main!(benches);
