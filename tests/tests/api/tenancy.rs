//! Organizations, projects, workspaces: the walking skeleton and the tenancy boundary.

use nox_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn walking_skeleton_register_to_workspace() {
    let app = TestApp::spawn().await;
    let owner = app.client.register("erin").await;

    let org = app
        .client
        .post(
            "/api/v1/orgs",
            &owner.token,
            json!({"name": "Acme", "slug": "acme"}),
        )
        .await;
    assert_eq!(org.status, StatusCode::CREATED, "{}", org.body);
    assert_eq!(org.body["role_name"], "Owner");
    assert_eq!(org.body["permissions"].as_array().unwrap().len(), 10);
    let org_id = org.id();

    // Every new organization has the four default roles.
    let roles: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM roles WHERE org_id = $1 ORDER BY name")
            .bind(org_id)
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    let names: Vec<&str> = roles.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(names, ["Admin", "Editor", "Owner", "Viewer"]);

    let listed = app.client.get("/api/v1/orgs", &owner.token).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["items"][0]["slug"], "acme");
    assert!(listed.body["next_cursor"].is_null());

    let project_id = app.client.create_project(&owner, org_id, "web").await;
    let projects = app
        .client
        .get(&format!("/api/v1/orgs/{org_id}/projects"), &owner.token)
        .await;
    assert_eq!(projects.body["items"][0]["id"], project_id.to_string());

    let workspace_id = app
        .client
        .create_workspace(&owner, project_id, "Main canvas")
        .await;
    let listed = app
        .client
        .get(
            &format!("/api/v1/projects/{project_id}/workspaces"),
            &owner.token,
        )
        .await;
    assert_eq!(listed.body["items"][0]["id"], workspace_id.to_string());
    let ws = app
        .client
        .get(&format!("/api/v1/workspaces/{workspace_id}"), &owner.token)
        .await;
    assert_eq!(ws.status, StatusCode::OK);
    assert_eq!(ws.body["name"], "Main canvas");
    assert_eq!(ws.body["type"], "CANVAS");
    assert_eq!(ws.body["org_id"], org_id.to_string());
}

#[tokio::test]
async fn slugs_are_validated_and_unique() {
    let app = TestApp::spawn().await;
    let owner = app.client.register("frank").await;
    let bad = app
        .client
        .post(
            "/api/v1/orgs",
            &owner.token,
            json!({"name": "", "slug": "Not A Slug"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["error"]["fields"].as_array().unwrap().len(), 2);

    app.client.create_org(&owner, "taken").await;
    let dup = app
        .client
        .post(
            "/api/v1/orgs",
            &owner.token,
            json!({"name": "x", "slug": "taken"}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.code(), "slug_taken");
}

#[tokio::test]
async fn another_organizations_resources_are_invisible() {
    let app = TestApp::spawn().await;
    let (_alice, org, project, workspace) = app.client.owner_with_workspace("alice").await;
    let mallory = app.client.register("mallory").await;

    let paths = [
        format!("/api/v1/orgs/{org}/projects"),
        format!("/api/v1/projects/{project}/workspaces"),
        format!("/api/v1/workspaces/{workspace}"),
    ];
    for path in &paths {
        let read = app.client.get(path, &mallory.token).await;
        assert_eq!(read.status, StatusCode::NOT_FOUND, "GET {path}");
        assert_eq!(read.code(), "not_found");
        assert!(!read.body.to_string().contains(&org.to_string()));
    }
    let create_project = app
        .client
        .post(&paths[0], &mallory.token, json!({"name": "x", "slug": "x"}))
        .await;
    assert_eq!(create_project.status, StatusCode::NOT_FOUND);
    let create_ws = app
        .client
        .post(
            &paths[1],
            &mallory.token,
            json!({"name": "x", "type": "CANVAS"}),
        )
        .await;
    assert_eq!(create_ws.status, StatusCode::NOT_FOUND);
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM projects WHERE org_id = $1")
        .bind(org)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 1, "mallory created nothing in alice's org");

    // Unknown and malformed ids are 404 too.
    let unknown = app
        .client
        .get(
            &format!("/api/v1/workspaces/{}", Uuid::new_v4()),
            &mallory.token,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let malformed = app
        .client
        .get("/api/v1/workspaces/not-a-uuid", &mallory.token)
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.code(), "invalid_id");
}

#[tokio::test]
async fn a_viewer_can_read_but_not_create() {
    let app = TestApp::spawn().await;
    let (_owner, org, project, workspace) = app.client.owner_with_workspace("grace").await;
    let viewer = app.client.register("heidi").await;
    sqlx::query(
        "INSERT INTO org_members (org_id, user_id, role_id)
         SELECT $1, $2, id FROM roles WHERE org_id = $1 AND name = 'Viewer'",
    )
    .bind(org)
    .bind(viewer.user_id)
    .execute(&app.db.pool)
    .await
    .unwrap();

    let read = app
        .client
        .get(&format!("/api/v1/workspaces/{workspace}"), &viewer.token)
        .await;
    assert_eq!(read.status, StatusCode::OK);
    let denied = app
        .client
        .post(
            &format!("/api/v1/orgs/{org}/projects"),
            &viewer.token,
            json!({"name": "x", "slug": "x"}),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.code(), "forbidden");
    let denied_ws = app
        .client
        .post(
            &format!("/api/v1/projects/{project}/workspaces"),
            &viewer.token,
            json!({"name": "x", "type": "CANVAS"}),
        )
        .await;
    assert_eq!(denied_ws.status, StatusCode::FORBIDDEN);
}
