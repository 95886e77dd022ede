//! The Hocuspocus dialect: in-band auth per document, many documents on one socket, readonly scope,
//! SyncStatus after the durable commit, stateless lock messages, and interop with y-websocket peers.

use std::time::Duration;

use nox_tests::hocuspocus::HpClient;
use serde_json::json;
use uuid::Uuid;

use crate::{block, client, id, member_with_role, setup};

#[tokio::test]
async fn one_socket_many_documents_and_y_websocket_peers_see_each_other() {
    let (app, owner, ws) = setup().await;
    let project: Uuid = sqlx::query_scalar("SELECT project_id FROM workspaces WHERE id = $1")
        .bind(ws)
        .fetch_one(app.pool())
        .await
        .expect("project");
    let ws2 = app.client.create_workspace(&owner, project, "second").await;
    let (first, second) = (ws.to_string(), format!("{ws2}\0session-1"));

    let mut hp = HpClient::connect(app.addr).await;
    hp.open(&first, &owner.token).await;
    hp.open(&second, &owner.token).await;
    hp.pump_until(|c| c.doc(&first).synced && c.doc(&second).synced)
        .await;
    assert_eq!(hp.doc(&first).scope.as_deref(), Some("read-write"));
    assert_eq!(
        hp.doc(&second).scope.as_deref(),
        Some("read-write"),
        "the session suffix is echoed"
    );

    let mut yws = client(&app, &owner, ws).await;
    let from_hp = id();
    hp.put_block(&first, &from_hp, block("from hocuspocus"))
        .await;
    yws.pump_until(|c| c.canvas_json()["blocks"].get(&from_hp).is_some())
        .await;
    let from_yws = id();
    yws.put_block(&from_yws, block("from y-websocket")).await;
    hp.pump_until(|c| {
        c.doc(&first).canvas_json()["blocks"]
            .get(&from_yws)
            .is_some()
    })
    .await;
    hp.pump_for(Duration::from_millis(200)).await;
    assert_eq!(hp.doc(&second).block_count(), 0, "documents stay separate");
    assert_eq!(hp.doc(&first).canvas_json(), yws.canvas_json());

    // SyncStatus only after the update is durable.
    hp.pump_until(|c| c.doc(&first).sync_statuses >= c.doc(&first).updates_sent)
        .await;
    let logged: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM workspace_update_log WHERE workspace_id = $1)
              + (SELECT count(*) FROM workspace_snapshots WHERE workspace_id = $1)",
    )
    .bind(ws)
    .fetch_one(app.pool())
    .await
    .expect("count");
    assert!(logged > 0);
    app.stop().await;
}

#[tokio::test]
async fn the_hocuspocus_flag_gates_the_dialect_for_its_organization() {
    let app = nox_tests::TestApp::spawn().await;
    let (owner, org, _, ws) = app.client.owner_with_workspace("flag-owner").await;
    let name = ws.to_string();
    let flag = format!("/api/v1/orgs/{org}/features/hocuspocus");
    let off = app
        .client
        .put(&flag, &owner.token, json!({"value": false}))
        .await;
    assert_eq!(off.status, reqwest::StatusCode::OK, "{}", off.body);

    let mut refused = HpClient::connect(app.addr).await;
    refused.open(&name, &owner.token).await;
    refused.pump_until(|c| c.doc(&name).denied.is_some()).await;
    let reason = refused.doc(&name).denied.clone().unwrap_or_default();
    assert!(reason.contains("hocuspocus"), "{reason}");
    assert!(refused.doc(&name).scope.is_none());
    // The y-websocket dialect is not behind this flag.
    let yws = client(&app, &owner, ws).await;
    assert_eq!(yws.block_count(), 0);

    let on = app.client.delete(&flag, &owner.token).await;
    assert_eq!(on.body["value"], true, "the default is on");
    let mut admitted = HpClient::connect(app.addr).await;
    admitted.open(&name, &owner.token).await;
    admitted.pump_until(|c| c.doc(&name).synced).await;
    assert_eq!(admitted.doc(&name).scope.as_deref(), Some("read-write"));
    app.stop().await;
}

#[tokio::test]
async fn refused_and_readonly_documents_change_nothing() {
    let (app, owner, ws) = setup().await;
    let viewer = member_with_role(&app, ws, "Viewer").await;
    let name = ws.to_string();

    let mut bad = HpClient::connect(app.addr).await;
    bad.open(&name, "not-a-token").await;
    let sneaky = id();
    bad.put_block(&name, &sneaky, block("before auth")).await;
    bad.pump_until(|c| c.doc(&name).denied.is_some()).await;
    assert!(bad.doc(&name).scope.is_none());

    let mut ro = HpClient::connect(app.addr).await;
    ro.open(&name, &viewer.token).await;
    ro.pump_until(|c| c.doc(&name).synced).await;
    assert_eq!(ro.doc(&name).scope.as_deref(), Some("readonly"));
    ro.put_block(&name, &id(), block("read-only edit")).await;
    ro.pump_until(|c| c.doc(&name).denied.is_some()).await;

    let fresh = client(&app, &owner, ws).await;
    assert_eq!(
        fresh.block_count(),
        0,
        "neither the refused nor the read-only edit was applied"
    );
    app.stop().await;
}

#[tokio::test]
async fn lock_messages_travel_as_stateless_across_dialects() {
    let (app, owner, ws) = setup().await;
    let name = ws.to_string();
    let bob = member_with_role(&app, ws, "Editor").await;
    let mut hp = HpClient::connect(app.addr).await;
    hp.open(&name, &owner.token).await;
    hp.pump_until(|c| c.doc(&name).synced).await;
    let block_id = id();
    hp.put_block(&name, &block_id, block("locked via hocuspocus"))
        .await;

    let mut watcher = nox_tests::WsClient::new(app.addr, ws, &bob.token);
    watcher.connect_with("&locks=1").await;
    watcher.sync().await;
    watcher
        .pump_until(|c| c.canvas_json()["blocks"].get(&block_id).is_some())
        .await;

    hp.send_stateless(
        &name,
        &json!({ "type": "lock.acquire", "resource_type": "BLOCK", "resource_id": block_id }),
    )
    .await;
    hp.pump_until(|c| {
        c.doc(&name)
            .stateless
            .iter()
            .any(|e| e["type"] == "lock.granted")
    })
    .await;
    watcher
        .pump_until(|c| !c.events("lock.acquired").is_empty())
        .await;
    assert_eq!(
        watcher.events("lock.acquired")[0]["lock"]["user_id"],
        owner.user_id.to_string()
    );
    app.stop().await;
}
