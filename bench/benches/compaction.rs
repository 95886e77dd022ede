//! Compaction's document half: merging many small logged updates into one, encoding a large
//! document's state as a snapshot, and loading a snapshot into a scratch document.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use yrs::updates::decoder::Decode;
use yrs::{ReadTxn, StateVector, Transact, Update};

mod common;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("compaction");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));

    let writer = common::canvas_doc(100, 0);
    for n in [100usize, 1_000, 10_000] {
        let updates = common::move_updates(&writer, 100, n);
        group.bench_function(format!("merge_updates_v1 of {n} move updates"), |b| {
            b.iter(|| yrs::merge_updates_v1(updates.iter().map(Vec::as_slice)).expect("merge"))
        });
    }

    let big = common::canvas_doc(10_000, 10_000);
    let snapshot = common::full_state(&big);
    group.bench_function(
        format!(
            "encode_state_as_update_v1 10k+10k doc ({} KiB)",
            snapshot.len() / 1024
        ),
        |b| {
            b.iter(|| {
                big.transact()
                    .encode_state_as_update_v1(&StateVector::default())
            })
        },
    );
    group.bench_function("snapshot -> scratch doc (decode + apply 10k+10k)", |b| {
        b.iter(|| common::replica(&snapshot))
    });
    group.bench_function("Update::decode_v1 of the 10k+10k snapshot", |b| {
        b.iter(|| Update::decode_v1(&snapshot).expect("decode"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
