//! Comments over HTTP: threads on the workspace and on blocks, replies, author-only edit/delete,
//! resolve/reopen with filters, mentions mailed, tenancy, bad input, audit and orphaning.

use nox_tests::http::mail_count;
use nox_tests::{Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

fn comments_path(workspace: Uuid) -> String {
    format!("/api/v1/workspaces/{workspace}/comments")
}

/// A block created over HTTP (through the room), returned by id.
async fn block(app: &TestApp, owner: &Session, workspace: Uuid, name: &str) -> Uuid {
    let created = app
        .client
        .post(
            &format!("/api/v1/workspaces/{workspace}/blocks"),
            &owner.token,
            json!({"type": "NODE", "name": name}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.body["id"].as_str().unwrap().parse().unwrap()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["content"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn threads_replies_resolve_and_filters() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, _project, ws) = c.owner_with_workspace("cora").await;
    let editor = c
        .add_member(app.pool(), &owner, org, "eddy", "Editor")
        .await;
    let block_id = block(&app, &owner, ws, "card").await;
    let path = comments_path(ws);

    let general = c
        .post(&path, &owner.token, json!({"content": "kick-off"}))
        .await;
    assert_eq!(general.status, StatusCode::CREATED, "{}", general.body);
    assert_eq!(general.body["target_type"], "WORKSPACE");
    assert_eq!(general.body["target_id"], ws.to_string());

    let on_block = c
        .post(
            &path,
            &owner.token,
            json!({"content": "  is this right?  ", "target_type": "BLOCK",
                   "target_id": block_id, "mentions": [editor.user_id]}),
        )
        .await;
    assert_eq!(on_block.status, StatusCode::CREATED, "{}", on_block.body);
    assert_eq!(on_block.body["content"], "is this right?");
    assert_eq!(on_block.body["mentions"], json!([editor.user_id]));
    assert_eq!(on_block.body["orphaned"], false);
    assert!(on_block.body["author_name"].is_string());
    assert_eq!(mail_count(app.pool(), &editor.email, "mention").await, 1);
    let thread = on_block.id();

    let reply = c
        .post(
            &path,
            &editor.token,
            json!({"content": "yes", "parent_comment_id": thread}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["target_type"], "BLOCK");
    assert_eq!(reply.body["target_id"], block_id.to_string());
    // A reply to a reply joins the thread's root.
    let nested = c
        .post(
            &path,
            &owner.token,
            json!({"content": "thanks", "parent_comment_id": reply.id()}),
        )
        .await;
    assert_eq!(nested.body["parent_comment_id"], thread.to_string());

    let by_block = c
        .get(&format!("{path}?block_id={block_id}"), &editor.token)
        .await;
    assert_eq!(ids(&by_block.body), ["is this right?", "yes", "thanks"]);

    // Replies cannot be resolved on their own; the thread can, by any editor.
    let refused = c
        .post(
            &format!("{path}/{}/resolve", reply.id()),
            &editor.token,
            json!({}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let resolved = c
        .post(
            &format!("{path}/{thread}/resolve"),
            &editor.token,
            json!({}),
        )
        .await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.body);
    assert_eq!(resolved.body["resolved_by_id"], editor.user_id.to_string());
    let open = c.get(&format!("{path}?resolved=false"), &owner.token).await;
    assert_eq!(ids(&open.body), ["kick-off"]);
    let closed = c.get(&format!("{path}?resolved=true"), &owner.token).await;
    assert_eq!(ids(&closed.body), ["is this right?", "yes", "thanks"]);
    let reopened = c
        .post(&format!("{path}/{thread}/reopen"), &owner.token, json!({}))
        .await;
    assert!(reopened.body["resolved_at"].is_null());

    // Pages of one, in order, with a cursor.
    let first = c.get(&format!("{path}?limit=2"), &owner.token).await;
    assert_eq!(ids(&first.body), ["kick-off", "is this right?"]);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = c
        .get(&format!("{path}?limit=2&cursor={cursor}"), &owner.token)
        .await;
    assert_eq!(ids(&second.body), ["yes", "thanks"]);
    assert!(second.body["next_cursor"].is_null());

    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_logs WHERE org_id = $1 AND action LIKE 'comment.%'",
    )
    .bind(org)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(audited, 6, "4 created, 1 resolved, 1 reopened");
}

#[tokio::test]
async fn only_the_author_edits_or_deletes() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, _project, ws) = c.owner_with_workspace("ada").await;
    let editor = c.add_member(app.pool(), &owner, org, "ed", "Editor").await;
    let viewer = c.add_member(app.pool(), &owner, org, "vi", "Viewer").await;
    let path = comments_path(ws);
    let id = c
        .post(&path, &editor.token, json!({"content": "draft"}))
        .await
        .id();
    let one = format!("{path}/{id}");

    let by_owner = c
        .patch(&one, &owner.token, json!({"content": "hijack"}))
        .await;
    assert_eq!(by_owner.status, StatusCode::FORBIDDEN);
    assert_eq!(by_owner.code(), "not_author");
    assert_eq!(
        c.delete(&one, &owner.token).await.status,
        StatusCode::FORBIDDEN
    );

    let edited = c
        .patch(&one, &editor.token, json!({"content": "final"}))
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(edited.body["content"], "final");
    assert!(edited.body["edited_at"].is_string());

    // A Viewer reads the discussion but does not take part.
    assert_eq!(c.get(&one, &viewer.token).await.status, StatusCode::OK);
    let post = c
        .post(&path, &viewer.token, json!({"content": "me too"}))
        .await;
    assert_eq!(post.status, StatusCode::FORBIDDEN);

    assert_eq!(
        c.delete(&one, &editor.token).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.get(&one, &owner.token).await.status,
        StatusCode::NOT_FOUND
    );
    let list = c.get(&path, &owner.token).await;
    assert!(list.body["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn bad_input_is_a_json_4xx() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, _org, _project, ws) = c.owner_with_workspace("bea").await;
    let (_stranger, _org_b, _p, ws_b) = c.owner_with_workspace("bo").await;
    let path = comments_path(ws);
    let cases = [
        (json!({"content": ""}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"content": "x".repeat(10_001)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"content": "x", "target_type": "PAGE"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"content": "x", "target_type": "BLOCK"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"content": "x", "target_type": "WORKSPACE", "target_id": ws_b}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"content": "x", "target_type": "BLOCK", "target_id": Uuid::new_v4()}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"content": "x", "parent_comment_id": Uuid::new_v4()}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"content": "x", "mentions": [Uuid::new_v4()]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"content": "x", "mentions": "everyone"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"content": 5}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"content": "x", "author_id": owner.user_id}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, status) in cases {
        let reply = c.post(&path, &owner.token, body.clone()).await;
        assert!(
            reply.status == status || (status.is_client_error() && reply.status.is_client_error()),
            "{body}: {} {}",
            reply.status,
            reply.body
        );
        assert!(!reply.code().is_empty(), "{body}: {}", reply.body);
    }
    for query in ["resolved=maybe", "block_id=nope", "limit=0", "cursor=%%%"] {
        let reply = c.get(&format!("{path}?{query}"), &owner.token).await;
        assert!(reply.status.is_client_error(), "{query}: {}", reply.status);
        assert!(!reply.code().is_empty(), "{query}: {}", reply.body);
    }
    let bad_id = c.get(&format!("{path}/not-a-uuid"), &owner.token).await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
    let none: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM comments")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(none, 0);
}

#[tokio::test]
async fn another_orgs_comments_are_not_found() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner_a, _org_a, _pa, ws_a) = c.owner_with_workspace("anna").await;
    let (owner_b, org_b, _pb, ws_b) = c.owner_with_workspace("ben").await;
    let id = c
        .post(
            &comments_path(ws_a),
            &owner_a.token,
            json!({"content": "secret"}),
        )
        .await
        .id();
    let mentioned_foreigner = c
        .post(
            &comments_path(ws_b),
            &owner_b.token,
            json!({"content": "hi", "mentions": [owner_a.user_id]}),
        )
        .await;
    assert_eq!(mentioned_foreigner.status, StatusCode::UNPROCESSABLE_ENTITY);
    // B's own workspace with A's comment id: not found either, and a reply cannot attach to it.
    for path in [
        format!("{}/{id}", comments_path(ws_a)),
        format!("{}/{id}", comments_path(ws_b)),
    ] {
        assert_eq!(
            c.get(&path, &owner_b.token).await.status,
            StatusCode::NOT_FOUND
        );
        let patch = c
            .patch(&path, &owner_b.token, json!({"content": "x"}))
            .await;
        assert_eq!(patch.status, StatusCode::NOT_FOUND);
        let resolve = c
            .post(&format!("{path}/resolve"), &owner_b.token, json!({}))
            .await;
        assert_eq!(resolve.status, StatusCode::NOT_FOUND);
    }
    let reply = c
        .post(
            &comments_path(ws_b),
            &owner_b.token,
            json!({"content": "x", "parent_comment_id": id}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let _ = org_b;
}

#[tokio::test]
async fn a_deleted_blocks_comments_stay_readable_and_orphaned() {
    let app = TestApp::spawn_with(|c| c.compact_interval_ms = 100).await;
    let c = &app.client;
    let (owner, _org, _project, ws) = c.owner_with_workspace("oli").await;
    let block_id = block(&app, &owner, ws, "doomed").await;
    let path = comments_path(ws);
    let id = c
        .post(
            &path,
            &owner.token,
            json!({"content": "about this", "target_type": "BLOCK", "target_id": block_id}),
        )
        .await
        .id();
    let deleted = c
        .delete(
            &format!("/api/v1/workspaces/{ws}/blocks/{block_id}"),
            &owner.token,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    // Orphaning follows the projection, which the next compaction writes.
    let mut orphaned = false;
    for _ in 0..200 {
        let got = c.get(&format!("{path}/{id}"), &owner.token).await;
        assert_eq!(got.status, StatusCode::OK);
        if got.body["orphaned"] == true {
            orphaned = true;
            assert_eq!(got.body["content"], "about this");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(orphaned, "the comment never became orphaned");
    let listed = c
        .get(&format!("{path}?block_id={block_id}"), &owner.token)
        .await;
    assert_eq!(listed.body["items"][0]["orphaned"], true);
}
