//! RingBuffer throughput: the incomplete-frame path of the loop (append a read's tail, make the
//! buffer contiguous for the protocol, retrieve what was consumed), compared with a `VecDeque`
//! doing the same work.

use std::collections::VecDeque;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gev::RingBuffer;

fn append_contiguous_retrieve(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_buffer/append_contiguous_retrieve");
    for chunk in [64usize, 1024, 16 * 1024] {
        let data = vec![0x5au8; chunk];
        group.throughput(Throughput::Bytes(chunk as u64 * 4));
        group.bench_with_input(BenchmarkId::new("RingBuffer", chunk), &data, |b, data| {
            let mut ring = RingBuffer::new();
            ring.write(&data[..chunk / 2]); // keep a partial frame so storage stays allocated
            b.iter(|| {
                for _ in 0..4 {
                    ring.write(black_box(data));
                    let view = ring.make_contiguous();
                    black_box(view[0]);
                    ring.retrieve(chunk);
                }
            });
        });
        group.bench_with_input(BenchmarkId::new("VecDeque", chunk), &data, |b, data| {
            let mut deque: VecDeque<u8> = VecDeque::new();
            deque.extend(&data[..chunk / 2]);
            b.iter(|| {
                for _ in 0..4 {
                    deque.extend(black_box(data.iter()));
                    let view = deque.make_contiguous();
                    black_box(view[0]);
                    deque.drain(..chunk);
                }
            });
        });
    }
    group.finish();
}

fn partial_frame_lifecycle(c: &mut Criterion) {
    // The common incomplete-frame case: a tail is buffered, completed by the next read, and the
    // emptied buffer releases its storage.
    let head = vec![1u8; 100];
    let rest = vec![2u8; 400];
    c.bench_function("ring_buffer/partial_frame_lifecycle_500B", |b| {
        b.iter(|| {
            let mut ring = RingBuffer::new();
            ring.write(black_box(&head));
            ring.write(black_box(&rest));
            black_box(ring.make_contiguous().len());
            ring.retrieve_all();
            ring
        });
    });
}

criterion_group!(benches, append_contiguous_retrieve, partial_frame_lifecycle);
criterion_main!(benches);
