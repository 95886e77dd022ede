//! Projects and workspaces: get, update, soft delete (cascading to workspaces), pagination.

use nox_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn project_get_update_delete() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, project, workspace) = c.owner_with_workspace("pam").await;
    let editor = c.add_member(app.pool(), &owner, org, "ed", "Editor").await;
    let path = format!("/api/v1/projects/{project}");

    let got = c.get(&path, &editor.token).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["slug"], "main");

    let updated = c
        .patch(
            &path,
            &owner.token,
            json!({"name": "Website", "slug": "web", "description": "the site",
                   "visibility": "INTERNAL", "status": "ARCHIVED"}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["visibility"], "INTERNAL");
    assert_eq!(updated.body["status"], "ARCHIVED");
    assert_eq!(updated.body["description"], "the site");
    let cleared = c
        .patch(&path, &owner.token, json!({"description": ""}))
        .await;
    assert!(cleared.body["description"].is_null());

    let invalid = c
        .patch(
            &path,
            &owner.token,
            json!({"visibility": "SECRET", "status": "GONE", "slug": "-x"}),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.body["error"]["fields"].as_array().unwrap().len(), 3);

    c.create_project(&owner, org, "other").await;
    let dup = c.patch(&path, &owner.token, json!({"slug": "other"})).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);

    let denied = c.patch(&path, &editor.token, json!({"name": "x"})).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(
        c.delete(&path, &editor.token).await.status,
        StatusCode::FORBIDDEN
    );

    assert_eq!(
        c.delete(&path, &owner.token).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.get(&path, &owner.token).await.status,
        StatusCode::NOT_FOUND
    );
    let ws = c
        .get(&format!("/api/v1/workspaces/{workspace}"), &owner.token)
        .await;
    assert_eq!(ws.status, StatusCode::NOT_FOUND);
    let (deleted,): (bool,) =
        sqlx::query_as("SELECT deleted_at IS NOT NULL FROM workspaces WHERE id = $1")
            .bind(workspace)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert!(deleted, "the project's workspaces are soft-deleted with it");
    let listed = c
        .get(&format!("/api/v1/orgs/{org}/projects"), &owner.token)
        .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    // A deleted project's slug is free again.
    c.create_project(&owner, org, "web").await;
}

#[tokio::test]
async fn workspace_get_update_delete() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, project, workspace) = c.owner_with_workspace("wes").await;
    let editor = c
        .add_member(app.pool(), &owner, org, "eddie", "Editor")
        .await;
    let path = format!("/api/v1/workspaces/{workspace}");

    let renamed = c
        .patch(
            &path,
            &owner.token,
            json!({"name": "Board", "type": "WHITEBOARD"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "Board");
    assert_eq!(renamed.body["type"], "WHITEBOARD");
    let invalid = c.patch(&path, &owner.token, json!({"name": "  "})).await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    let denied = c.patch(&path, &editor.token, json!({"name": "x"})).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(
        c.delete(&path, &editor.token).await.status,
        StatusCode::FORBIDDEN
    );

    assert_eq!(
        c.delete(&path, &owner.token).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.get(&path, &owner.token).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.delete(&path, &owner.token).await.status,
        StatusCode::NOT_FOUND
    );
    let listed = c
        .get(
            &format!("/api/v1/projects/{project}/workspaces"),
            &owner.token,
        )
        .await;
    assert!(listed.body["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn project_and_workspace_lists_are_paginated() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, project, _) = c.owner_with_workspace("lia").await;
    c.create_project(&owner, org, "second").await;
    c.create_project(&owner, org, "third").await;
    c.create_workspace(&owner, project, "two").await;
    c.create_workspace(&owner, project, "three").await;
    for (base, total) in [
        (format!("/api/v1/orgs/{org}/projects"), 3),
        (format!("/api/v1/projects/{project}/workspaces"), 3),
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cur) => format!("{base}?limit=2&cursor={cur}"),
                None => format!("{base}?limit=2"),
            };
            let page = c.get(&path, &owner.token).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            for item in page.body["items"].as_array().unwrap() {
                seen.push(item["id"].as_str().unwrap().to_string());
            }
            match page.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), total, "{base}");
        seen.dedup();
        assert_eq!(seen.len(), total, "{base}: no duplicates across pages");
    }
}
