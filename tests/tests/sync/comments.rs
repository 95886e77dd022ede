//! Comments pushed live: a comment created over HTTP reaches the workspace's open editors that
//! asked for comment events, after it is stored, and nobody else.

use nox_tests::WsClient;
use serde_json::json;

use crate::{client, setup};

#[tokio::test]
async fn a_comment_arrives_live_only_at_peers_that_opted_in() {
    let (app, owner, ws) = setup().await;
    let mut listening = WsClient::new(app.addr, ws, &owner.token);
    listening.connect_with("&acks=1&comments=1").await;
    listening.sync().await;
    let mut other = client(&app, &owner, ws).await;

    let created = app
        .client
        .post(
            &format!("/api/v1/workspaces/{ws}/comments"),
            &owner.token,
            json!({"content": "live hello"}),
        )
        .await;
    assert_eq!(
        created.status,
        reqwest::StatusCode::CREATED,
        "{}",
        created.body
    );
    listening
        .pump_until(|c| !c.events("comment.created").is_empty())
        .await;
    let event = listening.events("comment.created")[0].clone();
    assert_eq!(event["comment"]["id"], created.body["id"]);
    assert_eq!(event["comment"]["content"], "live hello");
    assert_eq!(event["workspace_id"], ws.to_string());
    // Stored before anyone heard of it.
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM comments WHERE id = $1")
        .bind(created.id())
        .fetch_one(app.pool())
        .await
        .expect("stored comment count");
    assert_eq!(stored, 1);

    let id = created.id();
    let resolved = app
        .client
        .post(
            &format!("/api/v1/workspaces/{ws}/comments/{id}/resolve"),
            &owner.token,
            json!({}),
        )
        .await;
    assert_eq!(resolved.status, reqwest::StatusCode::OK);
    listening
        .pump_until(|c| !c.events("comment.resolved").is_empty())
        .await;
    // The peer that did not opt in got nothing (it has seen the resolve's round trip by now:
    // a sync after the listener got its event).
    other.sync().await;
    assert!(other.events("comment.created").is_empty());
    assert!(other.events("comment.resolved").is_empty());
}

#[tokio::test]
async fn a_comment_on_a_workspace_nobody_has_open_loads_no_room() {
    let (app, owner, ws) = setup().await;
    let created = app
        .client
        .post(
            &format!("/api/v1/workspaces/{ws}/comments"),
            &owner.token,
            json!({"content": "nobody is here"}),
        )
        .await;
    assert_eq!(
        created.status,
        reqwest::StatusCode::CREATED,
        "{}",
        created.body
    );
    let metrics = reqwest::get(format!("http://{}/metrics", app.addr))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("nox_rooms_loaded 0"), "{metrics}");
    // Someone opening the workspace afterwards reads it over HTTP (events are not replayed).
    let mut late = client(&app, &owner, ws).await;
    late.sync().await;
    assert!(late.events("comment.created").is_empty());
    let listed = app
        .client
        .get(&format!("/api/v1/workspaces/{ws}/comments"), &owner.token)
        .await;
    assert_eq!(listed.body["items"][0]["content"], "nobody is here");
}
