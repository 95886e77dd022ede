//! Organizations: get, update, soft delete, paginated list, the subscription every new org gets.

use nox_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn get_update_and_soft_delete() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, _project, workspace) = c.owner_with_workspace("olive").await;
    let viewer = c.add_member(app.pool(), &owner, org, "vic", "Viewer").await;
    let path = format!("/api/v1/orgs/{org}");

    let got = c.get(&path, &viewer.token).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(got.body["role_name"], "Viewer");

    let updated = c
        .patch(
            &path,
            &owner.token,
            json!({"name": " Renamed ", "settings": {"theme": "dark"}}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["name"], "Renamed");
    assert_eq!(updated.body["settings"]["theme"], "dark");

    let invalid = c
        .patch(
            &path,
            &owner.token,
            json!({"slug": "Bad Slug", "settings": [1], "name": ""}),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = invalid.body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "slug", "settings"]);
    let empty = c.patch(&path, &owner.token, json!({})).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);

    c.create_org(&owner, "taken-slug").await;
    let dup = c
        .patch(&path, &owner.token, json!({"slug": "taken-slug"}))
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.code(), "slug_taken");

    let denied = c.patch(&path, &viewer.token, json!({"name": "x"})).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(
        c.delete(&path, &viewer.token).await.status,
        StatusCode::FORBIDDEN
    );

    let slug = got.body["slug"].as_str().unwrap().to_string();
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
    assert_eq!(
        c.delete(&path, &owner.token).await.status,
        StatusCode::NOT_FOUND
    );
    let listed = c.get("/api/v1/orgs", &owner.token).await;
    assert!(listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["id"] != org.to_string()));
    // The slug of a deleted organization is free again.
    let reused = c
        .post(
            "/api/v1/orgs",
            &owner.token,
            json!({"name": "again", "slug": slug}),
        )
        .await;
    assert_eq!(reused.status, StatusCode::CREATED, "{}", reused.body);
}

#[tokio::test]
async fn org_list_is_paginated() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("paula").await;
    for slug in ["p-one", "p-two", "p-three"] {
        c.create_org(&owner, slug).await;
    }
    let first = c.get("/api/v1/orgs?limit=2", &owner.token).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(first.body["items"][0]["slug"], "p-one");
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = c
        .get(
            &format!("/api/v1/orgs?limit=2&cursor={cursor}"),
            &owner.token,
        )
        .await;
    assert_eq!(second.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(second.body["items"][0]["slug"], "p-three");
    assert!(second.body["next_cursor"].is_null());

    let bad = c.get("/api/v1/orgs?limit=0&cursor=zzz", &owner.token).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["error"]["fields"].as_array().unwrap().len(), 2);
    let not_a_number = c.get("/api/v1/orgs?limit=abc", &owner.token).await;
    assert_eq!(not_a_number.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_new_org_has_a_free_subscription_and_usage_rows() {
    let app = TestApp::spawn().await;
    let owner = app.client.register("quinn").await;
    let org = app.client.create_org(&owner, "quinn-co").await;
    let (plan,): (String,) = sqlx::query_as("SELECT plan_id FROM subscriptions WHERE org_id = $1")
        .bind(org)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(plan, "free");
    let (members,): (i64,) = sqlx::query_as(
        "SELECT current_value FROM org_usage_metrics WHERE org_id = $1 AND metric_type = 'members'",
    )
    .bind(org)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(members, 1);
}
