//! Chat over HTTP: rooms per project and the workspace default room, messages with history
//! paginated newest first, own-message edit/delete, bad input, tenancy and audit.

use nox_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn rooms_messages_history_and_own_edits() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, project, ws) = c.owner_with_workspace("chad").await;
    let editor = c.add_member(app.pool(), &owner, org, "ed", "Editor").await;
    let viewer = c.add_member(app.pool(), &owner, org, "vi", "Viewer").await;

    let default_room = c
        .get(&format!("/api/v1/workspaces/{ws}/chat-room"), &viewer.token)
        .await;
    assert_eq!(default_room.status, StatusCode::OK, "{}", default_room.body);
    assert_eq!(default_room.body["workspace_id"], ws.to_string());
    // The same room every time.
    let again = c
        .get(&format!("/api/v1/workspaces/{ws}/chat-room"), &owner.token)
        .await;
    assert_eq!(again.body["id"], default_room.body["id"]);

    let created = c
        .post(
            &format!("/api/v1/projects/{project}/chat-rooms"),
            &editor.token,
            json!({"name": "design"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let room = created.id();
    let rooms = c
        .get(
            &format!("/api/v1/projects/{project}/chat-rooms"),
            &viewer.token,
        )
        .await;
    assert_eq!(rooms.body["items"].as_array().unwrap().len(), 2);

    let messages = format!("/api/v1/chat-rooms/{room}/messages");
    for text in ["one", "two", "three"] {
        let sent = c
            .post(&messages, &editor.token, json!({"content": text}))
            .await;
        assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
        assert_eq!(sent.body["sender_id"], editor.user_id.to_string());
    }
    let denied = c
        .post(&messages, &viewer.token, json!({"content": "hi"}))
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    // Newest first, two per page.
    let first = c.get(&format!("{messages}?limit=2"), &viewer.token).await;
    let texts: Vec<&str> = first.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["three", "two"]);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let older = c
        .get(
            &format!("{messages}?limit=2&cursor={cursor}"),
            &viewer.token,
        )
        .await;
    assert_eq!(older.body["items"][0]["content"], "one");
    assert!(older.body["next_cursor"].is_null());

    let one = older.body["items"][0]["id"].as_str().unwrap();
    let by_owner = c
        .patch(
            &format!("{messages}/{one}"),
            &owner.token,
            json!({"content": "x"}),
        )
        .await;
    assert_eq!(by_owner.status, StatusCode::FORBIDDEN);
    assert_eq!(by_owner.code(), "not_sender");
    let edited = c
        .patch(
            &format!("{messages}/{one}"),
            &editor.token,
            json!({"content": "uno"}),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(edited.body["content"], "uno");
    assert!(edited.body["edited_at"].is_string());
    let deleted = c.delete(&format!("{messages}/{one}"), &editor.token).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let all = c.get(&messages, &owner.token).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 2);

    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_logs WHERE org_id = $1 AND action LIKE 'chat%' ORDER BY created_at",
    )
    .bind(org)
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(actions.len(), 6, "{actions:?}");
    assert_eq!(actions[0], "chat_room.created");
    assert_eq!(actions[5], "chat_message.deleted");
}

#[tokio::test]
async fn bad_chat_input_is_a_json_4xx_and_foreign_rooms_are_not_found() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner_a, _org_a, project_a, ws_a) = c.owner_with_workspace("ann").await;
    let (owner_b, _org_b, _project_b, _ws_b) = c.owner_with_workspace("bob").await;
    let room = c
        .get(
            &format!("/api/v1/workspaces/{ws_a}/chat-room"),
            &owner_a.token,
        )
        .await
        .id();
    let messages = format!("/api/v1/chat-rooms/{room}/messages");
    for body in [
        json!({"content": ""}),
        json!({"content": "x".repeat(4001)}),
        json!({"content": 1}),
        json!({"content": "x", "room_id": room}),
        json!({}),
    ] {
        let reply = c.post(&messages, &owner_a.token, body.clone()).await;
        assert!(reply.status.is_client_error(), "{body}: {}", reply.status);
        assert!(!reply.code().is_empty(), "{body}");
    }
    let bad_room = c
        .post(
            &format!("/api/v1/projects/{project_a}/chat-rooms"),
            &owner_a.token,
            json!({"name": "  "}),
        )
        .await;
    assert_eq!(bad_room.status, StatusCode::UNPROCESSABLE_ENTITY);

    let secret = c
        .post(&messages, &owner_a.token, json!({"content": "secret"}))
        .await;
    for reply in [
        c.get(&messages, &owner_b.token).await,
        c.post(&messages, &owner_b.token, json!({"content": "spy"}))
            .await,
        c.delete(&format!("{messages}/{}", secret.id()), &owner_b.token)
            .await,
        c.get(
            &format!("/api/v1/chat-rooms/{}/messages", Uuid::new_v4()),
            &owner_a.token,
        )
        .await,
    ] {
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
        assert!(!reply.body.to_string().contains("secret"));
    }
}
