//! The per-update hot path of a room: decode a client frame (which validates the update), decode
//! the update and apply it to the room's document; and encoding the broadcast frame.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use nox_sync_protocol::wire::{self, ClientMessage};
use yrs::updates::decoder::Decode;
use yrs::{Transact, Update};

mod common;

/// Applies `iters` fresh move updates to a replica of a `blocks`-block canvas, timing only the
/// decode (+ frame decode when `frame`) and apply.
fn apply_moves(blocks: usize, iters: u64, frame: bool) -> Duration {
    let writer = common::canvas_doc(blocks, 0);
    let room = common::replica(&common::full_state(&writer));
    let updates = common::move_updates(&writer, blocks, iters as usize);
    let frames: Vec<Vec<u8>> = updates.iter().map(|u| wire::encode_update(u)).collect();
    let started = Instant::now();
    for f in &frames {
        let payload = if frame {
            match wire::decode_frame(f).expect("frame").pop() {
                Some(ClientMessage::Update(u)) => u,
                other => panic!("unexpected {other:?}"),
            }
        } else {
            f[3..].to_vec()
        };
        let update = Update::decode_v1(&payload).expect("decode");
        room.transact_mut().apply_update(update).expect("apply");
    }
    started.elapsed()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("update");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    for blocks in [100usize, 10_000] {
        group.bench_function(
            format!("decode_frame+decode+apply move ({blocks}-block doc)"),
            |b| b.iter_custom(|iters| apply_moves(blocks, iters, true)),
        );
    }
    group.bench_function(
        "decode+apply move (100-block doc, no frame validation)",
        |b| b.iter_custom(|iters| apply_moves(100, iters, false)),
    );
    let writer = common::canvas_doc(100, 0);
    let update = common::move_updates(&writer, 100, 1).pop().expect("update");
    let frame = wire::encode_update(&update);
    group.bench_function("decode_frame move (validation only)", |b| {
        b.iter(|| wire::decode_frame(std::hint::black_box(&frame)).expect("frame"))
    });
    group.bench_function("encode_update move", |b| {
        b.iter(|| wire::encode_update(std::hint::black_box(&update)))
    });
    group.bench_function("encode_diff_v1 for an empty client (10k+10k doc)", |b| {
        let doc = common::canvas_doc(10_000, 10_000);
        b.iter_batched(
            || (),
            |_| {
                use yrs::ReadTxn;
                doc.transact().encode_diff_v1(&yrs::StateVector::default())
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
