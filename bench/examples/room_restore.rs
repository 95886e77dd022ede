//! Whole-canvas restores on a document built the way a room's is: random UUID keys (the editor's
//! ids), the canvas arriving as an editor's batches of 500 applied as updates, and an update
//! observer (the room's log and broadcast). The criterion benchmark (`benches/restore.rs`) uses
//! one replicated update with sequential ids, which hides costs that depend on key order and on
//! how the document was built; this prints the median and min of each phase over fresh rooms.
//!
//! `ROUNDS=6 cargo run --release -p nox-bench --example room_restore`

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

#[path = "../benches/common/mod.rs"]
mod common;

use nox_sync_protocol::{canvas, restore};
use serde_json::{json, Value};
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

const BLOCKS: usize = 10_000;
const RELATIONS: usize = 10_000;
const BATCH: usize = 500;

/// A v4-looking UUID, random-ordered but the same on every run.
fn uuid(i: usize, salt: u64) -> String {
    let mix = |mut x: u64| {
        x ^= x >> 31;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^ (x >> 29)
    };
    let x = mix((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt);
    let y = mix(x);
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        x >> 32,
        (x >> 16) & 0xffff,
        x & 0xfff,
        y & 0xfff,
        (y >> 16) & 0xffff_ffff_ffff
    )
}

fn fields(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().expect("object")
}

/// A room's document holding the 10k+10k canvas, written by an editor in batches.
fn room_doc() -> Doc {
    let room = canvas::new_canvas_doc();
    let editor = Doc::new();
    let blocks: Vec<String> = (0..BLOCKS).map(|i| uuid(i, 1)).collect();
    let relations: Vec<String> = (0..RELATIONS).map(|i| uuid(i, 2)).collect();
    let batches = (BLOCKS + RELATIONS) / BATCH;
    for batch in 0..batches {
        let before = editor.transact().state_vector();
        {
            let mut txn = editor.transact_mut();
            for n in batch * BATCH..(batch + 1) * BATCH {
                if n < BLOCKS {
                    let f = fields(json!({
                        "type": "service",
                        "name": format!("Block {n}"),
                        "config": {"replicas": 1 + n % 3, "image": "nginx:1.27"},
                        "visual": {"x": (n % 100) as f64 * 40.0, "y": (n / 100) as f64 * 40.0},
                    }));
                    canvas::put_block(&mut txn, &blocks[n], &f).expect("block");
                } else {
                    let i = n - BLOCKS;
                    let f = fields(json!({
                        "source_block_id": blocks[i % BLOCKS],
                        "target_block_id": blocks[(i + 1) % BLOCKS],
                        "type": "depends_on",
                        "visual": {"style": "solid"},
                    }));
                    canvas::put_relation(&mut txn, &relations[i], &f).expect("relation");
                }
            }
        }
        let update = editor.transact().encode_diff_v1(&before);
        let update = Update::decode_v1(&update).expect("decode");
        room.transact_mut().apply_update(update).expect("apply");
    }
    room
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let empty = common::full_state(&canvas::new_canvas_doc());
    let mut times: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for _ in 0..rounds {
        let room = room_doc();
        room.observe_update_v1("room", |_, event| {
            std::hint::black_box(event.update.len());
        })
        .expect("observe");
        let full = room
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        // The floor for any Yjs server: yrs integrating the same items from an update into an
        // empty document (no restore logic, no observer).
        let started = Instant::now();
        let fresh = Doc::new();
        fresh
            .transact_mut()
            .apply_update(Update::decode_v1(&full).expect("decode"))
            .expect("apply");
        times
            .entry("floor: apply the full state to a new doc".into())
            .or_default()
            .push(started.elapsed());
        drop(fresh);
        for (case, state) in [("empty version", &empty), ("onto empty", &full)] {
            let started = Instant::now();
            let version = restore::StoredVersion::parse(state.clone()).expect("parse");
            let parsed = started.elapsed();
            let started = Instant::now();
            let written = {
                let mut txn = room.transact_mut();
                restore::restore_canvas_from_stored(
                    &mut txn,
                    &version,
                    restore::SearchLimits::default(),
                );
                started.elapsed()
            };
            let phases = [
                ("parse", parsed),
                ("write", written),
                ("write + commit", started.elapsed()),
            ];
            for (phase, took) in phases {
                times
                    .entry(format!("{case}: {phase}"))
                    .or_default()
                    .push(took);
            }
        }
    }
    let mut out = std::io::stdout().lock();
    for (what, mut took) in times {
        took.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let _ = writeln!(
            out,
            "{what:>30}: median {:6.1} ms, min {:6.1} ms",
            ms(took[took.len() / 2]),
            ms(took[0])
        );
    }
}
