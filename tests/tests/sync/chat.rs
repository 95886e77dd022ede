//! Chat pushed live: a message posted over HTTP reaches the opted-in editors of the project's
//! open workspaces after it is stored; a project room reaches every workspace of the project.

use nox_tests::WsClient;
use serde_json::json;

use crate::setup;

#[tokio::test]
async fn a_chat_message_arrives_live_at_the_projects_open_editors() {
    let (app, owner, ws) = setup().await;
    let project: uuid::Uuid = sqlx::query_scalar("SELECT project_id FROM workspaces WHERE id = $1")
        .bind(ws)
        .fetch_one(app.pool())
        .await
        .expect("the workspace project");
    let second_ws = app.client.create_workspace(&owner, project, "second").await;
    let mut here = WsClient::new(app.addr, ws, &owner.token);
    here.connect_with("&acks=1&chat=1").await;
    here.sync().await;
    let mut there = WsClient::new(app.addr, second_ws, &owner.token);
    there.connect_with("&acks=1&chat=1").await;
    there.sync().await;

    // The workspace's default room reaches only that workspace.
    let default_room = app
        .client
        .get(&format!("/api/v1/workspaces/{ws}/chat-room"), &owner.token)
        .await
        .id();
    let sent = app
        .client
        .post(
            &format!("/api/v1/chat-rooms/{default_room}/messages"),
            &owner.token,
            json!({"content": "hello workspace"}),
        )
        .await;
    assert_eq!(sent.status, reqwest::StatusCode::CREATED);
    here.pump_until(|c| !c.events("chat.message").is_empty())
        .await;
    assert_eq!(
        here.events("chat.message")[0]["message"]["content"],
        "hello workspace"
    );

    // A project room reaches both.
    let project_room = app
        .client
        .post(
            &format!("/api/v1/projects/{project}/chat-rooms"),
            &owner.token,
            json!({"name": "all"}),
        )
        .await
        .id();
    app.client
        .post(
            &format!("/api/v1/chat-rooms/{project_room}/messages"),
            &owner.token,
            json!({"content": "hello project"}),
        )
        .await;
    for client in [&mut here, &mut there] {
        client
            .pump_until(|c| {
                c.events("chat.message")
                    .iter()
                    .any(|e| e["message"]["content"] == "hello project")
            })
            .await;
    }
    // The second workspace never heard the first one's default room.
    assert!(there
        .events("chat.message")
        .iter()
        .all(|e| e["message"]["content"] != "hello workspace"));
}
