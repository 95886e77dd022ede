//! Compaction's pure half on a 10,000-block + 10,000-relation canvas: read the document into a
//! `CanvasState`, project it to rows, and diff two projections.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use nox_sync_protocol::canvas;
use nox_sync_protocol::projection::{self, ProjectionContext};
use serde_json::json;
use yrs::Transact;

mod common;

fn bench(c: &mut Criterion) {
    let doc = common::canvas_doc(10_000, 10_000);
    let state = canvas::read_canvas(&doc.transact());
    let ctx = ProjectionContext {
        existing_block_rows: projection::referenced_ids(&state).block_ids,
        ..ProjectionContext::default()
    };
    let before = projection::project(&state, &ctx);
    // The next projection after one block moved (the common case between two compactions).
    {
        let mut txn = doc.transact_mut();
        let f = json!({"visual": {"x": 1.0, "y": 2.0}});
        canvas::put_block(&mut txn, &common::block_id(42), f.as_object().expect("obj"))
            .expect("move");
    }
    let moved_state = canvas::read_canvas(&doc.transact());
    let after_one_move = projection::project(&moved_state, &ctx);

    let mut group = c.benchmark_group("projection 10k blocks + 10k relations");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(6));
    group.bench_function("read_canvas", |b| {
        b.iter(|| canvas::read_canvas(&doc.transact()))
    });
    group.bench_function("referenced_ids", |b| {
        b.iter(|| projection::referenced_ids(&state))
    });
    group.bench_function("project", |b| b.iter(|| projection::project(&state, &ctx)));
    group.bench_function("digest", |b| b.iter(|| before.digest()));
    let digest = before.digest();
    group.bench_function("diff (1 block moved)", |b| {
        b.iter(|| projection::diff(&digest, &after_one_move))
    });
    group.bench_function("diff (identical)", |b| {
        b.iter(|| projection::diff(&digest, &before))
    });
    group.bench_function("diff (from nothing: first compaction)", |b| {
        let empty = projection::ProjectionDigest::default();
        b.iter(|| projection::diff(&empty, &before))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
