//! Version restore's document half on a 10,000-block + 10,000-relation canvas after 100 blocks were
//! renamed, 100 removed and 100 added: decoding the version, finding the entities touched since
//! it, and the restore comparing only those vs comparing every entity.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use nox_sync_protocol::{canvas, restore};
use serde_json::{json, Value};
use yrs::{Doc, Transact};

mod common;

fn fields(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().expect("object")
}

/// `live` with `version` restored into it (the restore a room makes from a stored version); the
/// document is handed back, since criterion drops outputs outside the measurement.
fn restored(live: Doc, version: &restore::StoredVersion) -> Doc {
    restore::restore_canvas_from_stored(
        &mut live.transact_mut(),
        version,
        restore::SearchLimits::default(),
    );
    live
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("restore");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));

    let doc = common::canvas_doc(10_000, 10_000);
    let version_state = common::full_state(&doc);
    let version = common::replica(&version_state);
    {
        let mut txn = doc.transact_mut();
        for i in 0..100 {
            let id = common::block_id(i);
            canvas::put_block(&mut txn, &id, &fields(json!({"name": "renamed"}))).expect("put");
            canvas::remove_block(&mut txn, &common::block_id(100 + i));
            let new = format!("00000000-0000-4000-a000-{i:012}");
            let added = fields(json!({"type": "service", "name": "new", "visual": {"x": 1.0}}));
            canvas::put_block(&mut txn, &new, &added).expect("add");
        }
    }
    let live_state = common::full_state(&doc);

    group.bench_function("decode the version (10k+10k)", |b| {
        b.iter_batched(
            || (),
            |()| common::replica(&version_state),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("parse the stored version (StoredVersion::parse)", |b| {
        b.iter_batched(
            || version_state.clone(),
            |state| restore::StoredVersion::parse(state).expect("parse"),
            BatchSize::PerIteration,
        )
    });
    let stored = restore::StoredVersion::parse(version_state.clone()).expect("parse");
    group.bench_function("restore_canvas_from_stored (touched only)", |b| {
        b.iter_batched(
            || common::replica(&live_state),
            |live| restored(live, &stored),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("touched_since (300 entities changed)", |b| {
        b.iter(|| {
            restore::touched_since(
                &doc.transact(),
                &version.transact(),
                restore::SearchLimits::default(),
            )
        })
    });
    group.bench_function("restore_canvas_since (touched only)", |b| {
        b.iter_batched(
            || common::replica(&live_state),
            // The document is handed back: criterion drops outputs outside the measurement.
            |live| {
                restore::restore_canvas_since(
                    &mut live.transact_mut(),
                    &version.transact(),
                    restore::SearchLimits::default(),
                );
                live
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("restore_canvas (every entity)", |b| {
        b.iter_batched(
            || common::replica(&live_state),
            |live| {
                restore::restore_canvas(&mut live.transact_mut(), &version.transact());
                live
            },
            BatchSize::PerIteration,
        )
    });
    // The two whole-canvas replacements: everything removed, everything added.
    let empty_state = common::full_state(&canvas::new_canvas_doc());
    let empty = restore::StoredVersion::parse(empty_state).expect("parse");
    group.bench_function("restore the empty version (20k entities removed)", |b| {
        b.iter_batched(
            || common::replica(&live_state),
            |live| restored(live, &empty),
            BatchSize::PerIteration,
        )
    });
    group.bench_function(
        "restore 10k+10k onto an empty canvas (20k entities added)",
        |b| {
            b.iter_batched(
                || restored(common::replica(&live_state), &empty),
                |live| restored(live, &stored),
                BatchSize::PerIteration,
            )
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
