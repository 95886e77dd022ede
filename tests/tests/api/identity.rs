//! Register, login, me: success and every error path.

use nox_tests::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::json;

const REGISTER: &str = "/api/v1/auth/register";
const LOGIN: &str = "/api/v1/auth/login";

#[tokio::test]
async fn register_login_and_me() {
    let app = TestApp::spawn().await;
    let reply = app
        .client
        .send(
            Method::POST,
            REGISTER,
            None,
            Some(json!({"email": "Ada@Example.com", "password": "correct horse battery", "full_name": "Ada"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["user"]["email"], "Ada@Example.com");
    assert_eq!(reply.body["token_type"], "Bearer");
    assert!(reply.body["access_token"].as_str().unwrap().len() > 20);
    assert!(reply.body.get("password_hash").is_none());

    // Login is case-insensitive on the email.
    let login = app
        .client
        .send(
            Method::POST,
            LOGIN,
            None,
            Some(json!({"email": "ada@example.com", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let token = login.body["access_token"].as_str().unwrap();
    assert!(login.body["refresh_token"].as_str().unwrap().len() >= 40);

    let me = app.client.get("/api/v1/me", token).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["full_name"], "Ada");
    assert_eq!(me.body["id"], reply.body["user"]["id"]);

    // Each login is a session row with the client's details; the refresh token is stored hashed.
    let (count, stored): (i64, String) =
        sqlx::query_as("SELECT COUNT(*) OVER (), refresh_token FROM user_sessions LIMIT 1")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(count, 2);
    assert_ne!(stored, login.body["refresh_token"].as_str().unwrap());
}

#[tokio::test]
async fn duplicate_email_is_a_conflict_case_insensitively() {
    let app = TestApp::spawn().await;
    let body = |email: &str| Some(json!({"email": email, "password": "correct horse battery"}));
    let first = app
        .client
        .send(Method::POST, REGISTER, None, body("bob@example.com"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = app
        .client
        .send(Method::POST, REGISTER, None, body("BOB@example.com"))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "email_taken");
}

#[tokio::test]
async fn invalid_registration_lists_every_bad_field() {
    let app = TestApp::spawn().await;
    let reply = app
        .client
        .send(
            Method::POST,
            REGISTER,
            None,
            Some(json!({"email": "not-an-email", "password": "short"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.code(), "validation_failed");
    let fields: Vec<&str> = reply.body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password"]);
}

#[tokio::test]
async fn malformed_bodies_get_stable_codes() {
    let app = TestApp::spawn().await;
    let bad_json = app
        .client
        .send_raw(REGISTER, "application/json", "{\"email\": ")
        .await;
    assert_eq!(bad_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_json.code(), "invalid_json");

    let missing = app
        .client
        .send_raw(REGISTER, "application/json", "{\"email\": \"a@b.co\"}")
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.code(), "invalid_body");
    assert!(missing.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("password"));

    let not_json = app.client.send_raw(REGISTER, "text/plain", "hello").await;
    assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(not_json.code(), "unsupported_media_type");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = TestApp::spawn().await;
    let user = app.client.register("carol").await;
    let wrong = app
        .client
        .send(
            Method::POST,
            LOGIN,
            None,
            Some(json!({"email": user.email, "password": "wrong password"})),
        )
        .await;
    let unknown = app
        .client
        .send(
            Method::POST,
            LOGIN,
            None,
            Some(json!({"email": "nobody@example.com", "password": "wrong password"})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, unknown.body);
}

#[tokio::test]
async fn me_requires_a_valid_token() {
    let app = TestApp::spawn().await;
    let none = app.client.send(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.code(), "unauthorized");
    let garbage = app.client.get("/api/v1/me", "not.a.jwt").await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);

    // A token signed with another secret is refused.
    let user = app.client.register("dave").await;
    let other = TestApp::spawn_with(|c| {
        c.jwt_secret = Some("a-different-secret-a-different-secret".into())
    })
    .await;
    let forged = other.client.get("/api/v1/me", &user.token).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    // A revoked session's token stops working at once.
    sqlx::query("UPDATE user_sessions SET revoked_at = NOW() WHERE user_id = $1")
        .bind(user.user_id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let revoked = app.client.get("/api/v1/me", &user.token).await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
}
