//! Sessions: refresh rotation and reuse detection, logout, listing and revoking devices.

use nox_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

const REFRESH: &str = "/api/v1/auth/refresh";
const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_session() {
    let app = TestApp::spawn().await;
    let user = app.client.register("rota").await;

    let first = app
        .client
        .post_anon(REFRESH, json!({"refresh_token": user.refresh_token}))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let access = first.body["access_token"].as_str().unwrap().to_string();
    let refresh = first.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh, user.refresh_token);
    assert_eq!(first.body["user"]["id"], user.user_id.to_string());
    assert_eq!(
        app.client.get("/api/v1/me", &access).await.status,
        StatusCode::OK
    );

    // The new refresh token rotates again.
    let second = app
        .client
        .post_anon(REFRESH, json!({"refresh_token": refresh}))
        .await;
    assert_eq!(second.status, StatusCode::OK);
    let latest_access = second.body["access_token"].as_str().unwrap().to_string();
    let latest_refresh = second.body["refresh_token"].as_str().unwrap().to_string();

    // Replaying a rotated token revokes the session: every token of it stops working.
    let replay = app
        .client
        .post_anon(REFRESH, json!({"refresh_token": user.refresh_token}))
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replay.code(), "refresh_token_reused");
    assert_eq!(
        app.client.get("/api/v1/me", &latest_access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let after = app
        .client
        .post_anon(REFRESH, json!({"refresh_token": latest_refresh}))
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);

    let reason: Option<String> =
        sqlx::query_scalar("SELECT revoke_reason FROM user_sessions WHERE user_id = $1")
            .bind(user.user_id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(reason.as_deref(), Some("refresh_reuse"));
    // Only hashes are stored.
    let stored: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM user_session_refresh_history WHERE token_hash = $1",
    )
    .bind(&user.refresh_token)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn refresh_validation_and_unknown_tokens() {
    let app = TestApp::spawn().await;
    let empty = app
        .client
        .post_anon(REFRESH, json!({"refresh_token": ""}))
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(empty.body["error"]["fields"][0]["field"], "refresh_token");
    let missing = app.client.post_anon(REFRESH, json!({})).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = app
        .client
        .post_anon(REFRESH, json!({"refresh_token": "no-such-token"}))
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.code(), "unauthorized");

    // An expired session cannot be refreshed.
    let user = app.client.register("expired").await;
    sqlx::query(
        "UPDATE user_sessions SET expires_at = NOW() - INTERVAL '1 second' WHERE user_id = $1",
    )
    .bind(user.user_id)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let expired = app
        .client
        .post_anon(REFRESH, json!({"refresh_token": user.refresh_token}))
        .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.client.get("/api/v1/me", &user.token).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn logout_ends_the_session_and_its_refresh_token() {
    let app = TestApp::spawn().await;
    let user = app.client.register("bye").await;
    let anon = app.client.post_anon("/api/v1/auth/logout", json!({})).await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);

    let out = app
        .client
        .post("/api/v1/auth/logout", &user.token, json!({}))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.client.get("/api/v1/me", &user.token).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refresh = app
        .client
        .post_anon(REFRESH, json!({"refresh_token": user.refresh_token}))
        .await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
    let reason: Option<String> =
        sqlx::query_scalar("SELECT revoke_reason FROM user_sessions WHERE user_id = $1")
            .bind(user.user_id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(reason.as_deref(), Some("logout"));
}

#[tokio::test]
async fn sessions_are_listed_with_the_current_one_flagged_and_can_be_revoked() {
    let app = TestApp::spawn().await;
    let user = app.client.register("multi").await;
    let other_login = app.client.login(&user.email, PASSWORD).await;
    assert_eq!(other_login.status, StatusCode::OK);
    let other_token = other_login.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let other_sid = other_login.body["session_id"].as_str().unwrap().to_string();

    let list = app.client.get("/api/v1/me/sessions", &user.token).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let current: Vec<_> = items.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_ne!(current[0]["id"], other_sid.as_str());
    assert!(items.iter().all(|s| s["device_type"].is_string()));
    assert!(items.iter().all(|s| s.get("refresh_token").is_none()));

    // Another user cannot see or revoke it: 404 like a missing one.
    let stranger = app.client.register("stranger").await;
    let theirs = app
        .client
        .delete(&format!("/api/v1/me/sessions/{other_sid}"), &stranger.token)
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    let missing = app
        .client
        .delete(
            &format!("/api/v1/me/sessions/{}", Uuid::new_v4()),
            &user.token,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let malformed = app
        .client
        .delete("/api/v1/me/sessions/not-a-uuid", &user.token)
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.code(), "invalid_id");
    assert_eq!(
        app.client.get("/api/v1/me", &other_token).await.status,
        StatusCode::OK
    );

    let revoke = app
        .client
        .delete(&format!("/api/v1/me/sessions/{other_sid}"), &user.token)
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.client.get("/api/v1/me", &other_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = app
        .client
        .delete(&format!("/api/v1/me/sessions/{other_sid}"), &user.token)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let list = app.client.get("/api/v1/me/sessions", &user.token).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);

    let anon = app
        .client
        .send(reqwest::Method::GET, "/api/v1/me/sessions", None, None)
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoking_a_session_is_audited_in_the_users_orgs() {
    let app = TestApp::spawn().await;
    let user = app.client.register("audited").await;
    let org = app
        .client
        .create_org(
            &user,
            &format!("aud-{}", &Uuid::new_v4().simple().to_string()[..8]),
        )
        .await;
    let second = app.client.login(&user.email, PASSWORD).await;
    let sid = second.body["session_id"].as_str().unwrap().to_string();
    let revoke = app
        .client
        .delete(&format!("/api/v1/me/sessions/{sid}"), &user.token)
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    let rows: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_logs WHERE org_id = $1 AND action = 'session.revoked'
         AND target_id = $2 AND actor_id = $3",
    )
    .bind(org)
    .bind(sid.parse::<Uuid>().unwrap())
    .bind(user.user_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(rows, 1);
}
