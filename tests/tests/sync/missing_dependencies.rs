//! Updates that depend on changes the server never received: stored and relayed like any update
//! (whether yrs holds them pending or integrates them behind a skip), completed when the missing
//! change arrives, and bounded when they pile up.

use nox_sync_protocol::{canvas, wire};
use serde_json::{json, Value};
use yrs::{Doc, ReadTxn, StateVector, Transact};

use crate::durability::{stored_canvas, stored_doc};
use crate::{block, client, id, setup_with};

/// Two updates of one editor, the second made after the first: (first, second).
fn two_updates(first: (&str, Value), second: (&str, Value)) -> (Vec<u8>, Vec<u8>) {
    let doc: Doc = canvas::new_canvas_doc();
    let put = |(id, fields): (&str, Value)| {
        let fields = fields.as_object().cloned().expect("object");
        canvas::put_block(&mut doc.transact_mut(), id, &fields).expect("put");
    };
    put(first);
    let before = doc.transact().state_vector();
    let u1 = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    put(second);
    let u2 = doc.transact().encode_state_as_update_v1(&before);
    (u1, u2)
}

#[tokio::test]
async fn a_pending_update_is_stored_relayed_and_completed_when_its_dependency_arrives() {
    let (app, owner, ws) = setup_with(|c| c.compact_interval_ms = 60_000).await;
    let x = id();
    // The second update changes block x, which the first creates: yrs keeps it pending.
    let (u1, u2) = two_updates((&x, block("first")), (&x, json!({ "name": "renamed" })));

    let mut sender = client(&app, &owner, ws).await;
    let mut watcher = client(&app, &owner, ws).await;
    sender.send_raw(wire::encode_update(&u2)).await;
    sender.updates_sent += 1;
    sender.settle().await;
    watcher
        .pump_until(|c| c.doc.transact().has_missing_updates())
        .await;
    assert!(watcher.canvas_json()["blocks"].get(&x).is_none());
    // Acked, so stored: storage replays to a document that waits for the same change.
    assert!(stored_doc(app.pool(), ws)
        .await
        .transact()
        .has_missing_updates());

    // A graceful restart snapshots the document, the pending part inside.
    sender.disconnect().await;
    watcher.disconnect().await;
    let app = app.restart().await;
    let mut late = client(&app, &owner, ws).await;
    let mut watcher = client(&app, &owner, ws).await;
    late.send_raw(wire::encode_update(&u1)).await;
    watcher
        .pump_until(|c| c.canvas_json()["blocks"][&x]["name"] == "renamed")
        .await;
    assert!(!watcher.doc.transact().has_missing_updates());
    app.stop().await;
}

#[tokio::test]
async fn an_update_that_skips_ahead_is_stored_and_every_peer_holds_what_the_room_holds() {
    let (app, owner, ws) = setup_with(|c| c.compact_interval_ms = 60_000).await;
    let (x, y) = (id(), id());
    // The second update creates another block: only its clocks follow the first's.
    let (_, u2) = two_updates((&x, block("first")), (&y, block("second")));

    let mut sender = client(&app, &owner, ws).await;
    let mut watcher = client(&app, &owner, ws).await;
    sender.send_raw(wire::encode_update(&u2)).await;
    sender.updates_sent += 1;
    sender.settle().await;
    let fresh = client(&app, &owner, ws).await;
    let served = fresh.canvas_json();
    assert_eq!(
        served["blocks"][&y]["name"], "second",
        "the room keeps the change"
    );
    watcher.pump_until(|c| c.canvas_json() == served).await;
    assert_eq!(stored_canvas(app.pool(), ws).await, served);
    app.stop().await;
}

#[tokio::test]
async fn too_many_pending_changes_close_their_sender_and_the_room_carries_on() {
    let (app, owner, ws) = setup_with(|_| {}).await;
    let x = id();
    // One pending update larger than the bound (1 MiB).
    let big = json!({ "name": "z".repeat(1_100_000) });
    let (_, u2) = two_updates((&x, block("first")), (&x, big));

    let mut sender = client(&app, &owner, ws).await;
    let mut other = client(&app, &owner, ws).await;
    sender.settle().await;
    let acked_before = sender.acks;
    sender.send_raw(wire::encode_update(&u2)).await;
    sender.updates_sent += 1;
    let closed = sender.wait_closed().await;
    assert_eq!(closed.code, 1008, "{closed:?}");
    assert_eq!(
        sender.acks, acked_before,
        "dropped changes must not be acknowledged"
    );

    let kept = id();
    other.put_block(&kept, block("still editing")).await;
    other.settle().await;
    let fresh = client(&app, &owner, ws).await;
    assert!(
        !fresh.doc.transact().has_missing_updates(),
        "the dropped changes are gone from the document the room serves"
    );
    let blocks = fresh.canvas_json()["blocks"].clone();
    assert_eq!(blocks.as_object().map(|b| b.len()), Some(1), "{blocks}");
    assert!(blocks.get(&kept).is_some());
    // …and from storage once the room has compacted.
    crate::eventually("storage without the dropped changes", || async {
        !stored_doc(app.pool(), ws)
            .await
            .transact()
            .has_missing_updates()
    })
    .await;
    app.stop().await;
}
