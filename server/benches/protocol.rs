//! Protocol unpack throughput: how fast `LengthPrefixed` cuts frames out of a buffer holding many
//! of them (the loop's in-place path over its scratch buffer), and `Raw` for reference.

use std::borrow::Cow;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gev::{LengthPrefixed, Protocol, Raw, Unpacked};

/// Unpacks every frame in `input`; returns the payload bytes seen.
fn unpack_all<P: Protocol<Decoder = (), Encoder = ()>>(proto: &P, input: &mut [u8]) -> usize
where
    for<'a> P::Message<'a>: AsRef<[u8]>,
{
    let mut offset = 0;
    let mut payload = 0;
    let mut out = Vec::new();
    let mut decoder = ();
    while offset < input.len() {
        match proto
            .unpack(&mut decoder, &mut (), &mut input[offset..], &mut out)
            .expect("valid input")
        {
            Unpacked::Incomplete => break,
            Unpacked::Skip { consumed } => offset += consumed,
            Unpacked::Message { consumed, message } => {
                payload += message.as_ref().len();
                offset += consumed;
            }
        }
    }
    payload
}

fn length_prefixed(c: &mut Criterion) {
    let proto = LengthPrefixed::new(1 << 20);
    let mut group = c.benchmark_group("protocol/length_prefixed_unpack_64KiB");
    for frame in [16usize, 64, 1024, 16 * 1024] {
        let mut input = Vec::new();
        while input.len() + frame + 4 <= 64 * 1024 {
            proto.pack(&mut (), Cow::Owned(vec![3u8; frame]), &mut input);
        }
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(frame), &frame, |b, _| {
            b.iter(|| black_box(unpack_all(&proto, black_box(&mut input))));
        });
    }
    group.finish();
}

fn pack(c: &mut Criterion) {
    let proto = LengthPrefixed::new(1 << 20);
    let payload = vec![4u8; 64];
    c.bench_function("protocol/length_prefixed_pack_64B", |b| {
        let mut out = Vec::with_capacity(1 << 16);
        b.iter(|| {
            out.clear();
            for _ in 0..64 {
                proto.pack(&mut (), Cow::Borrowed(black_box(&payload)), &mut out);
            }
            black_box(out.len())
        });
    });
}

fn raw(c: &mut Criterion) {
    let mut input = vec![5u8; 64 * 1024];
    c.bench_function("protocol/raw_unpack_64KiB", |b| {
        b.iter(|| black_box(unpack_all(&Raw, black_box(&mut input))));
    });
}

criterion_group!(benches, length_prefixed, pack, raw);
criterion_main!(benches);
