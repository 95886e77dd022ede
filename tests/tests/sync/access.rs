//! Who may connect, and what a read-only connection can do.

use std::time::Duration;

use nox_tests::ws::upgrade_status;
use nox_tests::WsClient;
use uuid::Uuid;

use crate::{block, client, id, member_with_role, setup};

#[tokio::test]
async fn read_only_members_sync_but_cannot_write() {
    let (app, owner, ws) = setup().await;
    let viewer = member_with_role(&app, ws, "Viewer").await;
    let mut editor = client(&app, &owner, ws).await;
    let existing = id();
    editor
        .put_block(&existing, block("visible to viewers"))
        .await;

    let mut reader = client(&app, &viewer, ws).await;
    assert_eq!(reader.block_count(), 1, "viewers receive the document");
    reader.put_block(&id(), block("refused")).await;
    reader.pump_until(|c| !c.permission_denied.is_empty()).await;
    assert!(reader.permission_denied[0].contains("read-only"));

    editor.pump_for(Duration::from_millis(300)).await;
    assert_eq!(
        editor.block_count(),
        1,
        "the viewer's edit never reached a peer"
    );
    // And it is not stored: a fresh client sees only the editor's block.
    let fresh = client(&app, &owner, ws).await;
    assert_eq!(fresh.block_count(), 1);
    // The viewer still receives live edits.
    let second = id();
    editor.put_block(&second, block("second")).await;
    reader
        .pump_until(|c| c.canvas_json()["blocks"].get(&second).is_some())
        .await;
    app.stop().await;
}

#[tokio::test]
async fn refused_before_the_upgrade() {
    let (app, owner, ws) = setup().await;
    let outsider = app.client.register("outsider").await;
    let url = |workspace: Uuid, token: &str| {
        format!("ws://{}/ws/workspaces/{workspace}?token={token}", app.addr)
    };
    assert_eq!(upgrade_status(&url(ws, "not-a-jwt")).await, Some(401));
    assert_eq!(
        upgrade_status(&format!("ws://{}/ws/workspaces/{ws}", app.addr)).await,
        Some(401),
        "no token at all"
    );
    assert_eq!(
        upgrade_status(&url(Uuid::new_v4(), &owner.token)).await,
        Some(404)
    );
    assert_eq!(
        upgrade_status(&url(ws, &outsider.token)).await,
        Some(404),
        "another organization's workspace does not exist for this user"
    );
    assert_eq!(upgrade_status(&url(ws, &owner.token)).await, None);
    app.stop().await;
}

#[tokio::test]
async fn token_in_the_bearer_subprotocol_is_accepted() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (app, owner, ws) = setup().await;
    let mut request = format!("ws://{}/ws/workspaces/{ws}", app.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("bearer, {}", owner.token).parse().expect("header"),
    );
    let (_socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade with the subprotocol token");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().ok()),
        Some(Some("bearer"))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_revoked_session_cannot_connect() {
    let (app, owner, ws) = setup().await;
    sqlx::query("UPDATE user_sessions SET revoked_at = NOW() WHERE user_id = $1")
        .bind(owner.user_id)
        .execute(app.pool())
        .await
        .expect("revoke");
    let c = WsClient::new(app.addr, ws, &owner.token);
    assert_eq!(upgrade_status(&c.url("")).await, Some(401));
    app.stop().await;
}

#[tokio::test]
async fn the_plan_limits_concurrent_connections() {
    let (app, owner, ws) = setup().await;
    sqlx::query(
        "UPDATE subscriptions SET quotas = jsonb_set(quotas, '{max_connections}', '2')
         WHERE org_id = (SELECT p.org_id FROM workspaces w JOIN projects p ON p.id = w.project_id WHERE w.id = $1)",
    )
    .bind(ws)
    .execute(app.pool())
    .await
    .expect("lower the quota");
    let _a = client(&app, &owner, ws).await;
    let mut b = client(&app, &owner, ws).await;
    let third = WsClient::new(app.addr, ws, &owner.token);
    assert_eq!(upgrade_status(&third.url("")).await, Some(402));
    // A slot frees up when a connection closes.
    b.disconnect().await;
    let mut admitted = false;
    for _ in 0..50 {
        if upgrade_status(&third.url("")).await.is_none() {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(admitted);
    app.stop().await;
}
