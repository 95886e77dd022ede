//! Fixtures shared by the micro-benchmarks: canvas documents built through the canvas model, and
//! streams of small "move a block" updates like the ones editors send.

#![allow(dead_code)]

/// The server's allocator (server/src/main.rs), so the pure functions cost here what they cost
/// there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::{Arc, Mutex};

use nox_sync_protocol::canvas;
use serde_json::{json, Value};
use yrs::{Doc, ReadTxn, StateVector, Transact};

pub fn block_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

pub fn relation_id(i: usize) -> String {
    format!("00000000-0000-4000-9000-{i:012}")
}

fn fields(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().expect("object")
}

/// A canvas with `blocks` blocks and `relations` relations chaining them.
pub fn canvas_doc(blocks: usize, relations: usize) -> Doc {
    let doc = canvas::new_canvas_doc();
    {
        let mut txn = doc.transact_mut();
        for i in 0..blocks {
            let f = fields(json!({
                "type": "service",
                "name": format!("Block {i}"),
                "config": {"replicas": 1 + i % 3, "image": "nginx:1.27"},
                "visual": {"x": (i % 100) as f64 * 40.0, "y": (i / 100) as f64 * 40.0},
            }));
            canvas::put_block(&mut txn, &block_id(i), &f).expect("block");
        }
        for i in 0..relations {
            let f = fields(json!({
                "source_block_id": block_id(i % blocks),
                "target_block_id": block_id((i + 1) % blocks),
                "type": "depends_on",
                "visual": {"style": "solid"},
            }));
            canvas::put_relation(&mut txn, &relation_id(i), &f).expect("relation");
        }
    }
    doc
}

pub fn full_state(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

/// A doc holding `state` (a replica).
pub fn replica(state: &[u8]) -> Doc {
    use yrs::updates::decoder::Decode;
    let doc = canvas::new_canvas_doc();
    doc.transact_mut()
        .apply_update(yrs::Update::decode_v1(state).expect("decode"))
        .expect("apply");
    doc
}

/// `n` successive block moves made on `doc` (one update each, as an editor sends them).
pub fn move_updates(doc: &Doc, blocks: usize, n: usize) -> Vec<Vec<u8>> {
    let out: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let sink = out.clone();
    doc.observe_update_v1("bench-moves", move |_, e| {
        sink.lock().expect("lock").push(e.update.clone());
    })
    .expect("observe");
    for seq in 0..n {
        let f = fields(json!({"visual": {"x": seq as f64, "y": 1.0, "t": seq, "seq": seq}}));
        let mut txn = doc.transact_mut();
        canvas::put_block(&mut txn, &block_id(seq % blocks.max(1)), &f).expect("move");
    }
    let _ = doc.unobserve_update_v1("bench-moves");
    let updates = std::mem::take(&mut *out.lock().expect("lock"));
    updates
}
