//! The per-request work of the generator outside syscalls: encoding a request (with WebSocket
//! masking), decoding a reply, and recording its latency. Together they must stay far below the
//! ~2-5 µs a read+write syscall pair costs, or the generator rather than the server would set
//! the pace. Run: `cargo bench -p gev-loadgen --bench hot_path`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gev_loadgen::framing::{Codec, FramingKind, FramingOptions, HttpMethod, WsMessage};
use gev_loadgen::record::Recorder;
use std::hint::black_box;

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
    c.bench_function("record/reply", |b| {
        b.iter(|| {
            value = value.wrapping_mul(6364136223846793005).wrapping_add(1) % 10_000_000 + 1_000;
            recorder.reply(black_box(value + 500), black_box(value));
        })
    });
}

criterion_group!(benches, encode, decode, record);
criterion_main!(benches);
