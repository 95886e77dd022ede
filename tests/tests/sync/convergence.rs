//! Clients converge: live edits, offline edits, awareness.

use std::time::Duration;

use serde_json::json;

use crate::{block, client, id, setup};

#[tokio::test]
async fn two_clients_converge() {
    let (app, owner, ws) = setup().await;
    let mut a = client(&app, &owner, ws).await;
    let mut b = client(&app, &owner, ws).await;
    let (x, y) = (id(), id());
    a.put_block(&x, block("from a")).await;
    b.put_block(&y, block("from b")).await;
    a.put_relation(
        &id(),
        json!({ "source_block_id": x, "target_block_id": y, "type": "LINK" }),
    )
    .await;
    a.pump_until(|c| c.block_count() == 2).await;
    b.pump_until(|c| {
        c.block_count() == 2 && c.canvas_json()["relations"].as_object().map(|r| r.len()) == Some(1)
    })
    .await;
    a.pump_for(Duration::from_millis(200)).await;
    assert_eq!(a.canvas_json(), b.canvas_json());
    assert_eq!(a.canvas_json()["blocks"][&x]["name"], "from a");
    app.stop().await;
}

#[tokio::test]
async fn offline_edits_upload_on_reconnect() {
    let (app, owner, ws) = setup().await;
    let mut a = client(&app, &owner, ws).await;
    let mut b = client(&app, &owner, ws).await;
    let shared = id();
    a.put_block(&shared, block("shared")).await;
    b.pump_until(|c| c.block_count() == 1).await;

    b.disconnect().await;
    let offline = id();
    b.put_block(&offline, block("made offline")).await;
    b.put_block(&shared, json!({ "name": "renamed offline" }))
        .await;
    let online = id();
    a.put_block(&online, block("made online")).await;

    b.connect().await;
    a.pump_until(|c| c.block_count() == 3).await;
    b.pump_until(|c| c.block_count() == 3).await;
    a.pump_until(|c| c.canvas_json()["blocks"][&shared]["name"] == "renamed offline")
        .await;
    assert_eq!(a.canvas_json(), b.canvas_json());
    app.stop().await;
}

#[tokio::test]
async fn awareness_is_relayed_and_removed_on_disconnect() {
    let (app, owner, ws) = setup().await;
    let mut a = client(&app, &owner, ws).await;
    let mut b = client(&app, &owner, ws).await;
    a.set_awareness(json!({ "user": { "name": "A" } })).await;
    let a_id = a.client_id();
    b.pump_until(|c| matches!(c.peers_awareness.get(&a_id), Some(Some(_))))
        .await;
    // A late joiner gets the current awareness on connect.
    let mut late = client(&app, &owner, ws).await;
    late.pump_until(|c| matches!(c.peers_awareness.get(&a_id), Some(Some(_))))
        .await;

    a.disconnect().await;
    b.pump_until(|c| matches!(c.peers_awareness.get(&a_id), Some(None)))
        .await;
    late.pump_until(|c| matches!(c.peers_awareness.get(&a_id), Some(None)))
        .await;
    app.stop().await;
}

#[tokio::test]
async fn concurrent_first_connections_load_the_room_once() {
    let (app, owner, ws) = setup().await;
    {
        let mut seed = client(&app, &owner, ws).await;
        for i in 0..20 {
            seed.put_block(&id(), block(&format!("b{i}"))).await;
        }
        seed.pump_for(Duration::from_millis(100)).await;
    }
    // Restart so the next connections find the workspace unloaded.
    let app = app.restart().await;
    let joins = (0..16).map(|_| {
        let mut c = nox_tests::WsClient::new(app.addr, ws, &owner.token);
        async move {
            c.connect().await;
            c
        }
    });
    let clients = futures_util::future::join_all(joins).await;
    for c in &clients {
        assert_eq!(c.block_count(), 20, "every joiner sees the loaded document");
    }
    let metrics = reqwest::get(format!("http://{}/metrics", app.addr))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("nox_rooms_loaded 1"), "{metrics}");
    drop(clients);
    app.stop().await;
}

#[tokio::test]
async fn durable_acks_count_committed_updates() {
    let (app, owner, ws) = setup().await;
    let mut a = nox_tests::WsClient::new(app.addr, ws, &owner.token);
    a.connect_with("&acks=1").await;
    a.sync().await;
    for i in 0..3 {
        a.put_block(&id(), block(&format!("acked {i}"))).await;
    }
    a.settle().await;
    assert_eq!(a.acks, 4, "the initial SyncStep2 and three updates");
    a.pump_for(Duration::from_millis(200)).await;
    assert_eq!(a.acks, 4, "nothing is acknowledged twice");
    let logged: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM workspace_update_log WHERE workspace_id = $1)
              + (SELECT count(*) FROM workspace_snapshots WHERE workspace_id = $1)",
    )
    .bind(ws)
    .fetch_one(app.pool())
    .await
    .expect("count");
    assert!(logged >= 1, "acknowledged updates are in storage");
    // Clients that did not ask get no ack frames (the stock client would log an error).
    let mut plain = nox_tests::WsClient::new(app.addr, ws, &owner.token);
    plain.connect().await;
    plain.put_block(&id(), block("no ack")).await;
    plain.pump_for(Duration::from_millis(300)).await;
    assert_eq!(plain.acks, 0);
    app.stop().await;
}

#[tokio::test]
async fn awareness_not_renewed_in_time_expires() {
    let (app, owner, ws) = crate::setup_with(|c| c.awareness_timeout_ms = 600).await;
    let mut a = client(&app, &owner, ws).await;
    let mut b = client(&app, &owner, ws).await;
    a.set_awareness(json!({ "user": { "name": "quiet" } }))
        .await;
    let a_id = a.client_id();
    b.pump_until(|c| matches!(c.peers_awareness.get(&a_id), Some(Some(_))))
        .await;
    // A stays connected but never renews: the server drops the state and tells everyone.
    b.pump_until(|c| matches!(c.peers_awareness.get(&a_id), Some(None)))
        .await;
    assert!(a.is_connected());
    app.stop().await;
}
