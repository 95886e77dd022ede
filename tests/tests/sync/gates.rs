//! What an organization's settings switch off: an ARCHIVED project makes its workspaces read-only
//! for HTTP writers and for editors already connected, and `canvas.relations = false` refuses new
//! relations over HTTP.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::{block, client, id};

#[tokio::test]
async fn archiving_a_project_makes_its_workspaces_read_only_live() {
    let app = nox_tests::TestApp::spawn().await;
    let c = &app.client;
    let (owner, _, project, ws) = c.owner_with_workspace("archivist").await;
    let mut editor = client(&app, &owner, ws).await;
    let before = id();
    editor.put_block(&before, block("before archiving")).await;
    editor.settle().await;

    let archived = c
        .patch(
            &format!("/api/v1/projects/{project}"),
            &owner.token,
            json!({"status": "ARCHIVED"}),
        )
        .await;
    assert_eq!(archived.status, StatusCode::OK, "{}", archived.body);

    // HTTP writes are refused with a stable code; reads still work.
    let blocks = format!("/api/v1/workspaces/{ws}/blocks");
    let refused = c
        .post(
            &blocks,
            &owner.token,
            json!({"type": "NODE", "name": "late"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(refused.code(), "project_archived");
    assert_eq!(c.get(&blocks, &owner.token).await.status, StatusCode::OK);

    // The open editor was re-checked at once: its next edit is refused, not stored.
    editor.put_block(&id(), block("after archiving")).await;
    editor.pump_until(|e| !e.permission_denied.is_empty()).await;
    let fresh = client(&app, &owner, ws).await;
    assert_eq!(
        fresh.block_count(),
        1,
        "only the edit made before archiving"
    );

    // Un-archiving gives the write back, to the same open connection.
    let active = c
        .patch(
            &format!("/api/v1/projects/{project}"),
            &owner.token,
            json!({"status": "ACTIVE"}),
        )
        .await;
    assert_eq!(active.status, StatusCode::OK, "{}", active.body);
    let again = id();
    let mut accepted = false;
    for _ in 0..50 {
        editor.put_block(&again, block("after un-archiving")).await;
        editor.pump_for(Duration::from_millis(100)).await;
        let check = client(&app, &owner, ws).await;
        if check.canvas_json()["blocks"].get(&again).is_some() {
            accepted = true;
            break;
        }
    }
    assert!(accepted, "the connection became writable again");
    app.stop().await;
}

#[tokio::test]
async fn the_relations_flag_refuses_new_relations_over_http() {
    let app = nox_tests::TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, _, ws) = c.owner_with_workspace("no-relations").await;
    let blocks = format!("/api/v1/workspaces/{ws}/blocks");
    let a = c
        .post(&blocks, &owner.token, json!({"type": "NODE"}))
        .await
        .id();
    let b = c
        .post(&blocks, &owner.token, json!({"type": "NODE"}))
        .await
        .id();
    let relations = format!("/api/v1/workspaces/{ws}/relations");
    let body = json!({"type": "LINK", "source_block_id": a, "target_block_id": b});

    let flag = format!("/api/v1/orgs/{org}/features/canvas.relations");
    let off = c.put(&flag, &owner.token, json!({"value": false})).await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    let refused = c.post(&relations, &owner.token, body.clone()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.code(), "feature_disabled");
    let listed = c.get(&relations, &owner.token).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(0));

    c.delete(&flag, &owner.token).await;
    let created = c.post(&relations, &owner.token, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    app.stop().await;
}
