//! Rights changed while a socket is open take effect on it at once (within a second).

use std::time::Duration;

use nox_tests::{TestApp, WsClient};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::{block, client, id, member_with_role, setup};

async fn org_of(app: &TestApp, workspace_id: Uuid) -> Uuid {
    sqlx::query_scalar(
        "SELECT p.org_id FROM workspaces w JOIN projects p ON p.id = w.project_id WHERE w.id = $1",
    )
    .bind(workspace_id)
    .fetch_one(app.pool())
    .await
    .expect("org")
}

/// Waits at most a second for the server to close `c`, and returns the close code.
async fn closed_within_a_second(c: &mut WsClient) -> u16 {
    let closed = tokio::time::timeout(Duration::from_secs(1), c.wait_closed())
        .await
        .expect("closed within a second");
    closed.code
}

#[tokio::test]
async fn removing_a_member_closes_their_sockets() {
    let (app, owner, ws) = setup().await;
    let org = org_of(&app, ws).await;
    let bob = member_with_role(&app, ws, "Editor").await;
    let mut b = client(&app, &bob, ws).await;
    let removed = app
        .client
        .delete(
            &format!("/api/v1/orgs/{org}/members/{}", bob.user_id),
            &owner.token,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    assert_eq!(closed_within_a_second(&mut b).await, 4403);
    app.stop().await;
}

#[tokio::test]
async fn a_role_lowered_to_viewer_makes_the_socket_read_only() {
    let (app, owner, ws) = setup().await;
    let org = org_of(&app, ws).await;
    let bob = member_with_role(&app, ws, "Editor").await;
    let mut b = client(&app, &bob, ws).await;
    let mut watcher = client(&app, &owner, ws).await;
    let viewer_role = app.client.role_id(&owner, org, "Viewer").await;
    let changed = app
        .client
        .patch(
            &format!("/api/v1/orgs/{org}/members/{}", bob.user_id),
            &owner.token,
            json!({ "role_id": viewer_role }),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.put_block(&id(), block("after demotion")).await;
    b.pump_until(|c| !c.permission_denied.is_empty()).await;
    watcher.pump_for(Duration::from_millis(300)).await;
    assert_eq!(
        watcher.block_count(),
        0,
        "the demoted user's edit was not applied"
    );
    assert!(b.closed.is_none(), "read-only, not disconnected");
    app.stop().await;
}

#[tokio::test]
async fn logging_out_closes_the_sessions_sockets_with_4401() {
    let (app, owner, ws) = setup().await;
    let mut a = client(&app, &owner, ws).await;
    let out = app
        .client
        .post("/api/v1/auth/logout", &owner.token, json!({}))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    assert_eq!(closed_within_a_second(&mut a).await, 4401);
    app.stop().await;
}

#[tokio::test]
async fn deleting_the_workspace_closes_its_sockets() {
    let (app, owner, ws) = setup().await;
    let mut a = client(&app, &owner, ws).await;
    let deleted = app
        .client
        .delete(&format!("/api/v1/workspaces/{ws}"), &owner.token)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert_eq!(closed_within_a_second(&mut a).await, 4403);
    app.stop().await;
}

#[tokio::test]
async fn api_keys_open_sockets_in_their_org_only_and_revoking_closes_them() {
    let (app, owner, ws) = setup().await;
    let org = org_of(&app, ws).await;
    let created = app
        .client
        .post(
            &format!("/api/v1/orgs/{org}/api-keys"),
            &owner.token,
            json!({ "name": "bot" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let key = created.body["key"].as_str().expect("key").to_string();
    let key_id = created.id();
    let mut bot = WsClient::new(app.addr, ws, &key);
    bot.connect().await;

    // The same key cannot reach another organization's workspace, even one its creator owns.
    let other_project = {
        let other_org = app
            .client
            .create_org(&owner, &format!("other-{}", &id()[..8]))
            .await;
        app.client.create_project(&owner, other_org, "p").await
    };
    let other_ws = app
        .client
        .create_workspace(&owner, other_project, "w")
        .await;
    let elsewhere = WsClient::new(app.addr, other_ws, &key);
    assert_eq!(
        nox_tests::ws::upgrade_status(&elsewhere.url("")).await,
        Some(404)
    );

    let revoked = app
        .client
        .delete(
            &format!("/api/v1/orgs/{org}/api-keys/{key_id}"),
            &owner.token,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    assert_eq!(closed_within_a_second(&mut bot).await, 4401);
    app.stop().await;
}
