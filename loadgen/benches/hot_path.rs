//! The per-request work of the generator outside syscalls: encoding a request (with WebSocket
//! masking), decoding a reply, and recording its latency. Together they must stay far below the
//! ~2-5 µs a read+write syscall pair costs, or the generator rather than the server would set
//! the pace. `batch64` measures the closed-loop batch bookkeeping (runs of outstanding requests,
//! back-to-back raw payloads) against the one-entry-per-request way it replaced; the system-level
//! figure is `loadgen/bench/baseline.sh`. Run: `cargo bench -p gev-loadgen --bench hot_path`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use gev_loadgen::conn::{Outstanding, Pending};
use gev_loadgen::framing::{Codec, FramingKind, FramingOptions, HttpMethod, WsMessage};
use gev_loadgen::payload::{PayloadSpec, Payloads};
use gev_loadgen::record::Recorder;
use rand::rngs::SmallRng;
use rand::SeedableRng;

fn options(kind: FramingKind) -> FramingOptions {
    FramingOptions {
        kind,
        host: "127.0.0.1:8080".into(),
        path: "/".into(),
        http_method: HttpMethod::Get,
        ws_message: WsMessage::Binary,
        max_reply: 64 << 20,
    }
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for size in [64usize, 4096] {
        let payload = vec![b'x'; size];
        group.throughput(Throughput::Bytes(size as u64));
        for kind in [
            FramingKind::Raw,
            FramingKind::Length,
            FramingKind::Websocket,
        ] {
            let mut codec = Codec::new(&options(kind), 1);
            let mut out = Vec::with_capacity(size + 16);
            group.bench_function(format!("{kind}/{size}"), |b| {
                b.iter(|| {
                    out.clear();
                    codec.encode(black_box(&payload), &mut out);
                    black_box(out.len())
                })
            });
        }
    }
    let mut http = Codec::new(&options(FramingKind::Http), 1);
    let mut out = Vec::with_capacity(128);
    group.bench_function("http/get", |b| {
        b.iter(|| {
            out.clear();
            http.encode(b"", &mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    let mut control = Vec::new();
    let mut length = Vec::new();
    length.extend_from_slice(&64u32.to_be_bytes());
    length.extend_from_slice(&[b'x'; 64]);
    let mut ws = vec![0x82, 64];
    ws.extend_from_slice(&[b'x'; 64]);
    let http = b"HTTP/1.1 200 OK\r\nServer: gev\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!".to_vec();
    let chunked =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nd\r\nHello, World!\r\n0\r\n\r\n"
            .to_vec();
    let cases = [
        ("raw/64", FramingKind::Raw, vec![b'x'; 64]),
        ("length/64", FramingKind::Length, length),
        ("websocket/64", FramingKind::Websocket, ws),
        ("http/content-length", FramingKind::Http, http),
        ("http/chunked", FramingKind::Http, chunked),
    ];
    for (name, kind, bytes) in cases {
        let mut codec = Codec::new(&options(kind), 1);
        group.bench_function(name, |b| {
            b.iter(|| {
                let decoded = codec.decode(black_box(&bytes), Some(64), &mut control);
                black_box(matches!(
                    decoded,
                    Ok(gev_loadgen::framing::Decoded::Reply { .. })
                ))
            })
        });
    }
    group.finish();
}

fn record(c: &mut Criterion) {
    let mut recorder = Recorder::default();
    let mut value = 50_000u64;
    // Every reply with new latencies: two histogram records each.
    c.bench_function("record/reply", |b| {
        b.iter(|| {
            value = value.wrapping_mul(6364136223846793005).wrapping_add(1) % 10_000_000 + 1_000;
            recorder.reply(black_box(value + 500), black_box(value));
        })
    });
    // 16 replies of one read to one write (what --pipeline 16 produces): one pair of records,
    // 15 comparisons. Per reply: divide the time by 16.
    c.bench_function("record/reply_x16_same_batch", |b| {
        b.iter(|| {
            value = value.wrapping_mul(6364136223846793005).wrapping_add(1) % 10_000_000 + 1_000;
            for _ in 0..16 {
                recorder.reply(black_box(value + 500), black_box(value));
            }
        })
    });
    // The raw bulk path: the same 16 replies as one run.
    c.bench_function("record/reply_n16", |b| {
        b.iter(|| {
            value = value.wrapping_mul(6364136223846793005).wrapping_add(1) % 10_000_000 + 1_000;
            recorder.reply_n(black_box(value + 500), black_box(value), 16);
        })
    });
}

/// The send and answer bookkeeping of one closed-loop batch of 64 requests: before, one
/// 32-byte entry per request; now one run, and for raw fixed-size payloads one copy of 64
/// back-to-back payloads instead of 64 picks and copies.
fn batch(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(7);
    let payloads = Payloads::new(&PayloadSpec::Generated { min: 64, max: 64 }, &mut rng);
    let mut group = c.benchmark_group("batch64");
    group.throughput(Throughput::Elements(64));
    let mut out = Vec::with_capacity(64 * 64);
    group.bench_function("encode/one_by_one", |b| {
        let mut codec = Codec::new(&options(FramingKind::Raw), 1);
        b.iter(|| {
            out.clear();
            for _ in 0..64 {
                let at = payloads.pick(&mut rng);
                codec.encode(payloads.get(at), &mut out);
            }
            black_box(out.len())
        })
    });
    group.bench_function("encode/run", |b| {
        let mut codec = Codec::new(&options(FramingKind::Raw), 1);
        b.iter(|| {
            out.clear();
            let mut left = 64;
            while let Some((first, covered)) = payloads.pick_run(&mut rng, left) {
                codec.encode(payloads.get_run(first, covered), &mut out);
                left -= covered;
                if left == 0 {
                    break;
                }
            }
            black_box(out.len())
        })
    });
    let mut outstanding = Outstanding::default();
    let mut t = 1_000u64;
    group.bench_function("outstanding/push_pop_each", |b| {
        b.iter(|| {
            t += 1;
            outstanding.push(Pending {
                intended: t,
                sent: t,
                measured: true,
                count: 64,
            });
            let mut sum = 0;
            while let Some(a) = outstanding.pop() {
                sum += a.sent;
            }
            black_box(sum)
        })
    });
    group.bench_function("outstanding/push_pop_runs", |b| {
        b.iter(|| {
            t += 1;
            outstanding.push(Pending {
                intended: t,
                sent: t,
                measured: true,
                count: 64,
            });
            let mut sum = 0;
            outstanding.pop_runs(64, |run| sum += run.sent * run.count);
            black_box(sum)
        })
    });
    group.finish();
}

criterion_group!(benches, encode, decode, record, batch);
criterion_main!(benches);
