//! The caller's own account (hardening items 4 and 5): deleting it keeps every organization
//! administrable and stops counting it; `PATCH /me`; sessions' `last_active_at`.

use nox_tests::{Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

async fn delete_me(app: &TestApp, user: &Session) -> nox_tests::http::Reply {
    app.client
        .delete_with("/api/v1/me", &user.token, json!({ "password": PASSWORD }))
        .await
}

async fn members_used(app: &TestApp, admin: &Session, org: Uuid) -> i64 {
    let usage = app
        .client
        .get(&format!("/api/v1/orgs/{org}/usage"), &admin.token)
        .await;
    assert_eq!(usage.status, StatusCode::OK, "{}", usage.body);
    usage.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metric"] == "members")
        .and_then(|i| i["used"].as_i64())
        .unwrap_or_else(|| panic!("no members metric in {}", usage.body))
}

fn member_ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_sole_owner_cannot_delete_the_account() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("solo").await;
    let org = c.create_org(&owner, "solo-co").await;
    let editor = c
        .add_member(app.pool(), &owner, org, "heir", "Editor")
        .await;

    let refused = delete_me(&app, &owner).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(refused.code(), "last_owner");
    assert_eq!(
        refused.body["error"]["details"]["organizations"][0]["id"],
        org.to_string()
    );
    assert!(refused.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("solo-co"));
    // Nothing happened: the account and its session still work.
    assert_eq!(
        c.get("/api/v1/me", &owner.token).await.status,
        StatusCode::OK
    );

    // Once another member holds the owner role, the account can go.
    let owner_role = c.role_id(&owner, org, "Owner").await;
    let promoted = c
        .patch(
            &format!("/api/v1/orgs/{org}/members/{}", editor.user_id),
            &owner.token,
            json!({ "role_id": owner_role }),
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
    let gone = delete_me(&app, &owner).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);

    // The heir is now the sole owner in turn: refused as well.
    let heir_refused = delete_me(&app, &editor).await;
    assert_eq!(heir_refused.code(), "last_owner");
    // And cannot demote themselves below org:admin (the deleted owner does not count).
    let viewer_role = c.role_id(&editor, org, "Viewer").await;
    let demote = c
        .patch(
            &format!("/api/v1/orgs/{org}/members/{}", editor.user_id),
            &editor.token,
            json!({ "role_id": viewer_role }),
        )
        .await;
    assert_eq!(demote.status, StatusCode::CONFLICT, "{}", demote.body);
}

#[tokio::test]
async fn a_deleted_user_is_neither_listed_nor_counted() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let owner = c.register("keeper").await;
    let org = c.create_org(&owner, "keeper-co").await;
    let leaver = c
        .add_member(app.pool(), &owner, org, "leaver", "Editor")
        .await;
    assert_eq!(members_used(&app, &owner, org).await, 2);

    let gone = delete_me(&app, &leaver).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);

    let members = c
        .get(&format!("/api/v1/orgs/{org}/members"), &owner.token)
        .await;
    assert_eq!(member_ids(&members.body), [owner.user_id.to_string()]);
    assert_eq!(members_used(&app, &owner, org).await, 1);
    // The role is held by nobody alive: its count says so and it can be deleted.
    let roles = c
        .get(&format!("/api/v1/orgs/{org}/roles"), &owner.token)
        .await;
    let editor = roles.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Editor")
        .unwrap()
        .clone();
    assert_eq!(editor["member_count"], 0, "{editor}");
    let deleted = c
        .delete(
            &format!(
                "/api/v1/orgs/{org}/roles/{}",
                editor["id"].as_str().unwrap()
            ),
            &owner.token,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);

    // The seat is free again under a two-member quota.
    sqlx::query(
        "UPDATE subscriptions SET quotas = jsonb_set(quotas, '{max_members}', '2') WHERE org_id = $1",
    )
    .bind(org)
    .execute(app.pool())
    .await
    .unwrap();
    c.add_member(app.pool(), &owner, org, "newcomer", "Viewer")
        .await;
    assert_eq!(members_used(&app, &owner, org).await, 2);
}

#[tokio::test]
async fn patch_me_changes_and_clears_the_profile() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let user = c.register("prof").await;

    let set = c
        .patch(
            "/api/v1/me",
            &user.token,
            json!({"full_name": "  Ada Lovelace ", "avatar_url": "https://cdn.example.com/ada.png"}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["full_name"], "Ada Lovelace");
    assert_eq!(set.body["avatar_url"], "https://cdn.example.com/ada.png");
    let me = c.get("/api/v1/me", &user.token).await;
    assert_eq!(me.body["full_name"], "Ada Lovelace");

    // A field left out keeps its value; null clears it.
    let cleared = c
        .patch("/api/v1/me", &user.token, json!({"avatar_url": null}))
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    assert!(cleared.body["avatar_url"].is_null());
    assert_eq!(cleared.body["full_name"], "Ada Lovelace");

    let bad = c
        .patch(
            "/api/v1/me",
            &user.token,
            json!({"full_name": "x".repeat(256), "avatar_url": "javascript:alert(1)"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let fields: Vec<&str> = bad.body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["full_name", "avatar_url"]);
    for url in [
        "ftp://example.com/a.png",
        "/a.png",
        "https://",
        "data:image/png,x",
    ] {
        let r = c
            .patch("/api/v1/me", &user.token, json!({ "avatar_url": url }))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
    }
    // Not a way to change the email.
    let email = c
        .patch("/api/v1/me", &user.token, json!({"email": "x@example.com"}))
        .await;
    assert_eq!(
        email.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        email.body
    );
    let anon = c
        .send(
            reqwest::Method::PATCH,
            "/api/v1/me",
            None,
            Some(json!({"full_name": "x"})),
        )
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    let me = c.get("/api/v1/me", &user.token).await;
    assert_eq!(me.body["full_name"], "Ada Lovelace");
    assert_eq!(me.body["email"], user.email);
}

/// The session's `last_active_at` as Unix seconds (microsecond precision).
async fn last_active_at(app: &TestApp, user: &Session) -> f64 {
    sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM last_active_at)::float8 FROM user_sessions WHERE user_id = $1",
    )
    .bind(user.user_id)
    .fetch_one(app.pool())
    .await
    .unwrap()
}

async fn age_session(app: &TestApp, user: &Session, secs: i64) {
    sqlx::query(
        "UPDATE user_sessions SET last_active_at = NOW() - make_interval(secs => $2::double precision)
         WHERE user_id = $1",
    )
    .bind(user.user_id)
    .bind(secs as f64)
    .execute(app.pool())
    .await
    .unwrap();
}

#[tokio::test]
async fn using_a_session_moves_last_active_at_at_most_once_a_minute() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let user = c.register("active").await;

    // Stale by ten minutes: an authenticated request moves it to now.
    age_session(&app, &user, 600).await;
    let stale = last_active_at(&app, &user).await;
    assert_eq!(
        c.get("/api/v1/me", &user.token).await.status,
        StatusCode::OK
    );
    let touched = last_active_at(&app, &user).await;
    assert!(touched > stale + 590.0, "{stale} -> {touched}");

    // Within the minute, further requests write nothing.
    age_session(&app, &user, 30).await;
    let recent = last_active_at(&app, &user).await;
    for _ in 0..3 {
        c.get("/api/v1/me", &user.token).await;
    }
    assert_eq!(last_active_at(&app, &user).await, recent);

    // The list shows it.
    let listed = c.get("/api/v1/me/sessions", &user.token).await;
    let shown = listed.body["items"][0]["last_active_at"].as_str().unwrap();
    let same: bool = sqlx::query_scalar("SELECT EXTRACT(EPOCH FROM $1::timestamptz)::float8 = $2")
        .bind(shown)
        .bind(recent)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(same, "listed {shown}, stored {recent}");

    // A refresh moves it too.
    age_session(&app, &user, 600).await;
    let stale = last_active_at(&app, &user).await;
    let refreshed = c
        .post_anon(
            "/api/v1/auth/refresh",
            json!({ "refresh_token": user.refresh_token }),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    assert!(last_active_at(&app, &user).await > stale + 590.0);
}
