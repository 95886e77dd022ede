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

#[tokio::test]
async fn project_visibility_is_validated_and_stored_on_create() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("vis").await;
    let org = c.create_org(&owner, "vis-co").await;
    let path = format!("/api/v1/orgs/{org}/projects");

    let public = c
        .post(
            &path,
            &owner.token,
            json!({"name": "Site", "slug": "site", "visibility": "PUBLIC"}),
        )
        .await;
    assert_eq!(public.status, StatusCode::CREATED, "{}", public.body);
    assert_eq!(public.body["visibility"], "PUBLIC");
    let got = c
        .get(&format!("/api/v1/projects/{}", public.id()), &owner.token)
        .await;
    assert_eq!(got.body["visibility"], "PUBLIC");
    let default = c
        .post(&path, &owner.token, json!({"name": "D", "slug": "d"}))
        .await;
    assert_eq!(default.body["visibility"], "PRIVATE");

    for bad in ["SECRET", "public", ""] {
        let r = c
            .post(
                &path,
                &owner.token,
                json!({"name": "X", "slug": "x", "visibility": bad}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(r.body["error"]["fields"][0]["field"], "visibility", "{bad}");
    }
}

#[tokio::test]
async fn workspace_type_must_be_a_known_kind() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, _org, project, workspace) = c.owner_with_workspace("wtype").await;
    let created = c
        .post(
            &format!("/api/v1/projects/{project}/workspaces"),
            &owner.token,
            json!({"name": "W", "type": "pwned"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(created.body["error"]["fields"][0]["field"], "type");
    let patched = c
        .patch(
            &format!("/api/v1/workspaces/{workspace}"),
            &owner.token,
            json!({"type": "SPREADSHEET"}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(patched.body["error"]["fields"][0]["field"], "type");
    let got = c
        .get(&format!("/api/v1/workspaces/{workspace}"), &owner.token)
        .await;
    assert_eq!(got.body["type"], "CANVAS");
}

#[tokio::test]
async fn an_archived_projects_workspaces_are_read_only() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, _org, project, workspace) = c.owner_with_workspace("arch").await;
    let project_path = format!("/api/v1/projects/{project}");
    let ws_path = format!("/api/v1/workspaces/{workspace}");
    let archive = |status: &'static str| {
        let path = project_path.clone();
        let token = owner.token.clone();
        async move {
            let r = c.patch(&path, &token, json!({ "status": status })).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        }
    };
    archive("ARCHIVED").await;

    let create = c
        .post(
            &format!("{project_path}/workspaces"),
            &owner.token,
            json!({"name": "New", "type": "CANVAS"}),
        )
        .await;
    assert_eq!(create.status, StatusCode::CONFLICT, "{}", create.body);
    assert_eq!(create.code(), "project_archived");
    let rename = c.patch(&ws_path, &owner.token, json!({"name": "R"})).await;
    assert_eq!(rename.code(), "project_archived");
    let delete = c.delete(&ws_path, &owner.token).await;
    assert_eq!(delete.code(), "project_archived");
    // Reading still works, and nothing changed.
    let got = c.get(&ws_path, &owner.token).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["name"], "canvas");
    let listed = c
        .get(&format!("{project_path}/workspaces"), &owner.token)
        .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);

    archive("ACTIVE").await;
    let create = c
        .post(
            &format!("{project_path}/workspaces"),
            &owner.token,
            json!({"name": "New", "type": "CANVAS"}),
        )
        .await;
    assert_eq!(create.status, StatusCode::CREATED, "{}", create.body);
}

/// Writes two blocks and a relation between them straight into the projection tables.
async fn seed_canvas_rows(pool: &sqlx::PgPool, workspace: uuid::Uuid) {
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    for id in [a, b] {
        sqlx::query(
            "INSERT INTO core_blocks (id, workspace_id, type, name) VALUES ($1, $2, 'NODE', 'n')",
        )
        .bind(id)
        .bind(workspace)
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO core_relations (workspace_id, source_block_id, target_block_id, type)
         VALUES ($1, $2, $3, 'LINK')",
    )
    .bind(workspace)
    .bind(a)
    .bind(b)
    .execute(pool)
    .await
    .unwrap();
}

/// `(live blocks, live relations)` of a workspace.
async fn live_canvas_rows(pool: &sqlx::PgPool, workspace: uuid::Uuid) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM core_blocks WHERE workspace_id = $1 AND deleted_at IS NULL),
                (SELECT COUNT(*) FROM core_relations WHERE workspace_id = $1 AND deleted_at IS NULL)",
    )
    .bind(workspace)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn deleting_a_workspace_or_project_deletes_its_canvas_rows() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, _org, project, first) = c.owner_with_workspace("rows").await;
    let second = c.create_workspace(&owner, project, "second").await;
    seed_canvas_rows(app.pool(), first).await;
    seed_canvas_rows(app.pool(), second).await;
    assert_eq!(live_canvas_rows(app.pool(), first).await, (2, 1));

    let deleted = c
        .delete(&format!("/api/v1/workspaces/{first}"), &owner.token)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(live_canvas_rows(app.pool(), first).await, (0, 0));
    assert_eq!(live_canvas_rows(app.pool(), second).await, (2, 1));

    let deleted = c
        .delete(&format!("/api/v1/projects/{project}"), &owner.token)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(live_canvas_rows(app.pool(), second).await, (0, 0));
}
